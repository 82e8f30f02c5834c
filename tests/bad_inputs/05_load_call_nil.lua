machine { cpus = 1 }
process("p", function() exit() end)
setup_everything()
