error(setmetatable({}, { __name = "\27[5mblink" }))
