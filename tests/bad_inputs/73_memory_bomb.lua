machine { cpus = 1 }
local t = {}
for i = 1, 1e9 do
  t[i] = string.rep("x", 1000) .. i
end
process("p", function() exit() end)
