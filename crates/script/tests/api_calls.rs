//! What the scenario API's calls do, beyond their argument checks
//! (crates/cli/tests/it/bad_scenarios.rs): each one against the kernel
//! state it is meant to reach.

use engine::Outcome;
use kernel::Variant;
use script::{run::run, RunOptions};

fn events_with(report: &script::RunReport, text: &str) -> usize {
    report.events.iter().filter(|e| e.text.contains(text)).count()
}

/// `p:swap_out(addr, device)` puts the page on that device; without a
/// device the devices fill in order.
#[test]
fn swap_out_in_set_up_names_the_device() {
    let source = |device: &str| {
        format!(
            r#"
machine {{ cpus = 1, memory_pages = 64, swap_devices = {{ 8, 8, 8 }} }}
local p = process("p")
p:map(0x10000, 2)
p:write(0x10000)
p:write(0x11000)
p:swap_out(0x10000{device})
p:swap_out(0x11000)
process("off", function() for d = 1, 3 do expect(swapoff(d) == 0, "swapoff") end end)
"#
        )
    };
    let options = RunOptions::new(Variant::Patched.fixes(), 1);
    let named = run("device.lua", &source(", 3"), &options).unwrap();
    assert_eq!(named.outcome, Outcome::Finished);
    assert_eq!(events_with(&named, "swap entry 3:1 -> page"), 1, "the first page went to device 3");
    assert_eq!(events_with(&named, "swap entry 1:1 -> page"), 1, "the second to device 1, as before");
    let in_order = run("device.lua", &source(""), &options).unwrap();
    assert_eq!(events_with(&in_order, "swap entry 1:1 -> page"), 1);
    assert_eq!(events_with(&in_order, "swap entry 1:2 -> page"), 1);
    assert_eq!(events_with(&in_order, "swap entry 3:"), 0);
    // A page that goes back to its old slot cannot move: the step says so.
    let back = r#"
machine { cpus = 1, memory_pages = 64, swap_devices = { 8, 8 } }
local p = process("p")
p:map(0x10000, 1)
p:write(0x10000)
p:swap_out(0x10000)
p:read(0x10000)
p:swap_out(0x10000, 2)
"#;
    let err = run("back.lua", back, &options).unwrap_err().to_string();
    assert_eq!(
        err,
        "back.lua:8: set-up step failed: the page at 0x10000 went out to 1:1, not to device 2: it goes back to the slot \
         it had (it was in the swap cache, or read in from that slot)"
    );
    // A full device: the page goes elsewhere, and the step says why.
    let full = r#"
machine { cpus = 1, memory_pages = 64, swap_devices = { 2, 8 } }
local p = process("p")
p:map(0x10000, 2)
p:write(0x10000)
p:write(0x11000)
p:swap_out(0x10000, 1)
p:swap_out(0x11000, 1)
"#;
    let err = run("full.lua", full, &options).unwrap_err().to_string();
    assert_eq!(
        err,
        "full.lua:8: set-up step failed: the page at 0x11000 went out to 2:1, not to device 1: device 1 is full"
    );
}

/// `try_to_free_pages()` runs do_try_to_free_pages as direct reclaim does:
/// it reclaims swap-cache pages nobody maps (shrink_mmap), writes shm pages
/// out (shm_swap) and steals ptes (swap_out). `shm_swap()` writes one shm
/// page out.
#[test]
fn direct_reclaim_and_shm_swap_are_calls() {
    let source = r#"
machine { cpus = 1, memory_pages = 64, swap_devices = { 64 }, alloc_sleep = 0 }
local seg = shmget(2)
local p = process("p", function()
  write(0x40000000)
  write(0x40001000)
  for i = 0, 7 do write(0x10000 + i * 4096) end
  munmap(0x40000000, 2)
  expect(shm_swap() == true, "shm_swap took a page")
  local freed = try_to_free_pages()
  expect(freed == false, "not 32 pages to free in so small a machine")
end)
p:map(0x10000, 8)
p:shmat(seg, 0x40000000)
"#;
    let options = RunOptions::new(Variant::Patched.fixes(), 1);
    let report = run("reclaim.lua", source, &options).unwrap();
    assert_eq!(report.outcome, Outcome::Finished, "{:?}", report.printk);
    // shm_swap's write, then reclaim's: the second shm page and the
    // anonymous pages swap_out aged and then took.
    assert!(events_with(&report, "shm_swap:shm_lockall") >= 2, "shm_swap ran from both calls");
    assert!(events_with(&report, "swap_out:lock_kernel") >= 1, "do_try_to_free_pages ran swap_out");
    assert!(report.stats.swap_outs >= 2, "{:?}", report.stats);
}

