machine { cpus = 1, swap_devices = { 8 } }
local seg = shmget(2)
