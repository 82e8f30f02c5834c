machine { cpus = 1 }
process("worker", function() exit() end)
process("worker", function() exit() end)
