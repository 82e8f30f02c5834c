//! `swapsim sweep`: run a scenario's parameter grid — every point, kernel
//! and seed — and write a CSV of what each run cost, with plots.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use engine::Outcome;
use kernel::Variant;
use script::{RunOptions, RunReport, Strategy};

use crate::run_cmd::write_whole;

#[derive(Args)]
#[command(
    after_help = "Example:\n  swapsim sweep scenarios/sweep_swapoff_cost.lua --out output/sweep1 --jobs 2\n\nThe scenario declares the grid with sweep{ params = {...}, kernels = {...}, seeds = N } and reads\nits point with param(\"name\"). Runs are in timed mode: the step that comes first in simulated\ntime runs next. Writes DIR/results.csv (columns in docs/sweep.md) and DIR/*.png, DIR/*.svg."
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
    /// Also write each point's lock statistics, totals over its seeds, as
    /// DIR/lock_stat/POINT-KERNEL.csv (the columns of `run --stats-format csv`).
    #[arg(long)]
    pub lock_stat: bool,
}

/// The stable columns of results.csv (docs/sweep.md describes them).
pub const COLUMNS: &[&str] = &[
    "kernel",
    "seed",
    "outcome",
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
];

struct Job {
    point: Vec<(String, i64)>,
    kernel: Variant,
    seed: u64,
}

/// What one run cost.
#[derive(Clone, Debug, Default)]
struct Row {
    outcome: String,
    steps: u64,
    time_ns: u64,
    swapoffs: u64,
    swapoff_ns_mean: u64,
    swapoff_ns_max: u64,
    faults: u64,
    faults_during_swapoff: u64,
    fault_ns_p50: u64,
    fault_ns_p99: u64,
    swap_ins: u64,
    swap_outs: u64,
    /// With --lock-stat: the run's lock statistics.
    locks: Vec<report::LockStat>,
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
    let rank = |p: u32| if during.is_empty() { 0 } else { report::nearest_rank(&during, p) };
    Row {
        outcome: match &report.outcome {
            Outcome::Finished => "clean".into(),
            Outcome::Violation(v) => v.invariant.to_string(),
            Outcome::Deadlock(_) => "deadlock".into(),
            Outcome::StepLimit(_) => "step-limit".into(),
            Outcome::Aborted => "aborted".into(),
        },
        steps: report.steps,
        time_ns: report.time_ns,
        swapoffs: durations.len() as u64,
        swapoff_ns_mean: if durations.is_empty() { 0 } else { durations.iter().sum::<u64>() / durations.len() as u64 },
        swapoff_ns_max: durations.iter().copied().max().unwrap_or(0),
        faults: report.stats.faults,
        faults_during_swapoff: during.len() as u64,
        fault_ns_p50: rank(50),
        fault_ns_p99: rank(99),
        swap_ins: report.stats.swap_ins,
        swap_outs: report.stats.swap_outs,
        locks: Vec::new(),
    }
}

