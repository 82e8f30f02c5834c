local s = string.rep({}, 2)
