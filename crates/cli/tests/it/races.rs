//! Every race of the seed: a pinned breaking seed under pre4, a clean range
//! under the patch (race 7, which the seed leaves open, breaks it too), and
//! one test per fix showing what switching it off reopens. The 10 000-seed
//! evidence is docs/races.md (scripts/races.sh).

use std::path::PathBuf;

use crate::swapsim;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swapsim-races-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run one seed; return the `result:` line.
fn headline(file: &str, flags: &[&str], seed: u32) -> String {
    result_and_bucket(file, flags, seed).0
}

/// Run one seed; return the `result:` line and the bucket (race signature)
/// the run prints for a violation.
fn result_and_bucket(file: &str, flags: &[&str], seed: u32) -> (String, Option<String>) {
    let seed = seed.to_string();
    let mut args = vec!["run", file];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--seed", &seed]);
    let run = swapsim(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let line = run.stdout.lines().find(|l| l.starts_with("result:")).expect("a result line").to_string();
    assert_eq!(run.code == 1, !line.contains("clean"), "exit code matches the result: {line}");
    let bucket = run.stdout.lines().find_map(|l| l.strip_prefix("bucket:").map(|b| b.trim().to_string()));
    (line, bucket)
}

/// Run a seed range; return the `result:` line.
pub(crate) fn range(file: &str, flags: &[&str], seeds: &str) -> String {
    let mut args = vec!["run", file];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--seeds", seeds]);
    let run = swapsim(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    run.stdout.lines().find(|l| l.starts_with("result:")).expect("a result line").to_string()
}

pub(crate) const PRE4: &[&str] = &["--kernel", "pre4"];
pub(crate) const PATCHED: &[&str] = &["--kernel", "patched"];

/// The seed breaks `invariant`, and the run's key events match the race
/// signature `bucket` (which interleaving broke it, not only which check).
fn breaks(file: &str, flags: &[&str], seed: u32, invariant: &str, bucket: &str) {
    let (line, got) = result_and_bucket(file, flags, seed);
    assert!(line.contains(&format!("VIOLATION {invariant}")), "{file} {flags:?} seed {seed}: {line}");
    assert_eq!(got.as_deref(), Some(bucket), "{file} {flags:?} seed {seed}: {line}");
}

/// Run a seed range; return its buckets: (name, count, first seed).
fn buckets(file: &str, flags: &[&str], seeds: &str) -> Vec<(String, u64, u64)> {
    let mut args = vec!["run", file];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--seeds", seeds]);
    let run = swapsim(&args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let lines = run.stdout.lines().skip_while(|l| !l.starts_with("buckets:")).skip(1);
    lines
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            // COUNT first seed SEED NAME...
            (words[4..].join(" "), words[0].parse().unwrap(), words[3].parse().unwrap())
        })
        .collect()
}

/// How many runs of `buckets` fell in the bucket `name`.
fn count(buckets: &[(String, u64, u64)], name: &str) -> u64 {
    buckets.iter().find(|b| b.0 == name).map_or(0, |b| b.1)
}

fn holds(file: &str, flags: &[&str], seed: u32) {
    let line = headline(file, flags, seed);
    assert!(line.contains("clean"), "{file} {flags:?} seed {seed}: {line}");
}

fn clean_range(file: &str, flags: &[&str], seeds: &str) {
    let line = range(file, flags, seeds);
    assert!(line.contains("none broke"), "{file} {flags:?} {seeds}: {line}");
}

#[test]
fn race1_fork() {
    breaks("scenarios/race1_fork.lua", PRE4, 3, "swapoff-completeness", "race1-fork");
    clean_range("scenarios/race1_fork.lua", PATCHED, "1..500");
}

/// Race 1 inside one VMA that spans two page tables: copy_page_range
/// sleeps in pte_alloc for the second table after copying the first's
/// ptes, before dup_mmap links the VMA. (With one sleep per VMA before any
/// copy, as the model had it, no seed broke this scenario under any kernel.)
#[test]
fn race1_fork_across_two_page_tables() {
    let file = "scenarios/race1_fork_two_tables.lua";
    breaks(file, PRE4, 3, "swapoff-completeness", "race1-fork");
    // The mm-list fix alone does not close it: the child's mm is listed,
    // but its VMA chain is still empty while fork sleeps.
    let off = &["--kernel", "patched", "--no-fix", "mmap-sem"];
    breaks(file, off, 3, "swapoff-completeness", "race1-fork");
    let run = swapsim(&["run", file, "--kernel", "patched", "--no-fix", "mmap-sem", "--seed", "3"]);
    let slept = run.stdout.lines().position(|l| l.contains("sleep") && l.contains("rw_swap_page:read"));
    let resumed = run.stdout.lines().position(|l| l.contains("parent") && l.contains("copy_page_range:pte_alloc"));
    assert!(slept.is_some() && slept < resumed, "fork resumes from pte_alloc behind swapoff: {}", run.stdout);
    assert!(run.stdout.contains("copied swap entry 1:2 at 0x400000"), "{}", run.stdout);
    clean_range(file, PATCHED, "1..500");
    // Every schedule with at most one preemption (643); the bound of 2
    // (31856 schedules) is scripts/exhaust_race1_two_tables.sh.
    let dfs =
        swapsim(&["explore", file, "--kernel", "patched", "--strategy", "dfs", "--preemptions", "1", "--runs", "5000"]);
    assert_eq!(dfs.code, 0, "{}{}", dfs.stdout, dfs.stderr);
    assert!(
        dfs.stdout.contains("result:   explored all 643 schedules with <= 1 preemptions: no violation"),
        "{}",
        dfs.stdout
    );
}

#[test]
fn race2_exit() {
    breaks("scenarios/race2_exit.lua", PRE4, 10, "swapoff-completeness", "race2-exit");
    // The window is the C's: the exiter sleeps on shm_ids.sem in the
    // SHM_DEST teardown (shm_close -> shm_remove_name -> shm_unlink), which
    // drops the BKL that swapoff was spinning for.
    let run = swapsim(&["run", "scenarios/race2_exit.lua", "--kernel", "pre4", "--seed", "10"]);
    let out = &run.stdout;
    // The last detach of the SHM_DEST segment sleeps on shm_ids.sem (in
    // shm_unlink or shm_delete: both take it), and that drops the BKL.
    let sleep = out.find("exiter       sleep       shm_ids.sem                shm_");
    let taken = out.find("swapoff      acquired    kernel_flag                sys_swapoff:lock_kernel");
    assert!(sleep.is_some() && taken > sleep, "{out}");
    assert!(out.contains("VM: Undead swap entry 1:1"), "{out}");
    clean_range("scenarios/race2_exit.lua", PATCHED, "1..500");
}

/// The shm_swap window (docs/model.md § The shm_swap window): kswapd's
/// shm_swap holds a preloaded slot it has not published, with no BKL;
/// swapoff adds its own page for it and sleeps in the read; shm_swap_core
/// then adds the segment's page for the same entry. The patch leaves it.
#[test]
fn shm_swap_window_aliases_the_swap_cache_under_pre4_and_the_patch() {
    for (kernel, seed) in [("pre4", "377"), ("patched", "183")] {
        let out = out_dir(&format!("shm-window-{kernel}"));
        let args = ["explore", "scenarios/shm_swap_window.lua", "--kernel", kernel, "--strategy", "pct"];
        let run = swapsim(
            &[&args[..], &["--runs", "1", "--seed", seed, "--no-shrink", "--out", out.to_str().unwrap()]].concat(),
        );
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("swap-cache"), "{}", run.stdout);
        let schedule = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "schedule"))
            .expect("explore saved the schedule");
        let events = out.join("events.log");
        let replay = swapsim(&["replay", schedule.to_str().unwrap(), "--events", events.to_str().unwrap()]);
        assert_eq!(replay.code, 1, "{}", replay.stdout);
        assert!(replay.stdout.contains("add_to_swap_cache: entry 1:1 already has a page"), "{}", replay.stdout);
        // The preop took 1:1 and dropped the BKL before swapoff took it.
        let log = std::fs::read_to_string(&events).unwrap();
        let preop = log.find("released    kernel_flag                shm_swap_preop:unlock_kernel");
        let off = log.find("acquired    kernel_flag                sys_swapoff:lock_kernel");
        assert!(preop.is_some() && off > preop, "{log}");
    }
}

