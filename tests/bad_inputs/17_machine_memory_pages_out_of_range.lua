machine { cpus = 1, memory_pages = 0 }
process("p", function() exit() end)
