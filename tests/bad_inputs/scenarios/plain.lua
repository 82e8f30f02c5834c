machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
process("p", function() exit() end)
