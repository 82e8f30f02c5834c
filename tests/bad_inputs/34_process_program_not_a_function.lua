machine { cpus = 1 }
process("p", "exit()")
