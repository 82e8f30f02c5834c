-- Lua marks an object for finalization whatever __gc holds.
local t = setmetatable({}, { __gc = false })
