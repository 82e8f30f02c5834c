//! `swapsim explore`: search many schedules for a violation (random walk
//! or PCT here, over `--jobs` threads and `--shard`s; bounded DFS in
//! `dfs.rs`), then save the first find (`save.rs`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use script::{RunOptions, Strategy};

use crate::commands::{options, violation};
use crate::input::{content_hash, read_source};
use crate::output::{error, write_whole};

mod dfs;
mod save;

use dfs::dfs;
use save::save_schedule;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StrategyName {
    /// A seeded random walk of the runnable CPUs at each step.
    Random,
    /// Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).
    Pct,
    /// Systematic depth-first search with a preemption bound (CHESS).
    Dfs,
}

/// How a dfs search skips schedules that only reorder independent steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReductionName {
    /// Sleep sets (Godefroid): a schedule that would take a step explored
    /// before, and independent of every step since, is cut short.
    SleepSets,
    /// Source-DPOR (Abdulla et al., POPL 2014) with sleep sets: only the
    /// decisions where two conflicting steps could go the other way branch.
    Dpor,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim explore scenarios/race1_fork.lua --kernel pre4 --runs 1000\n  swapsim explore scenarios/race4_shm.lua --kernel pre4 --runs 20000 --strategy pct --depth 3\n  swapsim explore scenarios/race1_fork.lua --kernel patched --runs 10000   # the fix holds\n  swapsim explore scenarios/race2_exit.lua --kernel patched --strategy dfs --preemptions 1   # exhaustive within the bound\n  swapsim explore scenarios/race4_shm.lua --runs 100000 --jobs 2 --csv output/race4.csv\n\nExit status: 0 no violation, 1 a violation was found, 2 bad usage or a bad scenario."
)]
pub struct ExploreArgs {
    /// The scenario (a Lua file).
    pub file: PathBuf,
    #[command(flatten)]
    pub kernel: crate::args::KernelArgs,
    /// How many runs: 1000 by default for random and pct; dfs by default
    /// runs until it finds a violation or has explored every schedule
    /// within the bound, and with --runs stops after that many schedules.
    #[arg(long)]
    pub runs: Option<u64>,
    /// The search strategy.
    #[arg(long, value_enum, default_value = "random")]
    pub strategy: StrategyName,
    /// PCT's bug depth d (number of ordering constraints of the bug).
    #[arg(long, default_value_t = 3)]
    pub depth: u32,
    /// DFS: the most preemptions (and allocation sleeps) a schedule may
    /// have, or `none` for no bound.
    #[arg(long, default_value = "2", value_name = "K|none", value_parser = parse_preemptions)]
    pub preemptions: u64,
    /// DFS: explore every schedule within the bound, also those that only
    /// reorder independent steps of one explored before (no sleep sets).
    #[arg(long, conflicts_with = "reduction")]
    pub no_sleep_sets: bool,
    /// DFS: how schedules that only reorder independent steps are skipped.
    #[arg(long, value_enum, default_value = "sleep-sets")]
    pub reduction: ReductionName,
    /// The seed of the first run; run i uses seed + i.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads for random and pct searches (the results do not depend on it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Run only shard K of N (random, pct: the runs i with i % N == K-1; dfs:
    /// the search's subtrees by schedule prefix, in turn), to split a
    /// search across machines; combine the CSVs with `swapsim merge`.
    #[arg(long, value_name = "K/N", value_parser = crate::seed_search::parse_shard)]
    pub shard: Option<crate::seed_search::Shard>,
    /// Write one row per run (seed, outcome, invariant, step, steps,
    /// simulated ns), in seed order.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Where to write schedule files.
    #[arg(long, default_value = "output")]
    pub out: PathBuf,
    /// Do not shrink the schedule found.
    #[arg(long)]
    pub no_shrink: bool,
    /// Save the first run that breaks this invariant (e.g. swap-cache),
    /// rather than the first run that breaks any.
    #[arg(long, value_name = "NAME", value_parser = crate::names::invariant())]
    pub invariant: Option<String>,
    /// Write the lock-class dependency graph of every run (lockdep's orders) as Graphviz DOT.
    #[arg(long, value_name = "FILE")]
    pub lockdep_graph: Option<PathBuf>,
    #[command(flatten)]
    pub limits: crate::args::LimitArgs,
}

impl ExploreArgs {
    /// The runs of a random or pct search, or the most schedules of a dfs
    /// search (u64::MAX: until it is done).
    pub fn runs(&self) -> u64 {
        match (self.runs, self.strategy) {
            (Some(runs), _) => runs,
            (None, StrategyName::Dfs) => u64::MAX,
            (None, _) => 1000,
        }
    }

    /// DFS's preemption bound (u32::MAX: none).
    pub fn preemption_bound(&self) -> u32 {
        u32::try_from(self.preemptions).unwrap_or(u32::MAX)
    }

    /// The bound as `--preemptions` takes it.
    pub fn preemptions_flag(&self) -> String {
        if self.preemptions == NO_BOUND {
            "none".into()
        } else {
            self.preemptions.to_string()
        }
    }
}

