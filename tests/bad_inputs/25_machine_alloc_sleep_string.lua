machine { cpus = 1, alloc_sleep = "often" }
process("p", function() exit() end)
