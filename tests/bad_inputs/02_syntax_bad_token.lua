machine { cpus = 1 }
local x = 3 $ 4
process("p", function() exit() end)
