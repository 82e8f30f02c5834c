//! Lock statistics per lock class, as Linux's /proc/lock_stat prints them
//! (Documentation/locking/lockstat.rst, version 0.4; the layout is
//! kernel/locking/lockdep_proc.c's `seq_header` and `seq_stats`).
//!
//! The kernel's hooks map onto the event log: `lock_contended` is a task's
//! first `Contended` of a wait, `lock_acquired` its `Acquired`, and the
//! hold ends at `Released` (or `BklDropped`). Waits and holds are the cost
//! model's durations (no stall in them: docs/timing.md). Contention points
//! are the named points where tasks waited; "contended with" points (the
//! kernel's `contending_point`) are where the holder had taken the lock.
//! A bounce is a contention or an acquisition on another CPU than the one
//! that last acquired the instance (the kernel's `lock->cpu`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use engine::EventKind;
use script::RunReport;

use crate::spans::{lock_holds, lock_waits};

/// How many contention points (and "contended with" points) a class
/// keeps: the kernel's LOCKSTAT_POINTS.
pub const LOCKSTAT_POINTS: usize = 4;

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
        let mut stat = Stat::default();
        for &s in samples {
            stat.add(Stat { count: 1, min: s, avg: s, max: s, total: s });
        }
        stat
    }

    /// Both sets of samples together.
    pub fn add(&mut self, other: Stat) {
        if other.count == 0 {
            return;
        }
        self.min = if self.count == 0 { other.min } else { self.min.min(other.min) };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.total += other.total;
        self.avg = self.total / self.count;
    }
}

/// One side (write/exclusive, or read) of a class's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Side {
    pub con_bounces: u64,
    /// The waits (the `contentions` column is their count).
    pub wait: Stat,
    pub acq_bounces: u64,
    /// The completed holds (the `acquisitions` column is their count, as
    /// the kernel's holdtime `nr`).
    pub hold: Stat,
}

impl Side {
    fn add(&mut self, other: &Side) {
        self.con_bounces += other.con_bounces;
        self.wait.add(other.wait);
        self.acq_bounces += other.acq_bounces;
        self.hold.add(other.hold);
    }
}

