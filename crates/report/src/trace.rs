//! The run as a Chrome trace (the JSON trace-event format that
//! chrome://tracing and the Perfetto UI open).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use engine::EventKind;
use script::RunReport;

use crate::spans::lock_holds;
use crate::table::micros;

/// The pid of the "tasks" process, which holds one track per task with its
/// sleeps and its holds of sleeping locks and the BKL. CPUs are pids 0, 1, ...
pub const TASKS_PID: usize = 1000;

/// The name of the track of events with no task (I/O completions).
const IRQ: &str = "irq";

/// Writes `report` as Chrome trace-event JSON (`{"traceEvents": [...]}`).
///
/// - Process `cpuN` (pid N) has a track per task that ran on CPU N, with an
///   `X` event (cat `run`) for each span the task ran there: from its
///   `Dispatch` to its next `Sleep`, `Preempt` or `Exit`.
/// - Process `tasks` (pid [`TASKS_PID`]) has a track per task with its sleeps
///   (cat `sleep`, `Sleep` → `Wake`, named by what it slept on) and its
///   holds of sleeping locks and of the BKL (cat `lock`, `Acquired` →
///   `Released`/`BklDropped`, named by the lock instance). Spans of one task
///   that overlap without nesting go to extra tracks named `task [1]`, ...
/// - Notes (kernel messages, results; cat `violation` for invariant
///   violations) are thread-scoped instant events (`i`), on the task's track
///   of the CPU it ran on, or on its `tasks` track when it had none (the
///   `irq` track for events with no task).
/// - `M` events name the processes and the threads and fix their order.
///
/// Times are simulated: `ts` and `dur` are µs with ns precision (three
/// decimals). Spans still open when the log ends are closed at the end of
/// the run and get `"unfinished": true` in their args. Thread ids are
/// numbered from 1 in (pid, task, track) order, so they are unique in the
/// whole trace. Events are sorted by time; the output is a pure function of
/// the report.
pub fn chrome_trace(report: &RunReport) -> String {
    let tasks = TaskNumbers::new(report);
    let end_of_run = report.events.iter().map(|e| e.time).max().unwrap_or(0).max(report.time_ns);
    let mut spans: Vec<Span> = Vec::new();
    let mut instants: Vec<Instant> = Vec::new();

    // Runs on CPUs and sleeps.
    let mut running: BTreeMap<usize, (usize, u64, u64)> = BTreeMap::new(); // task → (cpu, start, step)
    let mut sleeping: BTreeMap<usize, (String, u64, u64)> = BTreeMap::new(); // task → (on, start, step)
    for e in &report.events {
        let task = tasks.number(&e.task);
        match &e.kind {
            EventKind::Dispatch => {
                if let Some((cpu, start, step)) = running.remove(&task) {
                    spans.push(Span::run(&tasks, task, cpu, start, e.time, step, e.step, false));
                }
                if let Some(cpu) = e.cpu {
                    running.insert(task, (cpu, e.time, e.step));
                }
            }
            EventKind::Sleep(_) | EventKind::Preempt | EventKind::Exit => {
                if let Some((cpu, start, step)) = running.remove(&task) {
                    spans.push(Span::run(&tasks, task, cpu, start, e.time, step, e.step, false));
                }
                if let EventKind::Sleep(on) = &e.kind {
                    sleeping.insert(task, (on.clone(), e.time, e.step));
                }
            }
            EventKind::Wake => {
                if let Some((on, start, step)) = sleeping.remove(&task) {
                    spans.push(Span::sleep(task, on, start, e.time, step, e.step, false));
                }
            }
            EventKind::Note(text) => {
                let pid = e.cpu.unwrap_or(TASKS_PID);
                let cat = if text.starts_with("VIOLATION") { "violation" } else { "note" };
                let args = vec![
                    ("task", Json::Str(tasks.name(task).to_string())),
                    ("point", Json::Str(e.point.to_string())),
                    ("step", Json::Int(e.step)),
                ];
                instants.push(Instant { name: text.clone(), cat, pid, task, ts: e.time, args });
            }
            _ => {}
        }
    }
    for (task, (cpu, start, step)) in running {
        spans.push(Span::run(&tasks, task, cpu, start, end_of_run, step, u64::MAX, true));
    }
    for (task, (on, start, step)) in sleeping {
        spans.push(Span::sleep(task, on, start, end_of_run, step, u64::MAX, true));
    }

    // Holds of sleeping locks and the BKL.
    for hold in lock_holds(&report.events).into_iter().filter(|h| h.sleeping) {
        let task = tasks.number(&hold.task);
        let (end, end_step, unfinished) = match hold.end {
            Some((end, step)) => (end, step, false),
            None => (end_of_run, u64::MAX, true),
        };
        let mut args =
            vec![("class", Json::Str(hold.class.to_string())), ("acquired_step", Json::Int(hold.start_step))];
        if !unfinished {
            args.push(("released_step", Json::Int(end_step)));
        }
        spans.push(Span {
            name: hold.instance,
            cat: "lock",
            pid: TASKS_PID,
            task,
            start: hold.start,
            end,
            args,
            unfinished,
            lane: 0,
        });
    }

    // Lanes: spans of one (pid, task) that overlap without nesting get
    // tracks of their own.
    spans.sort_by(|a, b| {
        (a.pid, a.task, a.start, std::cmp::Reverse(a.end)).cmp(&(b.pid, b.task, b.start, std::cmp::Reverse(b.end)))
    });
    let mut lanes: BTreeMap<(usize, usize), Vec<Vec<u64>>> = BTreeMap::new(); // stacks of open ends
    for span in &mut spans {
        let stacks = lanes.entry((span.pid, span.task)).or_default();
        span.lane = place(stacks, span.start, span.end);
    }

    // Thread ids.
    let mut tracks: BTreeSet<(usize, usize, usize)> = spans.iter().map(|s| (s.pid, s.task, s.lane)).collect();
    tracks.extend(instants.iter().map(|i| (i.pid, i.task, 0)));
    let tids: BTreeMap<(usize, usize, usize), usize> = tracks.iter().enumerate().map(|(i, &t)| (t, i + 1)).collect();

    let mut lines: Vec<String> = Vec::new();
    let pids: BTreeSet<usize> = tracks.iter().map(|&(pid, _, _)| pid).collect();
    for &pid in &pids {
        let name = if pid == TASKS_PID { "tasks".to_string() } else { format!("cpu{pid}") };
        lines.push(metadata("process_name", pid, 0, Json::Str(name)));
        lines.push(metadata("process_sort_index", pid, 0, Json::Int(pid as u64)));
    }
    for (&(pid, task, lane), &tid) in &tids {
        let name = match lane {
            0 => tasks.name(task).to_string(),
            lane => format!("{} [{lane}]", tasks.name(task)),
        };
        lines.push(metadata("thread_name", pid, tid, Json::Str(name)));
        lines.push(metadata("thread_sort_index", pid, tid, Json::Int(tid as u64)));
    }

    let mut timed: Vec<(Order, String)> = Vec::new();
    for span in &spans {
        let tid = tids[&(span.pid, span.task, span.lane)];
        let mut args = span.args.clone();
        if span.unfinished {
            args.push(("unfinished", Json::Bool(true)));
        }
        let dur = span.end - span.start;
        let line = format!(
            r#"{{"name":{},"cat":"{}","ph":"X","ts":{},"dur":{},"pid":{},"tid":{tid},"args":{}}}"#,
            json_string(&span.name),
            span.cat,
            micros(span.start),
            micros(dur),
            span.pid,
            object(&args)
        );
        timed.push(((span.start, span.pid, tid, std::cmp::Reverse(dur), timed.len()), line));
    }
    for instant in &instants {
        let tid = tids[&(instant.pid, instant.task, 0)];
        let line = format!(
            r#"{{"name":{},"cat":"{}","ph":"i","s":"t","ts":{},"pid":{},"tid":{tid},"args":{}}}"#,
            json_string(&instant.name),
            instant.cat,
            micros(instant.ts),
            instant.pid,
            object(&instant.args)
        );
        timed.push(((instant.ts, instant.pid, tid, std::cmp::Reverse(0), timed.len()), line));
    }
    timed.sort_by_key(|(order, _)| *order);
    lines.extend(timed.into_iter().map(|(_, line)| line));

    let mut out = String::from("{\"traceEvents\":[\n");
    out.push_str(&lines.join(",\n"));
    let _ = write!(
        out,
        "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{{\"steps\":{},\"time_ns\":{},\"events_dropped\":{}}}}}\n",
        report.steps, report.time_ns, report.events_dropped
    );
    out
}

