machine { cpus = 1 }
process("p", function()
  mmap(0x10000)
end)
