//! `swapsim`: run swap-deletion race scenarios on a simulated 2.3.99 kernel.

use std::process::ExitCode;

mod coverage;
mod explore_cmd;
mod lockdep;
mod reduce_cmd;
mod run_cmd;
mod schedule;
mod seed_search;
mod sweep_cmd;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a run allocates and frees
/// many small objects (Lua's and the model's), and glibc's malloc and free
/// were ~15% of a short run. Allocation order changes no output.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// swapsim reproduces the Linux 2.3.99 swapoff races of the "swapdeletion
/// race fixes" patch (linux-mm, April 2000) in a deterministic simulator.
#[derive(Parser)]
#[command(name = "swapsim", version, about, long_about = None)]
#[command(
    after_help = "Examples:\n  swapsim run scenarios/race1_fork.lua --kernel pre4 --seed 3\n  swapsim run scenarios/race1_fork.lua --kernel patched --seeds 1..1000\n  swapsim run scenarios/race6_kswapd.lua --kernel patched --no-fix no-new-refs --seed 2\n  swapsim kernels\n\nDocs: README.md, docs/tutorial.md, docs/scenario-api.md, docs/races.md"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario under one seed, or a range of seeds.
    Run(run_cmd::RunArgs),
    /// Search many schedules for a violation; save, shrink and replay it.
    Explore(explore_cmd::ExploreArgs),
    /// Reproduce a saved schedule exactly (or, with --semantic, by its recorded events after an edit).
    Replay(explore_cmd::ReplayArgs),
    /// Shrink a saved schedule (fewer choices that are not the default; with --semantic, after an edit).
    Shrink(explore_cmd::ShrinkArgs),
    /// Delete lines of a scenario while it still breaks an invariant; write the smaller scenario.
    Reduce(reduce_cmd::ReduceArgs),
    /// Combine the CSVs of the shards of one explore search, in seed order.
    #[command(after_help = "Example:\n  swapsim merge --out output/all.csv output/shard-*.csv")]
    Merge {
        /// The combined CSV (written whole or not at all).
        #[arg(long)]
        out: std::path::PathBuf,
        /// The shards' CSVs (`explore --shard K/N --csv FILE`).
        #[arg(required = true)]
        inputs: Vec<std::path::PathBuf>,
    },
    /// Run a scenario's parameter grid and write what each run cost (CSV, plots).
    Sweep(sweep_cmd::SweepArgs),
    /// List the kernel variants and the fixes that can be switched alone.
    #[command(after_help = "Example:\n  swapsim kernels")]
    Kernels,
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  swapsim completions bash > ~/.local/share/bash-completion/completions/swapsim\n  swapsim completions zsh > ~/.zfunc/_swapsim\n  swapsim completions fish > ~/.config/fish/completions/swapsim.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
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
        if run_cmd::INTERRUPTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
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
        Command::Run(args) => run_cmd::run(&args),
        Command::Explore(args) => explore_cmd::explore(&args),
        Command::Replay(args) => explore_cmd::replay(&args),
        Command::Shrink(args) => explore_cmd::shrink_cmd(&args),
        Command::Sweep(args) => sweep_cmd::sweep(&args),
        Command::Reduce(args) => reduce_cmd::reduce(&args),
        Command::Merge { out, inputs } => {
            let inputs: Vec<&std::path::Path> = inputs.iter().map(|p| p.as_path()).collect();
            match seed_search::merge(&inputs) {
                Ok(text) => match run_cmd::write_whole(&out, text.as_bytes()) {
                    Ok(()) => {
                        println!(
                            "merged {} files: {} rows in {}",
                            inputs.len(),
                            text.lines().count() - 1,
                            out.display()
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: cannot write {}: {e}", out.display());
                        ExitCode::from(2)
                    }
                },
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "swapsim", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Kernels => {
            print!("{}", kernels_text());
            ExitCode::SUCCESS
        }
    }
}

/// `swapsim kernels`: the variants, then each fix with what it changes and
/// which races it closes.
fn kernels_text() -> String {
    use kernel::{Variant, FIXES};
    let mut out = String::from("Kernel variants (--kernel NAME):\n");
    for variant in Variant::ALL {
        out += &format!("  {:<13} {}\n", variant.name(), variant.description());
    }
    out += "\nFixes (--fix NAME / --no-fix NAME, on top of pre4 or patched; the later designs take none):\n";
    for fix in &FIXES {
        out += &format!("  {:<13} {}\n  {:<13} closes race {}\n", fix.name, fix.change, "", fix.closes);
    }
    out
}
