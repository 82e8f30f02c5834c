machine { cpus = 1 }
local p = process("p", function()
  read("0x10000")
end)
p:map(0x10000, 1)
