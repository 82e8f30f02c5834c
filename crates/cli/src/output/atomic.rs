//! Output files written whole or not at all: a temporary file (or folder)
//! beside the target, then a rename over it; nothing is left behind on an
//! error (a full disk, `ulimit -f`).

use std::path::Path;

/// A temporary name no other swapsim (or thread of this one) uses:
/// `.swapsim-WHAT-PID-N`.
pub fn unique_temp_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(".swapsim-{what}-{}-{n}", std::process::id())
}

/// Write a file whole or not at all: write a temporary file beside it,
/// then rename it over the target.
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = dir.join(unique_temp_name(&name.to_string_lossy()));
    // A full disk or a file size limit (`ulimit -f`; SIGXFSZ is ignored, so
    // the write fails with EFBIG) leaves no temporary file behind.
    std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// [`write_whole`], with the error in words: "cannot write PATH: why".
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    write_whole(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Write a folder of `files` (name, bytes) whole or not at all: into a
/// temporary folder of its own beside `dir` (two commands may write into
/// one parent), then renamed over `dir`; removed again if anything fails
/// (a full disk leaves nothing behind).
pub fn write_folder(dir: &Path, what: &str, files: &[(&str, &[u8])]) -> std::io::Result<()> {
    let parent = dir.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let partial = parent.join(unique_temp_name(what));
    let written = std::fs::create_dir(&partial)
        .and_then(|_| files.iter().try_for_each(|(name, bytes)| std::fs::write(partial.join(name), bytes)))
        .and_then(|_| replace_folder(&partial, dir, parent, what));
    if written.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    written
}

/// Rename `partial` over `dir`. A folder cannot be renamed over one that
/// is not empty, so a folder already there (an earlier run's, or another
/// command's that wrote the same find a moment ago) is first moved aside
/// under a name of our own and removed; if another writer puts its folder
/// back in between, try again: the last whole folder wins.
fn replace_folder(partial: &Path, dir: &Path, parent: &Path, what: &str) -> std::io::Result<()> {
    const TRIES: usize = 16;
    let mut last = None;
    for _ in 0..TRIES {
        match std::fs::rename(partial, dir) {
            Ok(()) => return Ok(()),
            Err(e) if dir.exists() => {
                let aside = parent.join(unique_temp_name(what));
                if std::fs::rename(dir, &aside).is_ok() {
                    let _ = std::fs::remove_dir_all(&aside);
                }
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the folder kept coming back")))
}
