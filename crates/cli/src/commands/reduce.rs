//! `swapsim reduce`: scenario shrinking. Delete lines of a scenario
//! (delta debugging over its lines) while a search of it still breaks the
//! same invariant, and write the smaller scenario as a new Lua file. The
//! schedule shrinker (`shrink`) minimises the interleaving; this minimises
//! the program around it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::Outcome;
use script::{RunOptions, Strategy};

use crate::output::error;
use crate::output::write_whole;

#[derive(Args)]
#[command(
    after_help = "Example:\n  swapsim reduce scenarios/race2_exit.lua --kernel pre4 --invariant swapoff-completeness --out output/race2_small.lua\n\nExit status: 0 the smaller scenario was written (it still breaks the invariant), 2 bad usage, a bad\nscenario, a scenario that does not break the invariant within --runs seeds, or an output that cannot be written."
)]
pub struct ReduceArgs {
    /// The scenario (a Lua file).
    pub file: PathBuf,
    #[command(flatten)]
    pub kernel: crate::args::KernelArgs,
    /// The invariant that must still break.
    #[arg(long, value_name = "NAME", value_parser = crate::names::invariant())]
    pub invariant: String,
    /// Seeds searched (random walk, seeds 1..=N) for each candidate.
    #[arg(long, default_value_t = 200)]
    pub runs: u64,
    /// Where to write the reduced scenario.
    #[arg(long)]
    pub out: PathBuf,
}

/// Whether some seed in 1..=runs breaks `invariant` in `source`.
fn breaks(path: &str, source: &str, fixes: kernel::Fixes, invariant: &str, runs: u64) -> bool {
    let Ok(runner) = script::run::Runner::new(path, source, Default::default()) else { return false };
    (1..=runs).any(|seed| {
        let options = RunOptions { record_events: false, strategy: Strategy::Random, ..RunOptions::new(fixes, seed) };
        matches!(runner.run(&options), Ok(report) if matches!(&report.outcome, Outcome::Violation(v) if v.invariant == invariant))
    })
}

pub fn reduce(args: &ReduceArgs) -> ExitCode {
    let kernel = match args.kernel.choice() {
        Ok(kernel) => kernel,
        Err(e) => return error(e),
    };
    let (path, source) = match crate::input::read_source(&args.file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let lines: Vec<&str> = source.lines().collect();
    let test = |keep: &[usize]| {
        let text: String = keep.iter().map(|&i| format!("{}\n", lines[i])).collect();
        breaks(&path, &text, kernel.fixes, &args.invariant, args.runs)
    };
    let all: Vec<usize> = (0..lines.len()).collect();
    if !test(&all) {
        eprintln!(
            "error: {path} does not break {} in seeds 1..{} under {}: nothing to reduce (raise --runs?)",
            args.invariant,
            args.runs,
            kernel.label()
        );
        return ExitCode::from(2);
    }
    // Comments and blank lines first, in one go; then ddmin over the rest.
    let code: Vec<usize> =
        all.iter().copied().filter(|&i| !lines[i].trim().is_empty() && !lines[i].trim().starts_with("--")).collect();
    let start = if test(&code) { code } else { all.clone() };
    let mut tests = 2u64;
    let current = crate::ddmin::ddmin(start, 2, crate::interrupt::interrupted, |candidate| {
        tests += 1;
        test(candidate)
    });
    let mut text = format!(
        "-- Reduced by `swapsim reduce` from {path} ({} lines -> {}): under {} a random search of seeds\n\
         -- 1..{} still breaks {}.\n",
        lines.len(),
        current.len(),
        kernel.label(),
        args.runs,
        args.invariant
    );
    for &i in &current {
        text.push_str(lines[i]);
        text.push('\n');
    }
    if let Err(e) = write_whole(&args.out, text.as_bytes()) {
        eprintln!("error: cannot write {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    println!("reduced:  {path}: {} lines -> {} ({} candidate scenarios searched)", lines.len(), current.len(), tests);
    println!("wrote:    {}", args.out.display());
    println!(
        "search:   swapsim explore {} {} --runs {} --invariant {}",
        args.out.display(),
        args.kernel.flags(),
        args.runs,
        args.invariant
    );
    ExitCode::SUCCESS
}
