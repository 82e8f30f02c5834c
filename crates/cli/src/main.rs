//! `swapsim`: run swap-deletion race scenarios on a simulated 2.3.99 kernel.

use std::process::ExitCode;

mod args;
mod commands;
mod coverage;
mod input;
mod interrupt;
mod lockdep;
mod names;
mod output;
mod schedule;
mod seed_search;

use clap::{Parser, Subcommand};

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
    #[command(
        after_help = "Examples:\n  swapsim merge --out output/all.csv output/shard-*.csv\n  swapsim merge --out output/sweep output/sweep-part*/results.csv\n\nShards of different searches or sweeps, the same shard twice and malformed rows are refused. Exit status:\n0 merged (for sweeps: every run held every invariant), 1 a merged sweep run broke one, 2 refused or\nunreadable inputs, or an output that cannot be written."
    )]
    Merge {
        /// The combined CSV of explore shards (written whole or not at all), or the directory of a merged sweep.
        #[arg(long)]
        out: std::path::PathBuf,
        /// The shards' CSVs (`explore --shard K/N --csv FILE`), or their sweeps' results.csv (or directories).
        #[arg(required = true)]
        inputs: Vec<std::path::PathBuf>,
    },
    /// Run a scenario's parameter grid and write what each run cost (CSV, plots).
    Sweep(commands::sweep::SweepArgs),
    /// List the kernel variants and the fixes that can be switched alone.
    #[command(after_help = "Example:\n  swapsim kernels\n\nExit status: 0.")]
    Kernels,
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  swapsim completions bash > ~/.local/share/bash-completion/completions/swapsim\n  swapsim completions zsh > ~/.zfunc/_swapsim\n  swapsim completions fish > ~/.config/fish/completions/swapsim.fish\n\nExit status: 0, or 2 for a shell it does not know."
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): swapsim's, or a subcommand's.
    #[command(
        after_help = "Examples:\n  swapsim man > swapsim.1 && man ./swapsim.1\n  swapsim man sweep | man -l -\n\nExit status: 0, or 2 for a subcommand it does not know."
    )]
    Man {
        /// The subcommand (default: swapsim itself).
        subcommand: Option<String>,
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
        Command::Merge { out, inputs } if commands::sweep::is_sweep(&inputs) => commands::sweep::merge(&out, &inputs),
        Command::Merge { out, inputs } => {
            let inputs: Vec<&std::path::Path> = inputs.iter().map(|p| p.as_path()).collect();
            match seed_search::merge(&inputs) {
                Ok(text) => match output::write_whole(&out, text.as_bytes()) {
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
        Command::Man { subcommand } => man_page(subcommand.as_deref()),
        Command::Kernels => {
            print!("{}", kernels_text());
            ExitCode::SUCCESS
        }
    }
}

/// `swapsim man [SUBCOMMAND]`: the page in roff on stdout.
fn man_page(subcommand: Option<&str>) -> ExitCode {
    use clap::CommandFactory;
    let mut command = Cli::command();
    command.build();
    let page = match subcommand {
        None => clap_mangen::Man::new(command),
        Some(name) => match command.find_subcommand(name) {
            Some(sub) => clap_mangen::Man::new(sub.clone()).title(format!("swapsim-{name}")),
            None => {
                let names: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!("error: no subcommand {name:?}; the subcommands are {}", names.join(", "));
                return ExitCode::from(2);
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = page.render(&mut out) {
        eprintln!("error: cannot render the man page: {e}");
        return ExitCode::from(2);
    }
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(&out);
    ExitCode::SUCCESS
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_names_the_schedule_format_it_writes() {
        assert!(super::VERSION.contains(&format!("schedule files: {}", crate::schedule::FORMAT)), "{}", super::VERSION);
        assert!(super::VERSION.contains("(commit "));
    }
}
