machine { cpus = 1 }
local seg = shmget(2.5)
process("p", function() exit() end)