#[test]
fn race3_fault() {
    breaks("scenarios/race3_fault.lua", PRE4, 16, "fault-result", "race3-do-swap-page");
    clean_range("scenarios/race3_fault.lua", PATCHED, "1..500");
}

#[test]
fn race4_shm() {
    breaks("scenarios/race4_shm.lua", PRE4, 30, "swap-cache", "race4-shm-delete");
    let patched = range("scenarios/race4_shm.lua", PATCHED, "1..500");
    assert!(!patched.contains("swap-cache"), "no double delete under the patch: {patched}");
}

#[test]
fn race5_munmap_needs_the_lookup_wait_switched_off() {
    // The real lookup_swap_cache waits for the page lock: no double delete.
    holds("scenarios/race5_munmap.lua", PRE4, 705);
    // Without the wait (the what-if), the double delete of race 5.
    breaks(
        "scenarios/race5_munmap.lua",
        &["--kernel", "pre4", "--no-fix", "lookup-wait"],
        705,
        "swap-cache",
        "race5-free-page-and-swap-cache",
    );
    // The patch's page lock closes it even then.
    holds("scenarios/race5_munmap.lua", &["--kernel", "patched", "--no-fix", "lookup-wait"], 705);
    clean_range("scenarios/race5_munmap.lua", PATCHED, "1..500");
}

