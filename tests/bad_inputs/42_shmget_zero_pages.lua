machine { cpus = 1 }
local seg = shmget(0)
process("p", function() exit() end)
