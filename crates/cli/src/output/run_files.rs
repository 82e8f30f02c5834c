//! The files and tables of one run (or of the runs of a search): the
//! event log, the Chrome trace, the CSV event log, the lockdep report and
//! graph, and the lock statistics.

use std::path::Path;
use std::process::ExitCode;

use script::RunReport;

use super::write_whole;

/// How lock statistics are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// As /proc/lock_stat prints them (version 0.4), then call latencies.
    Text,
    /// One row per lock class and side (times in ns).
    Csv,
    /// One object per lock class (times in ns).
    Json,
}

/// Print lock statistics (and, as text, the call latencies) in `format`.
pub fn print_stats(stats: &[report::LockStat], latencies: &[report::Latency], format: StatsFormat) {
    match format {
        StatsFormat::Text => {
            print!("{}", report::render_lock_stat(stats));
            print!("{}", report::render_latencies(latencies));
        }
        StatsFormat::Csv => print!("{}", report::lock_stat_csv(stats)),
        StatsFormat::Json => print!("{}", report::lock_stat_json(stats)),
    }
}

/// Write a run's --events, --trace and --csv files (each if asked for).
pub fn write_outputs(
    report: &RunReport,
    events: Option<&Path>,
    trace: Option<&Path>,
    csv: Option<&Path>,
) -> Result<(), ExitCode> {
    if let Some(file) = events {
        let mut log = String::new();
        if report.events_dropped > 0 {
            log +=
                &format!("# the first {} events were dropped: the log keeps the latest ones\n", report.events_dropped);
        }
        for line in &report.events {
            log.push_str(&line.text);
            log.push('\n');
        }
        if let Err(e) = write_whole(file, log.as_bytes()) {
            eprintln!("error: cannot write the event log to {}: {e}", file.display());
            return Err(ExitCode::from(2));
        }
    }
    for (file, what, text) in [
        (trace, "trace", trace.map(|_| report::chrome_trace(report))),
        (csv, "CSV event log", csv.map(|_| report::events_csv(report))),
    ] {
        if let (Some(file), Some(text)) = (file, text) {
            if let Err(e) = write_whole(file, text.as_bytes()) {
                eprintln!("error: cannot write the {what} to {}: {e}", file.display());
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(())
}

/// Print the lockdep report of `order` and write `--lockdep-graph`.
pub fn lockdep_out(
    order: &crate::lockdep::LockOrder,
    graph: Option<&Path>,
    replay: &dyn Fn(u64) -> String,
) -> Result<(), ExitCode> {
    print!("{}", order.report(replay));
    if let Some(file) = graph {
        if let Err(e) = write_whole(file, order.dot().as_bytes()) {
            eprintln!("error: cannot write the lockdep graph to {}: {e}", file.display());
            return Err(ExitCode::from(2));
        }
    }
    Ok(())
}
