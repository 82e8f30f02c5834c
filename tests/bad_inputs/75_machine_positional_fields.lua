machine { 1, 64 }
process("p", function() exit() end)