/// The order of timed events: time, pid, tid, longest first, creation.
type Order = (u64, usize, usize, std::cmp::Reverse<u64>, usize);

/// Puts the span [start, end] (spans come sorted by start, longest first)
/// on the first lane where it nests, opening a new lane if none; returns
/// the lane.
fn place(stacks: &mut Vec<Vec<u64>>, start: u64, end: u64) -> usize {
    for (lane, stack) in stacks.iter_mut().enumerate() {
        while stack.last().is_some_and(|&open_end| open_end <= start) {
            stack.pop();
        }
        if stack.last().is_none_or(|&open_end| open_end >= end) {
            stack.push(end);
            return lane;
        }
    }
    stacks.push(vec![end]);
    stacks.len() - 1
}

/// Tasks numbered: 0 is "irq" (events with no task), then the run's tasks in
/// creation order, then any other task named by the events, in order of
/// appearance.
struct TaskNumbers {
    names: Vec<String>,
    numbers: BTreeMap<String, usize>,
}

impl TaskNumbers {
    fn new(report: &RunReport) -> TaskNumbers {
        let mut tasks = TaskNumbers { names: vec![IRQ.to_string()], numbers: BTreeMap::new() };
        tasks.numbers.insert("-".to_string(), 0);
        let named = report.run_tasks.iter().chain(report.events.iter().map(|e| &e.task));
        for name in named {
            if !tasks.numbers.contains_key(name) {
                tasks.numbers.insert(name.clone(), tasks.names.len());
                tasks.names.push(name.clone());
            }
        }
        tasks
    }

