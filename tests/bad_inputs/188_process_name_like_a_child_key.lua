machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
process("parent", function() exit() end)
process("parent/1", function() exit() end)
