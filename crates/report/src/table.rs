//! Fixed-width text tables.

/// A table whose first column is left-aligned and the others right-aligned,
/// columns two spaces apart, widths fitted to the widest cell.
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|h| h.to_string()).collect()] }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Every row, each ending with a newline.
    pub(crate) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| self.rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let cells: Vec<String> =
                row.iter()
                    .enumerate()
                    .map(|(c, cell)| {
                        if c == 0 {
                            format!("{cell:<w$}", w = widths[c])
                        } else {
                            format!("{cell:>w$}", w = widths[c])
                        }
                    })
                    .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// ns as µs with three decimals: `1234` → `1.234`.
pub(crate) fn micros(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned() {
        let mut table = Table::new(&["name", "n"]);
        table.row(vec!["a".into(), "100".into()]);
        table.row(vec!["long name".into(), "2".into()]);
        assert_eq!(table.render(), "name         n\na          100\nlong name    2\n");
        assert_eq!(micros(0), "0.000");
        assert_eq!(micros(1_000_001), "1000.001");
    }
}
