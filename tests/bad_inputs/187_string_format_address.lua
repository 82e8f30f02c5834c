local t = {}
local s = string.format("%d %p", 1, t)
