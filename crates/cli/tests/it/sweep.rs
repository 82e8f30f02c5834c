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
        "pages,processes,kernel,seed,outcome,steps,time_ns,swapoffs,swapoff_ns_mean,swapoff_ns_max,faults,\
         faults_during_swapoff,fault_ns_p50,fault_ns_p99,swap_ins,swap_outs"
    );
    assert_eq!(csv.lines().count(), 17);
    assert!(csv.lines().skip(1).all(|l| l.split(',').nth(4) == Some("clean")), "{csv}");
    for plot in ["swapoff_time.png", "swapoff_time.svg", "fault_latency_p99.png", "fault_latency_p99.svg"] {
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
