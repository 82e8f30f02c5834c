machine { cpus = 1, swap_devices = 64 }
process("p", function() exit() end)
