sweep { params = {} }
process("p", function() exit() end)
