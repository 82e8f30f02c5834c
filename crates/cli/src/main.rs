//! `swapsim`: run swap-deletion race scenarios on a simulated 2.3.99 kernel.

use std::process::ExitCode;

mod args;
mod commands;
mod coverage;
mod ddmin;
mod input;
mod interrupt;
mod lockdep;
mod names;
mod output;
mod schedule;
mod seed_search;

use clap::{CommandFactory, Parser, Subcommand};

/// mimalloc instead of the system allocator: a run allocates and frees
/// many small objects (Lua's and the model's), and glibc's malloc and free
/// were ~15% of a short run. Allocation order changes no output.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `swapsim --version`: the version, the commit it was built from
/// ("unknown" outside a git checkout) and the schedule-file format it
/// writes (`schedule::FORMAT`).
const VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SWAPSIM_COMMIT"), "; schedule files: swapsim-schedule 2)");

/// swapsim reproduces the Linux 2.3.99 swapoff races of the "swapdeletion
/// race fixes" patch (linux-mm, April 2000) in a deterministic simulator.
#[derive(Parser)]
#[command(name = "swapsim", version = VERSION, about, long_about = None)]
#[command(
    after_help = "Examples:\n  swapsim run scenarios/race1_fork.lua --kernel pre4 --seed 3\n  swapsim run scenarios/race1_fork.lua --kernel patched --seeds 1..1000\n  swapsim run scenarios/race6_kswapd.lua --kernel patched --no-fix no-new-refs --seed 2\n  swapsim kernels\n\nDocs: README.md, docs/tutorial.md, docs/scenario-api.md, docs/races.md; `swapsim man` prints a man page.\n\nExit status: 0 clean, 1 a violation, deadlock or step limit was found, 2 bad usage or a bad scenario,\n130 interrupted (each command's --help says what its codes mean)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario under one seed, or a range of seeds.
    Run(commands::run::RunArgs),
    /// Search many schedules for a violation; save, shrink and replay it.
    Explore(commands::explore::ExploreArgs),
    /// Reproduce a saved schedule exactly (or, with --semantic, by its recorded events after an edit).
    Replay(commands::replay::ReplayArgs),
    /// Shrink a saved schedule (fewer choices that are not the default; with --semantic, after an edit).
    Shrink(commands::shrink::ShrinkArgs),
    /// Delete lines of a scenario while it still breaks an invariant; write the smaller scenario.
    Reduce(commands::reduce::ReduceArgs),
    /// Combine the CSVs of the shards of one explore search, in seed order.
    /// Or of one sweep: their results.csv joined in grid order, and the plots drawn again.
    Merge(commands::merge::MergeArgs),
    /// Run a scenario's parameter grid and write what each run cost (CSV, plots).
    Sweep(commands::sweep::SweepArgs),
    /// List the kernel variants and the fixes that can be switched alone.
    #[command(after_help = "Example:\n  swapsim kernels\n\nExit status: 0.")]
    Kernels,
    /// List the race signatures a violation is classified by (its bucket).
    #[command(after_help = "Example:\n  swapsim signatures\n\nExit status: 0.")]
    Signatures,
    /// Print a shell completion script.
    Completions(commands::man::CompletionsArgs),
    /// Print a man page (roff): swapsim's, or a subcommand's.
    Man(commands::man::ManArgs),
}

fn main() -> ExitCode {
    // A panic is a bug in swapsim itself, never the user's fault: say so in
    // one paragraph, without a backtrace.
    std::panic::set_hook(Box::new(|info| {
        // A reader that went away (`swapsim ... | head`) is not a bug: stop
        // quietly, as a C tool killed by SIGPIPE would.
        let text = info.to_string();
        if text.contains("Broken pipe") || text.contains("failed printing to stdout") {
            std::process::exit(141);
        }
        eprintln!("internal error: swapsim hit a bug in itself ({info}); please report it with the command you ran");
    }));
    // A file size limit (`ulimit -f`) must not kill swapsim with SIGXFSZ
    // before it can report (and clean up after) the write: ignored, the
    // write fails with EFBIG instead.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // Ctrl-C, or SIGTERM (what a batch system sends at its time limit) or
    // SIGHUP: long loops (seed ranges, explore, sweep) stop after the
    // current run and report and save what they found; a second signal
    // ends at once.
    let _ = ctrlc::set_handler(|| {
        if interrupt::INTERRUPTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            std::process::exit(130);
        }
    });
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap exits 0 for --help/--version and 2 for usage errors.
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Run(args) => commands::run::run(&args),
        Command::Explore(args) => commands::explore::explore(&args),
        Command::Replay(args) => commands::replay::replay(&args),
        Command::Shrink(args) => commands::shrink::shrink_cmd(&args),
        Command::Sweep(args) => commands::sweep::sweep(&args),
        Command::Reduce(args) => commands::reduce::reduce(&args),
        Command::Merge(args) => commands::merge::merge(&args),
        Command::Completions(args) => commands::man::completions(&mut Cli::command(), &args),
        Command::Man(args) => commands::man::man(Cli::command(), &args),
        Command::Kernels => commands::kernels::kernels(),
        Command::Signatures => commands::signatures::signatures(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_names_the_schedule_format_it_writes() {
        assert!(super::VERSION.contains(&format!("schedule files: {}", crate::schedule::FORMAT)), "{}", super::VERSION);
        assert!(super::VERSION.contains("(commit "));
    }
}
