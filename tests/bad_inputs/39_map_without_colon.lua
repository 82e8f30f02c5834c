machine { cpus = 1 }
local p = process("p", function() exit() end)
p.map(0x10000, 1)
