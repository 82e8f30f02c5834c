machine { cpus = 1, swap_devices = { 8 } }
process("p", function()
  getpid()
  swapof(1)
end)
