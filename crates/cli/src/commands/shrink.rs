//! `swapsim shrink`: delta-debug a saved schedule's choices (by index, or
//! after re-recording it from a replay by its events) and write it back;
//! explore shrinks its find with the same `shrink`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::Outcome;
use script::{RunOptions, RunReport, Strategy};

use crate::commands::follow::{follow, open, semantic_summary, task_name, ReplayMode};
use crate::commands::{options, violation};
use crate::input::content_hash;
use crate::output::error;
use crate::output::write_whole;
use crate::schedule::{ScheduleFile, Semantic};

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

pub fn shrink_cmd(args: &ShrinkArgs) -> ExitCode {
    let (schedule, source, mode) = match open("shrink", &args.file, args.semantic) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // By its events: replay the schedule in the scenario as it is now and,
    // if the same invariant breaks, take that run as the schedule to shrink.
    let schedule = match mode {
        ReplayMode::Index => schedule,
        ReplayMode::Semantic => {
            let (report, log) = match follow(&schedule, &source, mode) {
                Ok(x) => x,
                Err(e) => return error(e),
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

/// Drop trailing default choices: replay fills them in.
pub fn trimmed(choices: &[u32]) -> Vec<u32> {
    let (len, _) = ScheduleFile::size(choices);
    choices[..len].to_vec()
}

/// Delta-debug a schedule's choices (Zeller's ddmin over the choices that
/// are not the default): set chunks of them back to the default while the
/// same invariant still breaks in the same bucket (race signature: a
/// shorter schedule of another race is not the find), then cut the tail.
/// Returns the shrunk
/// schedule (its choices and step re-recorded from a final replay), the
/// number of replays it took, and whether that final replay broke the
/// invariant (if not, the schedule given did not break it either, and is
/// returned as it was).
pub fn shrink(path: &str, source: &str, schedule: &ScheduleFile) -> (ScheduleFile, u64, bool) {
    let mut replays = 0u64;
    let Ok(runner) = script::run::Runner::new(path, source, Default::default()) else {
        return (schedule.clone(), 0, false);
    };
    let run = |choices: &[u32]| -> Option<RunReport> {
        let opts = RunOptions {
            record_events: false,
            ..options(schedule.fixes, schedule.seed, Strategy::Random, Some(choices.to_vec()))
        };
        runner.run(&opts).ok()
    };
    replays += 1;
    let bucket = run(&schedule.choices).and_then(|r| r.bucket).map(|b| b.name);
    let mut breaks = |choices: &[u32]| -> Option<RunReport> {
        replays += 1;
        let report = run(choices)?;
        let same_bucket = bucket.is_none() || report.bucket.as_ref().map(|b| &b.name) == bucket.as_ref();
        match &report.outcome {
            Outcome::Violation(v) if v.invariant == schedule.violation && same_bucket => Some(report),
            _ => None,
        }
    };
    // ddmin over the positions of the choices that are not the default:
    // a candidate keeps some of them and sets the others back to 0.
    let with_only = |kept: &[usize]| -> Vec<u32> {
        let mut choices = vec![0; schedule.choices.len()];
        for &i in kept {
            choices[i] = schedule.choices[i];
        }
        trimmed(&choices)
    };
    let set: Vec<usize> = (0..schedule.choices.len()).filter(|&i| schedule.choices[i] != 0).collect();
    let kept = crate::ddmin::ddmin(set, 1, || false, |kept| breaks(&with_only(kept)).is_some());
    let current = with_only(&kept);
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
pub fn with_events(path: &str, source: &str, schedule: &mut ScheduleFile) {
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
