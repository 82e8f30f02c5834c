//! Everything a subcommand writes to a file, in one place: files written
//! whole or not at all (`atomic`), the checks made on output paths before
//! any work (`check`), the CSV writer every CSV uses (`csv`), a run's
//! report text (`report`), its --events/--trace/--csv/--stats/lockdep
//! outputs (`run_files`), the explore CSV (`search_csv`), the bug-report
//! bundle (`bundle`) and the progress line (`progress`).

pub mod atomic;
pub mod bundle;
pub mod check;
pub mod csv;
pub mod progress;
pub mod report;
pub mod run_files;
pub mod search_csv;
pub mod tally;

pub use atomic::{unique_temp_name, write_file, write_whole};
pub use check::{check_output_dir, check_outputs, check_path_text};

/// Say what is wrong on stderr ("error: ..."); the exit status 2 of bad
/// usage, a bad scenario or an output that cannot be written.
pub fn error(e: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {e}");
    std::process::ExitCode::from(2)
}
