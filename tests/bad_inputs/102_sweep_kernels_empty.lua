sweep { params = { n = { 1 } }, kernels = {} }
process("p", function() exit() end)
