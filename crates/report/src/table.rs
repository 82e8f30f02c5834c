//! Fixed-width text tables.

/// A table whose first column is left-aligned and the others right-aligned,
/// columns two spaces apart, widths fitted to the widest cell; or the same
/// as a Markdown table.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { rows: vec![header.iter().map(|h| h.to_string()).collect()] }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Every row, each ending with a newline.
    pub fn render(&self) -> String {
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

impl Table {
    /// The table in Markdown: the header, the alignment row (first column
    /// left, the others right), the rows; `|` in a cell is escaped.
    pub fn render_markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            out += &line(row);
            if i == 0 {
                let align: Vec<String> =
                    (0..row.len()).map(|c| if c == 0 { "---".to_string() } else { "---:".to_string() }).collect();
                out += &format!("|{}|\n", align.join("|"));
            }
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
        assert_eq!(table.render_markdown(), "| name | n |\n|---|---:|\n| a | 100 |\n| long name | 2 |\n");
        let mut pipe = Table::new(&["a|b"]);
        pipe.row(vec!["c".into()]);
        assert_eq!(pipe.render_markdown(), "| a\\|b |\n|---|\n| c |\n");
        assert_eq!(micros(0), "0.000");
        assert_eq!(micros(1_000_001), "1000.001");
    }
}
