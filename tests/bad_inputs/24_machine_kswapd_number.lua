machine { cpus = 1, kswapd = 1 }
process("p", function() exit() end)
