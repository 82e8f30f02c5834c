machine { cpus = 1, memory_pages = 2 }
local p = process("p", function() exit() end)
p:map(0x10000, 8)
for i = 0, 7 do
  p:write(0x10000 + i * 4096)
end
