machine { cpus = 1 }
local state = {}
process("p", function()
  getpid()
  local n = state.child.pid
end)
