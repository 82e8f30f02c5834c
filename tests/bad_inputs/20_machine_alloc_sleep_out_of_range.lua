machine { cpus = 1, alloc_sleep = 1.5 }
process("p", function() exit() end)
