//! The checks made on every output path before any work starts: a late
//! failure would lose a whole search or sweep.

use std::path::Path;

use super::unique_temp_name;

/// Refuse a path swapsim would print or write into a file that cannot
/// hold it on one line (a control character: a newline would split a
/// schedule file's line, an escape would reach the terminal).
pub fn check_path_text(what: &str, path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    if text.chars().any(char::is_control) {
        return Err(format!(
            "{what} {} has a control character (a newline?) in its name; rename it",
            script::sandbox::escape_controls(&text)
        ));
    }
    Ok(())
}

/// Check before any work that `file` can be written (its folder exists and
/// takes a new file, it is not a folder) and that it is not one of the
/// `inputs` (the scenario): a late failure would lose the whole search.
pub fn check_output_file(flag: &str, file: &Path, inputs: &[&Path]) -> Result<(), String> {
    check_path_text(flag, file)?;
    if file.is_dir() {
        return Err(format!("{flag} {}: it is a folder, not a file", file.display()));
    }
    for input in inputs {
        let same = match (std::fs::canonicalize(file), std::fs::canonicalize(input)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            return Err(format!(
                "{flag} {} is the scenario itself: writing it would destroy the input",
                file.display()
            ));
        }
    }
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    check_output_dir(flag, dir, false).map_err(|e| format!("{flag} {}: {e}", file.display()))
}

/// Check before any work that files can be created in `dir` (created
/// first when `create` is set): a probe file is made and removed.
pub fn check_output_dir(flag: &str, dir: &Path, create: bool) -> Result<(), String> {
    check_path_text(flag, dir)?;
    if create {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
    }
    let probe = dir.join(unique_temp_name("probe"));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("cannot write in {}: {e}", dir.display())),
    }
}

/// [`check_output_file`] for each output flag given (flag, its file if
/// any), against the `inputs`.
pub fn check_outputs(outputs: &[(&str, Option<&Path>)], inputs: &[&Path]) -> Result<(), String> {
    for (flag, file) in outputs {
        if let Some(file) = file {
            check_output_file(flag, file, inputs)?;
        }
    }
    Ok(())
}