/// The values of explore's options no parser checks, and its outputs:
/// all before any run, so that no search is lost to a late error.
fn check_explore_args(args: &ExploreArgs) -> Result<(), String> {
    args.limits.apply()?;
    if args.runs() == 0 {
        return Err("--runs is at least 1, got 0".into());
    }
    // dfs runs every schedule from the one seed; the others use a seed a run.
    if args.strategy != StrategyName::Dfs && args.seed.checked_add(args.runs() - 1).is_none() {
        return Err(format!(
            "--seed {} with --runs {}: the last seed would pass 2^64-1 = {} (lower --seed or --runs)",
            args.seed,
            args.runs(),
            u64::MAX
        ));
    }
    if !(1..=MAX_PCT_DEPTH).contains(&args.depth) {
        return Err(format!("--depth is between 1 and {MAX_PCT_DEPTH}, got {}", args.depth));
    }
    if args.preemptions != NO_BOUND && args.preemptions > MAX_PREEMPTIONS {
        return Err(format!("--preemptions is at most {MAX_PREEMPTIONS} (or none), got {}", args.preemptions));
    }
    if args.reduction == ReductionName::Dpor {
        if args.strategy != StrategyName::Dfs {
            return Err("--reduction applies to --strategy dfs".into());
        }
        if args.shard.is_some() {
            // DPOR's backtrack points come from the races of every run
            // before, so a subtree's schedules depend on other subtrees.
            return Err("--shard splits a dfs with sleep sets; a dfs with --reduction dpor does not split".into());
        }
    }
    crate::output::check_outputs(&[("--csv", args.csv.as_deref())], &[&args.file])?;
    crate::output::check_output_dir("--out", &args.out, true).map_err(|e| format!("--out: {e}"))
}

/// PCT's depth: d - 1 priority change points are drawn per run.
const MAX_PCT_DEPTH: u32 = 1000;
/// DFS's preemption bound (the number of schedules grows as steps^bound).
const MAX_PREEMPTIONS: u64 = 1000;
/// `--preemptions none`.
const NO_BOUND: u64 = u64::MAX;

/// `--preemptions`: a number (at most [`MAX_PREEMPTIONS`], checked with
/// the other options), or `none`.
fn parse_preemptions(text: &str) -> Result<u64, String> {
    match text {
        "none" => Ok(NO_BOUND),
        _ => text.parse::<u64>().map_err(|_| format!("a number of preemptions or none, got {text:?}")),
    }
}

