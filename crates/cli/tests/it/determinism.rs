//! Determinism is the product: same inputs, same bytes.

use std::path::PathBuf;

use crate::{root, swapsim};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swapsim-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Compare `actual` with `tests/golden/NAME`; `UPDATE_GOLDEN=1` rewrites it.
pub fn check_golden(name: &str, actual: &str) {
    let path = root().join("crates/cli/tests/golden").join(name);
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(expected == actual, "{name} differs from its golden file (UPDATE_GOLDEN=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}");
}

#[test]
fn same_scenario_seed_and_kernel_give_identical_output_and_event_log() {
    for kernel in ["pre4", "patched"] {
        let mut outputs = Vec::new();
        for attempt in 0..2 {
            let log = temp(&format!("events-{kernel}-{attempt}.log"));
            let run = swapsim(&[
                "run",
                "scenarios/race1_fork.lua",
                "--kernel",
                kernel,
                "--seed",
                "7",
                "--events",
                log.to_str().unwrap(),
            ]);
            assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
            let events = std::fs::read_to_string(&log).unwrap();
            assert!(events.lines().count() > 50, "the event log is written");
            outputs.push((run.stdout, events));
        }
        assert_eq!(outputs[0].0, outputs[1].0, "stdout differs between two runs of the same seed");
        assert_eq!(outputs[0].1, outputs[1].1, "the event log differs between two runs of the same seed");
    }
}

#[test]
fn a_different_seed_gives_a_different_schedule() {
    let log_for = |seed: &str| {
        let log = temp(&format!("events-seed-{seed}.log"));
        swapsim(&[
            "run",
            "scenarios/race1_fork.lua",
            "--kernel",
            "patched",
            "--seed",
            seed,
            "--events",
            log.to_str().unwrap(),
        ]);
        std::fs::read_to_string(log).unwrap()
    };
    assert_ne!(log_for("1"), log_for("2"));
}

#[test]
fn a_seed_range_reports_the_same_seeds_every_time() {
    let a = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seeds", "1..200"]);
    let b = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seeds", "1..200"]);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn every_breaking_seed_of_a_range_breaks_alone_the_same_way() {
    let range = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seeds", "1..60"]);
    for line in range.stdout.lines().filter(|l| l.starts_with("seed ")) {
        let (seed, verdict) = line.trim_start_matches("seed ").split_once(": ").unwrap();
        // "VIOLATION swapoff-completeness (race1-fork)": the bucket too.
        let (verdict, bucket) = verdict.rsplit_once(" (").unwrap();
        let bucket = bucket.trim_end_matches(')');
        let alone = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seed", seed]);
        assert_eq!(alone.code, 1, "seed {seed}");
        assert!(alone.stdout.contains(&format!("result:   {verdict}")), "seed {seed}: {}", alone.stdout);
        assert!(alone.stdout.contains(&format!("bucket:   {bucket}\n")), "seed {seed}: {}", alone.stdout);
    }
}

#[test]
fn the_lock_stat_and_latency_tables_of_race1_match_their_golden_file() {
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "patched", "--seed", "1", "--stats"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tables = &run.stdout[run.stdout.find("lock_stat version 0.4").expect("a lock_stat table")..];
    check_golden("race1_patched_seed1_stats.txt", tables);
}
