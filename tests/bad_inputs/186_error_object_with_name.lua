local err = setmetatable({}, { __name = "MyError" })
error(err)
