machine { cpus = 1, swap_devices = { 2 } }
local p = process("p", function() exit() end)
p:map(0x10000, 2)
p:write(0x10000)
p:write(0x11000)
p:swap_out(0x10000)
p:swap_out(0x11000)
