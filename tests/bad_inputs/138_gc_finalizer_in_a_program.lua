machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
process("p", function()
  local junk = setmetatable({}, { __gc = function() for i = 1, 1e12 do end end })
  exit()
end)
