machine { cpus = "two" }
process("p", function() exit() end)
