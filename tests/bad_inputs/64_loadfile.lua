machine { cpus = 1 }
local chunk = loadfile("scenarios/race1_fork.lua")
process("p", function() exit() end)
