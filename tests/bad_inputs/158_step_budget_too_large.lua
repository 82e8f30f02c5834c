machine { cpus = 1, memory_pages = 32, swap_devices = { 16 },
  step_budget = 1000000000000 }
process("p", function() exit() end)
