//! Race signatures on saved schedules: every signature `swapsim signatures`
//! lists has a saved, shrunk schedule (tests/fixtures/buckets, written by
//! `swapsim explore ... --runs 1 --seed S`) whose replay lands in that
//! bucket, and an explore search saves one schedule per bucket.

use crate::{root, swapsim};

/// The bucket names, in the order `swapsim signatures` tries them.
fn signature_names() -> Vec<String> {
    let run = swapsim(&["signatures"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| !name.starts_with("unclassified"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_signature_has_a_saved_schedule_that_replays_into_its_bucket() {
    let dir = root().join("crates/cli/tests/fixtures/buckets");
    let mut schedules: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    schedules.sort();
    let mut seen = Vec::new();
    for schedule in &schedules {
        let run = swapsim(&["replay", schedule.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{}: {}{}", schedule.display(), run.stdout, run.stderr);
        let bucket = run.stdout.lines().find_map(|l| l.strip_prefix("bucket:")).map(str::trim);
        let bucket = bucket.unwrap_or_else(|| panic!("{}: no bucket line\n{}", schedule.display(), run.stdout));
        assert!(!bucket.starts_with("unclassified"), "{}: {bucket}", schedule.display());
        seen.push(bucket.to_string());
    }
    for name in signature_names() {
        assert!(seen.contains(&name), "no saved schedule replays into {name}; saved ones give {seen:?}");
    }
}

#[test]
fn explore_saves_one_schedule_per_bucket() {
    let out = std::env::temp_dir().join(format!("swapsim-buckets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    // Seeds 1..20 of race1_fork.lua under pre4 break by race 1 (seed 3)
    // and by race 3's mechanism (seed 8, the child's fault).
    let run = swapsim(&[
        "explore",
        "scenarios/race1_fork.lua",
        "--kernel",
        "pre4",
        "--runs",
        "20",
        "--out",
        out.to_str().unwrap(),
        "--csv",
        out.join("runs.csv").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("race1-fork") && run.stdout.contains("race3-do-swap-page"), "{}", run.stdout);
    for bucket in ["race1-fork", "race3-do-swap-page"] {
        let saved: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "schedule"))
            .filter(|p| swapsim(&["replay", p.to_str().unwrap()]).stdout.contains(&format!("bucket:   {bucket}")))
            .collect();
        assert_eq!(saved.len(), 1, "one saved schedule for {bucket}: {saved:?}\n{}", run.stdout);
    }
    let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains(",invariant,bucket,steps,"), "{csv}");
    assert!(csv.contains(",violation,swapoff-completeness,race1-fork,"), "{csv}");
    let _ = std::fs::remove_dir_all(&out);
}
