//! The event log as CSV.

use engine::EventKind;
use script::RunReport;

/// The columns of [`events_csv`].
pub const EVENTS_CSV_HEADER: [&str; 12] =
    ["step", "time_ns", "cost_ns", "cpu", "task", "event", "lock", "lock_class", "read", "point", "sleep_ns", "text"];

/// The short lowercase name of an event kind, as in the event log: point,
/// dispatch, preempt, try, contended, acquired, released, bkl-dropped, sleep,
/// wake, note, exit, stall, counter.
pub fn kind_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Point => "point",
        EventKind::Dispatch => "dispatch",
        EventKind::Preempt => "preempt",
        EventKind::Attempt => "try",
        EventKind::Contended => "contended",
        EventKind::Acquired => "acquired",
        EventKind::Released => "released",
        EventKind::BklDropped => "bkl-dropped",
        EventKind::Sleep(_) => "sleep",
        EventKind::Wake => "wake",
        EventKind::Note(_) => "note",
        EventKind::Exit => "exit",
        EventKind::Stall { .. } => "stall",
        EventKind::Counter { .. } => "counter",
    }
}

/// The event log as CSV (RFC 4180 quoting, `\n` line ends), one row per
/// event in log order, with the columns
/// `step,time_ns,cost_ns,cpu,task,event,lock,lock_class,read,point,sleep_ns,text`:
/// `time_ns` is on the run's one timeline (never decreasing), `cost_ns` the
/// cost model's time (the timeline without the stalls before the event);
/// `read` is 1 for a read-side rwlock operation (0 otherwise), `sleep_ns`
/// a timed sleep's length, `text` a note's text, what a sleep was on, a
/// stall's cause and start (`io-late from 8000000`), or a counter's
/// `name=value`. A missing value is always an empty field: `cpu` when the
/// event had none, `task` for an interrupt, `lock` and `lock_class` (the
/// lock instance and class) when none, `sleep_ns` for every event but a
/// timed sleep, `text` otherwise.
pub fn events_csv(report: &RunReport) -> String {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    let mut write = |record: &[&str]| writer.write_record(record).expect("writing CSV into memory cannot fail");
    write(&EVENTS_CSV_HEADER);
    for e in &report.events {
        let (step, time, cpu) = (e.step.to_string(), e.time.to_string(), e.cpu.map(|c| c.to_string()));
        let (lock, class) = e.lock.as_ref().map(|(instance, class)| (instance.as_str(), *class)).unwrap_or(("", ""));
        let text = match &e.kind {
            EventKind::Note(text) | EventKind::Sleep(text) => text.clone(),
            EventKind::Stall { from, cause } => format!("{} from {from}", cause.name()),
            EventKind::Counter { name, value } => format!("{name}={value}"),
            _ => String::new(),
        };
        let task = if e.task == "-" { "" } else { e.task.as_str() };
        let sleep_ns = match &e.kind {
            EventKind::Sleep(text) => timed_sleep_ns(text).unwrap_or(""),
            _ => "",
        };
        let (cost, read) = (e.cost.to_string(), if e.read { "1" } else { "0" });
        write(&[
            &step,
            &time,
            &cost,
            cpu.as_deref().unwrap_or(""),
            task,
            kind_name(&e.kind),
            lock,
            class,
            read,
            e.point,
            sleep_ns,
            &text,
        ]);
    }
    let bytes = writer.into_inner().expect("flushing CSV into memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// The length of a timed sleep from the engine's description of it
/// ("sleeps 8000000 ns at POINT"); None for a sleep on a lock or queue.
fn timed_sleep_ns(text: &str) -> Option<&str> {
    let (ns, _) = text.strip_prefix("sleeps ")?.split_once(" ns at ")?;
    ns.bytes().all(|b| b.is_ascii_digit()).then_some(ns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spans::tests::ev;
    use crate::tests::report_of;

    #[test]
    fn header_and_rows() {
        let report = report_of(
            &["parent"],
            vec![
                ev(3, 1_500, Some(0), "parent", EventKind::Acquired, Some(("mm#1.mmap_sem", "mmap_sem"))),
                ev(4, 2_000, None, "-", EventKind::Note("VM: Undead swap entry, \"x\"".into()), None),
                ev(5, 2_100, Some(1), "parent", EventKind::Sleep("sleeps on page#2.PG_locked".into()), None),
                ev(6, 2_200, Some(1), "parent", EventKind::BklDropped, Some(("kernel_flag", "kernel_flag"))),
                ev(7, 2_300, Some(0), "parent", EventKind::Sleep("sleeps 8000000 ns at test:point".into()), None),
            ],
        );
        let csv = events_csv(&report);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "step,time_ns,cost_ns,cpu,task,event,lock,lock_class,read,point,sleep_ns,text");
        assert_eq!(lines[1], "3,1500,1500,0,parent,acquired,mm#1.mmap_sem,mmap_sem,0,test:point,,");
        // An interrupt: no cpu and no task, both empty (not "-").
        assert_eq!(lines[2], "4,2000,2000,,,note,,,0,test:point,,\"VM: Undead swap entry, \"\"x\"\"\"");
        assert_eq!(lines[3], "5,2100,2100,1,parent,sleep,,,0,test:point,,sleeps on page#2.PG_locked");
        assert_eq!(lines[4], "6,2200,2200,1,parent,bkl-dropped,kernel_flag,kernel_flag,0,test:point,,");
        // A timed sleep's length in its own column.
        assert_eq!(lines[5], "7,2300,2300,0,parent,sleep,,,0,test:point,8000000,sleeps 8000000 ns at test:point");
        assert_eq!(lines.len(), 6);
        assert!(csv.ends_with('\n') && !csv.contains('\r'));
    }

    #[test]
    fn kind_names() {
        let kinds = [
            EventKind::Point,
            EventKind::Dispatch,
            EventKind::Preempt,
            EventKind::Attempt,
            EventKind::Contended,
            EventKind::Acquired,
            EventKind::Released,
            EventKind::BklDropped,
            EventKind::Sleep(String::new()),
            EventKind::Wake,
            EventKind::Note(String::new()),
            EventKind::Exit,
            EventKind::Stall { from: 0, cause: engine::StallCause::Cpu },
            EventKind::Counter { name: "free pages", value: 1 },
        ];
        let names: Vec<&str> = kinds.iter().map(kind_name).collect();
        assert_eq!(
            names,
            vec![
                "point",
                "dispatch",
                "preempt",
                "try",
                "contended",
                "acquired",
                "released",
                "bkl-dropped",
                "sleep",
                "wake",
                "note",
                "exit",
                "stall",
                "counter"
            ]
        );
    }
}
