error("\27]0;owned\7\27[2J\27[31mred\u{9b}")
