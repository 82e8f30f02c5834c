machine { cpus = 1, swap_devices = { 8 } }
process("swapoff", function()
  expect(swapoff(1) == 0, 42)
end)
