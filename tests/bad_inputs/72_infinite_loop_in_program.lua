machine { cpus = 1 }
process("p", function()
  getpid()
  while true do
  end
end)
