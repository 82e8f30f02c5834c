machine { cpus = 1, faults = { alloc_fail = "often" } }
process("p", function() exit() end)
