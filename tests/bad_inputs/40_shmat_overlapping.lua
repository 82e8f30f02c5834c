machine { cpus = 1 }
local seg = shmget(4)
local p = process("p", function() exit() end)
p:map(0x10000, 1)
p:shmat(seg, 0xe000)
