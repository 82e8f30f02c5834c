machine { cpus = 1 }
process("p", function() exit() end)
error("this scenario needs two swap devices")
