
local big = string.rep("", 1 << 33, "ab")
