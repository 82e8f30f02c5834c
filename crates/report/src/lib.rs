//! Outputs of one simulated run: a Chrome trace, the event log as CSV, lock
//! statistics per lock class, system-call latencies, and line plots.
//!
//! Every function takes the [`script::RunReport`] of a run (its event log
//! and its calls) and is a pure function of it: the same report gives the
//! same bytes.
//!
//! ```
//! use script::{run, RunOptions};
//! use kernel::Variant;
//!
//! let source = r#"
//!     machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
//!     local p = process("p", function() read(0x10000); exit() end)
//!     p:map(0x10000, 1)
//!     p:write(0x10000)
//!     p:swap_out(0x10000)
//! "#;
//! let options = RunOptions::new(Variant::Patched.fixes(), 1);
//! let run = run::run("example.lua", source, &options).unwrap();
//!
//! // Open in chrome://tracing or ui.perfetto.dev.
//! let trace: String = report::chrome_trace(&run);
//! assert!(trace.starts_with("{\"traceEvents\":["));
//!
//! // One CSV row per event.
//! let csv = report::events_csv(&run);
//! assert!(csv.starts_with("step,time_ns,cost_ns,cpu,task,event,lock,lock_class,read,point,sleep_ns,text\n"));
//! assert_eq!(csv.lines().count(), run.events.len() + 1);
//!
//! // /proc/lock_stat per lock class, and call latencies.
//! let locks = report::lock_stat(&run);
//! assert!(locks.iter().any(|l| l.class == "mmap_sem" && l.write.hold.count > 0));
//! print!("{}", report::render_lock_stat(&locks));
//! let calls = report::latencies(&run);
//! assert!(calls.iter().any(|l| l.name == "fault" && l.count == 1));
//! print!("{}", report::render_latencies(&calls));
//!
//! // A plot: writes <stem>.png and <stem>.svg.
//! let dir = std::env::temp_dir().join(format!("report-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let points = run.calls.iter().enumerate().map(|(i, c)| (i as f64, (c.end_ns - c.start_ns) as f64 / 1e3));
//! let series = [report::Series { label: "calls".to_string(), points: points.collect(), spread: vec![] }];
//! let chart = report::Chart { title: "Call latency", x_label: "call (#)", y_label: "latency (µs)", series: &series, notes: &[] };
//! report::line_plot(&dir.join("calls"), &chart).unwrap();
//! assert!(dir.join("calls.png").exists() && dir.join("calls.svg").exists());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod events;
mod latency;
mod locks;
mod plot;
pub mod spans;
mod table;
mod trace;

pub use events::{events_csv, kind_name, EVENTS_CSV_HEADER};
pub use latency::{latencies, latencies_of, nearest_rank, render_latencies, Latency};
pub use locks::{
    lock_stat, lock_stat_csv, lock_stat_json, lock_stat_time, lock_stat_total, render_lock_stat, LockStat, Side, Stat,
    LOCKSTAT_POINTS, LOCK_STAT_CSV_HEADER,
};
pub use plot::{line_plot, Chart, Series, Spread, SVG_FONT};
pub use spans::timing_assumptions;
pub use table::Table;
pub use trace::{chrome_trace, COUNTERS_PID, TASKS_PID};

#[cfg(test)]
pub(crate) mod tests {
    use script::run::EventLine;
    use script::RunReport;

    /// A report with these run tasks and events and nothing else.
    pub(crate) fn report_of(run_tasks: &[&str], events: Vec<EventLine>) -> RunReport {
        RunReport {
            outcome: engine::Outcome::Finished,
            steps: 0,
            time_ns: 0,
            timeline_ns: 0,
            stalled_ns: 0,
            stats: Default::default(),
            printk: Vec::new(),
            prints: Vec::new(),
            events,
            events_dropped: 0,
            choices: Vec::new(),
            semantic: Vec::new(),
            task_keys: Vec::new(),
            lock_order: Vec::new(),
            point_pairs: Vec::new(),
            culprit: None,
            bucket: None,
            tasks: run_tasks.iter().map(|t| t.to_string()).collect(),
            run_tasks: run_tasks.iter().map(|t| t.to_string()).collect(),
            points: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// A real run: race 1 under pre4, seed 3 (it breaks swapoff-completeness).
    pub(crate) fn race1_report() -> RunReport {
        let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/race1_fork.lua"))
            .expect("scenarios/race1_fork.lua");
        let options = script::RunOptions::new(kernel::Variant::Pre4.fixes(), 3);
        script::run::run("race1_fork.lua", &source, &options).expect("the scenario runs")
    }

    #[test]
    fn race1_report_has_events_and_calls() {
        let report = race1_report();
        assert!(matches!(report.outcome, engine::Outcome::Violation(_)), "{:?}", report.outcome);
        assert!(!report.events.is_empty() && !report.calls.is_empty());
        let csv = crate::events_csv(&report);
        assert_eq!(csv.lines().count(), report.events.len() + 1);
        // The run stops at the violation, inside the parent's fork: only
        // swapoff's call completed.
        let calls = crate::latencies(&report);
        assert_eq!(calls.iter().map(|l| (l.name, l.count)).collect::<Vec<_>>(), vec![("swapoff", 1)]);
    }
}
