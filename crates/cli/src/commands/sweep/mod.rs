//! `swapsim sweep`: run a scenario's parameter grid — every point, kernel
//! and seed — in timed mode on parallel workers, and write what each run
//! cost (`results.rs`: results.csv, samples.csv, the summary; `plots.rs`:
//! the plots); `read.rs` reads the shards back for `swapsim merge`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use kernel::Variant;
use script::{RunOptions, RunReport, Strategy};

use crate::input::content_hash;
use crate::output::error;
use crate::output::write_file;
use crate::seed_search::Shard;
use results::{measure, Identity, Record, Row, Whole};

mod plots;
mod read;
mod results;

pub use read::{is_sweep, merge};

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

pub fn sweep(args: &SweepArgs) -> ExitCode {
    let checked = args.limits.apply().and_then(|_| {
        if !(1..=256).contains(&args.jobs) {
            return Err(format!("--jobs is between 1 and 256, got {}", args.jobs));
        }
        // The folder must take files before the runs, not after.
        crate::output::check_output_dir("--out", &args.out, true).map_err(|e| format!("--out: {e}"))
    });
    if let Err(e) = checked {
        return error(e);
    }
    let (path, source) = match crate::input::read_source(&args.file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let scenario = match script::run::load(&path, &source, Default::default()) {
        Ok(scenario) => scenario,
        Err(e) => return error(e),
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
            return error(e);
        }
    }
    let whole = Whole { identity, names, records, partial, shard: (shard.count > 1).then_some(shard) };
    match whole.write(&args.out) {
        Ok(code) => code,
        Err(e) => error(e),
    }
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
