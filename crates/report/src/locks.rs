//! Lock statistics per lock class, like Linux's /proc/lock_stat.

use std::collections::BTreeMap;

use engine::EventKind;
use script::RunReport;

use crate::spans::{lock_holds, lock_waits};
use crate::table::{micros, Table};

/// Summary of a set of durations, in ns. All zero when `count` is 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    pub count: u64,
    pub min: u64,
    /// `total / count`, rounded down.
    pub avg: u64,
    pub max: u64,
    pub total: u64,
}

impl Stat {
    /// The summary of `samples` (in ns).
    pub fn of(samples: &[u64]) -> Stat {
        if samples.is_empty() {
            return Stat::default();
        }
        let total: u64 = samples.iter().sum();
        let count = samples.len() as u64;
        Stat {
            count,
            min: samples.iter().copied().min().unwrap_or(0),
            avg: total / count,
            max: samples.iter().copied().max().unwrap_or(0),
            total,
        }
    }
}

/// The statistics of one lock class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockStat {
    /// The lock class ("mmap_sem", "kernel_flag", "PG_locked", ...).
    pub class: &'static str,
    /// `Acquired` events: every acquisition, contended or not.
    pub acquisitions: u64,
    /// `Contended` events: the lock was busy when asked for.
    pub contentions: u64,
    /// From a task's `Contended` to its `Acquired` of the same lock instance;
    /// uncontended acquisitions are not counted here.
    pub wait: Stat,
    /// From a task's `Acquired` to its `Released` of the same lock instance
    /// (per reader for rwlocks; the BKL's hold ends when its holder sleeps
    /// and drops it). Holds still open when the log ends are not counted.
    pub hold: Stat,
}

/// Lock statistics per lock class, sorted by class name, from the event
/// times. Only classes with lock events (attempt, contention, acquisition,
/// release) are listed; wait queues, which are only slept on, are not.
///
/// A release by another task than the acquirer (`up` of a semaphore, the
/// I/O completion clearing a page bit) ends the oldest open hold of the
/// instance.
pub fn lock_stat(report: &RunReport) -> Vec<LockStat> {
    #[derive(Default)]
    struct Acc {
        acquisitions: u64,
        contentions: u64,
        waits: Vec<u64>,
        holds: Vec<u64>,
    }
    let mut classes: BTreeMap<&'static str, Acc> = BTreeMap::new();
    for e in &report.events {
        let Some((_, class)) = &e.lock else { continue };
        match e.kind {
            EventKind::Attempt | EventKind::Released | EventKind::BklDropped => {
                classes.entry(class).or_default();
            }
            EventKind::Contended => classes.entry(class).or_default().contentions += 1,
            EventKind::Acquired => classes.entry(class).or_default().acquisitions += 1,
            _ => {}
        }
    }
    for wait in lock_waits(&report.events) {
        classes.entry(wait.class).or_default().waits.push(wait.ns);
    }
    for hold in lock_holds(&report.events) {
        if let Some((end, _)) = hold.end {
            classes.entry(hold.class).or_default().holds.push(end - hold.start);
        }
    }
    classes
        .into_iter()
        .map(|(class, acc)| LockStat {
            class,
            acquisitions: acc.acquisitions,
            contentions: acc.contentions,
            wait: Stat::of(&acc.waits),
            hold: Stat::of(&acc.holds),
        })
        .collect()
}

