sweep { params = { a = { 1 } }, kernels = { "pre4" }, seeds = 1 << 62 }
machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
process("p", function() exit() end)