pub fn explore(args: &ExploreArgs) -> ExitCode {
    let kernel = match args.kernel.choice().and_then(|kernel| check_explore_args(args).map(|_| kernel)) {
        Ok(kernel) => kernel,
        Err(e) => return error(e),
    };
    let (path, source) = match read_source(&args.file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    println!("scenario: {path} (content fnv1a {:016x})", content_hash(source.as_bytes()));
    println!("kernel:   {} ({})", kernel.label(), kernel.description());
    // PCT needs the run length k and the task count n: measure one run.
    let strategy = match args.strategy {
        StrategyName::Random => {
            println!("strategy: random walk");
            Strategy::Random
        }
        StrategyName::Dfs => {
            if args.jobs > 1 || args.csv.is_some() {
                eprintln!(
                    "error: --jobs and --csv apply to the random and pct strategies; dfs runs one search in order"
                );
                return ExitCode::from(2);
            }
            return dfs(args, &kernel, &path, &source);
        }
        StrategyName::Pct => {
            let probe =
                match script::run::run(&path, &source, &options(kernel.fixes, args.seed, Strategy::Random, None)) {
                    Ok(report) => report,
                    Err(e) => return error(e),
                };
            let (n, k, d) = (probe.run_tasks.len().max(1) as f64, probe.steps.max(1), args.depth.max(1));
            let bound = 1.0 / (n * (k as f64).powi(d as i32 - 1));
            println!(
                "strategy: pct, depth {d}; k = {k} steps and n = {} tasks measured: each run finds a depth-{d} bug \
                 with probability >= 1/(n*k^(d-1)) = {bound:.3e}",
                n as u64
            );
            Strategy::Pct { depth: d, steps: k }
        }
    };
    let seeds = crate::seed_search::Seeds::new(args.seed, args.runs(), args.shard);
    let last = args.seed + (args.runs() - 1);
    match args.shard {
        Some(shard) => println!(
            "runs:     {} of {} (seeds {}..{last}, shard {}/{})",
            seeds.len(),
            args.runs(),
            args.seed,
            shard.index,
            shard.count
        ),
        None => println!("runs:     {} (seeds {}..{last})", args.runs(), args.seed),
    }
    let fixes = kernel.fixes;
    let per_seed = move |seed| RunOptions { record_events: false, ..options(fixes, seed, strategy, None) };
    // A row needs only what broke and the counts: no lists of calls and tasks.
    let searched = move |seed| RunOptions { lock_order: true, point_pairs: true, details: false, ..per_seed(seed) };
    let (rows, lock_order, coverage) =
        match crate::seed_search::run_all(&path, &source, &seeds, usize::from(args.jobs), &searched) {
            Ok(result) => (result.rows, result.lock_order, result.coverage),
            Err(e) => return error(e),
        };
    let runs_done = rows.len();
    if crate::interrupt::interrupted() {
        println!("interrupted: stopped after {runs_done} runs; the results cover those");
    }
    // A CSV that cannot be written (a full disk) is an error, but the find
    // is still saved below.
    let mut csv_failed = false;
    if let Some(csv) = &args.csv {
        let (pct_depth, pct_steps) = match strategy {
            Strategy::Pct { depth, steps } => (depth.to_string(), steps.to_string()),
            _ => (String::new(), String::new()),
        };
        let identity = crate::output::search_csv::SearchIdentity {
            tool: env!("CARGO_PKG_VERSION").to_string(),
            scenario_fnv1a: format!("{:016x}", content_hash(source.as_bytes())),
            kernel: kernel.variant.to_string(),
            fixes: kernel.fixes.diff(&kernel.variant.fixes()).join(" "),
            strategy: if pct_depth.is_empty() { "random" } else { "pct" }.to_string(),
            pct_depth,
            pct_steps,
            first_seed: args.seed,
            runs: args.runs(),
        };
        let text = crate::output::search_csv::render_csv(&identity, args.shard, &rows);
        if let Err(e) = write_whole(csv, text.as_bytes()) {
            eprintln!("error: cannot write {}: {e}", csv.display());
            csv_failed = true;
        } else {
            let partial = if crate::interrupt::interrupted() { ", partial: interrupted" } else { "" };
            println!("csv:      {} ({runs_done} rows{partial})", csv.display());
        }
    }
    let failed = |code: ExitCode| if csv_failed { ExitCode::from(2) } else { code };
    let witness = |seed: u64| {
        let pct = match strategy {
            Strategy::Pct { depth, steps } => format!(" --pct {depth},{steps}"),
            _ => String::new(),
        };
        format!("swapsim run {path} {} --seed {seed}{pct}", kernel.flags())
    };
    if let Err(code) = crate::output::run_files::lockdep_out(&lock_order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    let ran: Vec<u64> = rows.iter().map(|r| r.seed).collect();
    print!("{}", coverage.report(&ran));
    let mut found = crate::output::tally::Tally::default();
    let mut buckets = crate::output::tally::Tally::default();
    for row in rows.iter().filter(|r| r.failed()) {
        found.add(&row.kind, row.seed);
        buckets.add(&row.bucket, row.seed);
    }
    let first_seed =
        rows.iter().find(|r| r.failed() && args.invariant.as_ref().is_none_or(|name| *name == r.kind)).map(|r| r.seed);
    // The first find again, recording its schedule (a run depends only on
    // its seed).
    let first = match first_seed {
        Some(seed) => match script::run::run(&path, &source, &options(kernel.fixes, seed, strategy, None)) {
            Ok(report) => Some((seed, report)),
            Err(e) => return error(e),
        },
        None => None,
    };
    let total = found.total();
    if total == 0 {
        println!("result:   {runs_done} runs, no violation");
        return failed(if crate::interrupt::interrupted() { ExitCode::from(130) } else { ExitCode::SUCCESS });
    }
    println!("result:   {runs_done} runs, {total} found something ({})", found.counts());
    print!("{}", buckets.bucket_lines());
    let Some((seed, report)) = first else {
        println!("first:    no run broke {}", args.invariant.as_deref().unwrap_or("-"));
        return failed(ExitCode::from(1));
    };
    let Some((invariant, step)) = violation(&report) else {
        println!("first:    seed {seed}: {}", script::run::describe(&report.outcome));
        return failed(ExitCode::from(1));
    };
    println!("first:    seed {seed}: {invariant} at step {step}");
    let tag = seed.to_string();
    let code = save_schedule(args, &kernel, &path, &source, seed, &tag, invariant, step, &report.choices);
    // One saved, shrunk schedule per bucket, not only the first find's: the
    // first find of every other bucket (of the --invariant asked for).
    let first_bucket = crate::output::tally::bucket_of(&report).unwrap_or_default();
    let others: Vec<(String, u64)> = buckets
        .unclassified_first()
        .into_iter()
        .filter(|&(name, _, _)| name != first_bucket)
        .filter_map(|(name, _, seed)| {
            let row = rows.iter().find(|r| r.seed == seed)?;
            args.invariant.as_ref().is_none_or(|wanted| *wanted == row.kind).then(|| (name.to_string(), seed))
        })
        .take(MAX_SAVED_BUCKETS)
        .collect();
    for (bucket, seed) in others {
        let report = match script::run::run(&path, &source, &options(kernel.fixes, seed, strategy, None)) {
            Ok(report) => report,
            Err(e) => return error(e),
        };
        let Some((invariant, step)) = violation(&report) else { continue };
        println!("bucket:   {bucket}: seed {seed}: {invariant} at step {step}");
        save_schedule(args, &kernel, &path, &source, seed, &seed.to_string(), invariant, step, &report.choices);
    }
    failed(code)
}

/// How many buckets besides the first find's get a saved schedule.
const MAX_SAVED_BUCKETS: usize = 8;
