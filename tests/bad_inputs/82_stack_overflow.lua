machine { cpus = 1 }
local function depth(n)
  return depth(n + 1) + 1
end
process("p", function()
  getpid()
  depth(1)
end)
