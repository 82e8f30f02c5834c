-- A finalizer runs with the instruction hook off: refused.
local t = {}
setmetatable(t, { __gc = function() while true do end end })
