local v = {}
for i = 1, 2000 do v[i] = i end
sweep { params = { a = v, b = v, c = v }, kernels = { "pre4" }, seeds = 1000 }
machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
process("p", function() exit() end)