/// How many of seeds 1..=n break the scenario's expectation.
fn broken_seeds(source: &str, n: u64, strategy: script::Strategy) -> usize {
    let runner = script::run::Runner::new("order.lua", source, Default::default()).unwrap();
    (1..=n)
        .filter(|&seed| {
            let options = RunOptions { strategy, ..RunOptions::new(Variant::Patched.fixes(), seed) };
            let report = runner.run(&options).unwrap();
            assert!(
                matches!(report.outcome, Outcome::Finished | Outcome::Violation(_)),
                "seed {seed}: {:?}",
                report.outcome
            );
            report.outcome != Outcome::Finished
        })
        .count()
}

const STRATEGIES: [script::Strategy; 2] = [script::Strategy::Random, script::Strategy::Pct { depth: 3, steps: 200 }];

/// `wait_exit(pid)` orders a program after another's exit in random and
/// PCT runs, where `sleep` does not; it does not reap.
#[test]
fn wait_exit_orders_tasks_and_sleep_does_not() {
    let scenario = |wait: &str| {
        format!(
            r#"
machine {{ cpus = 2 }}
local done = false
local a = process("a", function() getpid(); getpid(); done = true end)
process("b", function()
  {wait}
  expect(done, "b went on before a was done")
  expect(waitpid(a.pid) == a.pid, "a is still there to reap")
end)
"#
        )
    };
    for strategy in STRATEGIES {
        assert_eq!(broken_seeds(&scenario("wait_exit(a.pid)"), 200, strategy), 0, "{strategy:?}");
        assert!(broken_seeds(&scenario("sleep(5)"), 200, strategy) > 0, "{strategy:?}: sleep orders nothing");
    }
    // No such process: -ECHILD at once.
    let source = r#"process("b", function() expect(wait_exit(9) == -10, "ECHILD") end)"#;
    assert_eq!(broken_seeds(source, 5, script::Strategy::Random), 0);
}

/// `wait_point(pt)` sleeps until a task has gone on from the named point:
/// the waiter wakes in the step that leaves the point, never in the one
/// that reaches it. `wait_point(pt, n)` waits for the n-th pass.
#[test]
fn wait_point_orders_tasks_by_a_named_point() {
    let source = r#"
machine { cpus = 2, memory_pages = 64, swap_devices = { 16 } }
local forked = point("do_fork:write_lock_tasklist")
local stage = 0
local parent = process("parent", function()
  stage = 1
  fork(function() end)
  stage = 2
  fork(function() end)
end)
process("watcher", function()
  local n = wait_point(forked)
  expect(n >= 1 and stage >= 1, "woken before the first fork got there")
  n = wait_point(forked, 2)
  expect(n >= 2 and stage == 2, "woken before the second fork got there")
end)
"#;
    for strategy in STRATEGIES {
        assert_eq!(broken_seeds(source, 200, strategy), 0, "{strategy:?}");
    }
    // The waiter's wake comes in a later step than the parent's arrival at the point.
    let report = run("order.lua", source, &RunOptions::new(Variant::Patched.fixes(), 3)).unwrap();
    let reached = report
        .events
        .iter()
        .find(|e| e.task == "parent" && e.point == "do_fork:write_lock_tasklist")
        .expect("the parent reaches the point");
    let woken = report
        .events
        .iter()
        .find(|e| e.task == "watcher" && e.kind == engine::EventKind::Wake)
        .expect("the watcher sleeps and is woken");
    assert!(woken.step > reached.step, "woken at step {}, the point reached at step {}", woken.step, reached.step);
}

