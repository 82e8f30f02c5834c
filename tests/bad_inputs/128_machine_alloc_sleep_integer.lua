machine { cpus = 1, alloc_sleep = 2 }
process("p", function() exit() end)
