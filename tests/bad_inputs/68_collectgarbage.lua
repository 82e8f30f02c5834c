machine { cpus = 1 }
collectgarbage("collect")
process("p", function() exit() end)
