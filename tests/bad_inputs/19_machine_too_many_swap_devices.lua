local devices = {}
for i = 1, 9 do devices[i] = 16 end
machine { cpus = 1, swap_devices = devices }
process("p", function() exit() end)
