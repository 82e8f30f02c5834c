//! One timeline: over every scenario and every mode (random, pct, dfs,
//! replay, timed) event times never decrease, and no lock hold or wait
//! includes a stall; the stats and trace goldens; /proc/lock_stat parsed by
//! a parser written for the kernel's file; traces of pct finds.

use std::collections::BTreeMap;

use script::run::EventLine;
use script::{RunOptions, Strategy};

use crate::{root, swapsim};

/// The run modes, each as options for a seed.
fn modes(report_choices: &[u32]) -> Vec<(&'static str, RunOptions)> {
    let fixes = kernel::Variant::Pre4.fixes();
    let base = || RunOptions { max_steps: Some(2_000), ..RunOptions::new(fixes, 1) };
    vec![
        ("random", base()),
        ("pct", RunOptions { strategy: Strategy::Pct { depth: 3, steps: 200 }, ..base() }),
        ("timed", RunOptions { strategy: Strategy::Timed, ..base() }),
        ("dfs", RunOptions { dfs: Some(engine::DfsPlan::default()), ..base() }),
        ("replay", RunOptions { schedule: Some(report_choices.to_vec()), ..base() }),
    ]
}

/// The stalls of `task` within [start, end], in ns (overlaps once).
fn stalled_within(stalls: &[report::spans::Stall], task: &str, start: u64, end: u64) -> u64 {
    report::spans::stalled_within(stalls.iter(), task, start, end)
}

/// The checks of one run's event log.
fn check_one_timeline(what: &str, events: &[EventLine]) {
    // Event times never decrease, so no CPU runs behind an event it saw.
    for w in events.windows(2) {
        assert!(w[0].time <= w[1].time, "{what}: time goes back:\n{}\n{}", w[0].text, w[1].text);
    }
    // A stall is a span that ends at its event.
    let stalls = report::spans::stalls(events);
    for s in &stalls {
        assert!(s.start < s.end, "{what}: empty stall {s:?}");
    }
    // No hold or wait includes a stall: its length is at most its span on
    // the timeline less the stalls of its task in that span.
    for h in report::spans::lock_holds(events) {
        let Some((end, _)) = h.end else { continue };
        // An I/O holds a page it reads or writes; the task is free meanwhile,
        // so only the I/O's lateness is a stall of that hold.
        let own: Vec<report::spans::Stall> = if h.by_irq {
            stalls.iter().filter(|s| s.cause == engine::StallCause::IoLate).cloned().collect()
        } else {
            stalls.clone()
        };
        let room = (end - h.start) - stalled_within(&own, &h.task, h.start, end);
        assert!(
            h.ns <= room,
            "{what}: hold of {} by {} ({} ns) includes a stall ({room} ns free)",
            h.instance,
            h.task,
            h.ns
        );
    }
    for w in report::spans::lock_waits(events) {
        let room = (w.end - w.start) - stalled_within(&stalls, &w.task, w.start, w.end);
        assert!(
            w.ns <= room,
            "{what}: wait for {} by {} ({} ns) includes a stall ({room} ns free)",
            w.class,
            w.task,
            w.ns
        );
    }
}

#[test]
fn every_scenario_in_every_mode_keeps_one_timeline_and_no_hold_or_wait_includes_a_stall() {
    let mut scenarios: Vec<_> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    scenarios.sort();
    assert!(scenarios.len() >= 10);
    let mut stalls_seen = 0;
    for path in &scenarios {
        let source = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let runner = script::run::Runner::new(&name, &source, Default::default()).unwrap();
        let first = runner.run(&modes(&[])[0].1).unwrap();
        for (mode, options) in modes(&first.choices) {
            let report = runner.run(&options).unwrap_or_else(|e| panic!("{name} {mode}: {e}"));
            let what = format!("{name} ({mode})");
            check_one_timeline(&what, &report.events);
            stalls_seen += report::spans::stalls(&report.events).len();
            assert!(report.timeline_ns >= report.events.last().map(|e| e.time).unwrap_or(0), "{what}");
        }
    }
    assert!(stalls_seen > 0, "some schedule needs a stall");
}