/// A point the model does not have is an error while the file loads, at
/// its line, with the points of the same function.
#[test]
fn point_names_a_point_of_the_model() {
    let err = script::run::load("p.lua", "process(\"p\")\npoint(\"try_to_unuse:nowhere\")\n", Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "p.lua:2: point: the model has no named point \"try_to_unuse:nowhere\" (the points of try_to_unuse are "
        ),
        "{err}"
    );
    assert!(err.contains("try_to_unuse:after_read_swap_cache"), "{err}");
    let err = script::run::load("p.lua", "process(\"p\")\npoint(\"frobnicate:x\")\n", Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no point of the model is in a function of that name"), "{err}");
    let source = "process(\"p\", function() point(\"do_fork:write_lock_tasklist\") end)\n";
    let err = run("p.lua", source, &RunOptions::new(Variant::Patched.fixes(), 1)).unwrap_err().to_string();
    assert!(err.contains("p.lua:1: point() declares the scenario"), "{err}");
    let source = "process(\"p\", function() wait_point(\"do_fork:write_lock_tasklist\") end)\n";
    let err = run("p.lua", source, &RunOptions::new(Variant::Patched.fixes(), 1)).unwrap_err().to_string();
    assert!(
        err.contains("p.lua:1: wait_point: expected a point from point(name) as its first argument, got the string"),
        "{err}"
    );
    assert!(script::points::MODEL_POINTS.contains(&"try_to_unuse:after_read_swap_cache"));
}

/// Every schedule of a bounded dfs, as (outcome, end time) strings, and how
/// many ran whole.
fn dfs_outcomes(source: &str, bound: u32, sleep_sets: bool) -> (std::collections::BTreeSet<String>, u64) {
    let runner = script::run::Runner::new("dfs.lua", source, Default::default()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut complete = 0;
    let mut plan = engine::DfsPlan { sleep_sets, ..Default::default() };
    for _ in 0..20_000 {
        let options = RunOptions {
            record_events: false,
            dfs: Some(plan.clone()),
            ..RunOptions::new(Variant::Patched.fixes(), 1)
        };
        let report = runner.run(&options).unwrap();
        let run = std::mem::take(&mut *plan.log.borrow_mut());
        if !run.pruned {
            complete += 1;
            seen.insert(format!("{:?} at {} ns", report.outcome, report.time_ns));
        }
        match plan.next(&run, bound) {
            Some(next) => plan = next,
            None => return (seen, complete),
        }
    }
    panic!("the search did not finish in 20 000 runs");
}

/// In dfs the waits block: every schedule within the bound keeps the
/// order, and sleep sets reach the same outcomes as the full search (the
/// pass counts are in the steps' footprints).
#[test]
fn waits_hold_in_every_dfs_schedule() {
    let source = r#"
machine { cpus = 2 }
local forked = point("do_fork:write_lock_tasklist")
local done, stage = false, 0
local a = process("a", function() stage = 1; fork(function() end); getpid(); done = true end)
process("b", function()
  wait_point(forked)
  expect(stage == 1, "woken before a got to its fork")
  wait_exit(a.pid)
  expect(done, "b went on before a was done")
end)
"#;
    let (with_sleep_sets, _) = dfs_outcomes(source, 1, true);
    let (full, complete) = dfs_outcomes(source, 1, false);
    assert!(complete > 10, "a real search: {complete} schedules");
    assert!(full.iter().all(|o| o.starts_with("Finished")), "{full:?}");
    assert_eq!(with_sleep_sets, full);
}
