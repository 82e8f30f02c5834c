local helpers = require("helpers")
machine { cpus = 1 }
process("p", function() exit() end)
