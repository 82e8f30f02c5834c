machine { cpus = 1 }
dofile("scenarios/race1_fork.lua")
process("p", function() exit() end)
