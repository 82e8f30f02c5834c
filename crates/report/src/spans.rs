//! Pairing events into intervals: lock holds (Acquired → Released) and lock
//! waits (Contended → Acquired). Shared by the trace and the lock statistics.

use std::collections::{BTreeMap, BTreeSet};

use engine::EventKind;
use script::run::EventLine;

/// One lock hold: from an `Acquired` to the matching `Released` (or, for the
/// big kernel lock, `BklDropped`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hold {
    pub task: String,
    pub instance: String,
    pub class: &'static str,
    /// Whether the holder may sleep with it (a semaphore, the page bit, the
    /// BKL): the `key` flag of the `Acquired` event.
    pub sleeping: bool,
    pub start: u64,
    pub start_step: u64,
    /// `None`: still held when the log ends.
    pub end: Option<(u64, u64)>,
}

/// Pairs every `Acquired` with the release of the same lock instance by the
/// same task (each reader of an rwlock separately). A release by a task
/// that holds nothing of that instance — `up` of a semaphore by another task,
/// or the I/O completion clearing a page bit (task "-") — ends the oldest
/// open hold of the instance. Releases with no open hold (their acquisition
/// was dropped from the front of the log) are ignored. An end earlier than
/// the start (CPU clocks are per CPU) is clamped to the start.
pub(crate) fn lock_holds(events: &[EventLine]) -> Vec<Hold> {
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
                    start: e.time,
                    start_step: e.step,
                    end: None,
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
                hold.end = Some((e.time.max(hold.start), e.step));
            }
            _ => {}
        }
    }
    holds
}

/// One wait for a lock: from a task's `Contended` to its `Acquired` of the
/// same instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    pub class: &'static str,
    pub ns: u64,
}

/// Every completed wait. An `Attempt` starts afresh (a failed
/// `TryLockPage` logs `Contended` and never acquires).
pub(crate) fn lock_waits(events: &[EventLine]) -> Vec<Wait> {
    let mut pending: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut waits = Vec::new();
    for e in events {
        let Some((instance, class)) = &e.lock else { continue };
        let key = (e.task.clone(), instance.clone());
        match e.kind {
            EventKind::Attempt => {
                pending.remove(&key);
            }
            EventKind::Contended => {
                pending.entry(key).or_insert(e.time);
            }
            EventKind::Acquired => {
                if let Some(since) = pending.remove(&key) {
                    waits.push(Wait { class, ns: e.time.saturating_sub(since) });
                }
            }
            _ => {}
        }
    }
    waits
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-built event line.
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
            cpu,
            kind,
            lock: lock.map(|(instance, class)| (instance.to_string(), class)),
        }
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
        let spans: Vec<_> = holds.iter().map(|h| (h.task.as_str(), h.start, h.end)).collect();
        assert_eq!(spans, vec![("a", 100, Some((300, 5))), ("b", 150, Some((400, 6))), ("c", 160, Some((170, 4)))]);
        assert!(holds[0].sleeping && !holds[1].sleeping);
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

    #[test]
    fn waits_run_from_contended_to_acquired_and_attempt_resets() {
        let page = Some(("page#3.PG_locked", "PG_locked"));
        let events = vec![
            ev(1, 100, Some(0), "a", EventKind::Attempt, page),
            ev(2, 100, Some(0), "a", EventKind::Contended, page), // TryLockPage failed
            ev(3, 200, Some(0), "a", EventKind::Attempt, page),
            ev(4, 210, Some(0), "a", EventKind::Acquired, page), // uncontended: no wait
            ev(5, 300, Some(1), "b", EventKind::Attempt, page),
            ev(6, 305, Some(1), "b", EventKind::Contended, page),
            ev(7, 900, Some(1), "b", EventKind::Acquired, page),
        ];
        assert_eq!(lock_waits(&events), vec![Wait { class: "PG_locked", ns: 595 }]);
    }
}
