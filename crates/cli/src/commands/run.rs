//! `swapsim run`: one seed (or every seed of `--seeds A..B`) of a scenario,
//! with its report, files and statistics; and `--list-points`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use script::RunOptions;

use crate::args::{parse_faults, parse_pct, parse_range, KernelArgs, KernelChoice, LimitArgs};
use crate::input::{content_hash, read_source};
use crate::interrupt::interrupted;
use crate::output::check_outputs;
use crate::output::error;
use crate::output::report::{headline, outcome_key, render_one, shell_quote};
use crate::output::run_files::{lockdep_out, print_stats, write_outputs, StatsFormat};

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim run scenarios/race1_fork.lua --kernel pre4 --seed 3\n  swapsim run scenarios/race1_fork.lua --kernel patched --seeds 1..1000\n  swapsim run scenarios/race1_fork.lua --kernel pre4 --seed 3 --events output/race1.log\n\nExit status: 0 clean, 1 a violation, deadlock or step limit was found, 2 bad usage or a bad scenario."
)]
pub struct RunArgs {
    /// The scenario (a Lua file).
    pub file: PathBuf,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// The seed of the run's random schedule.
    #[arg(long, default_value_t = 1, conflicts_with = "seeds")]
    pub seed: u64,
    /// Run every seed of an inclusive range A..B and report which break.
    #[arg(long, value_parser = parse_range)]
    pub seeds: Option<(u64, u64)>,
    /// Write the event log (every lock event, sleep, wake and named point) to this file.
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub events: Option<PathBuf>,
    /// List the named interleaving points the scenario's kernel routines
    /// stopped at (over the seed, or every seed of --seeds), with counts.
    #[arg(long)]
    pub list_points: bool,
    /// Inject faults, overriding the scenario's machine{ faults }:
    /// alloc-fail=RATE, alloc-fail-nth=N, io-delay=RATE, read-error=RATE
    /// (repeatable or comma-separated; RATE is a probability from 0 to 1, in
    /// millionths: 0.000001 is the smallest above 0).
    #[arg(long, value_name = "FAULT=VALUE", value_delimiter = ',')]
    pub inject: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Write a Chrome trace-event JSON timeline (open it in Perfetto UI or chrome://tracing).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub trace: Option<PathBuf>,
    /// Write the event log as CSV (step, time_ns, cpu, task, event, lock, lock_class, point, sleep_ns, text).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub csv: Option<PathBuf>,
    /// Print lock statistics per lock class (as /proc/lock_stat prints
    /// them) and latency distributions of faults, forks, exits and
    /// swapoffs; with --seeds, the totals over the seeds.
    #[arg(long)]
    pub stats: bool,
    /// How --stats prints the lock statistics: text (/proc/lock_stat), csv or json.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub stats_format: StatsFormat,
    /// Timed mode, as sweeps run: the option that happens first in
    /// simulated time runs next (for cost questions on one scenario).
    #[arg(long, conflicts_with = "pct")]
    pub timed: bool,
    /// Run PCT's schedule for the seed, with bug depth D for runs of K steps
    /// (as `explore --strategy pct` printed them): replays a PCT run.
    #[arg(long, value_name = "D,K", value_parser = parse_pct)]
    pub pct: Option<(u32, u64)>,
    /// Write the lock-class dependency graph (lockdep's orders) as Graphviz DOT.
    #[arg(long, value_name = "FILE")]
    pub lockdep_graph: Option<PathBuf>,
}

pub fn run(args: &RunArgs) -> ExitCode {
    let kernel = match args.kernel.choice() {
        Ok(kernel) => kernel,
        Err(e) => return error(e),
    };
    let faults = match parse_faults(&args.inject) {
        Ok(faults) => faults,
        Err(e) => return error(e),
    };
    let limits = match args.limits.apply() {
        Ok(limits) => limits,
        Err(e) => return error(e),
    };
    let kernel = KernelChoice { faults, limits, ..kernel };
    let (path, source) = match read_source(&args.file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // Every output is checked before the run: a late failure loses it.
    let outputs =
        [("--events", args.events.as_deref()), ("--trace", args.trace.as_deref()), ("--csv", args.csv.as_deref())];
    if let Err(e) = check_outputs(&outputs, &[&args.file]) {
        return error(e);
    }
    if args.list_points {
        let (first, last) = args.seeds.unwrap_or((args.seed, args.seed));
        return list_points(&kernel, &path, &source, first, last);
    }
    match args.seeds {
        Some((first, last)) => run_seeds(args, &kernel, &path, &source, first, last),
        None => run_one(args, &kernel, &path, &source),
    }
}

fn options(kernel: &KernelChoice, seed: u64, record_events: bool) -> RunOptions {
    RunOptions { record_events, faults: kernel.faults, limits: kernel.limits, ..RunOptions::new(kernel.fixes, seed) }
}

/// The run's strategy: random, or --timed, or --pct D,K.
fn strategy(args: &RunArgs) -> script::Strategy {
    match (args.timed, args.pct) {
        (true, _) => script::Strategy::Timed,
        (false, Some((depth, steps))) => script::Strategy::Pct { depth, steps },
        (false, None) => script::Strategy::Random,
    }
}

/// The flags that select the run's strategy again.
fn strategy_flags(args: &RunArgs) -> String {
    match (args.timed, args.pct) {
        (true, _) => " --timed".to_string(),
        (false, Some((d, k))) => format!(" --pct {d},{k}"),
        (false, None) => String::new(),
    }
}

fn replay_command(kernel: &KernelChoice, path: &str, seed: u64) -> String {
    format!("swapsim run {} {} --seed {seed}", shell_quote(path), kernel.flags())
}

fn run_one(args: &RunArgs, kernel: &KernelChoice, path: &str, source: &str) -> ExitCode {
    let opts = RunOptions { strategy: strategy(args), lock_order: true, ..options(kernel, args.seed, true) };
    let report = match script::run::run(path, source, &opts) {
        Ok(report) => report,
        Err(e) => return error(e),
    };
    if let Err(code) = write_outputs(&report, args.events.as_deref(), args.trace.as_deref(), args.csv.as_deref()) {
        return code;
    }
    let replay = replay_command(kernel, path, args.seed) + &strategy_flags(args);
    print!("{}", render_one(args.seed, kernel, path, source, &report, Some(&replay)));
    let mut order = crate::lockdep::LockOrder::default();
    order.add_run(args.seed, &report.lock_order);
    let witness = |seed| replay_command(kernel, path, seed) + &strategy_flags(args);
    if let Err(code) = lockdep_out(&order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    if args.stats {
        print_stats(&report::lock_stat(&report), &report::latencies(&report), args.stats_format);
    }
    if report.outcome.is_failure() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_seeds(args: &RunArgs, kernel: &KernelChoice, path: &str, source: &str, first: u64, last: u64) -> ExitCode {
    println!("scenario: {path} (content fnv1a {:016x})", content_hash(source.as_bytes()));
    println!("kernel:   {} ({})", kernel.label(), kernel.description());
    println!("seeds:    {first}..{last}");
    let runner = match script::run::Runner::new(path, source, kernel.limits) {
        Ok(runner) => runner,
        Err(e) => return error(e),
    };
    let mut broken = crate::output::tally::Tally::default();
    let mut buckets = crate::output::tally::Tally::default();
    const LISTED: u64 = 20;
    let mut total = 0u64;
    let progress = crate::output::progress::Progress::new(last.saturating_sub(first).saturating_add(1));
    let mut order = crate::lockdep::LockOrder::default();
    let mut lock_stats: Vec<Vec<report::LockStat>> = Vec::new();
    let mut calls: Vec<script::run::CallRecord> = Vec::new();
    for seed in first..=last {
        if interrupted() {
            let last_done = seed - 1;
            println!("interrupted: stopped after seed {last_done}; the summary covers seeds {first}..{last_done}");
            break;
        }
        total += 1;
        let opts = RunOptions { strategy: strategy(args), lock_order: true, ..options(kernel, seed, args.stats) };
        let report = match runner.run(&opts) {
            Ok(report) => report,
            Err(e) => return error(e),
        };
        progress.inc(report.outcome.is_failure());
        order.add_run(seed, &report.lock_order);
        if args.stats {
            lock_stats.push(report::lock_stat(&report));
            calls.extend(report.calls.iter().cloned());
        }
        if report.outcome.is_failure() {
            if broken.total() < LISTED {
                let bucket = crate::output::tally::bucket_of(&report).map(|b| format!(" ({b})")).unwrap_or_default();
                progress.suspend(|| println!("seed {seed}: {}{bucket}", headline(&report.outcome)));
            }
            broken.add(&outcome_key(&report.outcome), seed);
            if let Some(bucket) = crate::output::tally::bucket_of(&report) {
                buckets.add(&bucket, seed);
            }
        }
    }
    progress.finish();
    if broken.total() > LISTED {
        println!("... and {} more", broken.total() - LISTED);
    }
    let witness = |seed| replay_command(kernel, path, seed) + &strategy_flags(args);
    if let Err(code) = lockdep_out(&order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    if args.stats {
        println!("stats:    totals over the {} seeds", lock_stats.len());
        let totals = report::lock_stat_total(lock_stats.iter().map(Vec::as_slice));
        print_stats(&totals, &report::latencies_of(&calls), args.stats_format);
    }
    let Some(first_broken) = broken.first() else {
        println!("result:   {total} seeds, none broke");
        if interrupted() {
            return ExitCode::from(130);
        }
        return ExitCode::SUCCESS;
    };
    println!(
        "result:   {total} seeds, {} broke ({}), {} clean",
        broken.total(),
        broken.counts(),
        total - broken.total()
    );
    println!("firsts:   {}", broken.firsts());
    print!("{}", buckets.bucket_lines());
    println!(
        "first:    seed {first_broken}; replay: {}",
        replay_command(kernel, path, first_broken) + &strategy_flags(args)
    );
    ExitCode::from(1)
}

/// `--list-points`: every named interleaving point reached over the seeds,
/// grouped by kernel function, with how often it was reached.
fn list_points(kernel: &KernelChoice, path: &str, source: &str, first: u64, last: u64) -> ExitCode {
    let mut counts: std::collections::BTreeMap<&'static str, u64> = std::collections::BTreeMap::new();
    let runner = match script::run::Runner::new(path, source, kernel.limits) {
        Ok(runner) => runner,
        Err(e) => return error(e),
    };
    for seed in first..=last {
        let options = RunOptions { record_events: false, count_points: true, ..RunOptions::new(kernel.fixes, seed) };
        match runner.run(&options) {
            Ok(report) => {
                for (point, n) in report.points {
                    *counts.entry(point).or_default() += n;
                }
            }
            Err(e) => return error(e),
        }
    }
    println!("scenario: {path}");
    println!("kernel:   {}", kernel.label());
    println!("seeds:    {first}..{last}");
    println!("{} named interleaving points reached (point, times reached):", counts.len());
    let mut function = "";
    for (point, n) in &counts {
        let this = point.split(':').next().unwrap_or(point);
        if this != function {
            println!("{this}");
            function = this;
        }
        println!("  {point:<50} {n}");
    }
    ExitCode::SUCCESS
}
