machine { cpus = 1 }
process("p", function()
  getpid()
  error({ reason = "no child" })
end)
