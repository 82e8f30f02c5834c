machine { cpus = 2.0 }
process("p", function() exit() end)
