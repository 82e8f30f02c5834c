machine("small")
process("p", function() exit() end)
