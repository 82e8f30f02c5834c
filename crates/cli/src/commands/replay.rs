//! `swapsim replay`: run a saved schedule again, by index or by its
//! recorded events, with its report and files; `--rate` re-runs around it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use script::{RunOptions, Strategy};

use crate::args::KernelChoice;
use crate::commands::follow::{describe_event, follow, open, semantic_summary, task_name, ReplayMode};
use crate::commands::shrink::trimmed;
use crate::commands::{options, violation};
use crate::output::error;
use crate::output::report::{render_one, side_by_side};
use crate::schedule::ScheduleFile;

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
    pub stats_format: crate::output::run_files::StatsFormat,
    /// Write the replay's lock-class dependency graph as Graphviz DOT.
    #[arg(long, value_name = "FILE")]
    pub lockdep_graph: Option<PathBuf>,
    #[command(flatten)]
    pub limits: crate::args::LimitArgs,
}

pub fn replay(args: &ReplayArgs) -> ExitCode {
    if let Err(e) = args.limits.apply() {
        return error(e);
    }
    let perturb = match crate::args::parse_probability("--perturb", &args.perturb) {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let (schedule, source, mode) = match open("replay", &args.file, args.semantic) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let (report, log) = match follow(&schedule, &source, mode) {
        Ok(x) => x,
        Err(e) => return error(e),
    };
    let kernel =
        KernelChoice { variant: schedule.variant, fixes: schedule.fixes, faults: None, limits: Default::default() };
    let outputs = (args.events.as_deref(), args.trace.as_deref(), args.csv.as_deref());
    if let Err(code) = crate::output::run_files::write_outputs(&report, outputs.0, outputs.1, outputs.2) {
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
    if let Err(code) = crate::output::run_files::lockdep_out(&order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    if args.stats {
        let (stats, calls) = (report::lock_stat(&report), report::latencies(&report));
        crate::output::run_files::print_stats(&stats, &calls, args.stats_format);
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
        let rate = reproduction_rate(&around, &source, n, perturb);
        match rate.as_ref().map(|r| r.0).map_err(Clone::clone) {
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
            Err(e) => return error(e),
        }
        if let Ok((_, buckets)) = &rate {
            print!("{}", buckets.bucket_lines_by("run"));
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

/// Re-run `n` times around the schedule (perturbation stream i for run i):
/// how many break the recorded invariant, how many something else.
/// Stops early at Ctrl-C; the third number is how many runs it made. The
/// tally has what broke by bucket (race signature), keyed by run number.
type Rate = ((u64, u64, u64), crate::output::tally::Tally);
fn reproduction_rate(schedule: &ScheduleFile, source: &str, n: u64, p: f64) -> Result<Rate, String> {
    let runner = script::run::Runner::new(&schedule.scenario, source, Default::default()).map_err(|e| e.to_string())?;
    let (mut same, mut other) = (0, 0);
    let mut buckets = crate::output::tally::Tally::default();
    for i in 0..n {
        if crate::interrupt::interrupted() {
            return Ok(((same, other, i), buckets));
        }
        let opts = RunOptions {
            record_events: false,
            perturb: Some((p, i)),
            ..options(schedule.fixes, schedule.seed, Strategy::Random, Some(schedule.choices.clone()))
        };
        let report = runner.run(&opts).map_err(|e| e.to_string())?;
        if let Some(bucket) = crate::output::tally::bucket_of(&report) {
            buckets.add(&bucket, i);
        }
        match violation(&report) {
            Some((invariant, _)) if invariant == schedule.violation => same += 1,
            _ if report.outcome.is_failure() => other += 1,
            _ => {}
        }
    }
    Ok(((same, other, n), buckets))
}
