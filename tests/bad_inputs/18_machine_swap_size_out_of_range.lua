machine { cpus = 1, swap_devices = { 64, 1 } }
process("p", function() exit() end)
