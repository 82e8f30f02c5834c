//! The dfs search's sleep sets, and source-DPOR, lose nothing on the real
//! kernel model: for race scenarios, every outcome (each invariant broken,
//! with the kernel's messages and counters at the end) that the full bounded
//! search reaches, the search with sleep sets reaches too, and so does the
//! search with DPOR. A kernel access that escaped the
//! footprints (`kernel::tracked`) would show here as a lost outcome.

use std::collections::BTreeSet;

use engine::{DfsPlan, Outcome, StepKind};
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

/// A diagnostic, not a check: what a DPOR search of a scenario explores,
/// against what any search over these footprints must. Run
/// `DIAG=race1_fork.lua:patched:2 cargo test --release -p script --test
/// sleep_sets -- --ignored --nocapture diagnose` (`pre4`; bound `none`). It
/// prints the schedules run, the outcomes with and without the end time,
/// the distinct traces among the schedules (Mazurkiewicz: each step by its
/// task and the steps it follows by a conflict; an optimal search runs one
/// schedule per trace), the (allocation choices, order the tasks held the
/// CPU in) pairs (each a trace of its own while one CPU's clock orders its
/// holders), and which objects make the races DPOR reverses.
#[test]
#[ignore]
fn diagnose() {
    use std::collections::BTreeMap;
    let spec = std::env::var("DIAG").unwrap_or_else(|_| "race1_fork.lua:patched:2".into());
    let mut parts = spec.split(':');
    let file = parts.next().unwrap_or("race1_fork.lua").to_string();
    let variant = if parts.next() == Some("pre4") { Variant::Pre4 } else { Variant::Patched };
    let bound = parts.next().map_or(2, |b| b.parse().unwrap_or(u32::MAX));
    let path = format!("{}/../../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).expect("the scenario");
    let runner = Runner::new(&path, &source, Default::default()).expect("the scenario loads");
    let plan_tree = DfsPlan::dpor(bound);
    let tree = plan_tree.dpor.clone().expect("a DPOR plan");
    tree.borrow_mut().blame = Some(BTreeMap::new());
    let mut plan = plan_tree;
    let (mut timed, mut untimed, mut traces, mut cpu_orders) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut complete = 0;
    for _ in 0..50_000 {
        let options =
            RunOptions { record_events: false, dfs: Some(plan.clone()), ..RunOptions::new(variant.fixes(), 1) };
        let report = runner.run(&options).expect("the scenario runs");
        let run = std::mem::take(&mut *plan.log.borrow_mut());
        if !run.pruned {
            complete += 1;
            let mut printk = report.printk.clone();
            printk.sort();
            let what = format!("{:?} {:?} {printk:?}", report.outcome, report.stats);
            timed.insert(format!("{what} at {} ns", report.time_ns));
            untimed.insert(what);
            let slot = |k: StepKind| match k {
                StepKind::Timer => 0usize,
                StepKind::Task(t) => t.0 as usize + 1,
            };
            // The allocation choices (a decision with no step options)
            // taken other than the default, by task and ordinal.
            let mut nth = vec![0u32; run.steps.iter().map(|s| slot(s.step.kind)).max().unwrap_or(0) + 1];
            let mut choices = Vec::new();
            for (d, (record, info)) in run.records.iter().zip(&run.dpor).enumerate() {
                if !info.kinds.is_empty() {
                    continue;
                }
                let owner = run.steps.iter().rev().find(|s| s.decision as usize <= d).map_or(0, |s| slot(s.step.kind));
                nth[owner] += 1;
                if record.rank > 0 {
                    choices.push((owner, nth[owner], record.rank));
                }
            }
            // The order the tasks held the CPU in (timers aside).
            let mut holders: Vec<usize> = Vec::new();
            for step in &run.steps {
                let p = slot(step.step.kind);
                if p != 0 && holders.last() != Some(&p) {
                    holders.push(p);
                }
            }
            cpu_orders.insert((choices.clone(), holders));
            // The trace: each step by its task, its vector clock and what
            // it touched.
            let procs = nth.len();
            let mut clocks: Vec<Vec<u32>> = Vec::with_capacity(run.steps.len());
            let mut last: Vec<Option<usize>> = vec![None; procs];
            for (e, step) in run.steps.iter().enumerate() {
                let p = slot(step.step.kind);
                let mut vc = last[p].map_or_else(|| vec![0; procs], |l| clocks[l].clone());
                vc[p] += 1;
                for (i, earlier) in run.steps[..e].iter().enumerate() {
                    if earlier.step.footprint.conflicts(&step.step.footprint) {
                        let before = clocks[i].clone();
                        vc.iter_mut().zip(before).for_each(|(x, y)| *x = (*x).max(y));
                    }
                }
                last[p] = Some(e);
                clocks.push(vc);
            }
            let mut trace: Vec<(usize, Vec<u32>, String)> = run
                .steps
                .iter()
                .zip(&clocks)
                .map(|(s, vc)| (slot(s.step.kind), vc.clone(), format!("{:?}", s.step.footprint)))
                .collect();
            trace.sort();
            traces.insert((choices, trace));
        }
        match plan.next(&run, bound) {
            Some(next) => plan = next,
            None => break,
        }
    }
    let tree = tree.borrow();
    eprintln!(
        "{spec}: {complete} schedules, {} outcomes ({} without the end time), {} traces, \
         {} (allocation choices, CPU order) pairs; {} races reversed, {} backtrack points added",
        timed.len(),
        untimed.len(),
        traces.len(),
        cpu_orders.len(),
        tree.races,
        tree.added
    );
    // Each (allocation choices, CPU order) pair is a trace of its own, and
    // an optimal search runs one schedule per trace: the floors the doc of
    // `engine::choice::dpor` quotes.
    assert!(cpu_orders.len() <= traces.len() && traces.len() <= complete, "the floors do not hold");
    let blame = tree.blame.as_ref().expect("asked for");
    let mut by_space: BTreeMap<(u32, &str), [u64; 2]> = BTreeMap::new();
    for (&(space, _, how), n) in blame {
        let sum = by_space.entry((space, how)).or_default();
        sum[0] += n[0];
        sum[1] += n[1];
    }
    let mut spaces: Vec<_> = by_space.into_iter().collect();
    spaces.sort_by_key(|&(_, n)| std::cmp::Reverse(n[1]));
    eprintln!("  space how        races  (adding a backtrack point)");
    for ((space, how), n) in spaces {
        eprintln!("  {space:>5} {how:<10} {:>8} ({})", n[0], n[1]);
    }
    let mut keys: Vec<_> = blame.iter().collect();
    keys.sort_by_key(|&(_, n)| std::cmp::Reverse(n[1]));
    eprintln!("  space key              how        races  (adding a backtrack point)");
    for ((space, key, how), n) in keys.into_iter().take(30) {
        eprintln!("  {space:>5} {key:>16x} {how:<10} {:>8} ({})", n[0], n[1]);
    }
}
