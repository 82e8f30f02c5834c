machine { cpus = 1 }
local s = ("x"):dump()
process("p", function() exit() end)
