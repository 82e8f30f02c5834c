machine { cpus = 1 }
process("p", function()
  getpid()
  sleep(0 / 0)
end)
