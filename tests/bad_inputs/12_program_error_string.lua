machine { cpus = 1 }
process("p", function()
  getpid()
  error("the child never started")
end)
