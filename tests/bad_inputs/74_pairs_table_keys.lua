machine { cpus = 1 }
local owners = {}
owners[{ name = "p" }] = 1
for owner, n in pairs(owners) do end
process("p", function() exit() end)