/// The statistics of one lock class.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockStat {
    /// The lock class ("mmap_sem", "kernel_flag", "PG_locked", ...).
    pub class: &'static str,
    /// Exclusive use: spinlocks, semaphores, the page bit, the BKL, the
    /// write side of an rwlock.
    pub write: Side,
    /// The read side of an rwlock.
    pub read: Side,
    /// Up to four named points where tasks waited, with counts, in the
    /// order first seen.
    pub contention_points: Vec<(&'static str, u64)>,
    /// Up to four named points where the holder had taken the lock when a
    /// task waited, with counts.
    pub contending_points: Vec<(&'static str, u64)>,
}

impl LockStat {
    /// Contentions on both sides (the sort key).
    pub fn contentions(&self) -> u64 {
        self.write.wait.count + self.read.wait.count
    }

    /// Fold in another run's statistics of the same class.
    pub fn add(&mut self, other: &LockStat) {
        self.write.add(&other.write);
        self.read.add(&other.read);
        for (mine, theirs) in [
            (&mut self.contention_points, &other.contention_points),
            (&mut self.contending_points, &other.contending_points),
        ] {
            for &(point, n) in theirs {
                count_point(mine, point, n);
            }
        }
    }
}

/// Count `n` at `point` if it is one of the first four seen (as the
/// kernel's `lock_point`: a fifth point is not counted).
fn count_point(points: &mut Vec<(&'static str, u64)>, point: &'static str, n: u64) {
    if let Some(slot) = points.iter_mut().find(|(p, _)| *p == point) {
        slot.1 += n;
    } else if points.len() < LOCKSTAT_POINTS {
        points.push((point, n));
    }
}

/// Lock statistics per lock class, sorted as /proc/lock_stat is: by
/// contentions, most first (ties by class name). Only classes with lock
/// events (attempt, contention, acquisition, release) are listed; wait
/// queues, which are only slept on, are not.
pub fn lock_stat(report: &RunReport) -> Vec<LockStat> {
    let mut classes: BTreeMap<&'static str, LockStat> = BTreeMap::new();
    // Per instance: the CPU and named point of its last acquisition.
    let mut last: BTreeMap<&str, (Option<usize>, &'static str)> = BTreeMap::new();
    // Per (task, instance): a wait is open (only its first contention counts).
    let mut waiting: std::collections::BTreeSet<(&str, &str)> = Default::default();
    for e in &report.events {
        let Some((instance, class)) = &e.lock else { continue };
        let lock_event = matches!(
            e.kind,
            EventKind::Attempt
                | EventKind::Contended
                | EventKind::Acquired
                | EventKind::Released
                | EventKind::BklDropped
        );
        if !lock_event {
            continue;
        }
        let stat = classes.entry(class).or_insert_with(|| LockStat { class, ..Default::default() });
        let side = if e.read { &mut stat.read } else { &mut stat.write };
        let previous = last.get(instance.as_str()).copied();
        let bounced = previous.is_some_and(|(cpu, _)| cpu.is_some() && cpu != e.cpu);
        match e.kind {
            EventKind::Contended if waiting.insert((&e.task, instance)) => {
                if bounced {
                    side.con_bounces += 1;
                }
                count_point(&mut stat.contention_points, e.point, 1);
                if let Some((_, held_at)) = previous {
                    count_point(&mut stat.contending_points, held_at, 1);
                }
            }
            EventKind::Acquired => {
                waiting.remove(&(e.task.as_str(), instance.as_str()));
                if bounced {
                    side.acq_bounces += 1;
                }
                last.insert(instance, (e.cpu, e.point));
            }
            _ => {}
        }
    }
    for wait in lock_waits(&report.events) {
        let stat = classes.get_mut(wait.class).expect("a waited-for class has events");
        let side = if wait.read { &mut stat.read } else { &mut stat.write };
        side.wait.add(Stat::of(&[wait.ns]));
    }
    for hold in lock_holds(&report.events).into_iter().filter(|h| h.end.is_some()) {
        let stat = classes.get_mut(hold.class).expect("a held class has events");
        let side = if hold.read { &mut stat.read } else { &mut stat.write };
        side.hold.add(Stat::of(&[hold.ns]));
    }
    sorted(classes.into_values().collect())
}

/// The statistics of many runs (seeds, or the runs of a sweep point)
/// together, sorted as [`lock_stat`] sorts.
pub fn lock_stat_total<'a>(runs: impl IntoIterator<Item = &'a [LockStat]>) -> Vec<LockStat> {
    let mut classes: BTreeMap<&'static str, LockStat> = BTreeMap::new();
    for run in runs {
        for s in run {
            classes.entry(s.class).or_insert_with(|| LockStat { class: s.class, ..Default::default() }).add(s);
        }
    }
    sorted(classes.into_values().collect())
}

fn sorted(mut stats: Vec<LockStat>) -> Vec<LockStat> {
    stats.sort_by(|a, b| b.contentions().cmp(&a.contentions()).then(a.class.cmp(b.class)));
    stats
}

/// ns as the kernel's `snprint_time` prints them: µs with two decimals,
/// rounded to the nearest 10 ns.
pub fn lock_stat_time(ns: u64) -> String {
    let rounded = ns + 5;
    format!("{}.{:02}", rounded / 1000, (rounded % 1000) / 10)
}

/// A stable stand-in for a call site's address in the `[<...>]` column:
/// the FNV-1a hash of the named point (the point itself is the symbol).
fn point_address(point: &str) -> String {
    let hash = point.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("[<{hash:016x}>]")
}

const WIDTH: usize = 40 + 1 + 12 * (14 + 1);

/// `stats` as /proc/lock_stat prints them (version 0.4): the version line,
/// the header between two rules, and per class a row per side used
/// (`name:`, or `name-W:` and `name-R:` for an rwlock taken for reading),
/// then, if it was contended, its contention points and "contended with"
/// points (each `name count [<address>] point`) and a dotted rule. Times in
/// µs as the kernel rounds them.
pub fn render_lock_stat(stats: &[LockStat]) -> String {
    let mut out = String::from("lock_stat version 0.4\n");
    let rule = |out: &mut String, c: char, offset: usize, length: usize| {
        out.push_str(&" ".repeat(offset));
        out.extend(std::iter::repeat_n(c, length));
        out.push('\n');
    };
    rule(&mut out, '-', 0, WIDTH);
    let _ = writeln!(
        out,
        "{:>40} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}",
        "class name",
        "con-bounces",
        "contentions",
        "waittime-min",
        "waittime-max",
        "waittime-total",
        "waittime-avg",
        "acq-bounces",
        "acquisitions",
        "holdtime-min",
        "holdtime-max",
        "holdtime-total",
        "holdtime-avg"
    );
    rule(&mut out, '-', 0, WIDTH);
    out.push('\n');
    for s in stats {
        // The kernel truncates a name to 37 characters (snprintf into 38).
        let name: String = s.class.chars().take(37).collect();
        let both = s.read.hold.count > 0;
        let side_row = |out: &mut String, label: &str, side: &Side| {
            let _ = write!(out, "{label}{:>14} ", side.con_bounces);
            lock_time(out, &side.wait);
            let _ = write!(out, " {:>14} ", side.acq_bounces);
            lock_time(out, &side.hold);
            out.push('\n');
        };
        if s.write.hold.count > 0 {
            let label = if both { format!("{:>38}-W:", name) } else { format!("{:>40}:", name) };
            side_row(&mut out, &label, &s.write);
        }
        if both {
            side_row(&mut out, &format!("{:>38}-R:", name), &s.read);
        }
        if s.contentions() == 0 {
            continue;
        }
        let namelen = name.chars().count() + if both { 2 } else { 0 };
        let offset = 40usize.saturating_sub(namelen);
        let mut any = false;
        for points in [&s.contention_points, &s.contending_points] {
            for (i, &(point, n)) in points.iter().enumerate() {
                if i == 0 {
                    rule(&mut out, '-', offset, namelen);
                }
                let _ = writeln!(out, "{name:>40} {n:>14} {:>29} {point}", point_address(point));
                any = true;
            }
        }
        if any {
            out.push('\n');
            rule(&mut out, '.', 0, WIDTH);
            out.push('\n');
        }
    }
    out
}

/// The kernel's `seq_lock_time`: the count, then min, max, total, avg.
fn lock_time(out: &mut String, stat: &Stat) {
    let _ = write!(out, "{:>14}", stat.count);
    for ns in [stat.min, stat.max, stat.total, stat.total.checked_div(stat.count).unwrap_or(0)] {
        let _ = write!(out, " {:>14}", lock_time_text(ns));
    }
}

fn lock_time_text(ns: u64) -> String {
    lock_stat_time(ns)
}

/// The columns of [`lock_stat_csv`].
pub const LOCK_STAT_CSV_HEADER: [&str; 14] = [
    "class",
    "side",
    "con_bounces",
    "contentions",
    "waittime_min_ns",
    "waittime_max_ns",
    "waittime_total_ns",
    "waittime_avg_ns",
    "acq_bounces",
    "acquisitions",
    "holdtime_min_ns",
    "holdtime_max_ns",
    "holdtime_total_ns",
    "holdtime_avg_ns",
];

/// `stats` as CSV: one row per class and side used (`side` is `w`, or `r`
/// for an rwlock's read side), times in ns, in the order of `stats`.
pub fn lock_stat_csv(stats: &[LockStat]) -> String {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    let mut write = |record: &[String]| writer.write_record(record).expect("writing CSV into memory cannot fail");
    write(&LOCK_STAT_CSV_HEADER.map(String::from));
    for s in stats {
        for (label, side) in [("w", &s.write), ("r", &s.read)] {
            if label == "r" && side.hold.count == 0 && side.wait.count == 0 {
                continue;
            }
            let mut row = vec![s.class.to_string(), label.to_string(), side.con_bounces.to_string()];
            row.extend(
                [side.wait.count, side.wait.min, side.wait.max, side.wait.total, side.wait.avg].map(|n| n.to_string()),
            );
            row.push(side.acq_bounces.to_string());
            row.extend(
                [side.hold.count, side.hold.min, side.hold.max, side.hold.total, side.hold.avg].map(|n| n.to_string()),
            );
            write(&row);
        }
    }
    let bytes = writer.into_inner().expect("flushing CSV into memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 fields is UTF-8")
}

/// `stats` as JSON (an array, one object per class, times in ns).
pub fn lock_stat_json(stats: &[LockStat]) -> String {
    use serde_json::json;
    let side = |s: &Side| {
        json!({
            "con_bounces": s.con_bounces,
            "contentions": s.wait.count,
            "waittime_ns": {"min": s.wait.min, "max": s.wait.max, "total": s.wait.total, "avg": s.wait.avg},
            "acq_bounces": s.acq_bounces,
            "acquisitions": s.hold.count,
            "holdtime_ns": {"min": s.hold.min, "max": s.hold.max, "total": s.hold.total, "avg": s.hold.avg},
        })
    };
    let points = |p: &[(&str, u64)]| p.iter().map(|(point, n)| json!({"point": point, "count": n})).collect::<Vec<_>>();
    let classes: Vec<serde_json::Value> = stats
        .iter()
        .map(|s| {
            json!({
                "class": s.class,
                "write": side(&s.write),
                "read": side(&s.read),
                "contention_points": points(&s.contention_points),
                "contending_points": points(&s.contending_points),
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&serde_json::json!({ "lock_stat": classes }))
        .expect("JSON of plain values cannot fail");
    text.push('\n');
    text
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
        let read = |mut e: script::run::EventLine| {
            e.read = true;
            e
        };
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
                // Two readers of tasklist_lock, each with its own hold, and a writer.
                read(ev(7, 2_000, Some(0), "a", EventKind::Acquired, tl)),
                read(ev(8, 2_100, Some(1), "b", EventKind::Acquired, tl)),
                read(ev(9, 2_300, Some(1), "b", EventKind::Released, tl)),
                read(ev(10, 2_700, Some(0), "a", EventKind::Released, tl)),
                ev(10, 2_800, Some(1), "b", EventKind::Acquired, tl),
                ev(10, 2_900, Some(1), "b", EventKind::Released, tl),
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
    fn stats_per_class_sorted_by_contentions() {
        let stats = lock_stat(&hand_built());
        let classes: Vec<&str> = stats.iter().map(|s| s.class).collect();
        assert_eq!(classes, vec!["mmap_sem", "kernel_flag", "tasklist_lock"]);
        let mmap = &stats[0];
        assert_eq!(mmap.write.wait, Stat { count: 1, min: 4_750, avg: 4_750, max: 4_750, total: 4_750 });
        assert_eq!(mmap.write.hold, Stat { count: 2, min: 250, avg: 2_125, max: 4_000, total: 4_250 });
        // b contended on cpu1 for an instance last taken on cpu0, and took it there.
        assert_eq!((mmap.write.con_bounces, mmap.write.acq_bounces), (1, 1));
        assert_eq!(mmap.contention_points, vec![("test:point", 1)]);
        assert_eq!(mmap.contending_points, vec![("test:point", 1)]);
        assert_eq!(stats[1].write.hold, Stat { count: 2, min: 10, avg: 55, max: 100, total: 110 });
        let tl = &stats[2];
        assert_eq!(tl.read.hold, Stat { count: 2, min: 200, avg: 450, max: 700, total: 900 });
        assert_eq!(tl.write.hold.count, 1);
    }

    #[test]
    fn the_kernel_rounds_times_to_10_ns() {
        assert_eq!(lock_stat_time(0), "0.00");
        assert_eq!(lock_stat_time(939_100), "939.10");
        assert_eq!(lock_stat_time(4_994), "4.99");
        assert_eq!(lock_stat_time(4_995), "5.00");
        assert_eq!(lock_stat_time(8_005_000_123), "8005000.12");
    }

    #[test]
    fn rendered_as_proc_lock_stat() {
        let text = render_lock_stat(&lock_stat(&hand_built()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "lock_stat version 0.4");
        assert_eq!(lines[1], "-".repeat(221));
        assert!(lines[2].starts_with("                              class name    con-bounces    contentions"));
        assert_eq!(lines[2].len(), 220);
        assert_eq!(lines[4], "");
        assert_eq!(
            lines[5],
            format!(
                "{:>40}:{:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}",
                "mmap_sem", 1, 1, "4.75", "4.75", "4.75", "4.75", 1, 2, "0.25", "4.00", "4.25", "2.13"
            )
        );
        assert_eq!(lines[6], format!("{}{}", " ".repeat(32), "-".repeat(8)));
        assert!(lines[7].ends_with(" test:point") && lines[7].contains("[<"), "{}", lines[7]);
        assert!(text.contains("                         tasklist_lock-W:"), "{text}");
        assert!(text.contains("                         tasklist_lock-R:"), "{text}");
    }

    #[test]
    fn totals_add_counts_and_keep_the_extremes() {
        let one = lock_stat(&hand_built());
        let total = lock_stat_total([one.as_slice(), one.as_slice()]);
        assert_eq!(total[0].write.wait, Stat { count: 2, min: 4_750, avg: 4_750, max: 4_750, total: 9_500 });
        assert_eq!(total[0].contention_points, vec![("test:point", 2)]);
        assert_eq!(total.len(), one.len());
    }

    #[test]
    fn csv_and_json() {
        let stats = lock_stat(&hand_built());
        let csv = lock_stat_csv(&stats);
        assert!(csv.starts_with("class,side,con_bounces,contentions,"), "{csv}");
        assert!(csv.contains("\nmmap_sem,w,1,1,4750,4750,4750,4750,1,2,250,4000,4250,2125\n"), "{csv}");
        assert!(csv.contains("\ntasklist_lock,r,"), "{csv}");
        let json: serde_json::Value = serde_json::from_str(&lock_stat_json(&stats)).unwrap();
        assert_eq!(json["lock_stat"][0]["class"], "mmap_sem");
        assert_eq!(json["lock_stat"][0]["write"]["contentions"], 1);
    }

    #[test]
    fn race1_lock_stat_has_the_bkl_and_mmap_sem() {
        let report = crate::tests::race1_report();
        let stats = lock_stat(&report);
        let bkl = stats.iter().find(|s| s.class == "kernel_flag").expect("the BKL is in lock_stat");
        assert!(bkl.write.hold.count > 0 && bkl.write.hold.min <= bkl.write.hold.avg);
        assert!(stats.windows(2).all(|w| w[0].contentions() >= w[1].contentions()), "sorted by contentions");
        let text = render_lock_stat(&stats);
        assert!(text.lines().any(|l| l.trim_start().starts_with("kernel_flag:")), "{text}");
    }
}
