package.path = "./?.lua;" .. package.path
machine { cpus = 1 }
process("p", function() exit() end)