pub fn sweep(args: &SweepArgs) -> ExitCode {
    let (path, source) = match crate::run_cmd::read_source(&args.file) {
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
    let mut jobs = Vec::new();
    for point in grid.points() {
        for kernel in &grid.kernels {
            for seed in 1..=grid.seeds {
                let kernel = Variant::from_name(kernel).expect("validated kernel names");
                jobs.push(Job { point: point.clone(), kernel, seed });
            }
        }
    }
    let total = jobs.len();
    println!("scenario: {path}");
    println!(
        "grid:     {} points x {} kernels x {} seeds = {total} runs (timed mode)",
        grid.points().len(),
        grid.kernels.len(),
        grid.seeds
    );
    let started = std::time::Instant::now();
    let progress = std::io::stderr().is_terminal();
    // Each thread runs every jobs-th job with its own Lua state; results go
    // back to their job's slot, so the output does not depend on --jobs.
    let workers = args.jobs.clamp(1, 64);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let rows: Vec<Result<Row, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (jobs, path, source, done) = (&jobs, &path, &source, &done);
                scope.spawn(move || {
                    let runner = script::run::Runner::new(path, source, Default::default());
                    let mut out = Vec::new();
                    for (i, job) in jobs.iter().enumerate().skip(w).step_by(workers) {
                        if crate::run_cmd::interrupted() {
                            break;
                        }
                        let result = match &runner {
                            Ok(runner) => {
                                let options = RunOptions {
                                    strategy: Strategy::Timed,
                                    record_events: args.lock_stat,
                                    params: job.point.clone(),
                                    ..RunOptions::new(job.kernel.fixes(), job.seed)
                                };
                                let measured = |r: RunReport| {
                                    let locks = if args.lock_stat { report::lock_stat(&r) } else { Vec::new() };
                                    Row { locks, ..measure(&r) }
                                };
                                runner.run(&options).map(measured).map_err(|e| e.to_string())
                            }
                            Err(e) => Err(e.to_string()),
                        };
                        out.push((i, result));
                        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if progress {
                            eprint!("\r{n}/{total} runs");
                        }
                    }
                    out
                })
            })
            .collect();
        let mut all: Vec<Option<Result<Row, String>>> = (0..total).map(|_| None).collect();
        for handle in handles {
            for (i, result) in handle.join().expect("a sweep worker") {
                all[i] = Some(result);
            }
        }
        all.into_iter().map_while(|r| r).collect()
    });
    if progress {
        eprintln!();
    }
    if let Some(Err(e)) = rows.iter().find(|r| r.is_err()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let rows: Vec<Row> = rows.into_iter().map(|r| r.expect("checked")).collect();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("({} runs in {secs:.1} s: {:.1} points/s)", rows.len(), rows.len() as f64 / secs.max(1e-9));
    if rows.len() < total {
        println!("interrupted: {} of {total} runs done; writing those", rows.len());
    }

    // results.csv: the parameters (by name), then the stable columns.
    let names: Vec<&str> = grid.params.iter().map(|(n, _)| n.as_str()).collect();
    let mut csv =
        names.iter().map(|n| n.to_string()).chain(COLUMNS.iter().map(|c| c.to_string())).collect::<Vec<_>>().join(",");
    csv.push('\n');
    for (job, row) in jobs.iter().zip(&rows) {
        let mut fields: Vec<String> = job.point.iter().map(|(_, v)| v.to_string()).collect();
        fields.extend([
            job.kernel.to_string(),
            job.seed.to_string(),
            row.outcome.clone(),
            row.steps.to_string(),
            row.time_ns.to_string(),
            row.swapoffs.to_string(),
            row.swapoff_ns_mean.to_string(),
            row.swapoff_ns_max.to_string(),
            row.faults.to_string(),
            row.faults_during_swapoff.to_string(),
            row.fault_ns_p50.to_string(),
            row.fault_ns_p99.to_string(),
            row.swap_ins.to_string(),
            row.swap_outs.to_string(),
        ]);
        csv += &fields.join(",");
        csv.push('\n');
    }
    if let Err(e) = std::fs::create_dir_all(&args.out).and_then(|_| write_whole(&results, csv.as_bytes())) {
        eprintln!("error: cannot write {}: {e}", results.display());
        return ExitCode::from(2);
    }
    println!("results:  {} ({} rows)", results.display(), rows.len());
    if args.lock_stat {
        // One CSV per point and kernel: the totals over its seeds.
        let dir = args.out.join("lock_stat");
        let mut groups: std::collections::BTreeMap<String, Vec<&[report::LockStat]>> = Default::default();
        for (job, row) in jobs.iter().zip(&rows) {
            let point: Vec<String> = job.point.iter().map(|(n, v)| format!("{n}={v}")).collect();
            groups.entry(format!("{}-{}", point.join(","), job.kernel)).or_default().push(&row.locks);
        }
        for (name, runs) in &groups {
            let file = dir.join(format!("{name}.csv"));
            let text = report::lock_stat_csv(&report::lock_stat_total(runs.iter().copied()));
            if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| write_whole(&file, text.as_bytes())) {
                eprintln!("error: cannot write {}: {e}", file.display());
                return ExitCode::from(2);
            }
        }
        println!("lock_stat: {} ({} files, one per point and kernel)", dir.display(), groups.len());
    }

    // Plots: x is the parameter with the most values; one line per kernel
    // and value of the other parameters; y is the mean over seeds.
    let Some((x_name, _)) = grid.params.iter().max_by_key(|(_, v)| v.len()) else { return ExitCode::SUCCESS };
    type Metric = fn(&Row) -> u64;
    let plots: [(&str, &str, Metric); 2] = [
        ("swapoff_time", "swapoff duration (ms, simulated)", |r| r.swapoff_ns_mean),
        ("fault_latency_p99", "page fault latency during swapoff, p99 (ms, simulated)", |r| r.fault_ns_p99),
    ];
    for (stem, y_label, metric) in plots {
        let mut series: Vec<report::Series> = Vec::new();
        for (job, row) in jobs.iter().zip(&rows) {
            let x = job.point.iter().find(|(n, _)| n == x_name).map(|(_, v)| *v).unwrap_or(0) as f64;
            let others: Vec<String> =
                job.point.iter().filter(|(n, _)| n != x_name).map(|(n, v)| format!("{n}={v}")).collect();
            let label =
                if others.is_empty() { job.kernel.to_string() } else { format!("{} {}", job.kernel, others.join(" ")) };
            let y = metric(row) as f64 / 1e6 / grid.seeds as f64;
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => match s.points.iter_mut().find(|(px, _)| *px == x) {
                    Some((_, py)) => *py += y,
                    None => s.points.push((x, y)),
                },
                None => series.push(report::Series { label, points: vec![(x, y)] }),
            }
        }
        let mut kernels: Vec<String> = Vec::new();
        for job in &jobs {
            if !kernels.contains(&job.kernel.to_string()) {
                kernels.push(job.kernel.to_string());
            }
        }
        let what = y_label.split(" (").next().unwrap_or(y_label);
        let file_name = Path::new(&path).file_name().map_or_else(|| path.clone(), |f| f.to_string_lossy().into_owned());
        let title = format!("{what} vs {x_name}: {} ({file_name})", kernels.join(", "));
        let file = args.out.join(stem);
        if let Err(e) = report::line_plot(&file, &title, x_name, y_label, &series) {
            eprintln!("error: cannot write the plot {}: {e}", file.display());
            return ExitCode::from(2);
        }
        println!("plot:     {}.png, {}.svg", file.display(), file.display());
    }
    ExitCode::SUCCESS
}
