machine { cpus = 1, swap_devices = { 8 } }
local p = process("p", function()
  swap_out(0x10000, "p")
end)
p:map(0x10000, 1)
