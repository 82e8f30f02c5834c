//! Pairing events into intervals: lock holds (Acquired → Released), lock
//! waits (Contended → Acquired) and stalls. Shared by the trace and the
//! lock statistics.
//!
//! Times: an interval's `start` and `end` are on the run's one timeline;
//! its `ns` is its length less the stalls of its task within it (of an
//! I/O's lateness, for a page an I/O held), so that no hold or wait
//! includes a stall (docs/timing.md).

use std::collections::{BTreeMap, BTreeSet};

use engine::{EventKind, StallCause};
use script::run::EventLine;

/// One lock hold: from an `Acquired` to the matching `Released` (or, for the
/// big kernel lock, `BklDropped`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub task: String,
    pub instance: String,
    pub class: &'static str,
    /// Whether the holder may sleep with it (a semaphore, the page bit, the
    /// BKL): the `key` flag of the `Acquired` event.
    pub sleeping: bool,
    /// A read-side hold of an rwlock.
    pub read: bool,
    pub start: u64,
    pub start_step: u64,
    /// `None`: still held when the log ends.
    pub end: Option<(u64, u64)>,
    /// The cost model's length of the hold (0 while open).
    pub ns: u64,
    /// Ended by an interrupt (an I/O completion clearing PG_locked): the
    /// I/O held it, not the task, which was free meanwhile.
    pub by_irq: bool,
}

/// Pairs every `Acquired` with the release of the same lock instance by the
/// same task (each reader of an rwlock separately). A release by a task
/// that holds nothing of that instance — `up` of a semaphore by another task,
/// or the I/O completion clearing a page bit (task "-") — ends the oldest
/// open hold of the instance. Releases with no open hold (their acquisition
/// was dropped from the front of the log) are ignored.
pub fn lock_holds(events: &[EventLine]) -> Vec<Hold> {
    let stalls = stalls(events);
    let mut holds: Vec<Hold> = Vec::new();
    // (task, instance) → indices of its open holds, newest last.
    let mut by_task: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    // instance → indices of its open holds.
    let mut by_instance: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for e in events {
        let Some((instance, class)) = &e.lock else { continue };
        match e.kind {
            EventKind::Acquired => {
                let index = holds.len();
                holds.push(Hold {
                    task: e.task.clone(),
                    instance: instance.clone(),
                    class,
                    sleeping: e.key,
                    read: e.read,
                    start: e.time,
                    start_step: e.step,
                    end: None,
                    ns: 0,
                    by_irq: false,
                });
                by_task.entry((e.task.clone(), instance.clone())).or_default().push(index);
                by_instance.entry(instance.clone()).or_default().insert(index);
            }
            EventKind::Released | EventKind::BklDropped => {
                let own = by_task.get_mut(&(e.task.clone(), instance.clone())).and_then(|open| open.pop());
                let index = match own {
                    Some(index) => Some(index),
                    None => by_instance.get(instance).and_then(|open| open.first().copied()),
                };
                let Some(index) = index else { continue };
                if own.is_none() {
                    let holder = holds[index].task.clone();
                    if let Some(open) = by_task.get_mut(&(holder, instance.clone())) {
                        open.retain(|&i| i != index);
                    }
                }
                if let Some(open) = by_instance.get_mut(instance) {
                    open.remove(&index);
                }
                let hold = &mut holds[index];
                hold.end = Some((e.time, e.step));
                hold.by_irq = e.task == "-";
                // The hold less its holder's stalls; an I/O holds the page
                // it reads or writes while its starter is free, so only the
                // I/O's lateness is cut from such a hold.
                let by_irq = hold.by_irq;
                let own = stalls.iter().filter(|s| !by_irq || s.cause == StallCause::IoLate);
                hold.ns = (e.time - hold.start) - stalled_within(own, &hold.task, hold.start, e.time);
            }
            _ => {}
        }
    }
    holds
}

/// One wait for a lock: from a task's first `Contended` to its `Acquired`
/// of the same instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub class: &'static str,
    pub task: String,
    pub read: bool,
    /// The cost model's length of the wait.
    pub ns: u64,
    /// On the timeline.
    pub start: u64,
    pub end: u64,
    /// Where the waiter asked for the lock (its contention point).
    pub point: &'static str,
}

