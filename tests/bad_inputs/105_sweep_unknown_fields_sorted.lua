-- several unknown fields: the first by name is reported, whatever the table order
sweep { zeta = 1, params = { n = { 1 } }, mu = 2, alpha = 3, omega = 4 }
process("p", function() exit() end)
