machine { cpus = 1 }
process("p", function()
  getpid()
  fork(42)
end)
