sweep { 1 }
process("p", function() exit() end)