/// `stats` as a fixed-width table: a title line, a header, one row per
/// class; times in µs with three decimals, `-` where nothing was measured.
pub fn render_lock_stat(stats: &[LockStat]) -> String {
    let mut table = Table::new(&[
        "class",
        "acquisitions",
        "contentions",
        "waittime-min",
        "waittime-avg",
        "waittime-max",
        "waittime-total",
        "holdtime-min",
        "holdtime-avg",
        "holdtime-max",
        "holdtime-total",
    ]);
    for s in stats {
        let mut row = vec![s.class.to_string(), s.acquisitions.to_string(), s.contentions.to_string()];
        for stat in [&s.wait, &s.hold] {
            for ns in [stat.min, stat.avg, stat.max, stat.total] {
                row.push(if stat.count == 0 { "-".to_string() } else { micros(ns) });
            }
        }
        table.row(row);
    }
    format!("lock_stat (times in µs)\n{}", table.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spans::tests::ev;
    use crate::tests::report_of;

    fn hand_built() -> RunReport {
        let sem = Some(("mm#1.mmap_sem", "mmap_sem"));
        let sem2 = Some(("mm#2.mmap_sem", "mmap_sem"));
        let bkl = Some(("kernel_flag", "kernel_flag"));
        let tl = Some(("tasklist_lock", "tasklist_lock"));
        report_of(
            &["a", "b"],
            vec![
                // a takes mm#1.mmap_sem uncontended and holds it 4 µs.
                ev(1, 1_000, Some(0), "a", EventKind::Attempt, sem),
                ev(1, 1_000, Some(0), "a", EventKind::Acquired, sem),
                // b contends for it, sleeps, gets it when a releases.
                ev(2, 1_500, Some(1), "b", EventKind::Attempt, sem),
                ev(2, 1_500, Some(1), "b", EventKind::Contended, sem),
                ev(3, 5_000, Some(0), "a", EventKind::Released, sem),
                ev(4, 6_250, Some(1), "b", EventKind::Acquired, sem),
                ev(5, 6_500, Some(1), "b", EventKind::Released, sem),
                // a takes mm#2.mmap_sem, never released: not in hold stats.
                ev(6, 7_000, Some(0), "a", EventKind::Attempt, sem2),
                ev(6, 7_000, Some(0), "a", EventKind::Acquired, sem2),
                // Two readers of tasklist_lock, each with its own hold.
                ev(7, 2_000, Some(0), "a", EventKind::Acquired, tl),
                ev(8, 2_100, Some(1), "b", EventKind::Acquired, tl),
                ev(9, 2_300, Some(1), "b", EventKind::Released, tl),
                ev(10, 2_700, Some(0), "a", EventKind::Released, tl),
                // The BKL, dropped on a sleep and taken back.
                ev(11, 8_000, Some(0), "a", EventKind::Attempt, bkl),
                ev(11, 8_010, Some(0), "a", EventKind::Acquired, bkl),
                ev(12, 8_020, Some(0), "a", EventKind::BklDropped, bkl),
                ev(13, 9_000, Some(0), "a", EventKind::Attempt, bkl),
                ev(13, 9_001, Some(0), "a", EventKind::Acquired, bkl),
                ev(14, 9_101, Some(0), "a", EventKind::Released, bkl),
                // A wait queue is only slept on.
                ev(
                    15,
                    9_200,
                    Some(0),
                    "a",
                    EventKind::Sleep("sleeps on kswapd_wait".into()),
                    Some(("kswapd_wait", "kswapd_wait")),
                ),
            ],
        )
    }

    #[test]
    fn stats_per_class() {
        let stats = lock_stat(&hand_built());
        let classes: Vec<&str> = stats.iter().map(|s| s.class).collect();
        assert_eq!(classes, vec!["kernel_flag", "mmap_sem", "tasklist_lock"]);
        assert_eq!(
            stats[0],
            LockStat {
                class: "kernel_flag",
                acquisitions: 2,
                contentions: 0,
                wait: Stat::default(),
                hold: Stat { count: 2, min: 10, avg: 55, max: 100, total: 110 },
            }
        );
        assert_eq!(
            stats[1],
            LockStat {
                class: "mmap_sem",
                acquisitions: 3,
                contentions: 1,
                wait: Stat { count: 1, min: 4_750, avg: 4_750, max: 4_750, total: 4_750 },
                hold: Stat { count: 2, min: 250, avg: 2_125, max: 4_000, total: 4_250 },
            }
        );
        assert_eq!(stats[2].hold, Stat { count: 2, min: 200, avg: 450, max: 700, total: 900 });
        assert_eq!(stats[2].acquisitions, 2);
    }

    #[test]
    fn rendered_table() {
        let text = render_lock_stat(&lock_stat(&hand_built()));
        let expected = "\
lock_stat (times in µs)
class          acquisitions  contentions  waittime-min  waittime-avg  waittime-max  waittime-total  holdtime-min  holdtime-avg  holdtime-max  holdtime-total
kernel_flag               2            0             -             -             -               -         0.010         0.055         0.100           0.110
mmap_sem                  3            1         4.750         4.750         4.750           4.750         0.250         2.125         4.000           4.250
tasklist_lock             2            0             -             -             -               -         0.200         0.450         0.700           0.900
";
        assert_eq!(text, expected);
    }

    #[test]
    fn stat_of_samples() {
        assert_eq!(Stat::of(&[]), Stat::default());
        assert_eq!(Stat::of(&[3, 1, 2]), Stat { count: 3, min: 1, avg: 2, max: 3, total: 6 });
        assert_eq!(Stat::of(&[1, 2]).avg, 1);
    }

    #[test]
    fn race1_lock_stat_has_the_bkl_and_mmap_sem() {
        let report = crate::tests::race1_report();
        let stats = lock_stat(&report);
        let bkl = stats.iter().find(|s| s.class == "kernel_flag").expect("the BKL is in lock_stat");
        assert!(bkl.acquisitions > 0);
        assert!(bkl.hold.count > 0 && bkl.hold.min <= bkl.hold.avg && bkl.hold.avg <= bkl.hold.max);
        assert!(stats.windows(2).all(|w| w[0].class < w[1].class), "sorted by class");
        for s in &stats {
            assert!(s.wait.count <= s.contentions, "{s:?}");
            assert!(s.hold.count <= s.acquisitions, "{s:?}");
        }
        let text = render_lock_stat(&stats);
        assert!(text.lines().any(|l| l.starts_with("kernel_flag ")), "{text}");
    }
}
