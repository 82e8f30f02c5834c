machine { cpus = 1 }
process("p", function() exit() end)
local n = 0
while true do
  n = n + 1
end
