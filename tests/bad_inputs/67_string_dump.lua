machine { cpus = 1 }
local bytes = string.dump(function() end)
process("p", function() exit() end)
