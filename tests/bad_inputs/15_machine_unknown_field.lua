machine { cpus = 1, memory = 64 }
process("p", function() exit() end)
