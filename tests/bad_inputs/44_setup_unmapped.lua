machine { cpus = 1, swap_devices = { 8 } }
local p = process("p", function() exit() end)
p:map(0x10000, 1)
p:write(0x11000)
