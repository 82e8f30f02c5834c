local line = string.rep("x", 1000)
for i = 1, 1e9 do
  print(line)
end
