machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
process("p", function()
  local s = string.rep("a", 60)
  local found = string.find(s, "a-a-a-a-a-a-a-a-a-a-a-a-b")
  exit()
end)
