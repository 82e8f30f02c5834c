//! The dfs search's sleep sets, and source-DPOR, lose nothing on the real
//! kernel model: for race scenarios, every outcome (each invariant broken,
//! with the kernel's messages and counters at the end) that the full bounded
//! search reaches, the search with sleep sets reaches too, and so does the
//! search with DPOR. A kernel access that escaped the
//! footprints (`kernel::tracked`) would show here as a lost outcome.

use std::collections::BTreeSet;

use engine::{DfsPlan, Outcome};
use kernel::Variant;
use script::run::{RunOptions, Runner};

/// Every outcome a search within `bound` preemptions reaches, and how many
/// schedules it ran to the end.
/// How a search reduces: not at all, sleep sets, DPOR.
#[derive(Clone, Copy, Debug)]
enum Reduction {
    Full,
    SleepSets,
    Dpor,
}

fn outcomes(file: &str, variant: Variant, bound: u32, reduction: Reduction) -> (BTreeSet<String>, u64) {
    let path = format!("{}/../../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).expect("the scenario");
    let runner = Runner::new(&path, &source, Default::default()).expect("the scenario loads");
    let mut seen = BTreeSet::new();
    let mut complete = 0;
    let mut plan = match reduction {
        Reduction::Full => DfsPlan::default(),
        Reduction::SleepSets => DfsPlan { sleep_sets: true, ..Default::default() },
        Reduction::Dpor => DfsPlan::dpor(bound),
    };
    for _ in 0..100_000 {
        let options =
            RunOptions { record_events: false, dfs: Some(plan.clone()), ..RunOptions::new(variant.fixes(), 1) };
        let report = runner.run(&options).expect("the scenario runs");
        let run = std::mem::take(&mut *plan.log.borrow_mut());
        if !run.pruned {
            complete += 1;
            let outcome = match &report.outcome {
                Outcome::Violation(v) => format!("violation {}", v.invariant),
                other => format!("{other:?}"),
            };
            let mut printk = report.printk.clone();
            printk.sort();
            seen.insert(format!("{outcome} at {} ns {:?} {printk:?}", report.time_ns, report.stats));
        }
        match plan.next(&run, bound) {
            Some(next) => plan = next,
            None => return (seen, complete),
        }
    }
    panic!("{file}: the search did not finish in 100 000 runs");
}

/// For each (scenario, kernel, bound): the searches with and without sleep
/// sets reach the same outcomes, and sleep sets run fewer schedules.
fn compare(searches: &[(&str, Variant, u32)]) {
    for &(file, variant, bound) in searches {
        let (full, n_full) = outcomes(file, variant, bound, Reduction::Full);
        let (reduced, n_reduced) = outcomes(file, variant, bound, Reduction::SleepSets);
        assert_eq!(full, reduced, "{file} {variant:?} bound {bound}");
        assert!(n_reduced < n_full, "{file} {variant:?}: {n_reduced} of {n_full} schedules");
        eprintln!("{file} {variant:?} bound {bound}: {} outcomes, {n_full} -> {n_reduced} schedules", full.len());
    }
}

/// DPOR (`engine::DfsPlan::dpor`) against the full search on the race
/// scenarios: the same outcomes (race 3 under pre4 is the case that once
/// lost violations: runs stopped by a violation cut the other tasks' steps
/// short, and no race with them was seen).
#[test]
fn dpor_reaches_every_outcome_of_the_full_search() {
    for (file, variant, bound) in [
        ("race2_exit.lua", Variant::Pre4, 1),
        ("race2_exit.lua", Variant::Patched, 1),
        ("race3_fault.lua", Variant::Pre4, 0),
        ("race3_fault.lua", Variant::Pre4, 1),
        ("race5_munmap.lua", Variant::Patched, 2),
    ] {
        let (full, n_full) = outcomes(file, variant, bound, Reduction::Full);
        let (dpor, n_dpor) = outcomes(file, variant, bound, Reduction::Dpor);
        assert_eq!(full, dpor, "{file} {variant:?} bound {bound}: DPOR ran {n_dpor} schedules of {n_full}");
        assert!(n_dpor <= n_full, "{file} {variant:?}: DPOR {n_dpor} of {n_full} schedules");
    }
}

#[test]
fn sleep_sets_reach_every_outcome_of_the_full_search() {
    compare(&[
        // Race 2 runs on three CPUs: one preemption keeps its trees small.
        ("race2_exit.lua", Variant::Pre4, 1),
        ("race2_exit.lua", Variant::Patched, 1),
        ("race3_fault.lua", Variant::Pre4, 1),
        ("race4_shm.lua", Variant::Pre4, 2),
        ("race5_munmap.lua", Variant::Pre4, 2),
        ("race5_munmap.lua", Variant::Patched, 2),
        ("race7_shm_nopage.lua", Variant::Pre4, 1),
        ("race1_fork.lua", Variant::Linux2_4_10, 1),
        ("race4_shm.lua", Variant::Linux5_1, 1),
    ]);
}

/// The same on the larger searches (about 10 s in release, minutes in
/// debug): `cargo test --release -p script --test sleep_sets -- --ignored`.
#[test]
#[ignore]
fn sleep_sets_reach_every_outcome_of_the_larger_searches() {
    compare(&[
        ("race1_fork.lua", Variant::Patched, 2),
        ("race1_fork.lua", Variant::Pre4, 1),
        ("race6_readahead.lua", Variant::Patched, 2),
        ("race3_fault.lua", Variant::Patched, 2),
        ("race7_shm_nopage.lua", Variant::Patched, 2),
        ("race4_shm.lua", Variant::Linux2_4_10, 2),
    ]);
}

/// DPOR against the sleep-set dfs (which the tests above hold to the full
/// search) on larger searches, about a minute in release:
/// `cargo test --release -p script --test sleep_sets -- --ignored of_the_larger_searches`.
#[test]
#[ignore]
fn dpor_reaches_every_outcome_of_the_larger_searches() {
    for (file, variant, bound) in [
        ("race3_fault.lua", Variant::Pre4, 2),
        ("race4_shm.lua", Variant::Pre4, 2),
        ("race1_fork.lua", Variant::Pre4, 1),
        ("race6_readahead.lua", Variant::Patched, 2),
    ] {
        let (sleep, n_sleep) = outcomes(file, variant, bound, Reduction::SleepSets);
        let (dpor, n_dpor) = outcomes(file, variant, bound, Reduction::Dpor);
        assert_eq!(sleep, dpor, "{file} {variant:?} bound {bound}: DPOR ran {n_dpor} schedules, sleep sets {n_sleep}");
        eprintln!(
            "{file} {variant:?} bound {bound}: {} outcomes, sleep sets {n_sleep}, DPOR {n_dpor} schedules",
            sleep.len()
        );
    }
}
