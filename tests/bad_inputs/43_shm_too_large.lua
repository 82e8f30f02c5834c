machine { cpus = 1, memory_pages = 16 }
local seg = shmget(1000)
process("p", function() exit() end)
