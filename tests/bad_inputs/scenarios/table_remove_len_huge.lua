local t = setmetatable({}, { __len = function() return 1 << 62 end })

table.remove(t, 1)
