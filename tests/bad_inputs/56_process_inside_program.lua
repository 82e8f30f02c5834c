machine { cpus = 1 }
process("parent", function()
  getpid()
  process("child", function() exit() end)
end)
