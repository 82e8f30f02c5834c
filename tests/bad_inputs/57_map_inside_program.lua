machine { cpus = 1 }
local p
p = process("p", function()
  getpid()
  p:map(0x10000, 1)
end)
