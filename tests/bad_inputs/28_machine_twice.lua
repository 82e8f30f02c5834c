machine { cpus = 1 }
process("p", function() exit() end)
machine { cpus = 2 }
