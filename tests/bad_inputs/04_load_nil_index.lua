machine { cpus = 1 }
local config = nil
local pages = config.pages
process("p", function() exit() end)
