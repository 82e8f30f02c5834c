//! `swapsim sweep`: run a scenario's parameter grid — every point, kernel
//! and seed — and write a CSV of what each run cost, with plots; and the
//! merge of the shards of one sweep (`swapsim merge`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use engine::Outcome;
use kernel::Variant;
use script::{RunOptions, RunReport, Strategy};

use crate::input::content_hash;
use crate::output::write_file;
use crate::seed_search::Shard;

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim sweep scenarios/sweep_swapoff_cost.lua --out output/sweep1 --jobs 2\n  swapsim sweep scenarios/sweep_swapoff_cost.lua --out output/part3 --shard 3/8   # one machine of eight\n  swapsim merge --out output/sweep1 output/part*/results.csv\n\nThe scenario declares the grid with sweep{ params = {...}, kernels = {...}, seeds = N } and reads\nits point with param(\"name\"). Runs are in timed mode: the step that comes first in simulated\ntime runs next. Writes DIR/results.csv and DIR/samples.csv (columns in docs/sweep.md) and\nDIR/*.png, DIR/*.svg; DIR/PARTIAL when interrupted.\n\nExit status: 0 every run held every invariant, 1 a run broke one (or deadlocked, or hit the step\nlimit: it is flagged in results.csv and left out of the plots), 2 bad usage or a bad scenario,\n130 interrupted (the files cover the runs done and say they are partial)."
)]
pub struct SweepArgs {
    /// The scenario (a Lua file with a sweep{} declaration).
    pub file: PathBuf,
    /// The output directory; it must not hold results already (use --force to replace them).
    #[arg(long)]
    pub out: PathBuf,
    /// Parallel runs (results do not depend on it).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Replace results already in the output directory.
    #[arg(long)]
    pub force: bool,
    /// Run only shard K of N (the runs i of the grid with i % N == K-1), to
    /// split a sweep across machines; combine them with `swapsim merge`.
    #[arg(long, value_name = "K/N", value_parser = crate::seed_search::parse_shard)]
    pub shard: Option<Shard>,
    /// Also write each point's lock statistics, totals over its seeds, as
    /// DIR/lock_stat/POINT-KERNEL.csv (the columns of `run --stats-format csv`).
    #[arg(long)]
    pub lock_stat: bool,
    #[command(flatten)]
    pub limits: crate::args::LimitArgs,
}

/// The most runs a sweep's grid may hold (points x kernels x seeds).
pub const MAX_SWEEP_RUNS: u64 = 1_000_000;

/// How many runs the grid holds, or None past u64.
fn grid_size(grid: &script::spec::Sweep) -> Option<u64> {
    let points = grid.params.iter().try_fold(1u64, |n, (_, values)| n.checked_mul(values.len() as u64))?;
    points.checked_mul(grid.kernels.len() as u64)?.checked_mul(grid.seeds)
}

/// The columns of results.csv after the parameters (docs/sweep.md).
pub const COLUMNS: &[&str] = &[
    "kernel",
    "seed",
    "outcome",
    "invariant",
    "steps",
    "time_ns",
    "swapoffs",
    "swapoff_ns_mean",
    "swapoff_ns_max",
    "faults",
    "faults_during_swapoff",
    "fault_ns_p50",
    "fault_ns_p99",
    "swap_ins",
    "swap_outs",
    "tool",
    "scenario",
    "scenario_fnv1a",
    "runs",
    "shard",
];

/// A parameter's column: `param.NAME`, so that no name can clash with
/// another column or start a cell with `=`.
const PARAM: &str = "param.";

/// The columns of samples.csv: each run's faults during swapoff, as
/// (latency, how many) pairs.
const SAMPLE_COLUMNS: [&str; 3] = ["run", "fault_ns", "count"];

/// Which sweep rows belong to: the same in every row of one sweep and of
/// each of its shards.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    tool: String,
    /// The scenario's file name (for titles; the hash is what must agree).
    scenario: String,
    hash: String,
    /// Runs in the whole grid.
    runs: usize,
}

/// One run of the grid and what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    /// Its index in grid order (from 0).
    run: usize,
    point: Vec<(String, i64)>,
    kernel: String,
    seed: u64,
    /// "1/1" unless the run came from a shard of an unfinished merge.
    shard: String,
    row: Row,
}

/// What one run cost. `None` is a missing value (no sample): an empty
/// field in the CSV.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Row {
    /// `clean`, `violation`, `deadlock`, `step-limit` or `aborted`.
    outcome: String,
    /// The invariant a violation broke (empty otherwise).
    invariant: String,
    steps: u64,
    time_ns: u64,
    swapoffs: u64,
    swapoff_ns_mean: Option<u64>,
    swapoff_ns_max: Option<u64>,
    faults: u64,
    faults_during_swapoff: u64,
    fault_ns_p50: Option<u64>,
    fault_ns_p99: Option<u64>,
    swap_ins: u64,
    swap_outs: u64,
    /// The latencies of the faults during swapoff: (ns, count), ascending.
    fault_samples: Vec<(u64, u64)>,
    /// With --lock-stat: the run's lock statistics (not in results.csv).
    locks: Vec<report::LockStat>,
}

