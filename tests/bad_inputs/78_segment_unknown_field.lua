machine { cpus = 1 }
local seg = shmget(2)
local size = seg.size * 4096
process("p", function() exit() end)
