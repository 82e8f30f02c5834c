table.move({}, 1, 1 << 62, 1)
