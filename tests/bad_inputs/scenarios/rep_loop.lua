while true do
  local s = string.rep("x", 1 << 24)
end
