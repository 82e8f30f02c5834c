machine { cpus = 1, faults = { io_delay = 0.1 + 0.2 + 0.9 } }
process("p", function() exit() end)
