machine { cpus = 1 }
local p = process("p", function() exit() end)
p:map(0x10000, 1)
p:write(0x10000)
p:swap_out(0x10000)
