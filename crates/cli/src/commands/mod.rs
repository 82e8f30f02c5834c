//! One file (or folder) per subcommand, each with its clap arguments next
//! to the code that runs it, as cargo's and ripgrep's command folders are.
//! What they write goes through `crate::output`.

pub mod explore;
pub mod follow;
pub mod kernels;
pub mod man;
pub mod merge;
pub mod reduce;
pub mod replay;
pub mod run;
pub mod shrink;
pub mod signatures;
pub mod sweep;

use engine::Outcome;
use script::{RunOptions, RunReport, Strategy};

/// The options of a run of `seed` (following `schedule`'s choices, if
/// given): what explore, replay and shrink run.
pub fn options(fixes: kernel::Fixes, seed: u64, strategy: Strategy, schedule: Option<Vec<u32>>) -> RunOptions {
    RunOptions { strategy, schedule, ..RunOptions::new(fixes, seed) }
}

/// The invariant a run broke and the step it broke at, if it broke one.
pub fn violation(report: &RunReport) -> Option<(&'static str, u64)> {
    match &report.outcome {
        Outcome::Violation(v) => Some((v.invariant, v.step)),
        _ => None,
    }
}
