//! `swapsim merge`: the shards of one explore search (their CSVs, in seed
//! order) or of one sweep (their results, in grid order, plots drawn again)
//! combined into the whole.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::output::error;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim merge --out output/all.csv output/shard-*.csv\n  swapsim merge --out output/sweep output/sweep-part*/results.csv\n\nShards of different searches or sweeps, the same shard twice and malformed rows are refused. Exit status:\n0 merged (for sweeps: every run held every invariant), 1 a merged sweep run broke one, 2 refused or\nunreadable inputs, or an output that cannot be written."
)]
pub struct MergeArgs {
    /// The combined CSV of explore shards (written whole or not at all), or the directory of a merged sweep.
    #[arg(long)]
    pub out: PathBuf,
    /// The shards' CSVs (`explore --shard K/N --csv FILE`), or their sweeps' results.csv (or directories).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

pub fn merge(args: &MergeArgs) -> ExitCode {
    let (out, inputs) = (&args.out, &args.inputs);
    if super::sweep::is_sweep(inputs) {
        return super::sweep::merge(out, inputs);
    }
    let inputs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
    match crate::output::search_csv::merge(&inputs) {
        Ok(text) => match crate::output::write_whole(out, text.as_bytes()) {
            Ok(()) => {
                println!("merged {} files: {} rows in {}", inputs.len(), text.lines().count() - 1, out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", out.display());
                ExitCode::from(2)
            }
        },
        Err(e) => error(e),
    }
}