#[test]
fn race5_finds_a_munmap_use_after_free_the_seed_does_not_list() {
    breaks("scenarios/race5_munmap.lua", PRE4, 331, "use-after-free", "smp-munmap-walk");
    holds("scenarios/race5_munmap.lua", PATCHED, 331);
}

#[test]
fn race6_readahead() {
    breaks("scenarios/race6_readahead.lua", PRE4, 30, "swap-count", "race6-readahead");
    clean_range("scenarios/race6_readahead.lua", PATCHED, "1..500");
}

#[test]
fn race6_kswapd() {
    // Under pre4 this scenario breaks, but by its faulting task (race 3's
    // mechanism), never by the page stealer putting back an entry swapoff
    // had passed: that window exists only with the patch's sleep on
    // mmap_sem in the crab (without_no_new_refs_kswapd_reopens_race_6).
    breaks("scenarios/race6_kswapd.lua", PRE4, 43, "swapoff-completeness", "race3-do-swap-page");
    let pre4 = buckets("scenarios/race6_kswapd.lua", PRE4, "1..300");
    assert!(count(&pre4, "race3-do-swap-page") > 0 && count(&pre4, "race6-kswapd") == 0, "{pre4:?}");
    clean_range("scenarios/race6_kswapd.lua", PATCHED, "1..500");
}

#[test]
fn race7_stays_open_under_the_patch() {
    breaks("scenarios/race7_shm_nopage.lua", PRE4, 5, "swap-count", "race7-shm-nopage");
    breaks("scenarios/race7_shm_nopage.lua", PATCHED, 5, "swap-count", "race7-shm-nopage");
}

// One test per fix: switched off alone on top of the patch.

#[test]
fn without_mmlist_races_1_2_and_3_come_back() {
    let off = &["--kernel", "patched", "--no-fix", "mmlist"];
    breaks("scenarios/race1_fork.lua", off, 3, "swapoff-completeness", "race1-fork");
    breaks("scenarios/race2_exit.lua", off, 2229, "swapoff-completeness", "race2-exit");
    // Without the mm list swapoff walks the task list under tasklist_lock,
    // where it cannot take mmap_sem, so race 3 comes back too.
    breaks("scenarios/race3_fault.lua", off, 16, "fault-result", "race3-do-swap-page");
}

#[test]
fn the_page_lock_is_half_a_fix_for_race_4_without_mmap_sem_ordering() {
    // KERNEL.md: "If S deletes first, H's unconditional
    // delete_from_swap_cache still BUGs." Without the mm list (so without
    // swapoff's mmap_sem) that order happens, page lock or not: the BUG is
    // now on shm_nopage's side.
    let run =
        swapsim(&["run", "scenarios/race4_shm.lua", "--kernel", "patched", "--no-fix", "mmlist", "--seed", "882"]);
    assert!(run.stdout.contains("result:   VIOLATION swap-cache"), "{}", run.stdout);
    assert!(run.stdout.contains("detected by task shmuser"), "{}", run.stdout);
}

#[test]
fn without_mmap_sem_races_2_and_3_come_back_and_race_1_scenario_breaks_by_race_3() {
    let off = &["--kernel", "patched", "--no-fix", "mmap-sem"];
    // The mm list alone closes race 1: the child's mm follows its parent's,
    // so the crab reaches the child after any entry dup_mmap copied. What
    // breaks race1_fork.lua without mmap_sem is the child's own fault.
    breaks("scenarios/race1_fork.lua", off, 8, "swapoff-completeness", "race3-do-swap-page");
    let race1 = buckets("scenarios/race1_fork.lua", off, "1..300");
    assert!(count(&race1, "race3-do-swap-page") > 0 && count(&race1, "race1-fork") == 0, "{race1:?}");
    breaks("scenarios/race2_exit.lua", off, 10, "swapoff-completeness", "race2-exit");
    breaks("scenarios/race3_fault.lua", off, 16, "fault-result", "race3-do-swap-page");
}

