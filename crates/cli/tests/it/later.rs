//! The later kernels (--kernel 2.4.10, --kernel 5.1) against a page
//! stealer on three CPUs (issue 12, point 8): no false alarm of the
//! transplant. Seed 48 broke 2.4.10 with "add_to_swap_cache: page#N was
//! locked by someone else" (the stealer did not hold the page lock), seed
//! 2086 with try_to_unuse's BUG ("count 0 but page#N is in the swap
//! cache": a write fault took the page out of the cache on an unlocked
//! count). The 20 000-run PCT search over every scenario is
//! scripts/later_false_alarms.sh.

use crate::swapsim;

const SCENARIO: &str = "scenarios/later_stealer_3cpu.lua";

fn result_line(args: &[&str]) -> String {
    let run = swapsim(args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    run.stdout.lines().find(|l| l.starts_with("result:")).expect("a result line").to_string()
}

#[test]
fn the_later_kernels_run_the_3cpu_stealer_scenario_clean() {
    for kernel in ["2.4.10", "5.1"] {
        for seed in ["48", "2086"] {
            let line = result_line(&["run", SCENARIO, "--kernel", kernel, "--seed", seed]);
            assert!(line.contains("clean"), "{kernel} seed {seed}: {line}");
        }
        let line = result_line(&["run", SCENARIO, "--kernel", kernel, "--seeds", "1..300"]);
        assert!(line.contains("none broke"), "{kernel}: {line}");
        let line = result_line(&[
            "explore",
            SCENARIO,
            "--kernel",
            kernel,
            "--strategy",
            "pct",
            "--runs",
            "300",
            "--no-shrink",
            "--out",
            std::env::temp_dir().to_str().unwrap(),
        ]);
        assert!(line.contains("no violation"), "{kernel} pct: {line}");
    }
}

/// The same scenario on the 2.3.99 kernels: the seed's races are there
/// (pre4 breaks), so the scenario does reach swapoff against the stealer.
#[test]
fn the_3cpu_stealer_scenario_breaks_pre4() {
    let line = result_line(&["run", SCENARIO, "--kernel", "pre4", "--seeds", "1..300"]);
    assert!(!line.contains("none broke"), "{line}");
}

// ---- issue 18: the later races, each found before its fix and closed by it ----

fn out_dir() -> String {
    std::env::temp_dir().to_str().unwrap().to_string()
}

/// The `result:` line and the report of one run.
fn report(args: &[&str]) -> (String, String) {
    let run = swapsim(args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    (result_line(args), run.stdout)
}

/// The `result:` line of a dfs search at one preemption of `scenario`.
fn dfs_one_preemption(scenario: &str, kernel: &str) -> String {
    let out = out_dir();
    result_line(&[
        "explore",
        scenario,
        "--kernel",
        kernel,
        "--strategy",
        "dfs",
        "--preemptions",
        "1",
        "--no-shrink",
        "--out",
        &out,
    ])
}

/// The `result:` line of 300 pct runs of `scenario`.
fn pct_300(scenario: &str, kernel: &str) -> String {
    let out = out_dir();
    result_line(&[
        "explore",
        scenario,
        "--kernel",
        kernel,
        "--strategy",
        "pct",
        "--runs",
        "300",
        "--no-shrink",
        "--out",
        &out,
    ])
}

/// SWAP_UNUSE_MAX_TRIES (5.1-rc1..rc4): swapoff gives up with -EBUSY while
/// an exiting mm frees its swap; 5.1 goes round until it is gone.
#[test]
fn swap_unuse_max_tries_fails_swapoff_on_5_1_rc1_and_not_on_5_1() {
    const S: &str = "scenarios/later/unuse_max_tries.lua";
    let (line, out) = report(&["run", S, "--kernel", "5.1-rc1", "--seed", "14"]);
    assert!(line.contains("VIOLATION scenario-expectation"), "{line}");
    assert!(out.contains("swapoff(1) failed with -16"), "{out}");
    assert!(out.contains("bucket:   swap-unuse-max-tries\n"), "{out}");
    let line = result_line(&["run", S, "--kernel", "5.1", "--seeds", "1..300"]);
    assert!(line.contains("none broke"), "{line}");
}

/// eb085574a752: a fault that read its swap entry before swapoff looks it
/// up in the device's swap cache after swapoff freed it (5.2); 5.3's
/// get_swap_device finds no device and the fault backs out.
#[test]
fn eb085574_swapin_reads_the_freed_swap_cache_on_5_2_and_not_on_5_3() {
    const S: &str = "scenarios/later/eb085574_swapin.lua";
    let (line, out) = report(&["run", S, "--kernel", "5.2", "--timed", "--seed", "7"]);
    assert!(line.contains("VIOLATION use-after-free"), "{line}");
    assert!(
        out.contains("find_get_page:swap_address_space read the swap cache")
            && out.contains("freed at sys_swapoff:exit_swap_address_space"),
        "the reader's point and the freer's: {out}"
    );
    assert!(out.contains("bucket:   eb085574-swapin\n"), "{out}");
    let line = result_line(&["run", S, "--kernel", "5.3", "--timed", "--seeds", "1..300"]);
    assert!(line.contains("none broke"), "{line}");
    let line = dfs_one_preemption(S, "5.2");
    assert!(line.contains("schedule 231 breaks: VIOLATION of use-after-free"), "{line}");
    let line = dfs_one_preemption(S, "5.3");
    assert!(line.contains("explored all 530 schedules with <= 1 preemptions: no violation"), "{line}");
}

/// 2efa33fc7f6e (with 2799e77529c2 and 63d8620ecf93): shmem's swap-in reads
/// si->swap_file in swap_cluster_readahead after swapoff cleared it (5.3);
/// 5.14 holds the device across the swap-in.
#[test]
fn shmem_swapin_reads_the_cleared_swap_file_on_5_3_and_not_on_5_14() {
    const S: &str = "scenarios/later/2efa33fc_shmem_swapin.lua";
    let line = dfs_one_preemption(S, "5.3");
    assert!(
        line.contains("schedule 113 breaks: VIOLATION of use-after-free")
            && line.contains("swap_cluster_readahead:swap_file read the swap_file of swap device 1")
            && line.contains("freed at sys_swapoff:swap_device_lock_free"),
        "{line}"
    );
    let line = dfs_one_preemption(S, "5.14");
    assert!(line.contains("explored all 226 schedules with <= 1 preemptions: no violation"), "{line}");
    let line = pct_300(S, "5.14");
    assert!(line.contains("no violation"), "{line}");
}

/// 82b1c07a0af6 (CVE-2024-26960): exit's free_swap_and_cache drops the
/// last pte reference, swapoff frees the cached page and tears the device
/// down, and the zap's tail reads it (5.14); 6.9 holds the device.
#[test]
fn free_swap_and_cache_reads_the_freed_device_on_5_14_and_not_on_6_9() {
    const S: &str = "scenarios/later/82b1c07a_zap.lua";
    let (line, out) = report(&["run", S, "--kernel", "5.14", "--seed", "326"]);
    assert!(line.contains("VIOLATION use-after-free"), "{line}");
    assert!(out.contains("freed at sys_swapoff:"), "{out}");
    assert!(out.contains("bucket:   82b1c07a-zap\n"), "{out}");
    let line = dfs_one_preemption(S, "5.14");
    assert!(line.contains("schedule 25 breaks: VIOLATION of use-after-free"), "{line}");
    let line = result_line(&["run", S, "--kernel", "6.9", "--seeds", "1..300"]);
    assert!(line.contains("none broke"), "{line}");
    let line = pct_300(S, "6.9");
    assert!(line.contains("no violation"), "{line}");
}

/// `run --timed --seeds` names `--timed` in the replay command of its first
/// find, and that command reproduces the find (without it the seed runs
/// random and is clean).
#[test]
fn a_timed_seed_range_replays_with_timed() {
    let file = "scenarios/later/eb085574_swapin.lua";
    let range = swapsim(&["run", file, "--kernel", "5.2", "--timed", "--seeds", "1..10"]);
    assert_eq!(range.code, 1, "{}{}", range.stdout, range.stderr);
    let replay = range.stdout.lines().find_map(|l| l.split_once("; replay: ")).map(|(_, c)| c.to_string()).unwrap();
    assert!(replay.ends_with(" --seed 7 --timed"), "{replay}");
    let again = swapsim(&["run", file, "--kernel", "5.2", "--seed", "7", "--timed"]);
    assert_eq!(again.code, 1, "{}", again.stdout);
    assert!(again.stdout.contains("bucket:   eb085574-swapin"), "{}", again.stdout);
}
