machine { cpus = 1 }
process("", function() exit() end)
