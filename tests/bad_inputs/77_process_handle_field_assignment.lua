machine { cpus = 1 }
local p = process("p", function() exit() end)
p.pid = 7
