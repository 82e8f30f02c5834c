machine { cpus = 1, step_budget = 0 }
process("p", function() exit() end)
