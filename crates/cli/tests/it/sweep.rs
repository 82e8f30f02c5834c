//! `swapsim sweep`: every point, kernel and seed; stable CSV columns; plots;
//! the same results whatever --jobs; an old result directory is not mixed in.

use crate::swapsim;

fn out(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("swapsim-sweep-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_sweep_writes_every_run_with_stable_columns_and_plots_whatever_the_jobs() {
    let one = out("jobs1");
    let run =
        swapsim(&["sweep", "crates/cli/tests/fixtures/small_sweep.lua", "--out", one.to_str().unwrap(), "--jobs", "1"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("4 points x 2 kernels x 2 seeds = 16 runs"), "{}", run.stdout);
    let csv = std::fs::read_to_string(one.join("results.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "run,param.pages,param.processes,kernel,seed,outcome,invariant,steps,time_ns,swapoffs,swapoff_ns_mean,\
         swapoff_ns_max,faults,faults_during_swapoff,fault_ns_p50,fault_ns_p99,swap_ins,swap_outs,tool,scenario,\
         scenario_fnv1a,runs,shard"
    );
    assert_eq!(csv.lines().count(), 17);
    assert!(csv.lines().skip(1).all(|l| l.split(',').nth(5) == Some("clean")), "{csv}");
    let files =
        ["samples.csv", "swapoff_time.png", "swapoff_time.svg", "fault_latency_p99.png", "fault_latency_p99.svg"];
    for plot in files {
        assert!(one.join(plot).exists(), "{plot}");
    }
    let two = out("jobs2");
    let run =
        swapsim(&["sweep", "crates/cli/tests/fixtures/small_sweep.lua", "--out", two.to_str().unwrap(), "--jobs", "2"]);
    assert_eq!(run.code, 0);
    assert_eq!(csv, std::fs::read_to_string(two.join("results.csv")).unwrap(), "--jobs changes nothing");
    // An existing result directory is refused, not mixed.
    let again = swapsim(&["sweep", "crates/cli/tests/fixtures/small_sweep.lua", "--out", one.to_str().unwrap()]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already holds results"), "{}", again.stderr);
}

#[test]
fn a_scenario_without_a_sweep_is_refused() {
    let run = swapsim(&["sweep", "scenarios/race1_fork.lua", "--out", out("none").to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("declares no sweep{}"), "{}", run.stderr);
}

/// The shape that motivated the 2019 rework, on a small grid: pre4's
/// swapoff costs more per slot as the slots grow (every slot scans every
/// mm: quadratic), 5.1's the same per slot (one pass: linear), and 5.1 is
/// an order of magnitude cheaper.
#[test]
fn pre4_swapoff_is_quadratic_and_5_1_linear() {
    // The real scenario on a smaller grid: 4 processes, 256 and 2048 pages.
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/sweep_swapoff_algorithms.lua"))
            .unwrap();
    let grid = "params = { processes = { 16 }, pages = { 1024, 2048, 4096, 8192, 16384 } },";
    let kernels = r#"kernels = { "pre4", "patched", "2.4.10", "5.1" },"#;
    assert!(source.contains(grid) && source.contains(kernels), "the scenario's grid changed: update this test");
    let small = source
        .replace(grid, "params = { processes = { 4 }, pages = { 256, 2048 } },")
        .replace(kernels, r#"kernels = { "pre4", "5.1" },"#);
    let dir = out("algorithms");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("small_algorithms.lua");
    std::fs::write(&file, small).unwrap();
    let results = dir.join("sweep");
    let run = swapsim(&["sweep", file.to_str().unwrap(), "--out", results.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let csv = std::fs::read_to_string(results.join("results.csv")).unwrap();
    let per_slot = |pages: u64, kernel: &str| -> f64 {
        let row = csv
            .lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f[1] == pages.to_string() && f[3] == kernel)
            .unwrap_or_else(|| panic!("no row for {pages} {kernel}:\n{csv}"));
        assert_eq!(row[5], "clean", "{csv}");
        row[10].parse::<f64>().unwrap() / pages as f64
    };
    let (pre4_small, pre4_large) = (per_slot(256, "pre4"), per_slot(2048, "pre4"));
    let (new_small, new_large) = (per_slot(256, "5.1"), per_slot(2048, "5.1"));
    assert!(pre4_large > 1.2 * pre4_small, "pre4 per slot: {pre4_small} ns then {pre4_large} ns\n{csv}");
    assert!((new_large / new_small - 1.0).abs() < 0.15, "5.1 per slot: {new_small} ns then {new_large} ns\n{csv}");
    assert!(new_large * 10.0 < pre4_large, "5.1 {new_large} ns against pre4 {pre4_large} ns per slot\n{csv}");
}

#[test]
fn a_sweep_writes_lock_statistics_per_point_and_kernel() {
    let dir = out("lock-stat");
    let run = swapsim(&[
        "sweep",
        "crates/cli/tests/fixtures/small_sweep.lua",
        "--out",
        dir.to_str().unwrap(),
        "--jobs",
        "2",
        "--lock-stat",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("(8 files, one per point and kernel)"), "{}", run.stdout);
    let mut files: Vec<_> = std::fs::read_dir(dir.join("lock_stat")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 8);
    let csv = std::fs::read_to_string(&files[0]).unwrap();
    assert!(csv.starts_with("class,side,con_bounces,contentions,waittime_min_ns,"), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("kernel_flag,w,")), "{csv}");
    let _ = std::fs::remove_dir_all(&dir);
}