#[test]
fn a_stall_inside_a_hold_is_its_own_span_not_hold_time() {
    // race 1, pre4, seed 3: the parent is held back ~8 ms inside fork while
    // swapoff's read completes; it holds mm#1.mmap_sem across it.
    let source = std::fs::read_to_string(root().join("scenarios/race1_fork.lua")).unwrap();
    let report =
        script::run::run("race1_fork.lua", &source, &RunOptions::new(kernel::Variant::Pre4.fixes(), 3)).unwrap();
    let stalls = report::spans::stalls(&report.events);
    let long = stalls.iter().find(|s| s.task == "parent" && s.end - s.start > 7_000_000).expect("the 8 ms stall");
    let holds = report::spans::lock_holds(&report.events);
    let across: Vec<_> = holds.iter().filter(|h| h.task == "parent" && h.start <= long.start).collect();
    assert!(across.iter().any(|h| h.end.is_none_or(|(end, _)| end >= long.end)), "a hold spans the stall");
    for h in across.iter().filter(|h| h.end.is_some()) {
        assert!(h.ns < 1_000_000, "{h:?}");
    }
    let text = report::timing_assumptions(&report, 5);
    assert!(text.contains("parent is held back 7.99"), "{text}");
}

#[test]
fn the_violation_report_states_the_timing_its_interleaving_needs() {
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seed", "3"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("timing:   the interleaving needs 3 stalls the cost model does not have"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("(the cost model has it go on at 16.235440ms); meanwhile: the timer waking swapoff"),
        "{}",
        run.stdout
    );
}

#[test]
fn waits_are_kept_across_retries() {
    // race 4 patched, seed 1: find_lock_page's TryLockPage fails, it waits
    // on the page and retries: one wait on PG_locked, from the failed try
    // to the acquisition (the schedule ran the 8 ms read before the try,
    // so on the timeline it is a stall before it, not part of the wait).
    let run = swapsim(&["run", "scenarios/race4_shm.lua", "--kernel", "patched", "--seed", "1", "--stats"]);
    let row = run.stdout.lines().find(|l| l.trim_start().starts_with("PG_locked:")).expect("a PG_locked row");
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(fields[2], "1", "one contention: {row}");
    assert_ne!(fields[3], "0.00", "and its wait: {row}");
    assert!(run.stdout.contains("find_lock_page:TryLockPage"), "its contention point: {}", run.stdout);
}

/// A parser for /proc/lock_stat as the kernel writes it (version 0.4,
/// kernel/locking/lockdep_proc.c): the version line, an optional warning,
/// a rule, the header, a rule, a blank line, then per class its rows
/// (`name:` or `name-W:`/`name-R:`, 12 numbers), and for a contended class
/// a short rule under the name, its contention points and "contended with"
/// points (`name count [<address>] symbol`), a blank line, a dotted rule
/// and a blank line.
mod proc_lock_stat {
    use std::collections::BTreeMap;

    pub const COLUMNS: [&str; 13] = [
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
        "holdtime-avg",
    ];

    #[derive(Debug, Default)]
    pub struct Row {
        pub counts: [u64; 4],
        /// µs, two decimals as printed.
        pub times: [f64; 8],
    }

    #[derive(Debug, Default)]
    pub struct Class {
        /// "" for a plain lock, "W" or "R" for an rwlock's sides.
        pub rows: BTreeMap<String, Row>,
        pub points: Vec<(u64, String, String)>,
    }

