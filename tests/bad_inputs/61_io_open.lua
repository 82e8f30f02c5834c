machine { cpus = 1 }
local f = io.open("/etc/passwd")
process("p", function() exit() end)
