//! The CSV settings every CSV swapsim writes or reads back uses (the csv
//! crate: RFC 4180 quoting, `\n` line ends), and its errors in words.

/// A CSV writer into memory: RFC 4180 quoting, `\n` line ends.
pub fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new())
}

/// A csv crate error in words, with its line when it has one.
pub fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            format!("line {}: {len} fields where the header has {expected_len}", pos.as_ref().map_or(0, |p| p.line()))
        }
        _ => e.to_string(),
    }
}