    fn time(field: &str) -> Result<f64, String> {
        let (whole, frac) = field.split_once('.').ok_or(format!("time without decimals: {field}"))?;
        if frac.len() != 2 || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("not a lock_stat time: {field}"));
        }
        field.parse().map_err(|e| format!("{field}: {e}"))
    }

    /// Parse the file: classes in file order.
    pub fn parse(text: &str) -> Result<Vec<(String, Class)>, String> {
        let mut lines = text.lines().peekable();
        if lines.next() != Some("lock_stat version 0.4") {
            return Err("no version line".into());
        }
        if lines.peek().is_some_and(|l| l.starts_with("*WARNING*")) {
            lines.next();
        }
        let rule = lines.next().ok_or("no rule")?;
        if rule.len() != 40 + 1 + 12 * 15 || !rule.bytes().all(|b| b == b'-') {
            return Err(format!("bad rule: {rule:?}"));
        }
        let header = lines.next().ok_or("no header")?;
        let mut rest = header;
        for (i, column) in COLUMNS.iter().enumerate() {
            let width = if i == 0 { 40 } else { 15 };
            let (cell, tail) = rest.split_at(width.min(rest.len()));
            if cell.trim() != *column {
                return Err(format!("header column {i}: {cell:?} is not {column:?}"));
            }
            rest = tail;
        }
        if lines.next() != Some(rule) || lines.next() != Some("") {
            return Err("header not closed by a rule and a blank line".into());
        }
        let mut classes: Vec<(String, Class)> = Vec::new();
        for line in lines {
            if line.is_empty() || line.bytes().all(|b| b == b'.') || line.trim_start().bytes().all(|b| b == b'-') {
                continue;
            }
            if let Some(colon) = line[..41.min(line.len())].rfind(':') {
                // A stats row: the name right-aligned in 40 columns, ':', 12 numbers.
                let name = line[..colon].trim();
                let fields: Vec<&str> = line[colon + 1..].split_whitespace().collect();
                if fields.len() != 12 {
                    return Err(format!("{} fields in {line:?}", fields.len()));
                }
                let (class, side) = match name.rsplit_once('-') {
                    Some((class, side @ ("W" | "R"))) => (class, side),
                    _ => (name, ""),
                };
                let mut row = Row::default();
                let count = |s: &str| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
                row.counts = [count(fields[0])?, count(fields[1])?, count(fields[6])?, count(fields[7])?];
                for (i, f) in fields[2..6].iter().chain(&fields[8..12]).enumerate() {
                    row.times[i] = time(f)?;
                }
                if classes.last().is_none_or(|(c, _)| c != class) {
                    classes.push((class.to_string(), Class::default()));
                }
                classes.last_mut().unwrap().1.rows.insert(side.to_string(), row);
            } else {
                // A contention point: name, count, [<address>], symbol.
                let fields: Vec<&str> = line.split_whitespace().collect();
                let [name, count, address, symbol] = fields[..] else {
                    return Err(format!("not a contention point: {line:?}"));
                };
                if !(address.starts_with("[<") && address.ends_with(">]")) {
                    return Err(format!("bad address in {line:?}"));
                }
                let (class, c) = classes.last_mut().ok_or("a point before any class")?;
                if class != name {
                    return Err(format!("point of {name} under {class}"));
                }
                c.points.push((
                    count.parse().map_err(|_| format!("count in {line:?}"))?,
                    address.into(),
                    symbol.into(),
                ));
            }
        }
        Ok(classes)
    }

    /// The kernel's sort: contentions (both sides), most first.
    pub fn contentions(class: &Class) -> u64 {
        class.rows.values().map(|r| r.counts[1]).sum()
    }

    pub fn by_name(classes: &[(String, Class)]) -> BTreeMap<&str, &Class> {
        classes.iter().map(|(n, c)| (n.as_str(), c)).collect()
    }
}

