machine { cpus = 1 }
local p = process("p", function() exit() end)
p:shmat(1, 0x10000)
