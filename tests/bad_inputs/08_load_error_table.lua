machine { cpus = 1 }
process("p", function() exit() end)
error({ code = 7 })
