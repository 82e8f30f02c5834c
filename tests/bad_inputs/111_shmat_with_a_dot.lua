local seg = shmget(1)
local p = process("p", function() exit() end)
p.shmat(seg, 0x10000)