#[test]
fn lock_stat_parses_with_a_parser_for_the_real_proc_lock_stat() {
    // A file as the kernel writes it (made-up numbers, the kernel's layout).
    let rule = "-".repeat(221);
    let mut kernel_file = format!("lock_stat version 0.4\n{rule}\n");
    kernel_file += &format!("{:>40}", "class name");
    for c in &proc_lock_stat::COLUMNS[1..] {
        kernel_file += &format!(" {c:>14}");
    }
    kernel_file += &format!("\n{rule}\n\n");
    kernel_file += &format!(
        "{:>38}-W:{:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}\n",
        "&mm->mmap_sem",
        46,
        84,
        "0.26",
        "939.10",
        "16371.53",
        "194.90",
        47291,
        2922365,
        "0.16",
        "2220301.69",
        "17464026916.32",
        "5975.99"
    );
    kernel_file += &format!(
        "{:>38}-R:{:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14} {:>14}\n",
        "&mm->mmap_sem",
        37,
        100,
        "1.31",
        "299502.61",
        "325629.52",
        "3256.30",
        212344,
        34316685,
        "0.10",
        "7744.91",
        "95016910.20",
        "2.77"
    );
    kernel_file += &format!("{}{}\n", " ".repeat(25), "-".repeat(15));
    kernel_file += &format!(
        "{:>40} {:>14} {:>29} {}\n",
        "&mm->mmap_sem", 1, "[<ffffffff811502a7>]", "khugepaged_scan_mm_slot+0x57/0x280"
    );
    kernel_file += &format!("\n{}\n\n", ".".repeat(221));
    let parsed = proc_lock_stat::parse(&kernel_file).expect("the kernel's own layout parses");
    assert_eq!(parsed.len(), 1);
    assert_eq!(parsed[0].1.rows["R"].counts[3], 34316685);
    assert_eq!(parsed[0].1.points.len(), 1);

    // Ours: a multi-CPU run with contention, rwlock reads, bounces.
    let run = swapsim(&["run", "scenarios/swapoff_loop.lua", "--kernel", "patched", "--stats"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let start = run.stdout.find("lock_stat version 0.4").expect("lock_stat");
    let end = run.stdout[start..].find("call latencies").map(|e| start + e).unwrap_or(run.stdout.len());
    let classes = proc_lock_stat::parse(&run.stdout[start..end]).unwrap_or_else(|e| panic!("{e}\n{}", run.stdout));
    let by_name = proc_lock_stat::by_name(&classes);
    for class in ["kernel_flag", "mmap_sem", "PG_locked", "page_table_lock"] {
        assert!(by_name.contains_key(class), "{class} missing");
    }
    assert!(by_name["tasklist_lock"].rows.contains_key("W") || by_name["tasklist_lock"].rows.contains_key("R"));
    let counts: Vec<u64> = classes.iter().map(|(_, c)| proc_lock_stat::contentions(c)).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "sorted by contentions: {counts:?}");
    let bkl = &by_name["kernel_flag"].rows[""];
    assert!(bkl.counts[1] > 0 && bkl.counts[2] > 0, "contended and bounced: {bkl:?}");
    assert!(bkl.times[5] < 1000.0, "no BKL hold is 8 ms of clock catching up: {bkl:?}");
    assert!(!by_name["kernel_flag"].points.is_empty() && by_name["kernel_flag"].points.len() <= 8);
}

#[test]
fn stats_total_over_seeds_and_in_csv_and_json() {
    let run = swapsim(&[
        "run",
        "scenarios/race1_fork.lua",
        "--kernel",
        "patched",
        "--seeds",
        "1..5",
        "--stats",
        "--stats-format",
        "csv",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("stats:    totals over the 5 seeds\nclass,side,con_bounces,contentions,"),
        "{}",
        run.stdout
    );
    let one = |seed: &str| {
        let r = swapsim(&[
            "run",
            "scenarios/race1_fork.lua",
            "--kernel",
            "patched",
            "--seed",
            seed,
            "--stats",
            "--stats-format",
            "csv",
        ]);
        r.stdout
            .lines()
            .find(|l| l.starts_with("kernel_flag,w,"))
            .map(|l| l.split(',').nth(9).unwrap().parse::<u64>().unwrap())
            .unwrap()
    };
    let total: u64 = ["1", "2", "3", "4", "5"].iter().map(|s| one(s)).sum();
    let line = run.stdout.lines().find(|l| l.starts_with("kernel_flag,w,")).unwrap();
    assert_eq!(line.split(',').nth(9).unwrap().parse::<u64>().unwrap(), total, "acquisitions add up");
    let json = swapsim(&[
        "run",
        "scenarios/race1_fork.lua",
        "--kernel",
        "patched",
        "--seed",
        "1",
        "--stats",
        "--stats-format",
        "json",
    ]);
    let start = json.stdout.find("{\n").unwrap();
    let value: serde_json::Value = serde_json::from_str(&json.stdout[start..]).unwrap();
    assert!(value["lock_stat"].as_array().is_some_and(|a| !a.is_empty()));
}

#[test]
fn the_race1_and_race4_stats_and_traces_match_their_golden_files() {
    for (scenario, kernel, seed, name) in
        [("race1_fork.lua", "pre4", "3", "race1_pre4_seed3"), ("race4_shm.lua", "patched", "1", "race4_patched_seed1")]
    {
        let dir = std::env::temp_dir().join(format!("swapsim-golden-trace-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let trace = dir.join("trace.json");
        let path = format!("scenarios/{scenario}");
        let run =
            swapsim(&["run", &path, "--kernel", kernel, "--seed", seed, "--stats", "--trace", trace.to_str().unwrap()]);
        let stats = &run.stdout[run.stdout.find("lock_stat version").expect("stats")..];
        crate::determinism::check_golden(&format!("{name}_stats.txt"), stats);
        let json = std::fs::read_to_string(&trace).unwrap();
        check_trace(&json);
        crate::determinism::check_golden(&format!("{name}_trace.json"), &json);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A valid trace-event file: a JSON object with a traceEvents array whose
/// events have the fields their phase needs; times never decrease after the
/// metadata; flow starts and ends pair up.
pub fn check_trace(json: &str) {
    let value: serde_json::Value = serde_json::from_str(json).expect("the trace is JSON");
    let events = value["traceEvents"].as_array().expect("traceEvents");
    let mut last = 0.0;
    let mut flows: BTreeMap<u64, (u32, u32)> = BTreeMap::new();
    for e in events {
        let ph = e["ph"].as_str().expect("ph");
        for field in ["name", "pid", "tid", "ts"] {
            assert!(e.get(field).is_some(), "{field} missing: {e}");
        }
        let ts = e["ts"].as_f64().expect("ts is a number");
        match ph {
            "M" => continue,
            "X" => assert!(e["dur"].as_f64().is_some_and(|d| d >= 0.0), "{e}"),
            "i" => assert!(matches!(e["s"].as_str(), Some("t" | "g" | "p")), "{e}"),
            "C" => assert!(e["args"].as_object().is_some_and(|a| a.values().all(|v| v.is_number())), "{e}"),
            "s" => flows.entry(e["id"].as_u64().expect("id")).or_default().0 += 1,
            "f" => flows.entry(e["id"].as_u64().expect("id")).or_default().1 += 1,
            other => panic!("unknown phase {other}: {e}"),
        }
        assert!(ts >= last, "times go back at {e}");
        last = ts;
    }
    assert!(flows.values().all(|&(s, f)| s == 1 && f == 1), "unpaired flows");
    assert!(events.iter().any(|e| e["cat"] == "stall" || e["ph"] == "X"));
}

#[test]
fn lockdep_runs_in_run_explore_and_replay_and_the_model_has_no_cycle() {
    let run = swapsim(&["run", "scenarios/race2_exit.lua", "--kernel", "patched", "--seed", "1"]);
    assert!(run.stdout.contains("lockdep:  ") && run.stdout.contains("; no cycle"), "{}", run.stdout);
    let dir = std::env::temp_dir().join(format!("swapsim-lockdep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dot = dir.join("graph.dot");
    for strategy in ["random", "pct", "dfs"] {
        let explore = swapsim(&[
            "explore",
            "scenarios/race2_exit.lua",
            "--kernel",
            "patched",
            "--runs",
            "30",
            "--strategy",
            strategy,
            "--lockdep-graph",
            dot.to_str().unwrap(),
        ]);
        assert!(explore.stdout.contains("orders taken (held A, took B); no cycle"), "{strategy}: {}", explore.stdout);
        let graph = std::fs::read_to_string(&dot).unwrap();
        assert!(graph.starts_with("digraph lockdep {") && graph.contains(" -> "), "{graph}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
