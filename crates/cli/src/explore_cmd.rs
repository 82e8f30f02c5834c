//! `swapsim explore`, `swapsim replay` and `swapsim shrink`: search many
//! schedules for a violation, save it as a schedule file, shrink it, and
//! reproduce it exactly.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use engine::Outcome;
use script::{RunOptions, RunReport, Strategy};

use crate::run_cmd::{content_hash, read_source, render_one, write_whole, KernelChoice};
use crate::schedule::{ScheduleFile, Semantic};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StrategyName {
    /// A seeded random walk of the runnable CPUs at each step.
    Random,
    /// Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).
    Pct,
    /// Systematic depth-first search with a preemption bound (CHESS).
    Dfs,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim explore scenarios/race1_fork.lua --kernel pre4 --runs 1000\n  swapsim explore scenarios/race4_shm.lua --kernel pre4 --runs 20000 --strategy pct --depth 3\n  swapsim explore scenarios/race1_fork.lua --kernel patched --runs 10000   # the fix holds\n  swapsim explore scenarios/race2_exit.lua --kernel patched --strategy dfs --preemptions 1   # exhaustive within the bound\n  swapsim explore scenarios/race4_shm.lua --runs 100000 --jobs 2 --csv output/race4.csv\n\nExit status: 0 no violation, 1 a violation was found, 2 bad usage or a bad scenario."
)]
pub struct ExploreArgs {
    /// The scenario (a Lua file).
    pub file: PathBuf,
    #[command(flatten)]
    pub kernel: crate::run_cmd::KernelArgs,
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
    /// DFS: the most preemptions (and allocation sleeps) a schedule may have.
    #[arg(long, default_value_t = 2)]
    pub preemptions: u32,
    /// DFS: explore every schedule within the bound, also those that only
    /// reorder independent steps of one explored before (no sleep sets).
    #[arg(long)]
    pub no_sleep_sets: bool,
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
    pub limits: crate::run_cmd::LimitArgs,
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
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim replay output/race1_fork-pre4-3.schedule\n  swapsim replay output/race1_fork-pre4-3.schedule --report\n  swapsim replay output/race1_fork-pre4-3.schedule --rate 1000\n  swapsim replay output/race1_fork-pre4-3.schedule --semantic   # the scenario was edited since\n\nA schedule replays by index (the option taken at each decision) when its scenario and the tool are the\nones it was recorded with, and by its recorded events (task, named point, occurrence) with --semantic, or\nby itself when the tool version differs. Exit status: 0 the run held every invariant, 1 it broke one\n(or deadlocked, or hit the step limit), 2 a bad schedule file or scenario."
)]
pub struct ReplayArgs {
    /// A schedule file written by `swapsim explore` or `swapsim shrink`.
    pub file: PathBuf,
    /// Show the interleaving side by side, one column per task.
    #[arg(long)]
    pub report: bool,
    /// Also re-run N times around the schedule (its choices kept, each
    /// default choice drawn at random with probability --perturb) and say
    /// how often the same invariant breaks.
    #[arg(long, value_name = "N")]
    pub rate: Option<u64>,
    /// With --rate: the probability of drawing a default choice at random
    /// (from 0 to 1).
    #[arg(long, default_value = "0.1", value_name = "P")]
    pub perturb: String,
    /// Replay by the recorded events (task, named point, occurrence) rather
    /// than by index, even though the scenario changed since the schedule
    /// was recorded; say where the replay diverged if it could not follow.
    #[arg(long)]
    pub semantic: bool,
    /// Write the replay's event log (every lock event, sleep, wake, stall and named point) to this file.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Write the replay as a Chrome trace-event JSON timeline (Perfetto UI, chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the replay's event log as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Print the replay's lock statistics (as /proc/lock_stat) and call latencies.
    #[arg(long)]
    pub stats: bool,
    /// How --stats prints the lock statistics: text, csv or json.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub stats_format: crate::run_cmd::StatsFormat,
    /// Write the replay's lock-class dependency graph as Graphviz DOT.
    #[arg(long, value_name = "FILE")]
    pub lockdep_graph: Option<PathBuf>,
    #[command(flatten)]
    pub limits: crate::run_cmd::LimitArgs,
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim shrink output/race1_fork-pre4-3.schedule\n  swapsim shrink output/race1_fork-pre4-3.schedule --semantic   # the scenario was edited since\n\nA schedule is shrunk by index (delta debugging of its choices) in the scenario it was recorded in. With\n--semantic, or by itself when the tool version differs, it is first replayed by its recorded events in the\nscenario as it is now and, if the same invariant breaks, re-recorded from that run. Exit status: 0 shrunk\nand written back, 1 the replay (by events or by index) did not break the recorded invariant (the file is\nleft as it was), 2 a bad schedule file or scenario."
)]
pub struct ShrinkArgs {
    /// A schedule file; the shrunk schedule replaces it.
    pub file: PathBuf,
    /// Replay by the recorded events (task, named point, occurrence) in the
    /// scenario as it is now, even though it changed since the schedule was
    /// recorded; re-record the schedule from that run, then shrink it.
    #[arg(long)]
    pub semantic: bool,
}

