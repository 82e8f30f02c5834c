machine { cpus = 1 }
process("p", function()
  getpid()
  local where = debug.traceback()
end)
