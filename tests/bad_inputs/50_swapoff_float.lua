machine { cpus = 1, swap_devices = { 8 } }
process("swapoff", function()
  swapoff(1.5)
end)
