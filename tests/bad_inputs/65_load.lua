machine { cpus = 1 }
local f = load("return 1")
process("p", function() exit() end)
