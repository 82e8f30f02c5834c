machine { cpus = 1, swap_devices = { 8 } }
process("p", function() exit() end)
swapoff(1)
