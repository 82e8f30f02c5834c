-- several bad parameters: the first by name is reported, whatever the table order
sweep { params = { zz = "no", mm = { 1, "x" }, bb = {}, yy = 3 } }
process("p", function() exit() end)