impl Row {
    fn clean(&self) -> bool {
        self.outcome == "clean"
    }
}

fn measure(report: &RunReport) -> Row {
    let swapoffs: Vec<(u64, u64)> =
        report.calls.iter().filter(|c| c.name == "swapoff").map(|c| (c.start_ns, c.end_ns)).collect();
    let durations: Vec<u64> = swapoffs.iter().map(|(s, e)| e - s).collect();
    let mut during: Vec<u64> = report
        .calls
        .iter()
        .filter(|c| c.name == "fault" && swapoffs.iter().any(|&(s, e)| c.start_ns < e && s < c.end_ns))
        .map(|c| c.end_ns - c.start_ns)
        .collect();
    during.sort_unstable();
    let rank = |p: u32| (!during.is_empty()).then(|| report::nearest_rank(&during, p));
    let mut fault_samples: Vec<(u64, u64)> = Vec::new();
    for &ns in &during {
        match fault_samples.last_mut() {
            Some((last, n)) if *last == ns => *n += 1,
            _ => fault_samples.push((ns, 1)),
        }
    }
    let (outcome, invariant) = match &report.outcome {
        Outcome::Finished => ("clean", String::new()),
        Outcome::Violation(v) => ("violation", v.invariant.to_string()),
        Outcome::Deadlock(_) => ("deadlock", String::new()),
        Outcome::StepLimit(_) => ("step-limit", String::new()),
        Outcome::Aborted => ("aborted", String::new()),
    };
    Row {
        outcome: outcome.to_string(),
        invariant,
        steps: report.steps,
        time_ns: report.time_ns,
        swapoffs: durations.len() as u64,
        swapoff_ns_mean: (!durations.is_empty()).then(|| durations.iter().sum::<u64>() / durations.len() as u64),
        swapoff_ns_max: durations.iter().copied().max(),
        faults: report.stats.faults,
        faults_during_swapoff: during.len() as u64,
        fault_ns_p50: rank(50),
        fault_ns_p99: rank(99),
        swap_ins: report.stats.swap_ins,
        swap_outs: report.stats.swap_outs,
        fault_samples,
        locks: Vec::new(),
    }
}

