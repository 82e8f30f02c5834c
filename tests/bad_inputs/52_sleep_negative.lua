machine { cpus = 1 }
process("p", function()
  sleep(-5)
end)
