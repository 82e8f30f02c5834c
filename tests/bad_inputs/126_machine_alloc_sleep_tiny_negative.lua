machine { cpus = 1, alloc_sleep = -1e-7 }
process("p", function() exit() end)
