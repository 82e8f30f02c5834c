machine { cpus = 1, faults = { alloc_fail = 1e-7 } }
process("p", function() exit() end)
