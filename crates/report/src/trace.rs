//! The run as a Chrome trace (the JSON trace-event format that
//! chrome://tracing and the Perfetto UI open), written with serde_json.

use std::collections::{BTreeMap, BTreeSet};

use engine::EventKind;
use script::RunReport;
use serde_json::{json, Value};

use crate::spans::{cut, lock_holds, lock_waits, stalls};

/// The pid of the "tasks" process, which holds one track per task with its
/// sleeps, its spins and its holds of sleeping locks and the BKL. CPUs are
/// pids 0, 1, ...
pub const TASKS_PID: usize = 1000;

/// The pid of the "counters" process (free pages, swap slots in use).
pub const COUNTERS_PID: usize = 1001;

/// The name of the track of events with no task (I/O completions).
const IRQ: &str = "irq";

/// Writes `report` as Chrome trace-event JSON (`{"traceEvents": [...]}`),
/// every event serialized by serde_json, one per line.
///
/// - Process `cpuN` (pid N) has a track per task that ran on CPU N: an `X`
///   event (cat `run`) for each span the task ran there, from its
///   `Dispatch` to its next `Sleep`, `Preempt` or `Exit`, with the stalls
///   cut out; each stall (cat `stall`: the schedule held the task back
///   longer than the cost model says) is a span of its own, named by its
///   cause; every named point the task reached is an instant (cat `point`).
/// - Process `tasks` (pid [`TASKS_PID`]) has a track per task with its
///   sleeps (cat `sleep`, `Sleep` → `Wake`), its spins on spinlocks and
///   rwlocks (cat `spin`, `Contended` → `Acquired`) and its holds of
///   sleeping locks and of the BKL (cat `lock`, `Acquired` →
///   `Released`/`BklDropped`, the holder's stalls cut out). Spans of one
///   task that overlap without nesting go to extra tracks `task [1]`, ...
///   The `irq` track there has the I/O completions that came late (stalls).
/// - Flow arrows (cat `flow`): from a release to the acquisition of the
///   task that waited for it, and from a wake-up to the woken task's
///   dispatch.
/// - Process `counters` (pid [`COUNTERS_PID`]) has counter tracks (`C`):
///   free pages and swap slots in use. (2.3.99's nr_async_pages is not
///   modelled, so there is no track for it.)
/// - Notes (kernel messages, results) are instants on the task's track; an
///   invariant violation is a global instant (cat `violation`) with its
///   message.
/// - `M` events name the processes and the threads and fix their order.
///
/// Times are on the run's one timeline: `ts` and `dur` in µs with ns
/// precision. Spans still open when the log ends are closed at the end of
/// the run and get `"unfinished": true` in their args. Thread ids are
/// numbered from 1 in (pid, task, track) order. Events are sorted by time;
/// the output is a pure function of the report.
pub fn chrome_trace(report: &RunReport) -> String {
    let tasks = TaskNumbers::new(report);
    let end_of_run = report.events.iter().map(|e| e.time).max().unwrap_or(0).max(report.timeline_ns);
    let mut spans: Vec<Span> = Vec::new();
    let mut instants: Vec<Instant> = Vec::new();
    let mut counters: Vec<(u64, &'static str, i64)> = Vec::new();

    // Each task's stalls, to cut out of its runs and holds.
    let stall_list = stalls(&report.events);
    let mut holes: BTreeMap<usize, Vec<(u64, u64)>> = BTreeMap::new();
    for s in &stall_list {
        let task = tasks.number(&s.task);
        holes.entry(task).or_default().push((s.start, s.end));
        let (pid, name) = match s.cpu {
            Some(cpu) => (cpu, format!("stall ({})", s.cause.name())),
            None => (
                TASKS_PID,
                format!("{} ({})", if s.cause.name() == "io-late" { "late I/O" } else { "late timer" }, s.task),
            ),
        };
        let task_track = if s.cpu.is_some() { task } else { 0 };
        let args = vec![
            ("cause", json!(s.cause.name())),
            ("task", json!(s.task)),
            ("point", json!(s.point)),
            ("step", json!(s.step)),
        ];
        spans.push(Span { name, cat: "stall", pid, task: task_track, start: s.start, end: s.end, args, lane: 0 });
    }
    for list in holes.values_mut() {
        list.sort();
    }
    let holes_of = |task: usize| holes.get(&task).map(Vec::as_slice).unwrap_or(&[]);

    // Runs on CPUs, sleeps, points and notes.
    let mut running: BTreeMap<usize, (usize, u64, u64)> = BTreeMap::new(); // task → (cpu, start, step)
    let mut sleeping: BTreeMap<usize, (String, u64, u64)> = BTreeMap::new(); // task → (on, start, step)
    let run_span = |spans: &mut Vec<Span>, task: usize, cpu: usize, start: u64, end: u64, steps: (u64, Option<u64>)| {
        let mut args = vec![("first_step", json!(steps.0))];
        match steps.1 {
            Some(last) => args.push(("last_step", json!(last))),
            None => args.push(("unfinished", json!(true))),
        }
        for (a, b) in cut(start, end.max(start), holes_of(task)) {
            spans.push(Span {
                name: tasks.name(task).to_string(),
                cat: "run",
                pid: cpu,
                task,
                start: a,
                end: b,
                args: args.clone(),
                lane: 0,
            });
        }
    };
    for e in &report.events {
        let task = tasks.number(&e.task);
        match &e.kind {
            EventKind::Dispatch => {
                if let Some((cpu, start, step)) = running.remove(&task) {
                    run_span(&mut spans, task, cpu, start, e.time, (step, Some(e.step)));
                }
                if let Some(cpu) = e.cpu {
                    running.insert(task, (cpu, e.time, e.step));
                }
            }
            EventKind::Sleep(_) | EventKind::Preempt | EventKind::Exit => {
                if let Some((cpu, start, step)) = running.remove(&task) {
                    run_span(&mut spans, task, cpu, start, e.time, (step, Some(e.step)));
                }
                if let EventKind::Sleep(on) = &e.kind {
                    sleeping.insert(task, (on.clone(), e.time, e.step));
                }
            }
            EventKind::Wake => {
                if let Some((on, start, step)) = sleeping.remove(&task) {
                    let args = vec![("slept_step", json!(step)), ("woken_step", json!(e.step))];
                    spans.push(Span {
                        name: on,
                        cat: "sleep",
                        pid: TASKS_PID,
                        task,
                        start,
                        end: e.time,
                        args,
                        lane: 0,
                    });
                }
            }
            EventKind::Point => {
                let pid = e.cpu.unwrap_or(TASKS_PID);
                let args = vec![("step", json!(e.step))];
                instants.push(Instant {
                    name: e.point.to_string(),
                    cat: "point",
                    pid,
                    task,
                    ts: e.time,
                    args,
                    global: false,
                });
            }
            EventKind::Note(text) => {
                let violation = text.starts_with("VIOLATION");
                let pid = e.cpu.unwrap_or(TASKS_PID);
                let args = vec![("task", json!(tasks.name(task))), ("point", json!(e.point)), ("step", json!(e.step))];
                let cat = if violation { "violation" } else { "note" };
                instants.push(Instant { name: text.clone(), cat, pid, task, ts: e.time, args, global: violation });
            }
            EventKind::Counter { name, value } => counters.push((e.time, name, *value)),
            _ => {}
        }
    }
    for (task, (cpu, start, step)) in running {
        run_span(&mut spans, task, cpu, start, end_of_run, (step, None));
    }
    for (task, (on, start, step)) in sleeping {
        let args = vec![("slept_step", json!(step)), ("unfinished", json!(true))];
        spans.push(Span { name: on, cat: "sleep", pid: TASKS_PID, task, start, end: end_of_run, args, lane: 0 });
    }

    // Holds of sleeping locks and the BKL, the holder's stalls cut out.
    for hold in lock_holds(&report.events).into_iter().filter(|h| h.sleeping) {
        let task = tasks.number(&hold.task);
        let mut args =
            vec![("class", json!(hold.class)), ("acquired_step", json!(hold.start_step)), ("hold_ns", json!(hold.ns))];
        let end = match hold.end {
            Some((end, step)) => {
                args.push(("released_step", json!(step)));
                end
            }
            None => {
                args.push(("unfinished", json!(true)));
                end_of_run
            }
        };
        for (a, b) in cut(hold.start, end.max(hold.start), holes_of(task)) {
            let name = hold.instance.clone();
            spans.push(Span { name, cat: "lock", pid: TASKS_PID, task, start: a, end: b, args: args.clone(), lane: 0 });
        }
    }
    // Spins: waits for locks that forbid sleeping (the holder spins).
    let spinlocks: BTreeSet<&str> = report
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Acquired && !e.key)
        .filter_map(|e| e.lock.as_ref().map(|(_, class)| *class))
        .collect();
    let waits = lock_waits(&report.events);
    for w in waits.iter().filter(|w| spinlocks.contains(w.class)) {
        let task = tasks.number(&w.task);
        let args = vec![("class", json!(w.class)), ("point", json!(w.point)), ("wait_ns", json!(w.ns))];
        for (a, b) in cut(w.start, w.end, holes_of(task)) {
            let name = format!("spin on {}", w.class);
            spans.push(Span { name, cat: "spin", pid: TASKS_PID, task, start: a, end: b, args: args.clone(), lane: 0 });
        }
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

    // Flows: a release to the waiter's acquisition, a wake-up to the dispatch.
    let flows = flows(report, &tasks);

    // Thread ids.
    let mut tracks: BTreeSet<(usize, usize, usize)> = spans.iter().map(|s| (s.pid, s.task, s.lane)).collect();
    tracks.extend(instants.iter().map(|i| (i.pid, i.task, 0)));
    tracks.extend(flows.iter().flat_map(|f| [(f.from.0, f.from.1, 0), (f.to.0, f.to.1, 0)]));
    let tids: BTreeMap<(usize, usize, usize), usize> = tracks.iter().enumerate().map(|(i, &t)| (t, i + 1)).collect();

    let mut lines: Vec<Value> = Vec::new();
    let mut pids: BTreeSet<usize> = tracks.iter().map(|&(pid, _, _)| pid).collect();
    if !counters.is_empty() {
        pids.insert(COUNTERS_PID);
    }
    for &pid in &pids {
        let name = match pid {
            TASKS_PID => "tasks".to_string(),
            COUNTERS_PID => "counters".to_string(),
            cpu => format!("cpu{cpu}"),
        };
        lines.push(metadata("process_name", pid, 0, "name", json!(name)));
        lines.push(metadata("process_sort_index", pid, 0, "sort_index", json!(pid)));
    }
    for (&(pid, task, lane), &tid) in &tids {
        let name = match lane {
            0 => tasks.name(task).to_string(),
            lane => format!("{} [{lane}]", tasks.name(task)),
        };
        lines.push(metadata("thread_name", pid, tid, "name", json!(name)));
        lines.push(metadata("thread_sort_index", pid, tid, "sort_index", json!(tid)));
    }

    let mut timed: Vec<(Order, Value)> = Vec::new();
    let mut push = |order: (u64, usize, usize, u64), value: Value| {
        let n = timed.len();
        timed.push(((order.0, order.1, order.2, std::cmp::Reverse(order.3), n), value));
    };
    for span in &spans {
        let tid = tids[&(span.pid, span.task, span.lane)];
        let dur = span.end - span.start;
        let args: serde_json::Map<String, Value> = span.args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        push(
            (span.start, span.pid, tid, dur),
            json!({"name": span.name, "cat": span.cat, "ph": "X", "ts": micros(span.start), "dur": micros(dur),
                   "pid": span.pid, "tid": tid, "args": args}),
        );
    }
    for i in &instants {
        let tid = tids[&(i.pid, i.task, 0)];
        let args: serde_json::Map<String, Value> = i.args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let scope = if i.global { "g" } else { "t" };
        push(
            (i.ts, i.pid, tid, 0),
            json!({"name": i.name, "cat": i.cat, "ph": "i", "s": scope, "ts": micros(i.ts), "pid": i.pid, "tid": tid,
                   "args": args}),
        );
    }
    for (n, f) in flows.iter().enumerate() {
        let from = tids[&(f.from.0, f.from.1, 0)];
        let to = tids[&(f.to.0, f.to.1, 0)];
        push(
            (f.start, f.from.0, from, 0),
            json!({"name": f.name, "cat": "flow", "ph": "s", "id": n + 1, "ts": micros(f.start), "pid": f.from.0,
                   "tid": from}),
        );
        push(
            (f.end, f.to.0, to, 0),
            json!({"name": f.name, "cat": "flow", "ph": "f", "bp": "e", "id": n + 1, "ts": micros(f.end),
                   "pid": f.to.0, "tid": to}),
        );
    }
    for &(ts, name, value) in &counters {
        push(
            (ts, COUNTERS_PID, 0, 0),
            json!({"name": name, "ph": "C", "ts": micros(ts), "pid": COUNTERS_PID, "tid": 0,
                                             "args": {"value": value}}),
        );
    }
    timed.sort_by_key(|(order, _)| *order);
    lines.extend(timed.into_iter().map(|(_, line)| line));

    let body: Vec<String> = lines.iter().map(|v| serde_json::to_string(v).expect("a trace event serializes")).collect();
    let other = json!({"steps": report.steps, "time_ns": report.time_ns, "timeline_ns": report.timeline_ns,
                       "stalled_ns": report.stalled_ns, "events_dropped": report.events_dropped});
    format!(
        "{{\"traceEvents\":[\n{}\n],\"displayTimeUnit\":\"ns\",\"otherData\":{}}}\n",
        body.join(",\n"),
        serde_json::to_string(&other).expect("plain values serialize")
    )
}

/// ns as µs (a JSON number with ns precision).
fn micros(ns: u64) -> Value {
    if ns.is_multiple_of(1000) {
        json!(ns / 1000)
    } else {
        json!(ns as f64 / 1000.0)
    }
}

/// The order of timed events: time, pid, tid, longest first, creation.
type Order = (u64, usize, usize, std::cmp::Reverse<u64>, usize);

/// A flow arrow: from (pid, task) at `start` to (pid, task) at `end`.
struct Flow {
    name: &'static str,
    from: (usize, usize),
    start: u64,
    to: (usize, usize),
    end: u64,
}

/// The track (pid, task) an event happened on: its task's CPU track, or the
/// task's `tasks` track when it had no CPU (the irq track for no task).
fn track(tasks: &TaskNumbers, e: &script::run::EventLine) -> (usize, usize) {
    let task = tasks.number(&e.task);
    match e.cpu {
        Some(cpu) => (cpu, task),
        None => (TASKS_PID, task),
    }
}

/// Release → the acquisition of a task that had waited for that instance;
/// wake-up → the woken task's next dispatch (from the waker's track: the
/// event just before the wake in its step, by another task or the irq).
fn flows(report: &RunReport, tasks: &TaskNumbers) -> Vec<Flow> {
    let events = &report.events;
    let mut flows = Vec::new();
    let mut last_release: BTreeMap<&str, usize> = BTreeMap::new();
    let mut waiting: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut woken: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        match &e.kind {
            EventKind::Released | EventKind::BklDropped => {
                if let Some((instance, _)) = &e.lock {
                    last_release.insert(instance, i);
                }
            }
            EventKind::Contended => {
                if let Some((instance, _)) = &e.lock {
                    waiting.insert((&e.task, instance));
                }
            }
            EventKind::Acquired => {
                let Some((instance, _)) = &e.lock else { continue };
                if waiting.remove(&(e.task.as_str(), instance.as_str())) {
                    if let Some(&r) = last_release.get(instance.as_str()) {
                        let release = &events[r];
                        if release.cpu.is_some() || release.task == "-" {
                            flows.push(Flow {
                                name: "release → acquire",
                                from: release_track(tasks, release),
                                start: release.time,
                                to: track(tasks, e),
                                end: e.time,
                            });
                        }
                    }
                }
            }
            EventKind::Wake => {
                woken.insert(&e.task, i);
            }
            EventKind::Dispatch => {
                let Some(w) = woken.remove(e.task.as_str()) else { continue };
                let wake = &events[w];
                // The waker: the latest event before the wake in its step
                // that is not the woken task's.
                let waker = events[..w].iter().rev().take_while(|x| x.step == wake.step).find(|x| {
                    x.task != wake.task && !matches!(x.kind, EventKind::Counter { .. } | EventKind::Stall { .. })
                });
                if let Some(waker) = waker.filter(|x| x.cpu.is_some() || x.task == "-") {
                    flows.push(Flow {
                        name: "wake → dispatch",
                        from: release_track(tasks, waker),
                        start: wake.time,
                        to: track(tasks, e),
                        end: e.time,
                    });
                }
            }
            _ => {}
        }
    }
    flows
}

