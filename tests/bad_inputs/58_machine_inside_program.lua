process("p", function()
  getpid()
  machine { cpus = 2 }
end)
