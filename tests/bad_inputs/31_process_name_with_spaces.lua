machine { cpus = 1 }
process("swap off", function() exit() end)