/// Every completed wait. A wait runs from the task's first `Contended` of
/// the instance to its `Acquired` of it, across retries: 2.3's
/// `while (TryLockPage(page)) wait_on_page(page);` is one wait for the page
/// from the failed try to the one that succeeds. A failed trylock the task
/// does not wait after (it gives up and goes elsewhere) is no wait: it is
/// forgotten at the task's next try of the instance unless the task slept
/// on the instance in between.
pub fn lock_waits(events: &[EventLine]) -> Vec<Wait> {
    let stalls = stalls(events);
    struct Pending {
        time: u64,
        point: &'static str,
        read: bool,
        /// Started by a blocking request, or the task slept on the
        /// instance since: a wait that only the acquisition ends.
        waits: bool,
    }
    let mut pending: BTreeMap<(String, String), Pending> = BTreeMap::new();
    let mut waits = Vec::new();
    for e in events {
        let Some((instance, class)) = &e.lock else { continue };
        let key = (e.task.clone(), instance.clone());
        match e.kind {
            EventKind::Attempt if pending.get(&key).is_some_and(|p| !p.waits) => {
                pending.remove(&key);
            }
            EventKind::Contended => {
                let started = Pending { time: e.time, point: e.point, read: e.read, waits: !e.trylock };
                let entry = pending.entry(key).or_insert(started);
                entry.waits |= !e.trylock;
            }
            EventKind::Sleep(_) => {
                if let Some(p) = pending.get_mut(&key) {
                    p.waits = true;
                }
            }
            EventKind::Acquired => {
                if let Some(p) = pending.remove(&key) {
                    if p.waits {
                        waits.push(Wait {
                            class,
                            task: e.task.clone(),
                            read: p.read,
                            ns: (e.time - p.time) - stalled_within(stalls.iter(), &e.task, p.time, e.time),
                            start: p.time,
                            end: e.time,
                            point: p.point,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    waits
}

/// The stall time of `task` within [start, end], in ns.
/// (Overlapping stalls count once.)
pub fn stalled_within<'a>(stalls: impl Iterator<Item = &'a Stall>, task: &str, start: u64, end: u64) -> u64 {
    let mut spans: Vec<(u64, u64)> = stalls
        .filter(|s| s.task == task)
        .map(|s| (s.start.max(start), s.end.min(end)))
        .filter(|&(a, b)| a < b)
        .collect();
    spans.sort_unstable();
    let (mut total, mut covered) = (0, start);
    for (a, b) in spans {
        let a = a.max(covered);
        if b > a {
            total += b - a;
            covered = b;
        }
    }
    total
}

/// One stall: the schedule held a task (or an I/O) back longer than the
/// cost model says, from `start` to `end` on the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    /// The task held back ("-" for none), or whose I/O or timer was late.
    pub task: String,
    pub cpu: Option<usize>,
    pub cause: StallCause,
    pub start: u64,
    pub end: u64,
    pub step: u64,
    /// Where the task was.
    pub point: &'static str,
}

/// Every stall of the log, in order.
pub fn stalls(events: &[EventLine]) -> Vec<Stall> {
    events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Stall { from, cause } => Some(Stall {
                task: e.task.clone(),
                cpu: e.cpu,
                cause,
                start: from,
                end: e.time,
                step: e.step,
                point: e.point,
            }),
            _ => None,
        })
        .collect()
}

/// What the timing of a run's interleaving assumes beyond the cost model:
/// its stalls, the longest first (at most `limit`), each with where the
/// task (or I/O) was held back, when the cost model would have had it go
/// on, and what ran meanwhile. Empty when the run has no stall.
///
/// ```text
/// timing:   the interleaving needs 3 stalls the cost model does not have (8.390460ms in all):
///   parent is held back 7.996840ms at swap_duplicate:swap_device_lock on cpu0 (the cost model has it go on at 16.234580ms); meanwhile: the timer waking swapoff
/// ```
pub fn timing_assumptions(report: &script::RunReport, limit: usize) -> String {
    let list = stalls(&report.events);
    if list.is_empty() {
        return String::new();
    }
    let total: u64 = list.iter().map(|s| s.end - s.start).sum();
    let mut order: Vec<&Stall> = list.iter().collect();
    order.sort_by(|a, b| (b.end - b.start).cmp(&(a.end - a.start)).then(a.step.cmp(&b.step)));
    let mut out = format!(
        "timing:   the interleaving needs {} stall{} the cost model does not have ({} in all){}:\n",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        engine::format_ns(total),
        if list.len() > limit { format!("; the {limit} longest") } else { String::new() }
    );
    for s in order.into_iter().take(limit) {
        let (dur, at) = (engine::format_ns(s.end - s.start), engine::format_ns(s.start));
        let what = match (s.cause, s.cpu) {
            (StallCause::IoLate, _) => {
                format!(
                    "the I/O {} started at {} completes {dur} late (due at {at} by the cost model)",
                    s.task, s.point
                )
            }
            (StallCause::TimerLate, _) => {
                format!("{}'s timed sleep at {} ends {dur} late (due at {at} by the cost model)", s.task, s.point)
            }
            (_, cpu) => format!(
                "{} is held back {dur} at {}{} (the cost model has it go on at {at})",
                s.task,
                s.point,
                cpu.map(|c| format!(" on cpu{c}")).unwrap_or_default()
            ),
        };
        let meanwhile = meanwhile(&report.events, s);
        let meanwhile = if meanwhile.is_empty() { String::new() } else { format!("; meanwhile: {meanwhile}") };
        out += &format!("  {what}{meanwhile}\n");
    }
    out
}

/// What ran while `stall` held its task back: the tasks (and timers) with
/// events in the steps since the stalled task's previous step.
fn meanwhile(events: &[EventLine], stall: &Stall) -> String {
    let before = events.iter().rposition(|e| e.step < stall.step && e.task == stall.task);
    let from = before.map(|i| events[i].step).unwrap_or(0);
    let mut seen: Vec<String> = Vec::new();
    for e in events.iter().filter(|e| e.step > from && e.step < stall.step) {
        let what = match (&e.kind, e.cpu) {
            (EventKind::Counter { .. } | EventKind::Stall { .. }, _) => continue,
            (EventKind::Wake, None) if e.point == "timer" => format!("the timer waking {}", e.task),
            (_, None) if e.task == "-" => "an I/O completion".to_string(),
            _ if e.task == stall.task => continue,
            _ => e.task.clone(),
        };
        if !seen.contains(&what) {
            seen.push(what);
        }
    }
    seen.join(", ")
}

/// [start, end] minus the `holes` (sorted, disjoint or not): the pieces
/// left, in order, each non-empty.
pub fn cut(start: u64, end: u64, holes: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut pieces = Vec::new();
    let mut from = start;
    for &(a, b) in holes {
        if b <= from || a >= end {
            continue;
        }
        if a > from {
            pieces.push((from, a));
        }
        from = from.max(b);
    }
    if from < end {
        pieces.push((from, end));
    }
    if pieces.is_empty() && start == end {
        pieces.push((start, end));
    }
    pieces
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-built event line, at cost time = timeline time.
    pub(crate) fn ev(
        step: u64,
        time: u64,
        cpu: Option<usize>,
        task: &str,
        kind: EventKind,
        lock: Option<(&str, &'static str)>,
    ) -> EventLine {
        let key = match kind {
            EventKind::Attempt | EventKind::Point => false,
            EventKind::Acquired | EventKind::Released => {
                lock.is_some_and(|(_, class)| matches!(class, "mmap_sem" | "i_sem" | "kernel_flag" | "PG_locked"))
            }
            _ => true,
        };
        EventLine {
            text: format!("{step} {time} {task}"),
            key,
            step,
            task: task.to_string(),
            what: String::new(),
            point: "test:point",
            time,
            cost: time,
            read: false,
            trylock: false,
            cpu,
            kind,
            lock: lock.map(|(instance, class)| (instance.to_string(), class)),
        }
    }

    /// The same, with a cost time of its own.
    pub(crate) fn ev_cost(mut e: EventLine, cost: u64) -> EventLine {
        e.cost = cost;
        e
    }

    #[test]
    fn holds_pair_by_task_and_instance() {
        let sem = Some(("mm#1.mmap_sem", "mmap_sem"));
        let events = vec![
            ev(1, 100, Some(0), "a", EventKind::Acquired, sem),
            ev(2, 150, Some(1), "b", EventKind::Acquired, Some(("tasklist_lock", "tasklist_lock"))),
            ev(3, 160, Some(1), "c", EventKind::Acquired, Some(("tasklist_lock", "tasklist_lock"))),
            ev(4, 170, Some(1), "c", EventKind::Released, Some(("tasklist_lock", "tasklist_lock"))),
            ev(5, 300, Some(0), "a", EventKind::Released, sem),
            ev(6, 400, Some(1), "b", EventKind::Released, Some(("tasklist_lock", "tasklist_lock"))),
        ];
        let holds = lock_holds(&events);
        let spans: Vec<_> = holds.iter().map(|h| (h.task.as_str(), h.start, h.end, h.ns)).collect();
        assert_eq!(
            spans,
            vec![("a", 100, Some((300, 5)), 200), ("b", 150, Some((400, 6)), 250), ("c", 160, Some((170, 4)), 10)]
        );
        assert!(holds[0].sleeping && !holds[1].sleeping);
    }

    #[test]
    fn a_hold_lasts_what_the_cost_model_says_not_the_stall_inside_it() {
        let tl = Some(("tasklist_lock", "tasklist_lock"));
        // a takes the lock at 100; its CPU stalls 5 µs while others run;
        // it releases 200 ns of work later (cost clock 300).
        let events = vec![
            ev(1, 100, Some(0), "a", EventKind::Acquired, tl),
            ev(2, 5_100, Some(0), "a", EventKind::Stall { from: 200, cause: StallCause::Cpu }, None),
            ev_cost(ev(2, 5_200, Some(0), "a", EventKind::Released, tl), 300),
        ];
        let holds = lock_holds(&events);
        assert_eq!((holds[0].start, holds[0].end, holds[0].ns), (100, Some((5_200, 2)), 200));
        assert_eq!(stalls(&events)[0].start, 200);
    }

    #[test]
    fn release_by_another_task_or_irq_ends_the_oldest_hold() {
        let page = Some(("page#3.PG_locked", "PG_locked"));
        let events = vec![
            ev(1, 100, Some(0), "a", EventKind::Acquired, page),
            ev(2, 500, None, "-", EventKind::Released, page),
            ev(3, 600, Some(0), "b", EventKind::Released, page), // nothing open: ignored
            ev(4, 700, Some(0), "b", EventKind::Acquired, page),
        ];
        let holds = lock_holds(&events);
        assert_eq!(holds.len(), 2);
        assert_eq!(holds[0].end, Some((500, 2)));
        assert_eq!(holds[1].end, None);
    }

    #[test]
    fn bkl_dropped_ends_the_hold() {
        let bkl = Some(("kernel_flag", "kernel_flag"));
        let events = vec![
            ev(1, 10, Some(0), "a", EventKind::Acquired, bkl),
            ev(2, 40, Some(0), "a", EventKind::BklDropped, bkl),
            ev(3, 90, Some(1), "a", EventKind::Acquired, bkl),
            ev(4, 95, Some(1), "a", EventKind::Released, bkl),
        ];
        let holds = lock_holds(&events);
        assert_eq!(
            holds.iter().map(|h| (h.start, h.end)).collect::<Vec<_>>(),
            vec![(10, Some((40, 2))), (90, Some((95, 4)))]
        );
    }

    fn trylock(mut e: EventLine) -> EventLine {
        e.trylock = true;
        e
    }

    #[test]
    fn a_wait_runs_from_the_first_contention_to_the_acquisition_across_retries() {
        let page = Some(("page#3.PG_locked", "PG_locked"));
        let sleep = EventKind::Sleep("sleeps on page#3.PG_locked".into());
        let events = vec![
            // a: TryLockPage fails, a gives up (no sleep): no wait.
            ev(1, 100, Some(0), "a", EventKind::Attempt, page),
            trylock(ev(1, 100, Some(0), "a", EventKind::Contended, page)),
            ev(3, 200, Some(0), "a", EventKind::Attempt, page),
            ev(4, 210, Some(0), "a", EventKind::Acquired, page),
            // b: lock_page contends, sleeps, gets it.
            ev(5, 300, Some(1), "b", EventKind::Attempt, page),
            ev(6, 305, Some(1), "b", EventKind::Contended, page),
            ev(7, 900, Some(1), "b", EventKind::Acquired, page),
            // c: while (TryLockPage) wait_on_page: one wait of 8 ms.
            ev(8, 1_000, Some(0), "c", EventKind::Attempt, page),
            trylock(ev(8, 1_000, Some(0), "c", EventKind::Contended, page)),
            ev(8, 1_000, Some(0), "c", sleep, page),
            ev(9, 8_001_000, Some(0), "c", EventKind::Attempt, page),
            trylock(ev(9, 8_001_000, Some(0), "c", EventKind::Acquired, page)),
        ];
        let waits = lock_waits(&events);
        let waits: Vec<(&str, u64)> = waits.iter().map(|w| (w.task.as_str(), w.ns)).collect();
        assert_eq!(waits, vec![("b", 595), ("c", 8_000_000)]);
    }

    #[test]
    fn cut_leaves_the_pieces_outside_the_holes() {
        assert_eq!(cut(0, 100, &[(10, 20), (50, 60)]), vec![(0, 10), (20, 50), (60, 100)]);
        assert_eq!(cut(0, 100, &[(0, 100)]), vec![]);
        assert_eq!(cut(5, 5, &[]), vec![(5, 5)]);
        assert_eq!(cut(0, 100, &[(90, 200)]), vec![(0, 90)]);
    }
}