#[test]
fn the_page_lock_closes_race_4_only_once_mmap_sem_is_gone() {
    // A finding: with mmap_sem, swapoff waits for the shm fault and never
    // tests PageSwapCache while shm_nopage is about to delete the page.
    let line = range("scenarios/race4_shm.lua", &["--kernel", "patched", "--no-fix", "page-lock"], "1..300");
    assert!(!line.contains("swap-cache"), "{line}");
    breaks(
        "scenarios/race4_shm.lua",
        &["--kernel", "patched", "--no-fix", "mmap-sem", "--no-fix", "page-lock"],
        882,
        "swap-cache",
        "race4-shm-delete",
    );
    let line = headline("scenarios/race4_shm.lua", &["--kernel", "patched", "--no-fix", "mmap-sem"], 882);
    assert!(!line.contains("swap-cache"), "the page lock alone closes that schedule: {line}");
}

#[test]
fn no_readahead_closes_race_6_once_mmap_sem_is_gone() {
    let both = &["--kernel", "patched", "--no-fix", "mmap-sem", "--no-fix", "no-readahead"];
    breaks("scenarios/race6_readahead.lua", both, 188, "swap-count", "race6-readahead");
    holds("scenarios/race6_readahead.lua", &["--kernel", "patched", "--no-fix", "mmap-sem"], 188);
    clean_range("scenarios/race6_readahead.lua", &["--kernel", "patched", "--no-fix", "no-readahead"], "1..300");
}

#[test]
fn without_no_new_refs_kswapd_reopens_race_6() {
    breaks(
        "scenarios/race6_kswapd.lua",
        &["--kernel", "patched", "--no-fix", "no-new-refs"],
        2,
        "swapoff-completeness",
        "race6-kswapd",
    );
    holds("scenarios/race6_kswapd.lua", PATCHED, 2);
    clean_range("scenarios/race1_fork.lua", &["--kernel", "patched", "--no-fix", "no-new-refs"], "1..200");
}

#[test]
fn unknown_fix_names_list_the_valid_ones() {
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--no-fix", "mmap_sem"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("invalid value 'mmap_sem' for '--no-fix <NAME>'")
            && run.stderr.contains("[possible values: mmlist, mmap-sem, page-lock")
            && run.stderr.contains("a similar value exists: 'mmap-sem'"),
        "{}",
        run.stderr
    );
}

#[test]
fn kernels_lists_every_fix_with_what_it_closes() {
    let run = swapsim(&["kernels"]);
    for name in ["mmlist", "mmap-sem", "page-lock", "no-readahead", "no-new-refs", "lookup-wait"] {
        assert!(run.stdout.contains(&format!("  {name} ")), "{name}: {}", run.stdout);
    }
    assert_eq!(run.stdout.matches("closes race").count(), 6, "{}", run.stdout);
}

#[test]
fn the_seeds_own_stress_test_survives_200_swapoff_cycles_patched() {
    let run = swapsim(&["run", "scenarios/stress_make_j4.lua", "--kernel", "patched", "--seed", "1"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("result:   clean: every invariant held"), "{}", run.stdout);
    let stats = run.stdout.lines().find(|l| l.starts_with("run:")).unwrap();
    assert!(stats.contains(" 200 swapoffs"), "{stats}");
    let number = |what: &str| -> u64 {
        let before = stats.split(what).next().unwrap();
        before.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert!(number(" forks") >= 200, "{stats}");
    assert!(number(" swap-outs") >= 1000, "memory pressure swaps pages out: {stats}");
    assert!(number(" swap-ins") >= 1000, "{stats}");
}

#[test]
fn the_seeds_own_stress_test_breaks_pre4() {
    let run = swapsim(&["run", "scenarios/stress_make_j4.lua", "--kernel", "pre4", "--seed", "1"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("VM: Undead swap entry"), "{}", run.stdout);
}

/// The later swapoff designs (2.4.10's start_mm walk, 5.1's single pass,
/// each with the pieces of its kernel it relies on: docs/model.md § Later
/// kernels) close every race scenario, the seventh included.
#[test]
fn later_kernels_close_every_race_scenario() {
    let scenarios = [
        "race1_fork",
        "race2_exit",
        "race3_fault",
        "race4_shm",
        "race5_munmap",
        "race6_readahead",
        "race6_kswapd",
        "race7_shm_nopage",
    ];
    for kernel in ["2.4.10", "5.1"] {
        for name in scenarios {
            clean_range(&format!("scenarios/{name}.lua"), &["--kernel", kernel], "1..200");
        }
    }
}

#[test]
fn the_seed_switches_do_not_apply_to_later_kernels() {
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "5.1", "--no-fix", "mmlist", "--seed", "1"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("apply to the 2.3.99 variants"), "{}", run.stderr);
}
