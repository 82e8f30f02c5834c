//! What swapsim reads: scenario and schedule files (bounded, UTF-8,
//! printable names) and their content hash.

use std::path::Path;
use std::process::ExitCode;

use crate::output::check_path_text;

/// The most bytes swapsim reads of a scenario or a schedule file.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Read a text file of at most [`MAX_INPUT_BYTES`] (a file that names
/// `/dev/zero` must not be read until memory runs out).
pub fn read_bounded(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)?.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {MAX_INPUT_BYTES} bytes, the most swapsim reads"
        )));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("it is not UTF-8 text"))
}

/// Read a scenario file: (its path as shown, its text), or say why not
/// and exit 2.
pub fn read_source(file: &Path) -> Result<(String, String), ExitCode> {
    let path = file.display().to_string();
    if let Err(e) = check_path_text("the scenario", file) {
        eprintln!("error: {e}");
        return Err(ExitCode::from(2));
    }
    match read_bounded(file) {
        Ok(source) => Ok((path, source)),
        Err(e) => {
            eprintln!("error: cannot read scenario {path}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// FNV-1a, 64 bits: a stable content hash with no dependency.
pub fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
