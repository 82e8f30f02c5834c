machine { cpus = 1 }
local base = "0x10000"
local addr = base + "one page"
process("p", function() exit() end)
