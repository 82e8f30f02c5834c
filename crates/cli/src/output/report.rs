//! The text of one run, as `run` and `replay` print it and a bundle's
//! report.txt holds it: the report, its headline, the side-by-side
//! interleaving, and the replay command (shell-quoted).

use std::fmt::Write as _;

use engine::{format_ns, Outcome};
use script::run::describe;
use script::RunReport;

use crate::args::KernelChoice;
use crate::input::content_hash;

/// `text` as one shell word: as it is when that is safe, else in single quotes.
pub fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The report of one run, as printed.
pub fn render_one(
    seed: u64,
    kernel: &KernelChoice,
    path: &str,
    source: &str,
    report: &RunReport,
    replay: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {path} (content fnv1a {:016x})", content_hash(source.as_bytes()));
    let _ = writeln!(out, "kernel:   {} ({})", kernel.label(), kernel.description());
    let _ = writeln!(out, "seed:     {seed}");
    for line in &report.prints {
        let _ = writeln!(out, "print:    {line}");
    }
    match &report.outcome {
        Outcome::Finished => {
            let _ = writeln!(out, "result:   clean: every invariant held");
        }
        outcome => {
            let _ = writeln!(out, "result:   {}", headline(outcome));
            if let Outcome::Violation(v) = outcome {
                let by = report.culprit.as_deref().map(|c| format!(", detected by task {c}")).unwrap_or_default();
                let _ = writeln!(out, "  at step {}{by}:", v.step);
                let _ = writeln!(out, "  {}", v.message);
                if let Some(bucket) = &report.bucket {
                    let _ = writeln!(out, "bucket:   {}", bucket.name);
                    if !bucket.evidence.is_empty() {
                        let _ = writeln!(out, "  {}", bucket.evidence);
                    }
                }
            } else {
                let _ = writeln!(out, "  {}", describe(outcome));
            }
        }
    }
    if !report.printk.is_empty() {
        let _ = writeln!(out, "kernel log:");
        for line in &report.printk {
            let _ = writeln!(out, "  {line}");
        }
    }
    if report.outcome.is_failure() {
        out += &report::timing_assumptions(report, 5);
    }
    if report.outcome.is_failure() && !report.events.is_empty() {
        // The story that led there: dispatches, sleeps, wakes, contention,
        // sleeping locks and kernel messages (--events has every event).
        const TAIL: usize = 30;
        let key: Vec<&str> = report.events.iter().filter(|e| e.key).map(|e| e.text.as_str()).collect();
        let skip = key.len().saturating_sub(TAIL);
        let _ = writeln!(
            out,
            "how it got there (last {} key events: step, time, cpu, task, event, lock, point):",
            key.len() - skip
        );
        for line in &key[skip..] {
            let _ = writeln!(out, "  {line}");
        }
    }
    let s = &report.stats;
    let stalls = match report.stalled_ns {
        0 => String::new(),
        ns => format!(" ({} of stalls the schedule assumes)", format_ns(ns)),
    };
    let _ = writeln!(
        out,
        "run:      {} steps, {} simulated{stalls}; {} forks, {} exits, {} faults, {} swap-ins, {} swap-outs, {} swapoffs",
        report.steps,
        format_ns(report.timeline_ns),
        s.forks,
        s.exits,
        s.faults,
        s.swap_ins,
        s.swap_outs,
        s.swapoffs
    );
    if let (true, Some(replay)) = (report.outcome.is_failure(), replay) {
        let _ = writeln!(out, "replay:   {replay}");
    }
    out
}

pub fn headline(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Finished => "clean".to_string(),
        Outcome::Violation(v) => format!("VIOLATION {}", v.invariant),
        Outcome::Deadlock(_) => "DEADLOCK".to_string(),
        Outcome::StepLimit(_) => "STEP LIMIT".to_string(),
        Outcome::Aborted => "ABORTED".to_string(),
    }
}

pub fn outcome_key(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Violation(v) => v.invariant.to_string(),
        other => headline(other).to_lowercase(),
    }
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
