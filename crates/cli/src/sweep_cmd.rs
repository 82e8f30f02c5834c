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
    #[command(flatten)]
    pub limits: crate::run_cmd::LimitArgs,
}

/// The most runs a sweep's grid may hold (points x kernels x seeds).
pub const MAX_SWEEP_RUNS: u64 = 1_000_000;

/// How many runs the grid holds, or None past u64.
fn grid_runs(grid: &script::spec::Sweep) -> Option<u64> {
    let points = grid.params.iter().try_fold(1u64, |n, (_, values)| n.checked_mul(values.len() as u64))?;
    points.checked_mul(grid.kernels.len() as u64)?.checked_mul(grid.seeds)
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
    }
}

pub fn sweep(args: &SweepArgs) -> ExitCode {
    let checked = args.limits.apply().and_then(|_| {
        if !(1..=256).contains(&args.jobs) {
            return Err(format!("--jobs is between 1 and 256, got {}", args.jobs));
        }
        // The folder must take files before the runs, not after.
        crate::run_cmd::check_output_dir("--out", &args.out, true).map_err(|e| format!("--out: {e}"))
    });
    if let Err(e) = checked {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
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
    match grid_runs(&grid) {
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
    let rows: Vec<Option<Result<Row, String>>> = std::thread::scope(|scope| {
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
                                    record_events: false,
                                    params: job.point.clone(),
                                    ..RunOptions::new(job.kernel.fixes(), job.seed)
                                };
                                runner.run(&options).map(|r| measure(&r)).map_err(|e| e.to_string())
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
        all
    });
    if progress {
        eprintln!();
    }
    if let Some(Some(Err(e))) = rows.iter().find(|r| matches!(r, Some(Err(_)))) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    // Every run done is kept, also those after one an interruption left
    // out (the threads stop at different jobs).
    let (jobs, rows): (Vec<Job>, Vec<Row>) =
        jobs.into_iter().zip(rows).filter_map(|(job, row)| Some((job, row?.expect("checked")))).unzip();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("({} runs in {secs:.1} s: {:.1} points/s)", rows.len(), rows.len() as f64 / secs.max(1e-9));
    let partial = rows.len() < total;
    if partial {
        println!("interrupted: {} of {total} runs done; writing those (results.csv is partial)", rows.len());
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
    println!("results:  {} ({} rows{})", results.display(), rows.len(), if partial { ", partial" } else { "" });
    let marker = args.out.join("PARTIAL");
    let _ = std::fs::remove_file(&marker);
    if partial {
        let note = format!("interrupted: results.csv holds {} of the grid's {total} runs\n", rows.len());
        if let Err(e) = write_whole(&marker, note.as_bytes()) {
            eprintln!("error: cannot write {}: {e}", marker.display());
            return ExitCode::from(2);
        }
    }

    // Plots: x is the parameter with the most values; one line per kernel
    // and value of the other parameters; y is the mean over seeds.
    let done = if partial { ExitCode::from(130) } else { ExitCode::SUCCESS };
    let Some((x_name, _)) = grid.params.iter().max_by_key(|(_, v)| v.len()) else { return done };
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
    done
}