pub fn sweep(args: &SweepArgs) -> ExitCode {
    let checked = args.limits.apply().and_then(|_| {
        if !(1..=256).contains(&args.jobs) {
            return Err(format!("--jobs is between 1 and 256, got {}", args.jobs));
        }
        // The folder must take files before the runs, not after.
        crate::output::check_output_dir("--out", &args.out, true).map_err(|e| format!("--out: {e}"))
    });
    if let Err(e) = checked {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let (path, source) = match crate::input::read_source(&args.file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let scenario = match script::run::load(&path, &source, Default::default()) {
        Ok(scenario) => scenario,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(grid) = scenario.sweep else {
        eprintln!(
            "error: {path} declares no sweep{{}}: add sweep{{ params = {{ name = {{values}} }} }} and read the \
             point with param(\"name\") (see swapsim sweep --help)"
        );
        return ExitCode::from(2);
    };
    let results = args.out.join("results.csv");
    if results.exists() && !args.force {
        eprintln!(
            "error: {} already holds results; choose another --out or pass --force to replace them",
            args.out.display()
        );
        return ExitCode::from(2);
    }
    match grid_size(&grid) {
        Some(runs) if runs <= MAX_SWEEP_RUNS => {}
        runs => {
            let runs = runs.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
            eprintln!(
                "error: {path}: the sweep{{}} grid holds {runs} runs (points x kernels x seeds), more than the \
                 {MAX_SWEEP_RUNS} a sweep runs; use fewer values"
            );
            return ExitCode::from(2);
        }
    }
    // Grid order: the parameters (in name order, the last fastest), then
    // the kernel, then the seed, fastest of all.
    let mut grid_runs = Vec::new();
    for point in grid.points() {
        for kernel in &grid.kernels {
            for seed in 1..=grid.seeds {
                let kernel = Variant::from_name(kernel).expect("validated kernel names");
                grid_runs.push((point.clone(), kernel, seed));
            }
        }
    }
    let total = grid_runs.len();
    let shard = args.shard.unwrap_or(Shard { index: 1, count: 1 });
    let jobs: Vec<usize> = (0..total).filter(|i| *i as u64 % shard.count == shard.index - 1).collect();
    println!("scenario: {path} (content fnv1a {:016x})", content_hash(source.as_bytes()));
    println!(
        "grid:     {} points x {} kernels x {} seeds = {total} runs (timed mode)",
        grid.points().len(),
        grid.kernels.len(),
        grid.seeds
    );
    if args.shard.is_some() {
        println!("shard:    {}/{}: {} of the {total} runs", shard.index, shard.count, jobs.len());
    }
    let progress = crate::output::progress::Progress::new(jobs.len() as u64);
    // Each thread runs every jobs-th job with its own Lua state; results go
    // back to their job's slot, so the output does not depend on --jobs.
    let workers = args.jobs.clamp(1, 64);
    let done: Vec<Result<Record, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (jobs, grid_runs, path, source, progress) = (&jobs, &grid_runs, &path, &source, &progress);
                let lock_stat = args.lock_stat;
                scope.spawn(move || {
                    let runner = script::run::Runner::new(path, source, Default::default());
                    let mut out = Vec::new();
                    for &run in jobs.iter().skip(w).step_by(workers) {
                        if crate::interrupt::interrupted() {
                            break;
                        }
                        let (point, kernel, seed) = &grid_runs[run];
                        let result = match &runner {
                            Ok(runner) => {
                                let options = RunOptions {
                                    strategy: Strategy::Timed,
                                    record_events: lock_stat,
                                    params: point.clone(),
                                    ..RunOptions::new(kernel.fixes(), *seed)
                                };
                                let measured = |r: RunReport| {
                                    let locks = if lock_stat { report::lock_stat(&r) } else { Vec::new() };
                                    Row { locks, ..measure(&r) }
                                };
                                runner.run(&options).map(measured).map_err(|e| e.to_string())
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        let found = result.as_ref().is_ok_and(|row| !row.clean());
                        progress.inc(found);
                        out.push(result.map(|row| Record {
                            run,
                            point: point.clone(),
                            kernel: kernel.to_string(),
                            seed: *seed,
                            shard: format!("{}/{}", shard.index, shard.count),
                            row,
                        }));
                        if out.last().is_some_and(|r| r.is_err()) {
                            break;
                        }
                    }
                    out
                })
            })
            .collect();
        let mut all: Vec<Result<Record, String>> = Vec::new();
        for handle in handles {
            all.extend(handle.join().expect("a sweep worker"));
        }
        all
    });
    progress.finish();
    if let Some(Err(e)) = done.iter().find(|r| r.is_err()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let mut records: Vec<Record> = done.into_iter().map(|r| r.expect("checked")).collect();
    records.sort_by_key(|r| r.run);
    let identity = Identity {
        tool: env!("CARGO_PKG_VERSION").to_string(),
        scenario: args.file.file_name().map_or_else(|| path.clone(), |f| f.to_string_lossy().into_owned()),
        hash: format!("{:016x}", content_hash(source.as_bytes())),
        runs: total,
    };
    let names: Vec<String> = grid.params.iter().map(|(n, _)| n.clone()).collect();
    let partial = (records.len() < jobs.len()).then_some((records.len(), jobs.len()));
    if let Some((n, of)) = partial {
        println!("interrupted: {n} of {of} runs done; the files cover those and say they are partial");
    }
    if args.lock_stat {
        if let Err(e) = write_lock_stats(&args.out, &records) {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let whole = Whole { identity, names, records, partial, shard: (shard.count > 1).then_some(shard) };
    match whole.write(&args.out) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The results of a sweep (or of one shard, or of a merge of shards).
struct Whole {
    identity: Identity,
    names: Vec<String>,
    /// In grid order.
    records: Vec<Record>,
    /// (runs done, runs meant): the run stopped early or shards are missing.
    partial: Option<(usize, usize)>,
    /// This is one shard of the grid.
    shard: Option<Shard>,
}

impl Whole {
    /// results.csv, samples.csv, PARTIAL (or none) and the plots; reports
    /// the runs that broke something; the exit status.
    fn write(&self, dir: &Path) -> Result<ExitCode, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let marker = dir.join("PARTIAL");
        match self.partial {
            Some((n, of)) => {
                let text =
                    format!("partial: {n} of {of} runs; results.csv, samples.csv and the plots cover only those\n");
                write_file(&marker, text.as_bytes())?;
            }
            None => {
                let _ = std::fs::remove_file(&marker);
            }
        }
        let results = dir.join("results.csv");
        write_file(&results, &self.results_csv())?;
        let samples = dir.join("samples.csv");
        write_file(&samples, &self.samples_csv())?;
        println!("results:  {} ({} rows), {}", results.display(), self.records.len(), samples.display());
        if let Some(table) = self.summary() {
            let file = dir.join("summary.md");
            write_file(&file, table.render_markdown().as_bytes())?;
            print!("{}", table.render());
            println!("summary:  {}", file.display());
        }
        let broken: Vec<&Record> = self.records.iter().filter(|r| !r.row.clean()).collect();
        for plot in self.plots(broken.len()) {
            let file = dir.join(plot.stem);
            let chart = report::Chart {
                title: &plot.title,
                x_label: &plot.x_label,
                y_label: plot.y_label,
                series: &plot.series,
                notes: &plot.notes,
            };
            report::line_plot(&file, &chart)?;
            println!("plot:     {}.png, {}.svg", file.display(), file.display());
        }
        if let Some(shard) = self.shard {
            println!(
                "shard:    {}/{}; `swapsim merge --out DIR` with the other shards' results.csv draws the whole",
                shard.index, shard.count
            );
        }
        if !broken.is_empty() {
            println!("broken:   {} runs (flagged in results.csv, left out of the plots):", broken.len());
            for r in broken.iter().take(20) {
                let what = if r.row.invariant.is_empty() { r.row.outcome.clone() } else { r.row.invariant.clone() };
                println!("  run {}: {} kernel {} seed {}: {what}", r.run, point_text(&r.point), r.kernel, r.seed);
            }
            if broken.len() > 20 {
                println!("  ... and {} more", broken.len() - 20);
            }
        }
        Ok(if self.partial.is_some() && crate::interrupt::interrupted() {
            ExitCode::from(130)
        } else if !broken.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }

    fn header(&self) -> Vec<String> {
        let params = self.names.iter().map(|n| format!("{PARAM}{n}"));
        std::iter::once("run".to_string()).chain(params).chain(COLUMNS.iter().map(|c| c.to_string())).collect()
    }

    fn results_csv(&self) -> Vec<u8> {
        let mut csv = writer();
        csv.write_record(self.header()).expect("CSV into memory");
        let na = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let id = &self.identity;
        for r in &self.records {
            let row = &r.row;
            let mut fields = vec![r.run.to_string()];
            fields.extend(r.point.iter().map(|(_, v)| v.to_string()));
            fields.extend([
                r.kernel.clone(),
                r.seed.to_string(),
                row.outcome.clone(),
                row.invariant.clone(),
                row.steps.to_string(),
                row.time_ns.to_string(),
                row.swapoffs.to_string(),
                na(row.swapoff_ns_mean),
                na(row.swapoff_ns_max),
                row.faults.to_string(),
                row.faults_during_swapoff.to_string(),
                na(row.fault_ns_p50),
                na(row.fault_ns_p99),
                row.swap_ins.to_string(),
                row.swap_outs.to_string(),
                id.tool.clone(),
                id.scenario.clone(),
                id.hash.clone(),
                id.runs.to_string(),
                r.shard.clone(),
            ]);
            csv.write_record(&fields).expect("CSV into memory");
        }
        csv.into_inner().expect("CSV into memory")
    }

    fn samples_csv(&self) -> Vec<u8> {
        let mut csv = writer();
        csv.write_record(SAMPLE_COLUMNS).expect("CSV into memory");
        for r in &self.records {
            for (ns, count) in &r.row.fault_samples {
                csv.write_record([r.run.to_string(), ns.to_string(), count.to_string()]).expect("CSV into memory");
            }
        }
        csv.into_inner().expect("CSV into memory")
    }

    /// The plots: x is the parameter with the most values (the first of
    /// those); one series per kernel and value of the other parameters.
    fn plots(&self, broken: usize) -> Vec<PlotSpec> {
        let Some(x_index) =
            (0..self.names.len()).rev().max_by_key(|&i| distinct(self.records.iter().map(|r| r.point[i].1)))
        else {
            return Vec::new();
        };
        let x_name = &self.names[x_index];
        let mut kernels: Vec<&str> = Vec::new();
        for r in &self.records {
            if !kernels.contains(&r.kernel.as_str()) {
                kernels.push(&r.kernel);
            }
        }
        let partial = if self.partial.is_some() { " (partial)" } else { "" };
        let title =
            |what: &str| format!("{what} vs {x_name}: {} ({}){partial}", kernels.join(", "), self.identity.scenario);
        let spec = |stem, what: &str, y_label, statistic: Statistic, line: &str| {
            let mut notes = vec![line.to_string(), "bar: min–max of the seeds".into(), "hollow: each seed".into()];
            notes.extend(notes_of(broken, self.partial));
            PlotSpec {
                stem,
                title: title(what),
                x_label: x_name.clone(),
                y_label,
                series: self.series(x_index, statistic),
                notes,
            }
        };
        vec![
            spec(
                "swapoff_time",
                "swapoff duration",
                "swapoff duration (ms, simulated)",
                Statistic::MedianSwapoff,
                "line: median of the seeds",
            ),
            spec(
                "fault_latency_p99",
                "page fault latency during swapoff, p99",
                "page fault latency during swapoff, p99 (ms, simulated)",
                Statistic::MergedFaultP99,
                "line: p99 of all the point's faults",
            ),
        ]
    }

    /// The runs by series (kernel and value of the parameters other than
    /// x, in grid order), then by x.
    fn groups(&self, x_index: usize) -> Vec<(String, BTreeMap<i64, Vec<&Record>>)> {
        let mut groups: Vec<(String, BTreeMap<i64, Vec<&Record>>)> = Vec::new();
        for r in &self.records {
            let others: Vec<String> = (0..r.point.len())
                .filter(|&i| i != x_index)
                .map(|i| format!("{}={}", r.point[i].0, r.point[i].1))
                .collect();
            let label = if others.is_empty() { r.kernel.clone() } else { format!("{} {}", r.kernel, others.join(" ")) };
            let at = match groups.iter().position(|(l, _)| *l == label) {
                Some(at) => at,
                None => {
                    groups.push((label, BTreeMap::new()));
                    groups.len() - 1
                }
            };
            groups[at].1.entry(r.point[x_index].1).or_default().push(r);
        }
        groups
    }

    /// One series per group; each point from the clean runs that have a
    /// value.
    fn series(&self, x_index: usize, statistic: Statistic) -> Vec<report::Series> {
        self.groups(x_index)
            .into_iter()
            .map(|(label, by_x)| {
                let mut series = report::Series { label, ..Default::default() };
                for (x, runs) in by_x {
                    if let Some((y, spread)) = statistic.of(&runs) {
                        series.points.push((x as f64, y));
                        series.spread.push(report::Spread { x: x as f64, ..spread });
                    }
                }
                series
            })
            .collect()
    }

    /// What the plots show, as a table: per series and x, the clean runs,
    /// the median swapoff duration and its range, the p99 of the merged
    /// faults and the range of the runs' own p99s (ms; "-" for none).
    fn summary(&self) -> Option<report::Table> {
        let x_index =
            (0..self.names.len()).rev().max_by_key(|&i| distinct(self.records.iter().map(|r| r.point[i].1)))?;
        let x_name = self.names[x_index].as_str();
        let mut table = report::Table::new(&[
            "series",
            x_name,
            "clean runs",
            "swapoff ms, median",
            "seeds' min",
            "seeds' max",
            "fault p99 ms, all faults",
            "seeds' p99 min",
            "seeds' p99 max",
        ]);
        for (label, by_x) in self.groups(x_index) {
            for (x, runs) in by_x {
                let clean = runs.iter().filter(|r| r.row.clean()).count();
                let mut row = vec![label.clone(), x.to_string(), format!("{clean} of {}", runs.len())];
                for statistic in [Statistic::MedianSwapoff, Statistic::MergedFaultP99] {
                    match statistic.of(&runs) {
                        Some((y, spread)) => row.extend([ms(y), ms(spread.low), ms(spread.high)]),
                        None => row.extend(["-".to_string(), "-".to_string(), "-".to_string()]),
                    }
                }
                table.row(row);
            }
        }
        Some(table)
    }
}

/// Milliseconds with about four significant digits.
fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn notes_of(broken: usize, partial: Option<(usize, usize)>) -> Vec<String> {
    let mut notes = Vec::new();
    if broken > 0 {
        notes.push(format!("left out: {broken} runs that broke an invariant"));
    }
    if let Some((n, of)) = partial {
        notes.push(format!("PARTIAL: {n} of {of} runs"));
    }
    notes
}

struct PlotSpec {
    stem: &'static str,
    title: String,
    x_label: String,
    y_label: &'static str,
    series: Vec<report::Series>,
    notes: Vec<String>,
}

/// What a plot's line shows at a point.
#[derive(Clone, Copy, Debug)]
enum Statistic {
    /// The median over the runs of each run's mean swapoff duration.
    MedianSwapoff,
    /// The p99 (nearest rank) of every fault during swapoff of the point's
    /// runs together.
    MergedFaultP99,
}

impl Statistic {
    /// (the line's y, the spread of the runs' own values), in ms, from the
    /// clean runs that have a value; None when none has.
    fn of(self, runs: &[&Record]) -> Option<(f64, report::Spread)> {
        let clean: Vec<&Record> = runs.iter().copied().filter(|r| r.row.clean()).collect();
        let per_run: Vec<u64> = clean
            .iter()
            .filter_map(|r| match self {
                Statistic::MedianSwapoff => r.row.swapoff_ns_mean,
                Statistic::MergedFaultP99 => r.row.fault_ns_p99,
            })
            .collect();
        if per_run.is_empty() {
            return None;
        }
        let y = match self {
            Statistic::MedianSwapoff => median(&per_run),
            Statistic::MergedFaultP99 => {
                let mut merged: BTreeMap<u64, u64> = BTreeMap::new();
                for r in &clean {
                    for (ns, n) in &r.row.fault_samples {
                        *merged.entry(*ns).or_default() += n;
                    }
                }
                histogram_rank(&merged, 99)? as f64
            }
        };
        let ms = |ns: f64| ns / 1e6;
        let values: Vec<f64> = per_run.iter().map(|&v| ms(v as f64)).collect();
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some((ms(y), report::Spread { x: 0.0, low, high, values }))
    }
}

/// The median (the mean of the middle two of an even count).
fn median(values: &[u64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2] as f64
    } else {
        (sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0
    }
}

/// The nearest-rank percentile of samples given as value → count.
fn histogram_rank(histogram: &BTreeMap<u64, u64>, percent: u64) -> Option<u64> {
    let n: u64 = histogram.values().sum();
    if n == 0 {
        return None;
    }
    let rank = (percent * n).div_ceil(100).clamp(1, n);
    let mut seen = 0;
    histogram
        .iter()
        .find(|(_, count)| {
            seen += **count;
            seen >= rank
        })
        .map(|(ns, _)| *ns)
}

fn distinct(values: impl Iterator<Item = i64>) -> usize {
    let mut v: Vec<i64> = values.collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// `sweep --lock-stat`: one CSV per point and kernel under DIR/lock_stat,
/// the lock statistics of its runs added up (`lock_stat_total`).
fn write_lock_stats(out: &Path, records: &[Record]) -> Result<(), String> {
    let dir = out.join("lock_stat");
    let mut groups: std::collections::BTreeMap<String, Vec<&[report::LockStat]>> = Default::default();
    for r in records {
        let point: Vec<String> = r.point.iter().map(|(n, v)| format!("{n}={v}")).collect();
        groups.entry(format!("{}-{}", point.join(","), r.kernel)).or_default().push(&r.row.locks);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, runs) in &groups {
        let file = dir.join(format!("{name}.csv"));
        let text = report::lock_stat_csv(&report::lock_stat_total(runs.iter().copied()));
        write_file(&file, text.as_bytes())?;
    }
    println!("lock_stat: {} ({} files, one per point and kernel)", dir.display(), groups.len());
    Ok(())
}

fn point_text(point: &[(String, i64)]) -> String {
    point.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ")
}

/// A CSV writer into memory: RFC 4180 quoting, `\n` line ends.
fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new())
}

/// Whether `swapsim merge` was given sweep results: a directory, or a CSV
/// whose first column is `run` (an explore CSV's is `tool`).
pub fn is_sweep(inputs: &[PathBuf]) -> bool {
    inputs.iter().any(|input| {
        input.is_dir()
            || std::fs::read_to_string(input).is_ok_and(|text| text.starts_with("run,") || text.starts_with("\"run\","))
    })
}

/// `swapsim merge --out DIR` of sweep shards: their results.csv (or their
/// directories) joined in grid order, and the plots drawn from the whole.
pub fn merge(out: &Path, inputs: &[PathBuf]) -> ExitCode {
    if out.join("results.csv").exists() {
        eprintln!("error: {} already holds results; choose another --out", out.display());
        return ExitCode::from(2);
    }
    let whole = match read_shards(inputs) {
        Ok(whole) => whole,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "merged:   {} inputs: {} of the {} runs of {} (content fnv1a {})",
        inputs.len(),
        whole.records.len(),
        whole.identity.runs,
        whole.identity.scenario,
        whole.identity.hash
    );
    if let Some((n, of)) = whole.partial {
        println!("partial:  {n} of {of} runs (a shard is missing or was interrupted); the files say so");
    }
    match whole.write(out) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The shards' results as one sweep. Refuses results of different sweeps
/// (another scenario, tool or grid), of different splits, the same shard
/// twice, the same run twice, and malformed rows.
fn read_shards(inputs: &[PathBuf]) -> Result<Whole, String> {
    let mut whole: Option<Whole> = None;
    let mut shards: BTreeMap<u64, String> = BTreeMap::new();
    let mut split: Option<(u64, String)> = None;
    let mut partial_marker = false;
    for input in inputs {
        let file = if input.is_dir() { input.join("results.csv") } else { input.clone() };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        partial_marker |= dir.join("PARTIAL").exists();
        let shard = read_results(&file, &dir.join("samples.csv"))?;
        let name = file.display().to_string();
        match &mut whole {
            None => whole = Some(shard.whole),
            Some(all) => {
                if all.identity.hash != shard.whole.identity.hash
                    || all.identity.tool != shard.whole.identity.tool
                    || all.identity.runs != shard.whole.identity.runs
                    || all.names != shard.whole.names
                {
                    let show = |w: &Whole| {
                        format!(
                            "{} (content fnv1a {}, swapsim {}, {} runs, parameters {})",
                            w.identity.scenario,
                            w.identity.hash,
                            w.identity.tool,
                            w.identity.runs,
                            w.names.join(", ")
                        )
                    };
                    return Err(format!(
                        "{name}: a shard of another sweep: {} against {}",
                        show(&shard.whole),
                        show(all)
                    ));
                }
                all.records.extend(shard.whole.records);
            }
        }
        for (index, count) in shard.shards {
            match &split {
                Some((n, first)) if *n != count => {
                    return Err(format!(
                        "{name}: shard {index}/{count} of a split into {count}, but {first} was split into {n}"
                    ))
                }
                Some(_) => {}
                None => split = Some((count, name.clone())),
            }
            if let Some(other) = shards.insert(index, name.clone()) {
                return Err(format!("{name}: shard {index}/{count} is there twice (also in {other})"));
            }
        }
    }
    let mut whole = whole.ok_or("no inputs")?;
    whole.records.sort_by_key(|r| r.run);
    if let Some(twice) = whole.records.windows(2).find(|w| w[0].run == w[1].run) {
        return Err(format!("run {} is in two inputs: the same shard twice?", twice[0].run));
    }
    let runs = whole.identity.runs;
    if whole.records.len() == runs && !partial_marker {
        for r in &mut whole.records {
            r.shard = "1/1".to_string();
        }
        whole.partial = None;
    } else {
        whole.partial = Some((whole.records.len(), runs));
    }
    Ok(whole)
}

/// One results.csv (with its samples.csv), and the shards its rows came
/// from, as (K, N).
struct ShardResults {
    whole: Whole,
    shards: Vec<(u64, u64)>,
}

fn read_results(file: &Path, samples: &Path) -> Result<ShardResults, String> {
    let name = file.display().to_string();
    let mut reader =
        csv::ReaderBuilder::new().from_path(file).map_err(|e| format!("cannot read {name}: {}", csv_error(&e)))?;
    let header: Vec<String> =
        reader.headers().map_err(|e| format!("{name}: {}", csv_error(&e)))?.iter().map(String::from).collect();
    let params = header.len().saturating_sub(1 + COLUMNS.len());
    let names: Vec<String> =
        header.iter().skip(1).take(params).filter_map(|h| h.strip_prefix(PARAM)).map(String::from).collect();
    if header.first().map(String::as_str) != Some("run") || names.len() != params || header[1 + params..] != *COLUMNS {
        return Err(format!(
            "{name}: not the results.csv of a sweep (its header must be run, param.NAME..., {})",
            COLUMNS.join(", ")
        ));
    }
    let mut records = Vec::new();
    let mut identity: Option<Identity> = None;
    let mut shards: Vec<(u64, u64)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let bad = |what: String| format!("{name}:{line}: {what}");
        let record = record.map_err(|e| bad(csv_error(&e)))?;
        let field = |column: &str| -> &str {
            let at = header.iter().position(|h| h == column).expect("a known column");
            record.get(at).unwrap_or("")
        };
        let number = |column: &str| -> Result<u64, String> {
            field(column).parse().map_err(|_| bad(format!("{column} is not a count: {:?}", field(column))))
        };
        let optional = |column: &str| -> Result<Option<u64>, String> {
            if field(column).is_empty() {
                Ok(None)
            } else {
                number(column).map(Some)
            }
        };
        let mut point = Vec::new();
        for n in &names {
            let text = field(&format!("{PARAM}{n}"));
            let value = text.parse::<i64>().map_err(|_| bad(format!("{PARAM}{n} is not an integer: {text:?}")))?;
            point.push((n.clone(), value));
        }
        let outcome = field("outcome");
        if !["clean", "violation", "deadlock", "step-limit", "aborted"].contains(&outcome) {
            return Err(bad(format!("outcome {outcome:?} is none of clean, violation, deadlock, step-limit, aborted")));
        }
        let kernel = field("kernel");
        if Variant::from_name(kernel).is_none() {
            return Err(bad(format!("unknown kernel {kernel:?}")));
        }
        let this = Identity {
            tool: field("tool").to_string(),
            scenario: field("scenario").to_string(),
            hash: field("scenario_fnv1a").to_string(),
            runs: number("runs")? as usize,
        };
        let runs = this.runs;
        match &identity {
            None => identity = Some(this),
            Some(first) if *first != this => {
                return Err(bad(format!(
                    "a row of another sweep ({} {} swapsim {}) in a file of {} {} swapsim {}",
                    this.scenario, this.hash, this.tool, first.scenario, first.hash, first.tool
                )))
            }
            Some(_) => {}
        }
        let run = number("run")? as usize;
        let shard_text = field("shard");
        let shard = crate::seed_search::parse_shard(shard_text).map_err(|e| bad(e.replace("--shard", "shard")))?;
        if run >= runs || run as u64 % shard.count != shard.index - 1 {
            return Err(bad(format!("run {run} is not a run of shard {shard_text} of a grid of {runs} runs")));
        }
        if !shards.contains(&(shard.index, shard.count)) {
            shards.push((shard.index, shard.count));
        }
        records.push(Record {
            run,
            point,
            kernel: kernel.to_string(),
            seed: number("seed")?,
            shard: shard_text.to_string(),
            row: Row {
                outcome: outcome.to_string(),
                invariant: field("invariant").to_string(),
                steps: number("steps")?,
                time_ns: number("time_ns")?,
                swapoffs: number("swapoffs")?,
                swapoff_ns_mean: optional("swapoff_ns_mean")?,
                swapoff_ns_max: optional("swapoff_ns_max")?,
                faults: number("faults")?,
                faults_during_swapoff: number("faults_during_swapoff")?,
                fault_ns_p50: optional("fault_ns_p50")?,
                fault_ns_p99: optional("fault_ns_p99")?,
                swap_ins: number("swap_ins")?,
                swap_outs: number("swap_outs")?,
                fault_samples: Vec::new(),
                locks: Vec::new(),
            },
        });
    }
    let identity = identity.ok_or_else(|| format!("{name}: no rows"))?;
    read_samples(samples, &mut records)?;
    let whole = Whole { identity, names, records, partial: None, shard: None };
    Ok(ShardResults { whole, shards })
}

/// samples.csv beside a results.csv: each run's fault latencies.
fn read_samples(file: &Path, records: &mut [Record]) -> Result<(), String> {
    let name = file.display().to_string();
    let mut reader = csv::ReaderBuilder::new().from_path(file).map_err(|e| {
        format!(
            "cannot read {name} (the fault samples beside results.csv, for the p99 of merged runs): {}",
            csv_error(&e)
        )
    })?;
    let header: Vec<String> =
        reader.headers().map_err(|e| format!("{name}: {}", csv_error(&e)))?.iter().map(String::from).collect();
    if header != SAMPLE_COLUMNS {
        return Err(format!("{name}: not a samples.csv (its header must be {})", SAMPLE_COLUMNS.join(",")));
    }
    let by_run: BTreeMap<usize, usize> = records.iter().enumerate().map(|(i, r)| (r.run, i)).collect();
    for (i, record) in reader.records().enumerate() {
        let bad = |what: String| format!("{name}:{}: {what}", i + 2);
        let record = record.map_err(|e| bad(csv_error(&e)))?;
        let numbers: Vec<u64> =
            record.iter().map(|f| f.parse::<u64>()).collect::<Result<_, _>>().map_err(|_| {
                bad(format!("run, fault_ns and count are counts: {:?}", record.iter().collect::<Vec<_>>()))
            })?;
        let run = numbers.first().copied().unwrap_or(0) as usize;
        let Some(&at) = by_run.get(&run) else {
            return Err(bad(format!("run {run} is not in the results.csv beside it")));
        };
        records[at].row.fault_samples.push((numbers[1], numbers[2]));
    }
    Ok(())
}

/// A csv crate error in words, with its line when it has one.
fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            format!("line {}: {len} fields where the header has {expected_len}", pos.as_ref().map_or(0, |p| p.line()))
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clean run with this swapoff duration and these fault latencies.
    fn record(run: usize, seed: u64, swapoff_ns: u64, faults: &[(u64, u64)]) -> Record {
        let n: u64 = faults.iter().map(|(_, c)| c).sum();
        let mut sorted: Vec<u64> = faults.iter().flat_map(|&(ns, c)| std::iter::repeat_n(ns, c as usize)).collect();
        sorted.sort_unstable();
        Record {
            run,
            point: vec![("pages".into(), 1024)],
            kernel: "patched".into(),
            seed,
            shard: "1/1".into(),
            row: Row {
                outcome: "clean".into(),
                swapoffs: 1,
                swapoff_ns_mean: Some(swapoff_ns),
                swapoff_ns_max: Some(swapoff_ns),
                faults_during_swapoff: n,
                fault_ns_p99: (n > 0).then(|| report::nearest_rank(&sorted, 99)),
                fault_samples: faults.to_vec(),
                ..Row::default()
            },
        }
    }

    #[test]
    fn the_p99_is_over_the_merged_samples_not_a_mean_of_p99s() {
        // The V of docs/results at 1 024 pages: one seed's p99 0.205 ms,
        // the other's 20.005 ms. The mean of the two (10.1 ms) is no
        // latency any fault had.
        let a = record(0, 1, 0, &[(2_280, 7_900), (205_380, 100)]);
        let b = record(1, 2, 0, &[(2_280, 7_900), (20_005_380, 100)]);
        assert_eq!((a.row.fault_ns_p99, b.row.fault_ns_p99), (Some(205_380), Some(20_005_380)));
        let (y, spread) = Statistic::MergedFaultP99.of(&[&a, &b]).unwrap();
        // 16 000 faults: the 99th percentile is rank 15 840, among the
        // 205 380 ns ones (ranks 15 801 to 15 900).
        assert_eq!(y, 0.20538);
        assert_eq!((spread.low, spread.high), (0.20538, 20.00538));
        assert_eq!(spread.values, vec![0.20538, 20.00538], "each seed's own p99, as markers");
        let many = record(1, 2, 0, &[(2_280, 100), (20_005_380, 100)]);
        assert_eq!(Statistic::MergedFaultP99.of(&[&a, &many]).unwrap().0, 20.00538);
    }

    #[test]
    fn the_line_is_the_median_of_the_runs_done() {
        // Ctrl-C after one of two seeds: the point is that seed's value,
        // not half of it.
        let a = record(0, 1, 40_000_000_000, &[]);
        let (y, spread) = Statistic::MedianSwapoff.of(&[&a]).unwrap();
        assert_eq!(y, 40_000.0);
        assert_eq!((spread.low, spread.high), (40_000.0, 40_000.0));
        let b = record(1, 2, 20_000_000_000, &[]);
        let c = record(2, 3, 90_000_000_000, &[]);
        assert_eq!(Statistic::MedianSwapoff.of(&[&a, &b, &c]).unwrap().0, 40_000.0, "the median, not the mean");
        assert_eq!(Statistic::MedianSwapoff.of(&[&a, &b]).unwrap().0, 30_000.0);
    }

    #[test]
    fn broken_runs_and_missing_values_are_left_out() {
        let a = record(0, 1, 2_000_000, &[(2_280, 10)]);
        let mut broken = record(1, 2, 900_000_000_000, &[(99_000_000, 10)]);
        broken.row.outcome = "violation".into();
        broken.row.invariant = "swapoff-completeness".into();
        let (y, spread) = Statistic::MedianSwapoff.of(&[&a, &broken]).unwrap();
        assert_eq!((y, spread.values.len()), (2.0, 1));
        assert_eq!(Statistic::MergedFaultP99.of(&[&a, &broken]).unwrap().0, 0.00228);
        // No sample at all: no point (not a 0).
        let none = record(2, 3, 2_000_000, &[]);
        assert!(Statistic::MergedFaultP99.of(&[&none]).is_none());
        assert!(Statistic::MedianSwapoff.of(&[&broken]).is_none());
    }

    #[test]
    fn histogram_ranks_match_the_sorted_samples() {
        let samples = [5u64, 1, 1, 9, 3, 3, 3, 7];
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let mut histogram = BTreeMap::new();
        for s in samples {
            *histogram.entry(s).or_insert(0) += 1;
        }
        for p in [1, 25, 50, 90, 99, 100] {
            assert_eq!(histogram_rank(&histogram, p), Some(report::nearest_rank(&sorted, p as u32)), "p{p}");
        }
        assert_eq!(histogram_rank(&BTreeMap::new(), 99), None);
    }
}
