machine { cpus = 1.5 }
process("p", function() exit() end)