fn options(fixes: kernel::Fixes, seed: u64, strategy: Strategy, schedule: Option<Vec<u32>>) -> RunOptions {
    RunOptions { strategy, schedule, ..RunOptions::new(fixes, seed) }
}

fn violation(report: &RunReport) -> Option<(&'static str, u64)> {
    match &report.outcome {
        Outcome::Violation(v) => Some((v.invariant, v.step)),
        _ => None,
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
    if args.preemptions > MAX_PREEMPTIONS {
        return Err(format!("--preemptions is at most {MAX_PREEMPTIONS}, got {}", args.preemptions));
    }
    if let Some(csv) = &args.csv {
        crate::run_cmd::check_output_file("--csv", csv, &[&args.file])?;
    }
    crate::run_cmd::check_output_dir("--out", &args.out, true).map_err(|e| format!("--out: {e}"))
}

/// PCT's depth: d - 1 priority change points are drawn per run.
const MAX_PCT_DEPTH: u32 = 1000;
/// DFS's preemption bound (the number of schedules grows as steps^bound).
const MAX_PREEMPTIONS: u32 = 1000;

pub fn explore(args: &ExploreArgs) -> ExitCode {
    let kernel = match args.kernel.choice().and_then(|kernel| check_explore_args(args).map(|_| kernel)) {
        Ok(kernel) => kernel,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
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
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(2);
                    }
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
    let searched = move |seed| RunOptions { lock_order: true, point_pairs: true, ..per_seed(seed) };
    let (rows, lock_order, coverage) =
        match crate::seed_search::run_all(&path, &source, &seeds, usize::from(args.jobs), &searched) {
            Ok(result) => (result.rows, result.lock_order, result.coverage),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    let runs_done = rows.len();
    if crate::run_cmd::interrupted() {
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
        let identity = crate::seed_search::SearchIdentity {
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
        let text = crate::seed_search::render_csv(&identity, args.shard, &rows);
        if let Err(e) = write_whole(csv, text.as_bytes()) {
            eprintln!("error: cannot write {}: {e}", csv.display());
            csv_failed = true;
        } else {
            let partial = if crate::run_cmd::interrupted() { ", partial: interrupted" } else { "" };
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
    if let Err(code) = crate::run_cmd::lockdep_out(&lock_order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    let ran: Vec<u64> = rows.iter().map(|r| r.seed).collect();
    print!("{}", coverage.report(&ran));
    let mut by_kind: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for row in rows.iter().filter(|r| r.failed()) {
        *by_kind.entry(row.kind.clone()).or_default() += 1;
    }
    let first_seed =
        rows.iter().find(|r| r.failed() && args.invariant.as_ref().is_none_or(|name| *name == r.kind)).map(|r| r.seed);
    // The first find again, recording its schedule (a run depends only on
    // its seed).
    let first = match first_seed {
        Some(seed) => match script::run::run(&path, &source, &options(kernel.fixes, seed, strategy, None)) {
            Ok(report) => Some((seed, report)),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let total: u64 = by_kind.values().sum();
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if total == 0 {
        println!("result:   {runs_done} runs, no violation");
        return failed(if crate::run_cmd::interrupted() { ExitCode::from(130) } else { ExitCode::SUCCESS });
    }
    println!("result:   {runs_done} runs, {total} found something ({})", kinds.join(", "));
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
    failed(save_schedule(args, &kernel, &path, &source, seed, &tag, invariant, step, &report.choices))
}

/// Write the schedule of a find to `--out` (shrunk first unless
/// `--no-shrink`), print where it is and how to replay it; exit 1.
#[allow(clippy::too_many_arguments)]
fn save_schedule(
    args: &ExploreArgs,
    kernel: &KernelChoice,
    path: &str,
    source: &str,
    seed: u64,
    tag: &str,
    invariant: &str,
    step: u64,
    choices: &[u32],
) -> ExitCode {
    let mut schedule = ScheduleFile {
        tool: env!("CARGO_PKG_VERSION").to_string(),
        scenario: path.to_string(),
        content_hash: content_hash(source.as_bytes()),
        variant: kernel.variant,
        fixes: kernel.fixes,
        seed,
        strategy: match args.strategy {
            StrategyName::Random => "random".into(),
            StrategyName::Pct => format!("pct depth {}", args.depth),
            StrategyName::Dfs => format!("dfs preemptions {}", args.preemptions),
        },
        violation: invariant.to_string(),
        step,
        choices: trimmed(choices),
        semantic: None,
    };
    let before = ScheduleFile::size(&schedule.choices);
    let mut note = String::new();
    if !args.no_shrink {
        let (shrunk, replays, _) = shrink(path, source, &schedule);
        schedule = shrunk;
        let after = ScheduleFile::size(&schedule.choices);
        note = format!(
            " (shrunk from {} choices, {} not the default, to {} choices, {} not the default, in {replays} replays)",
            before.0, before.1, after.0, after.1
        );
    }
    with_events(path, source, &mut schedule);
    let name = find_name(&args.file, kernel, tag);
    let file = args.out.join(format!("{name}.schedule"));
    if let Err(e) = std::fs::create_dir_all(&args.out).and_then(|_| write_whole(&file, schedule.render().as_bytes())) {
        // The find is not lost: its seed reproduces it.
        eprintln!(
            "error: cannot write the schedule to {}: {e}; the find is seed {seed}: `swapsim run {} {} --seed {seed}` \
             shows it again",
            file.display(),
            crate::run_cmd::shell_quote(path),
            kernel.flags()
        );
        return ExitCode::from(2);
    }
    println!("schedule: {}{note}", file.display());
    match write_bundle(&args.out.join(format!("{name}.bundle")), &args.file, source, &schedule) {
        Ok(dir) => println!("bundle:   {} (scenario, schedule, report, command: one folder to send)", dir.display()),
        Err(e) => eprintln!("warning: the bug-report bundle was not written: {e}"),
    }
    println!("replay:   swapsim replay {}", crate::run_cmd::shell_quote(&file.display().to_string()));
    ExitCode::from(1)
}

/// The name of a find's schedule and bundle: the scenario (with its folder
/// when that is not `scenarios/`), the kernel with its fix switches, and
/// the seed or schedule: `race1_fork-patched-no-mmlist-1`,
/// `tmp_a_race1_fork-pre4-3`. Two searches that differ in any of them
/// never write the same file.
fn find_name(scenario: &Path, kernel: &KernelChoice, tag: &str) -> String {
    let word = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
    };
    let stem = scenario.file_stem().map(|s| word(&s.to_string_lossy())).unwrap_or_else(|| "scenario".into());
    let folders: Vec<String> = scenario
        .parent()
        .into_iter()
        .flat_map(|dir| dir.components())
        .filter_map(|c| match c {
            std::path::Component::Normal(name) => Some(word(&name.to_string_lossy())),
            std::path::Component::ParentDir => Some("up".into()),
            _ => None,
        })
        .collect();
    let folder = match folders.as_slice() {
        [] => String::new(),
        [only] if only == "scenarios" => String::new(),
        parts => format!("{}_", parts.join("_")),
    };
    let switches: String = kernel
        .fixes
        .diff(&kernel.variant.fixes())
        .iter()
        .map(|switch| match switch.split_at(1) {
            ("+", name) => format!("-fix-{name}"),
            (_, name) => format!("-no-{name}"),
        })
        .collect();
    format!("{folder}{stem}-{}{switches}-{tag}", kernel.variant)
}

/// Re-run `n` times around the schedule (perturbation stream i for run i):
/// how many break the recorded invariant, how many something else.
/// Stops early at Ctrl-C; the third number is how many runs it made.
fn reproduction_rate(schedule: &ScheduleFile, source: &str, n: u64, p: f64) -> Result<(u64, u64, u64), String> {
    let runner = script::run::Runner::new(&schedule.scenario, source, Default::default()).map_err(|e| e.to_string())?;
    let (mut same, mut other) = (0, 0);
    for i in 0..n {
        if crate::run_cmd::interrupted() {
            return Ok((same, other, i));
        }
        let opts = RunOptions {
            record_events: false,
            perturb: Some((p, i)),
            ..options(schedule.fixes, schedule.seed, Strategy::Random, Some(schedule.choices.clone()))
        };
        let report = runner.run(&opts).map_err(|e| e.to_string())?;
        match violation(&report) {
            Some((invariant, _)) if invariant == schedule.violation => same += 1,
            _ if report.outcome.is_failure() => other += 1,
            _ => {}
        }
    }
    Ok((same, other, n))
}

/// One folder per find, to mail or attach to a bug: the scenario, the
/// schedule (naming the scenario beside it), the side-by-side report, and
/// the command that replays it from inside the folder. Written into a
/// temporary folder first, then renamed: whole or not at all.
fn write_bundle(dir: &Path, scenario: &Path, source: &str, schedule: &ScheduleFile) -> std::io::Result<PathBuf> {
    let name = scenario.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "scenario.lua".into());
    let local = ScheduleFile { scenario: name.clone(), ..schedule.clone() };
    let opts = options(schedule.fixes, schedule.seed, Strategy::Random, Some(schedule.choices.clone()));
    let report =
        script::run::run(&schedule.scenario, source, &opts).map_err(|e| std::io::Error::other(e.to_string()))?;
    let kernel =
        KernelChoice { variant: schedule.variant, fixes: schedule.fixes, faults: None, limits: Default::default() };
    let mut text = side_by_side(&report);
    text.push_str(&render_one(schedule.seed, &kernel, &name, source, &report, None));
    let command =
        format!("# swapsim {}: from inside this folder\nswapsim replay schedule --report\n", env!("CARGO_PKG_VERSION"));
    // A name of its own (two explores may write into one --out), removed
    // again if anything fails (a full disk leaves nothing behind).
    let parent = dir.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let partial = parent.join(crate::run_cmd::unique_temp_name("bundle"));
    let written = std::fs::create_dir(&partial)
        .and_then(|_| std::fs::write(partial.join(&name), source))
        .and_then(|_| std::fs::write(partial.join("schedule"), local.render()))
        .and_then(|_| std::fs::write(partial.join("report.txt"), text))
        .and_then(|_| std::fs::write(partial.join("COMMAND"), command))
        .and_then(|_| {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::rename(&partial, dir)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    Ok(dir.to_path_buf())
}

/// Bounded depth-first search (CHESS, Musuvathi and Qadeer, PLDI 2007):
/// run the schedule with no preemption, then every schedule that differs
/// from an explored one at a single later decision, as long as it has at
/// most `--preemptions` preemptions; stop at the first violation, or when
/// all are explored (or `--runs` is reached). Schedules that differ only in
/// the order of independent steps are all run (no partial-order reduction).
fn dfs(args: &ExploreArgs, kernel: &KernelChoice, path: &str, source: &str) -> ExitCode {
    let bound = args.preemptions;
    let sleep_sets = !args.no_sleep_sets;
    println!(
        "strategy: dfs, at most {bound} preemptions (allocation sleeps count as preemptions){}",
        if sleep_sets { ", sleep sets" } else { "" }
    );
    let runner = match script::run::Runner::new(path, source, Default::default()) {
        Ok(runner) => runner,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let progress = crate::progress::Progress::new(args.runs());
    let mut plan = match args.shard {
        Some(shard) => {
            println!("shard:    {}/{} of the search's subtrees (by schedule prefix)", shard.index, shard.count);
            engine::DfsPlan::sharded(sleep_sets, (shard.index - 1) as u32, shard.count as u32)
        }
        None => engine::DfsPlan { sleep_sets, ..Default::default() },
    };
    let mut explored = 0u64;
    let mut pruned = 0u64;
    let mut exhausted = false;
    let mut found: Option<(Vec<u32>, RunReport)> = None;
    let mut order = crate::lockdep::LockOrder::default();
    while explored + pruned < args.runs() && !crate::run_cmd::interrupted() {
        let options = RunOptions {
            record_events: false,
            lock_order: true,
            dfs: Some(plan.clone()),
            ..RunOptions::new(kernel.fixes, args.seed)
        };
        let report = match runner.run(&options) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let run = std::mem::take(&mut *plan.log.borrow_mut());
        if !plan.owned() {
            // Another shard's subtree: its first schedule only finds the next.
            match plan.next(&run, bound) {
                Some(next) => plan = next,
                None => {
                    exhausted = true;
                    break;
                }
            }
            continue;
        }
        progress.inc(!run.pruned && report.outcome.is_failure());
        // A dfs witness is its schedule's number in the search.
        order.add_run(explored + pruned + 1, &report.lock_order);
        if run.pruned {
            pruned += 1;
        } else {
            explored += 1;
            let wanted = match &report.outcome {
                Outcome::Violation(v) => args.invariant.as_ref().is_none_or(|name| name == v.invariant),
                Outcome::Finished => false,
                _ => args.invariant.is_none(),
            };
            if wanted {
                found = Some((run.records.iter().map(|r| r.rank).collect(), report));
                break;
            }
        }
        match plan.next(&run, bound) {
            Some(next) => plan = next,
            None => {
                exhausted = true;
                break;
            }
        }
    }
    progress.finish();
    if sleep_sets {
        println!("sleep sets: {pruned} more schedules cut short (they only reorder independent steps of one explored)");
    }
    let witness = |n: u64| {
        format!(
            "swapsim explore {path} {} --strategy dfs --preemptions {bound}{} --seed {} --runs {n} --no-shrink \
             (schedule {n} is the search's last)",
            kernel.flags(),
            if sleep_sets { "" } else { " --no-sleep-sets" },
            args.seed
        )
    };
    if let Err(code) = crate::run_cmd::lockdep_out(&order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    let Some((ranks, report)) = found else {
        if exhausted {
            println!("result:   explored all {explored} schedules with <= {bound} preemptions: no violation");
            return ExitCode::SUCCESS;
        }
        println!("result:   {explored} schedules explored, not all (raise --runs): no violation so far");
        return if crate::run_cmd::interrupted() { ExitCode::from(130) } else { ExitCode::SUCCESS };
    };
    println!("result:   schedule {explored} breaks: {}", script::run::describe(&report.outcome));
    let Some((invariant, step)) = violation(&report) else { return ExitCode::from(1) };
    // Record the raw choices of that schedule for the schedule file (a plain
    // replay of its ranks: the sleep sets only ever cut a run short).
    let replay = engine::DfsPlan { prefix: ranks, ..Default::default() };
    let options = RunOptions { dfs: Some(replay), ..RunOptions::new(kernel.fixes, args.seed) };
    let Ok(recorded) = runner.run(&options) else { return ExitCode::from(1) };
    save_schedule(args, kernel, path, source, args.seed, &format!("dfs{explored}"), invariant, step, &recorded.choices)
}

/// Drop trailing default choices: replay fills them in.
fn trimmed(choices: &[u32]) -> Vec<u32> {
    let (len, _) = ScheduleFile::size(choices);
    choices[..len].to_vec()
}

/// Delta-debug a schedule's choices (Zeller's ddmin over the choices that
/// are not the default): set chunks of them back to the default while the
/// same invariant still breaks, then cut the tail. Returns the shrunk
/// schedule (its choices and step re-recorded from a final replay), the
/// number of replays it took, and whether that final replay broke the
/// invariant (if not, the schedule given did not break it either, and is
/// returned as it was).
pub fn shrink(path: &str, source: &str, schedule: &ScheduleFile) -> (ScheduleFile, u64, bool) {
    let mut replays = 0u64;
    let Ok(runner) = script::run::Runner::new(path, source, Default::default()) else {
        return (schedule.clone(), 0, false);
    };
    let mut breaks = |choices: &[u32]| -> Option<RunReport> {
        replays += 1;
        let opts = RunOptions {
            record_events: false,
            ..options(schedule.fixes, schedule.seed, Strategy::Random, Some(choices.to_vec()))
        };
        let report = runner.run(&opts).ok()?;
        match &report.outcome {
            Outcome::Violation(v) if v.invariant == schedule.violation => Some(report),
            _ => None,
        }
    };
    let mut current = schedule.choices.clone();
    let mut chunks = 2usize;
    loop {
        let set: Vec<usize> = (0..current.len()).filter(|&i| current[i] != 0).collect();
        if set.is_empty() {
            break;
        }
        let size = set.len().div_ceil(chunks.min(set.len()));
        let mut reduced = false;
        for chunk in set.chunks(size) {
            let mut candidate = current.clone();
            for &i in chunk {
                candidate[i] = 0;
            }
            if breaks(&candidate).is_some() {
                current = trimmed(&candidate);
                chunks = (chunks - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if chunks >= set.len() {
                break;
            }
            chunks = (chunks * 2).min(set.len());
        }
    }
    // Re-record: the run of the shrunk choices is the schedule.
    let mut shrunk = schedule.clone();
    let reproduced = match breaks(&current) {
        Some(report) => {
            shrunk.choices = trimmed(&report.choices);
            if let Some((_, step)) = violation(&report) {
                shrunk.step = step;
            }
            true
        }
        None => false,
    };
    (shrunk, replays, reproduced)
}

/// Record the semantic events of the schedule (a replay by index with
/// labels on): the schedule becomes format 2, consistent with its choices
/// (format 1, without events, if the scenario fails to load).
fn with_events(path: &str, source: &str, schedule: &mut ScheduleFile) {
    let opts = RunOptions {
        record_events: false,
        record_labels: true,
        ..options(schedule.fixes, schedule.seed, Strategy::Random, Some(schedule.choices.clone()))
    };
    schedule.semantic = match script::run::run(path, source, &opts) {
        Ok(report) => Some(Semantic::new(report.semantic, &report.task_keys)),
        Err(_) => None,
    };
}

/// A schedule file, its scenario's source, and whether the source is the
/// one it was recorded in (its content hash).
fn load_schedule(file: &Path) -> Result<(ScheduleFile, String, bool), ExitCode> {
    let name = file.display().to_string();
    let text = match crate::run_cmd::read_bounded(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read schedule {name}: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let schedule = match ScheduleFile::parse(&text, &name) {
        Ok(schedule) => schedule,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(ExitCode::from(2));
        }
    };
    // A relative scenario path is taken from the schedule's own folder when
    // the file is there (a bundle replays its own copy, from anywhere, even
    // where the current directory has a file of the same name), else from
    // the current directory.
    let beside = file.parent().map(|dir| dir.join(&schedule.scenario)).filter(|p| p.is_file());
    let scenario_file = match beside {
        Some(beside) if Path::new(&schedule.scenario).is_relative() => beside,
        _ => PathBuf::from(&schedule.scenario),
    };
    let source = match crate::run_cmd::read_bounded(&scenario_file) {
        Ok(source) => source,
        Err(e) => {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "there is no such file".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            eprintln!("error: {name}: its scenario {} cannot be read: {why}", schedule.scenario);
            return Err(ExitCode::from(2));
        }
    };
    let same = content_hash(source.as_bytes()) == schedule.content_hash;
    Ok((schedule, source, same))
}

/// The refusal of a schedule whose scenario changed; `hint` says what to do.
fn refuse_changed(file: &Path, schedule: &ScheduleFile, source: &str, hint: &str) -> ExitCode {
    eprintln!(
        "error: {}: {} is not the scenario this schedule was recorded in (its content fnv1a is {:016x}, the \
         schedule recorded {:016x}): the scenario changed, or the schedule names another one{hint}",
        file.display(),
        schedule.scenario,
        content_hash(source.as_bytes()),
        schedule.content_hash
    );
    ExitCode::from(2)
}

/// How `replay` and `shrink` follow a schedule.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReplayMode {
    /// The option index at each decision: exact in the recorded scenario.
    Index,
    /// The recorded events: the scenario or the tool changed.
    Semantic,
}

/// A semantic event in words: "parent.3 (parent/1) at dup_mmap:copy #2".
fn describe_event(e: &engine::SemanticEvent, names: &dyn Fn(&str) -> String) -> String {
    let who = names(&e.task);
    let (point, n) = (&e.point, e.occurrence);
    match e.class {
        engine::EventClass::Run => format!("{who} at {point} #{n}"),
        engine::EventClass::Timer => format!("the timer of {who} at {point} #{n}"),
        engine::EventClass::Sleep => format!("the allocation of {who} at {point} #{n}"),
        engine::EventClass::Fault => format!("the fault decision of {who} at {point} #{n}"),
    }
}

/// How a schedule is followed, by `replay` and `shrink` alike: by index
/// when its scenario and the tool are the recorded ones; by its events with
/// --semantic, or by itself when only the tool differs. A changed scenario
/// without --semantic, and --semantic on a format-1 file, are refused
/// (exit 2); `command` names the command in the refusal's hint.
fn follow_mode(
    command: &str,
    file: &Path,
    schedule: &ScheduleFile,
    source: &str,
    same_scenario: bool,
    semantic: bool,
) -> Result<ReplayMode, ExitCode> {
    let tool = env!("CARGO_PKG_VERSION");
    let same_tool = schedule.tool == tool;
    match &schedule.semantic {
        None if semantic => {
            eprintln!(
                "error: {}: a format-1 schedule has no recorded events to replay by (--semantic needs format 2: \
                 explore or shrink records it)",
                file.display()
            );
            Err(ExitCode::from(2))
        }
        None if !same_scenario => Err(refuse_changed(
            file,
            schedule,
            source,
            " (a format-1 schedule replays by index only; explore the new scenario again)",
        )),
        None => {
            if !same_tool {
                println!(
                    "note:     recorded by swapsim {} (this is {tool}); a format-1 schedule replays by index only",
                    schedule.tool
                );
            }
            Ok(ReplayMode::Index)
        }
        Some(_) if semantic => Ok(ReplayMode::Semantic),
        Some(_) if !same_scenario => {
            let what = if command == "shrink" { "re-records it from a replay by" } else { "replays it by" };
            let hint = format!("; `swapsim {command} {} --semantic` {what} its recorded events", file.display());
            Err(refuse_changed(file, schedule, source, &hint))
        }
        Some(_) if !same_tool => {
            println!(
                "note:     recorded by swapsim {} (this is {tool}): replaying by the recorded events",
                schedule.tool
            );
            Ok(ReplayMode::Semantic)
        }
        Some(_) => Ok(ReplayMode::Index),
    }
}

/// One run of a schedule in `source`: by index (with labels on for a
/// format-2 file, to check its events), or by its recorded events, with
/// how the semantic replay went.
fn follow(
    schedule: &ScheduleFile,
    source: &str,
    mode: ReplayMode,
) -> Result<(RunReport, engine::SemanticLog), script::sandbox::ScenarioError> {
    let log = engine::SemanticLog::default();
    let base = RunOptions {
        lock_order: true,
        ..options(schedule.fixes, schedule.seed, Strategy::Random, Some(schedule.choices.clone()))
    };
    let opts = match (mode, &schedule.semantic) {
        (ReplayMode::Semantic, Some(semantic)) => RunOptions {
            semantic: Some((semantic.events.clone(), schedule.choices.clone(), std::rc::Rc::clone(&log))),
            ..base
        },
        _ => RunOptions { record_labels: schedule.semantic.is_some(), ..base },
    };
    let report = script::run::run(&schedule.scenario, source, &opts)?;
    Ok((report, log))
}

/// Task names for messages: the recording's for its tasks, this run's for
/// new ones, as "name (key)" when they differ.
fn task_name(schedule: &ScheduleFile, report: &RunReport, key: &str) -> String {
    let name = match &schedule.semantic {
        Some(semantic) if semantic.tasks.iter().any(|(k, _)| k == key) => semantic.name(key).to_string(),
        _ => report.task_keys.iter().find(|(k, _)| k == key).map(|(_, n)| n.clone()).unwrap_or_default(),
    };
    if name.is_empty() || name == key {
        key.to_string()
    } else {
        format!("{name} ({key})")
    }
}

pub fn replay(args: &ReplayArgs) -> ExitCode {
    if let Err(e) = args.limits.apply() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let perturb = match crate::run_cmd::parse_probability("--perturb", &args.perturb) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (schedule, source, same_scenario) = match load_schedule(&args.file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mode = match follow_mode("replay", &args.file, &schedule, &source, same_scenario, args.semantic) {
        Ok(mode) => mode,
        Err(code) => return code,
    };
    let (report, log) = match follow(&schedule, &source, mode) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let kernel =
        KernelChoice { variant: schedule.variant, fixes: schedule.fixes, faults: None, limits: Default::default() };
    let outputs = (args.events.as_deref(), args.trace.as_deref(), args.csv.as_deref());
    if let Err(code) = crate::run_cmd::write_outputs(&report, outputs.0, outputs.1, outputs.2) {
        return code;
    }
    // By index, a choice past the options of its decision is taken as the
    // last option: say so (the run left the schedule there).
    if mode == ReplayMode::Index {
        let clamped = schedule.choices.iter().zip(&report.choices).position(|(wanted, made)| wanted != made);
        if let Some(i) = clamped {
            println!(
                "note:     choice {} of the schedule is {}, but decision {i} of the replay had only {} options \
                 (numbered from 0): it took the last, and left the schedule there",
                i + 1,
                schedule.choices[i],
                report.choices[i] + 1
            );
        }
    }
    if args.report {
        print!("{}", side_by_side(&report));
    }
    print!("{}", render_one(schedule.seed, &kernel, &schedule.scenario, &source, &report, None));
    let mut order = crate::lockdep::LockOrder::default();
    order.add_run(schedule.seed, &report.lock_order);
    let witness = |_| format!("swapsim replay {}", args.file.display());
    if let Err(code) = crate::run_cmd::lockdep_out(&order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    if args.stats {
        let (stats, calls) = (report::lock_stat(&report), report::latencies(&report));
        crate::run_cmd::print_stats(&stats, &calls, args.stats_format);
    }
    let names = |key: &str| task_name(&schedule, &report, key);
    match mode {
        ReplayMode::Index => {
            match violation(&report) {
                Some((invariant, step)) if invariant == schedule.violation && step == schedule.step => {
                    println!("replayed: {invariant} at step {step}, as recorded");
                }
                Some((invariant, step)) => println!(
                    "diverged: recorded {} at step {}, replay broke {invariant} at step {step}",
                    schedule.violation, schedule.step
                ),
                None => println!(
                    "diverged: recorded {} at step {}, replay ran without it",
                    schedule.violation, schedule.step
                ),
            }
            if let Some(semantic) = &schedule.semantic {
                let recorded = &semantic.events;
                match (0..recorded.len().max(report.semantic.len()))
                    .find(|&i| recorded.get(i) != report.semantic.get(i))
                {
                    None => println!("events:   the {} recorded events agree with the replay", recorded.len()),
                    Some(i) => {
                        let show = |e: Option<&engine::SemanticEvent>| {
                            e.map(|e| describe_event(e, &names)).unwrap_or_else(|| "nothing (the run ended)".into())
                        };
                        println!(
                            "events:   the replay differs from the recorded events at decision {i}: recorded {}, \
                             replayed {}",
                            show(recorded.get(i)),
                            show(report.semantic.get(i))
                        );
                    }
                }
            }
        }
        ReplayMode::Semantic => print!("{}", semantic_summary(&schedule, &report, &log.borrow(), &names)),
    }
    if let Some(n) = args.rate {
        // Semantically, around the choices the replay made in this scenario.
        let around = match mode {
            ReplayMode::Index => schedule.clone(),
            ReplayMode::Semantic => ScheduleFile { choices: trimmed(&report.choices), ..schedule.clone() },
        };
        match reproduction_rate(&around, &source, n, perturb) {
            Ok((same, other, ran)) if ran < n => {
                println!("interrupted: stopped after {ran} of {n} runs around the schedule; the rate covers those");
                println!(
                    "rate:     {same} of {ran} runs around the schedule (p = {}) break {} again ({:.1}%); {other} \
                     break something else",
                    args.perturb.trim(),
                    schedule.violation,
                    100.0 * same as f64 / ran.max(1) as f64
                );
            }
            Ok((same, other, _)) => println!(
                "rate:     {same} of {n} runs around the schedule (p = {}) break {} again ({:.1}%); {other} break \
                 something else",
                args.perturb.trim(),
                schedule.violation,
                100.0 * same as f64 / n.max(1) as f64
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let flag = if mode == ReplayMode::Semantic && args.semantic { " --semantic" } else { "" };
    println!("replay:   swapsim replay {}{flag}", args.file.display());
    if report.outcome.is_failure() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// What a semantic replay did: how many recorded events it matched, where
/// it diverged (if it did), and whether the recorded invariant broke again.
fn semantic_summary(
    schedule: &ScheduleFile,
    report: &RunReport,
    log: &engine::SemanticReplayReport,
    names: &dyn Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    let outcome = match violation(report) {
        Some((invariant, step)) if invariant == schedule.violation => {
            format!("violation {invariant} reproduced at step {step}")
        }
        Some((invariant, step)) => {
            format!("violation {} did not reproduce; {invariant} broke instead at step {step}", schedule.violation)
        }
        None => {
            format!("violation {} did not reproduce ({})", schedule.violation, script::run::describe(&report.outcome))
        }
    };
    let _ =
        writeln!(out, "replayed semantically: {} of {} recorded events matched, {outcome}", log.matched, log.recorded);
    let mut extras = Vec::new();
    for (count, what) in [
        (log.skipped, "recorded events skipped (their task is gone)"),
        (log.catch_up, "catch-up steps (a recorded task off its recorded point)"),
        (log.new_steps, "steps of tasks not in the recording"),
        (log.unrecorded, "allocation or fault decisions not in the recording (the default taken)"),
    ] {
        if count > 0 {
            extras.push(format!("{count} {what}"));
        }
    }
    if !extras.is_empty() {
        let _ = writeln!(out, "  also: {}", extras.join("; "));
    }
    let unfinished = log.matched + log.skipped < log.recorded;
    let reproduced = matches!(violation(report), Some((i, _)) if i == schedule.violation);
    let divergence = match (&log.divergence, &log.off_since) {
        (Some(d), _) => Some(("diverged", d)),
        (None, Some(d)) if unfinished && !reproduced => Some(("went off the recording for good", d)),
        _ => None,
    };
    let at = |d: &engine::Divergence| {
        let offered: Vec<String> = d.offered.iter().map(|e| describe_event(e, names)).collect();
        format!(
            "decision {} (step {}): expected {}; on offer: {}",
            d.decision,
            d.step,
            describe_event(&d.expected, names),
            offered.join(", ")
        )
    };
    if let Some((how, d)) = divergence {
        let _ = writeln!(out, "{how} at {}", at(d));
        if let Some(first) = log.first_off.as_ref().filter(|f| f.decision < d.decision) {
            let _ = writeln!(out, "  first left the recording at {}", at(first));
        }
    } else if unfinished && !reproduced {
        let _ = writeln!(
            out,
            "the run ended with {} recorded events left to match",
            log.recorded - log.matched - log.skipped
        );
    }
    out
}

pub fn shrink_cmd(args: &ShrinkArgs) -> ExitCode {
    let (schedule, source, same_scenario) = match load_schedule(&args.file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mode = match follow_mode("shrink", &args.file, &schedule, &source, same_scenario, args.semantic) {
        Ok(mode) => mode,
        Err(code) => return code,
    };
    // By its events: replay the schedule in the scenario as it is now and,
    // if the same invariant breaks, take that run as the schedule to shrink.
    let schedule = match mode {
        ReplayMode::Index => schedule,
        ReplayMode::Semantic => {
            let (report, log) = match follow(&schedule, &source, mode) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let names = |key: &str| task_name(&schedule, &report, key);
            print!("{}", semantic_summary(&schedule, &report, &log.borrow(), &names));
            let Some((_, step)) = violation(&report).filter(|(invariant, _)| *invariant == schedule.violation) else {
                println!(
                    "not shrunk: {} is left as it was (the replay by its events did not break {})",
                    args.file.display(),
                    schedule.violation
                );
                return ExitCode::from(1);
            };
            ScheduleFile {
                tool: env!("CARGO_PKG_VERSION").to_string(),
                content_hash: content_hash(source.as_bytes()),
                step,
                choices: trimmed(&report.choices),
                semantic: None,
                ..schedule
            }
        }
    };
    let before = ScheduleFile::size(&schedule.choices);
    let (mut shrunk, replays, reproduced) = shrink(&schedule.scenario, &source, &schedule);
    if !reproduced {
        println!(
            "not shrunk: {} is left as it was (a replay by index did not break {}; `swapsim replay {}` shows the run)",
            args.file.display(),
            schedule.violation,
            args.file.display()
        );
        return ExitCode::from(1);
    }
    with_events(&schedule.scenario, &source, &mut shrunk);
    let after = ScheduleFile::size(&shrunk.choices);
    if let Err(e) = write_whole(&args.file, shrunk.render().as_bytes()) {
        eprintln!("error: cannot write {}: {e}", args.file.display());
        return ExitCode::from(2);
    }
    println!(
        "shrunk:   {} choices ({} not the default) -> {} choices ({} not the default), {replays} replays; {} still breaks {} at step {}",
        before.0,
        before.1,
        after.0,
        after.1,
        args.file.display(),
        shrunk.violation,
        shrunk.step
    );
    ExitCode::SUCCESS
}

/// The interleaving side by side: one column per task, one row per event
/// of the story (named points, waits, sleeps, wakes, sleeping locks and
/// kernel notes), the broken invariant at the bottom.
pub fn side_by_side(report: &RunReport) -> String {
    const WIDTH: usize = 34;
    const ROWS: usize = 80;
    let columns: Vec<&str> = report.run_tasks.iter().map(|s| s.as_str()).collect();
    let rows: Vec<&script::run::EventLine> = report
        .events
        .iter()
        .filter(|e| e.key || e.what == "at")
        .filter(|e| !e.point.starts_with("ret_from_sys_call") || e.what != "at")
        .collect();
    let skip = rows.len().saturating_sub(ROWS);
    let mut out = String::new();
    let _ = write!(out, "{:>6} ", "step");
    for c in &columns {
        let _ = write!(out, "| {:<WIDTH$} ", clip(c, WIDTH));
    }
    out.push('\n');
    let _ = writeln!(out, "{}", "-".repeat(7 + columns.len() * (WIDTH + 3)));
    if skip > 0 {
        let _ = writeln!(out, "{:>6} | ... {skip} earlier rows; --events on `swapsim run` has them all", "");
    }
    for e in &rows[skip..] {
        let text = if e.what == "at" { e.point.to_string() } else { format!("{} ({})", e.what, e.point) };
        let _ = write!(out, "{:>6} ", e.step);
        for c in &columns {
            let cell = if *c == e.task { clip(&text, WIDTH) } else { String::new() };
            let _ = write!(out, "| {cell:<WIDTH$} ");
        }
        out.push('\n');
    }
    if let Outcome::Violation(v) = &report.outcome {
        let _ = writeln!(out, "{}", "-".repeat(7 + columns.len() * (WIDTH + 3)));
        let _ = writeln!(out, "broken at step {}: {}: {}", v.step, v.invariant, v.message);
    }
    out.push('\n');
    out
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}
