table.move({1, 2}, 1, 2, math.maxinteger)
