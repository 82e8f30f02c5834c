//! How `replay` and `shrink` open a schedule file and follow it: by
//! index, or by its recorded events (semantic replay), and what a semantic
//! replay did, in words.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use script::{RunOptions, RunReport, Strategy};

use crate::commands::{options, violation};
use crate::input::content_hash;
use crate::output::error;
use crate::schedule::ScheduleFile;

/// Open a schedule file for `command` (replay or shrink): the schedule,
/// its scenario's source, and how to follow it; exit 2 with the reason if
/// it cannot be read or followed.
pub fn open(command: &str, file: &Path, semantic: bool) -> Result<(ScheduleFile, String, ReplayMode), ExitCode> {
    let (schedule, source, same_scenario) = load_schedule(file)?;
    let mode = follow_mode(command, file, &schedule, &source, same_scenario, semantic)?;
    Ok((schedule, source, mode))
}

/// A schedule file, its scenario's source, and whether the source is the
/// one it was recorded in (its content hash).
fn load_schedule(file: &Path) -> Result<(ScheduleFile, String, bool), ExitCode> {
    let name = file.display().to_string();
    let text = match crate::input::read_bounded(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read schedule {name}: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let schedule = match ScheduleFile::parse(&text, &name) {
        Ok(schedule) => schedule,
        Err(e) => return Err(error(e)),
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
    let source = match crate::input::read_bounded(&scenario_file) {
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
pub enum ReplayMode {
    /// The option index at each decision: exact in the recorded scenario.
    Index,
    /// The recorded events: the scenario or the tool changed.
    Semantic,
}

/// A semantic event in words: "parent.3 (parent/1) at dup_mmap:copy #2".
pub fn describe_event(e: &engine::SemanticEvent, names: &dyn Fn(&str) -> String) -> String {
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
pub fn follow(
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
pub fn task_name(schedule: &ScheduleFile, report: &RunReport, key: &str) -> String {
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

/// What a semantic replay did: how many recorded events it matched, where
/// it diverged (if it did), and whether the recorded invariant broke again.
pub fn semantic_summary(
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
