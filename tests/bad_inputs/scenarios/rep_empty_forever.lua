while true do
  local s = string.rep("", 1 << 62)
end
