-- one CPU more than the maximum
machine { cpus = 65 }
process("p", function() exit() end)
