sweep { params = { n = { 1 } }, kernels = { "pre4", "patched", "pre4" } }
process("p", function() exit() end)
