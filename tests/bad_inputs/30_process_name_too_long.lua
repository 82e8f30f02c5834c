machine { cpus = 1 }
process("a_process_name_that_is_much_too_long_for_swapsim", function() exit() end)
