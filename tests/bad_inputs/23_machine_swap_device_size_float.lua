machine { cpus = 1, swap_devices = { 64, 32.5 } }
process("p", function() exit() end)