    fn number(&self, name: &str) -> usize {
        self.numbers[name]
    }

    fn name(&self, number: usize) -> &str {
        &self.names[number]
    }
}

struct Span {
    name: String,
    cat: &'static str,
    pid: usize,
    task: usize,
    start: u64,
    end: u64,
    args: Vec<(&'static str, Json)>,
    unfinished: bool,
    lane: usize,
}

impl Span {
    #[allow(clippy::too_many_arguments)]
    fn run(
        tasks: &TaskNumbers,
        task: usize,
        cpu: usize,
        start: u64,
        end: u64,
        start_step: u64,
        end_step: u64,
        unfinished: bool,
    ) -> Span {
        let mut args = vec![("first_step", Json::Int(start_step))];
        if !unfinished {
            args.push(("last_step", Json::Int(end_step)));
        }
        Span {
            name: tasks.name(task).to_string(),
            cat: "run",
            pid: cpu,
            task,
            start,
            end: end.max(start),
            args,
            unfinished,
            lane: 0,
        }
    }

    fn sleep(task: usize, on: String, start: u64, end: u64, start_step: u64, end_step: u64, unfinished: bool) -> Span {
        let mut args = vec![("slept_step", Json::Int(start_step))];
        if !unfinished {
            args.push(("woken_step", Json::Int(end_step)));
        }
        Span { name: on, cat: "sleep", pid: TASKS_PID, task, start, end: end.max(start), args, unfinished, lane: 0 }
    }
}

struct Instant {
    name: String,
    cat: &'static str,
    pid: usize,
    task: usize,
    ts: u64,
    args: Vec<(&'static str, Json)>,
}

#[derive(Clone)]
enum Json {
    Str(String),
    Int(u64),
    Bool(bool),
}

fn metadata(name: &str, pid: usize, tid: usize, value: Json) -> String {
    let key = if name.ends_with("sort_index") { "sort_index" } else { "name" };
    format!(r#"{{"name":"{name}","ph":"M","ts":0,"pid":{pid},"tid":{tid},"args":{}}}"#, object(&[(key, value)]))
}

fn object(fields: &[(&str, Json)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Json::Str(s) => json_string(s),
                Json::Int(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
            };
            format!("{}:{value}", json_string(key))
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spans::tests::ev;
    use crate::tests::report_of;
    use serde_json::Value;

    fn parse(json: &str) -> Vec<Value> {
        let value: Value = serde_json::from_str(json).expect("the trace is JSON");
        value["traceEvents"].as_array().expect("a traceEvents array").clone()
    }

    /// Every event has ph, ts, pid, tid and name; X events a dur >= 0.
    fn check_structure(events: &[Value]) {
        for event in events {
            for field in ["ph", "ts", "pid", "tid", "name"] {
                assert!(event.get(field).is_some(), "{field} missing in {event}");
            }
            assert!(event["ts"].as_f64().is_some_and(|ts| ts >= 0.0), "{event}");
            if event["ph"] == "X" {
                assert!(event["dur"].as_f64().is_some_and(|d| d >= 0.0), "{event}");
            }
        }
    }

    fn small_report() -> RunReport {
        let sem = Some(("mm#1.mmap_sem", "mmap_sem"));
        let spin = Some(("mm#1.page_table_lock", "page_table_lock"));
        report_of(
            &["parent", "swapoff"],
            vec![
                ev(1, 1_000, Some(0), "parent", EventKind::Dispatch, None),
                ev(2, 1_500, Some(0), "parent", EventKind::Acquired, sem),
                ev(2, 1_600, Some(0), "parent", EventKind::Acquired, spin),
                ev(2, 1_700, Some(0), "parent", EventKind::Released, spin),
                ev(3, 2_000, Some(0), "parent", EventKind::Sleep("sleeps 5000 ns at io".into()), None),
                ev(4, 1_200, Some(1), "swapoff", EventKind::Dispatch, None),
                ev(5, 1_300, Some(1), "swapoff", EventKind::Note("VIOLATION swap-count: \"bad\"".into()), None),
                ev(6, 7_000, None, "parent", EventKind::Wake, None),
                ev(7, 7_250, Some(1), "swapoff", EventKind::Preempt, None),
                ev(8, 7_500, Some(1), "parent", EventKind::Dispatch, None),
                ev(9, 8_000, Some(1), "parent", EventKind::Released, sem),
                ev(10, 9_000, Some(1), "parent", EventKind::Exit, None),
            ],
        )
    }

    #[test]
    fn small_trace_has_cpus_tasks_runs_sleeps_holds_and_notes() {
        let json = chrome_trace(&small_report());
        let events = parse(&json);
        check_structure(&events);

        let find = |ph: &str, name: &str| -> Vec<&Value> {
            events.iter().filter(|e| e["ph"] == ph && e["name"] == name).collect()
        };
        // Processes and threads are named.
        let process_names: Vec<(u64, &str)> = find("M", "process_name")
            .iter()
            .map(|e| (e["pid"].as_u64().unwrap(), e["args"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(process_names, vec![(0, "cpu0"), (1, "cpu1"), (TASKS_PID as u64, "tasks")]);
        let thread_names: Vec<(u64, u64, &str)> = find("M", "thread_name")
            .iter()
            .map(|e| (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap(), e["args"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(
            thread_names,
            vec![(0, 1, "parent"), (1, 2, "parent"), (1, 3, "swapoff"), (TASKS_PID as u64, 4, "parent")]
        );

        // Runs: parent on cpu0 1.000..2.000 µs, then on cpu1 7.500..9.000.
        let runs = find("X", "parent");
        assert_eq!(runs.len(), 2);
        assert_eq!(
            (runs[0]["pid"].as_u64(), runs[0]["ts"].as_f64(), runs[0]["dur"].as_f64()),
            (Some(0), Some(1.0), Some(1.0))
        );
        assert_eq!(
            (runs[1]["pid"].as_u64(), runs[1]["ts"].as_f64(), runs[1]["dur"].as_f64()),
            (Some(1), Some(7.5), Some(1.5))
        );
        let swapoff = find("X", "swapoff");
        assert_eq!((swapoff[0]["ts"].as_f64(), swapoff[0]["dur"].as_f64()), (Some(1.2), Some(6.05)));
        assert_eq!(swapoff[0]["args"]["last_step"], 7);

        // The sleep and the semaphore hold are on the parent's task track;
        // the spinlock hold is not in the trace.
        let sleep = find("X", "sleeps 5000 ns at io");
        assert_eq!((sleep[0]["pid"].as_u64(), sleep[0]["tid"].as_u64()), (Some(TASKS_PID as u64), Some(4)));
        assert_eq!((sleep[0]["ts"].as_f64(), sleep[0]["dur"].as_f64()), (Some(2.0), Some(5.0)));
        let hold = find("X", "mm#1.mmap_sem");
        assert_eq!((hold[0]["ts"].as_f64(), hold[0]["dur"].as_f64()), (Some(1.5), Some(6.5)));
        assert_eq!(hold[0]["cat"], "lock");
        assert_eq!(hold[0]["args"]["class"], "mmap_sem");
        assert!(find("X", "mm#1.page_table_lock").is_empty());

        // The note is an instant on swapoff's cpu1 track.
        let notes: Vec<&Value> = events.iter().filter(|e| e["ph"] == "i").collect();
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0]["name"], "VIOLATION swap-count: \"bad\"");
        assert_eq!(
            (notes[0]["cat"].as_str(), notes[0]["pid"].as_u64(), notes[0]["tid"].as_u64()),
            (Some("violation"), Some(1), Some(3))
        );
        assert_eq!(notes[0]["ts"].as_f64(), Some(1.3));

        // Timed events come sorted by time.
        let times: Vec<f64> = events.iter().filter(|e| e["ph"] != "M").map(|e| e["ts"].as_f64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }

    #[test]
    fn open_spans_end_with_the_run_and_overlaps_get_lanes() {
        let (a, b) = (Some(("shm0.i_sem", "i_sem")), Some(("mm#2.mmap_sem", "mmap_sem")));
        let mut report = report_of(
            &["t"],
            vec![
                ev(1, 100, Some(0), "t", EventKind::Dispatch, None),
                ev(2, 200, Some(0), "t", EventKind::Acquired, a),
                ev(3, 300, Some(0), "t", EventKind::Acquired, b),
                ev(4, 400, Some(0), "t", EventKind::Released, a), // a and b overlap, not nested
            ],
        );
        report.time_ns = 1_000;
        let events = parse(&chrome_trace(&report));
        check_structure(&events);
        let get = |name: &str| events.iter().find(|e| e["ph"] == "X" && e["name"] == name).unwrap().clone();
        let (run, hold_a, hold_b) = (get("t"), get("shm0.i_sem"), get("mm#2.mmap_sem"));
        assert_eq!((run["dur"].as_f64(), &run["args"]["unfinished"]), (Some(0.9), &Value::Bool(true)));
        assert_eq!((hold_b["ts"].as_f64(), hold_b["dur"].as_f64()), (Some(0.3), Some(0.7)));
        assert_eq!(hold_b["args"]["unfinished"], true);
        assert!(hold_a["args"].get("unfinished").is_none());
        assert_ne!(hold_a["tid"], hold_b["tid"]);
        let lane_name = events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["tid"] == hold_b["tid"])
            .map(|e| e["args"]["name"].clone());
        assert_eq!(lane_name, Some(Value::from("t [1]")));
    }

    #[test]
    fn output_is_deterministic_and_exact_for_one_event() {
        let report = report_of(&["p"], vec![ev(1, 1_234_567, Some(0), "p", EventKind::Note("hi\n".into()), None)]);
        let json = chrome_trace(&report);
        assert_eq!(json, chrome_trace(&report));
        assert_eq!(
            json,
            concat!(
                "{\"traceEvents\":[\n",
                "{\"name\":\"process_name\",\"ph\":\"M\",\"ts\":0,\"pid\":0,\"tid\":0,\"args\":{\"name\":\"cpu0\"}},\n",
                "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"ts\":0,\"pid\":0,\"tid\":0,\"args\":{\"sort_index\":0}},\n",
                "{\"name\":\"thread_name\",\"ph\":\"M\",\"ts\":0,\"pid\":0,\"tid\":1,\"args\":{\"name\":\"p\"}},\n",
                "{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"ts\":0,\"pid\":0,\"tid\":1,\"args\":{\"sort_index\":1}},\n",
                "{\"name\":\"hi\\n\",\"cat\":\"note\",\"ph\":\"i\",\"s\":\"t\",\"ts\":1234.567,\"pid\":0,\"tid\":1,",
                "\"args\":{\"task\":\"p\",\"point\":\"test:point\",\"step\":1}}\n",
                "],\"displayTimeUnit\":\"ns\",\"otherData\":{\"steps\":0,\"time_ns\":0,\"events_dropped\":0}}\n"
            )
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\u{1}é"), "\"a\\\"b\\\\c\\u0001é\"");
        assert_eq!(micros(5), "0.005");
        assert_eq!(micros(12_345_678), "12345.678");
    }

    #[test]
    fn race1_trace_is_valid_and_shows_every_run_task() {
        let report = crate::tests::race1_report();
        let json = chrome_trace(&report);
        assert_eq!(json, chrome_trace(&crate::tests::race1_report()), "same run, same bytes");
        let events = parse(&json);
        check_structure(&events);
        let thread_names: BTreeSet<&str> = events
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        for task in &report.run_tasks {
            assert!(thread_names.contains(task.as_str()), "{task} has no track");
        }
        assert!(events.iter().any(|e| e["ph"] == "X" && e["cat"] == "run"));
        assert!(events.iter().any(|e| e["ph"] == "X" && e["cat"] == "lock"));
        assert!(events.iter().any(|e| e["ph"] == "i" && e["cat"] == "violation"));
    }
}
