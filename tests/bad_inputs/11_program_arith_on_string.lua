machine { cpus = 1 }
local p = process("p", function()
  local pid = getpid()
  local next_addr = "0x10000" + pid * "page"
end)
