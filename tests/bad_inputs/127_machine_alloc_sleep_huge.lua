machine { cpus = 1, alloc_sleep = 1e300 }
process("p", function() exit() end)