/// A releaser's track: its CPU track, or the irq track for an interrupt.
fn release_track(tasks: &TaskNumbers, e: &script::run::EventLine) -> (usize, usize) {
    match e.cpu {
        Some(cpu) => (cpu, tasks.number(&e.task)),
        None => (TASKS_PID, 0),
    }
}

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
    args: Vec<(&'static str, Value)>,
    lane: usize,
}

struct Instant {
    name: String,
    cat: &'static str,
    pid: usize,
    task: usize,
    ts: u64,
    args: Vec<(&'static str, Value)>,
    /// A global instant (`"s": "g"`): the violation.
    global: bool,
}

fn metadata(name: &str, pid: usize, tid: usize, key: &str, value: Value) -> Value {
    json!({"name": name, "ph": "M", "ts": 0, "pid": pid, "tid": tid, "args": {key: value}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spans::tests::ev;
    use crate::tests::report_of;
    use engine::StallCause;

    fn parse(json: &str) -> Vec<Value> {
        let value: Value = serde_json::from_str(json).expect("the trace is JSON");
        value["traceEvents"].as_array().expect("a traceEvents array").clone()
    }

    /// Every event is a trace event: ph, ts, pid, tid and name; X events a
    /// dur >= 0; flow starts and ends pair by id.
    pub(crate) fn check_structure(events: &[Value]) {
        let mut flows: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
        for event in events {
            for field in ["ph", "ts", "pid", "tid", "name"] {
                assert!(event.get(field).is_some(), "{field} missing in {event}");
            }
            assert!(event["ts"].as_f64().is_some_and(|ts| ts >= 0.0), "{event}");
            match event["ph"].as_str().unwrap() {
                "X" => assert!(event["dur"].as_f64().is_some_and(|d| d >= 0.0), "{event}"),
                "s" => flows.entry(event["id"].as_u64().unwrap()).or_default().0 += 1,
                "f" => flows.entry(event["id"].as_u64().unwrap()).or_default().1 += 1,
                "C" => assert!(event["args"]["value"].is_i64(), "{event}"),
                "i" => assert!(matches!(event["s"].as_str(), Some("t" | "g")), "{event}"),
                "M" => {}
                other => panic!("unexpected phase {other} in {event}"),
            }
        }
        assert!(flows.values().all(|&(s, f)| s == 1 && f == 1), "{flows:?}");
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
                ev(4, 2_200, Some(1), "swapoff", EventKind::Dispatch, None),
                ev(4, 2_300, Some(1), "swapoff", EventKind::Attempt, sem),
                ev(4, 2_300, Some(1), "swapoff", EventKind::Contended, sem),
                ev(4, 2_400, Some(1), "swapoff", EventKind::Point, None),
                ev(5, 2_500, Some(1), "swapoff", EventKind::Sleep("sleeps on mm#1.mmap_sem".into()), sem),
                ev(6, 7_000, None, "-", EventKind::Counter { name: "free pages", value: 12 }, None),
                ev(6, 7_000, None, "parent", EventKind::Wake, None),
                ev(8, 7_500, Some(1), "parent", EventKind::Dispatch, None),
                ev(9, 8_000, Some(1), "parent", EventKind::Released, sem),
                ev(9, 8_000, None, "swapoff", EventKind::Wake, None),
                ev(10, 9_000, Some(1), "parent", EventKind::Exit, None),
                ev(11, 12_000, Some(0), "swapoff", EventKind::Stall { from: 9_000, cause: StallCause::Dispatch }, None),
                ev(11, 12_000, Some(0), "swapoff", EventKind::Dispatch, None),
                ev(11, 12_100, Some(0), "swapoff", EventKind::Acquired, sem),
                ev(12, 12_200, Some(0), "swapoff", EventKind::Note("VIOLATION swap-count: \"bad\"".into()), None),
            ],
        )
    }

    #[test]
    fn small_trace_has_runs_sleeps_holds_stalls_flows_counters_and_the_violation() {
        let json = chrome_trace(&small_report());
        let events = parse(&json);
        check_structure(&events);
        let find = |ph: &str, name: &str| -> Vec<&Value> {
            events.iter().filter(|e| e["ph"] == ph && e["name"] == name).collect()
        };
        let process_names: Vec<(u64, &str)> = find("M", "process_name")
            .iter()
            .map(|e| (e["pid"].as_u64().unwrap(), e["args"]["name"].as_str().unwrap()))
            .collect();
        assert_eq!(
            process_names,
            vec![(0, "cpu0"), (1, "cpu1"), (TASKS_PID as u64, "tasks"), (COUNTERS_PID as u64, "counters")]
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
        // The stall is a span of its own on swapoff's cpu0 track, before its run.
        let stall = find("X", "stall (dispatch)");
        assert_eq!(
            (stall[0]["ts"].as_f64(), stall[0]["dur"].as_f64(), stall[0]["cat"].as_str()),
            (Some(9.0), Some(3.0), Some("stall"))
        );
        // The semaphore hold; the spinlock hold is not drawn.
        let hold = find("X", "mm#1.mmap_sem");
        assert_eq!((hold[0]["ts"].as_f64(), hold[0]["dur"].as_f64()), (Some(1.5), Some(6.5)));
        assert!(find("X", "mm#1.page_table_lock").is_empty());
        // Flows: parent's release to swapoff's acquire, the wake-ups to the dispatches.
        let flow_starts: Vec<(f64, &str)> = events
            .iter()
            .filter(|e| e["ph"] == "s")
            .map(|e| (e["ts"].as_f64().unwrap(), e["name"].as_str().unwrap()))
            .collect();
        assert_eq!(flow_starts, vec![(8.0, "wake → dispatch"), (8.0, "release → acquire")]);
        // A counter and the named point.
        assert_eq!(find("C", "free pages")[0]["args"]["value"], 12);
        assert_eq!(events.iter().filter(|e| e["ph"] == "i" && e["cat"] == "point").count(), 1);
        // The violation is a global instant with its message.
        let v: Vec<&Value> = events.iter().filter(|e| e["cat"] == "violation").collect();
        assert_eq!((v[0]["s"].as_str(), v[0]["name"].as_str()), (Some("g"), Some("VIOLATION swap-count: \"bad\"")));
        let times: Vec<f64> = events.iter().filter(|e| e["ph"] != "M").map(|e| e["ts"].as_f64().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert_eq!(json, chrome_trace(&small_report()));
    }

    #[test]
    fn a_stall_is_cut_out_of_the_run_and_the_hold() {
        let sem = Some(("mm#1.mmap_sem", "mmap_sem"));
        let report = report_of(
            &["t"],
            vec![
                ev(1, 100, Some(0), "t", EventKind::Dispatch, None),
                ev(2, 200, Some(0), "t", EventKind::Acquired, sem),
                ev(3, 5_000, Some(0), "t", EventKind::Stall { from: 300, cause: StallCause::Cpu }, None),
                ev(3, 5_100, Some(0), "t", EventKind::Released, sem),
                ev(3, 5_200, Some(0), "t", EventKind::Exit, None),
            ],
        );
        let events = parse(&chrome_trace(&report));
        check_structure(&events);
        let spans = |cat: &str| -> Vec<(f64, f64)> {
            events
                .iter()
                .filter(|e| e["ph"] == "X" && e["cat"] == cat)
                .map(|e| (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap()))
                .collect()
        };
        assert_eq!(spans("run"), vec![(0.1, 0.2), (5.0, 0.2)]);
        assert_eq!(spans("lock"), vec![(0.2, 0.1), (5.0, 0.1)]);
        assert_eq!(spans("stall"), vec![(0.3, 4.7)]);
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
        for cat in ["run", "lock", "stall", "point"] {
            assert!(events.iter().any(|e| e["cat"] == cat), "no {cat} event");
        }
        assert!(events.iter().any(|e| e["ph"] == "C" && e["name"] == "free pages"));
        assert!(events.iter().any(|e| e["ph"] == "i" && e["s"] == "g" && e["cat"] == "violation"));
    }
}
