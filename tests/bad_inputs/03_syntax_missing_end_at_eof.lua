machine { cpus = 1 }
process("p", function() exit() end)
if true then
  local devices = 1
