machine { swap_devices = { 64, nil, 3 } }
process("p", function() exit() end)
