local t = setmetatable({}, { __pairs = 1 })
for k in pairs(t) do end
process("p", function() exit() end)
