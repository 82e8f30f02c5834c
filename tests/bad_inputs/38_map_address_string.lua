machine { cpus = 1 }
local p = process("p", function() exit() end)
p:map("low memory", 1)
