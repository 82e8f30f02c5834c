machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } , step_budget = 100000000 }
process("p", function()
  for i = 1, 1000000 do
    fork(function()
      local x = 0
      for j = 1, 300 do x = x + j end
    end)
  end
end)
