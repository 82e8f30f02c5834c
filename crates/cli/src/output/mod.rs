//! Everything a subcommand writes, in one place, used by every subcommand:
//! - `atomic`: files (and the bundle's folder) written whole or not at all;
//! - `check`: the output paths checked before any work starts;
//! - `csv`: the csv crate's settings every CSV uses, and its errors;
//! - `report`: the text of one run (run, replay, a bundle's report.txt);
//! - `run_files`: a run's --events, --trace, --csv, --stats and lockdep;
//! - `search_csv`: a search run's row (`RunRow`) and the explore CSV;
//! - `tally`: the by-kind summary of `run --seeds` and `explore`;
//! - `bundle`: a find's bug-report folder;
//! - `progress`: the progress line of the long commands.
//!
//! What a find shows lives here only: a new field of a find (a race
//! signature, say) goes into `report::render_one` (run, replay, bundle),
//! `search_csv::RunRow` (explore's CSV and summary), `tally` (the
//! summaries) and `bundle`; beside them only explore's one-line `first:`
//! (explore/mod.rs, explore/dfs.rs) names a find's fields.

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
