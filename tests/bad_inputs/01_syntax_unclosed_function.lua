machine { cpus = 1, swap_devices = { 8 } }
process("p", function()
  read(0x10000)
  -- the function is never closed
process("q", function() exit() end)
