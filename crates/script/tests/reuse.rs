//! A runner reuses one Lua state for many runs: no run may leave state
//! behind for the next, and a reused run gives exactly what a fresh one does.

use kernel::Variant;
use script::run::{run, Runner};
use script::RunOptions;

const LEAKY: &str = r#"
machine { cpus = 1, memory_pages = 32, swap_devices = { 8 } }
counter = (counter or 0) + 1          -- a global: must start afresh every run
print("counter", counter)
_G.leak = (_G.leak or 0) + 1
print("leak", leak)
print("string.format", pcall(function() string.format = nil end))
print("metatable", getmetatable(""))
print("random", math.random(1000000))
local p = process("p", function() write(0x10000) end)
p:map(0x10000, 1)
"#;

#[test]
fn runs_of_a_reused_runner_cannot_see_each_other() {
    let runner = Runner::new("leaky.lua", LEAKY, Default::default()).unwrap();
    let first = runner.run(&RunOptions::new(Variant::Patched.fixes(), 5)).unwrap();
    let second = runner.run(&RunOptions::new(Variant::Patched.fixes(), 5)).unwrap();
    assert_eq!(first.prints, second.prints, "the same seed prints the same in a reused state");
    assert_eq!(first.prints[0], "counter\t1");
    assert_eq!(first.prints[1], "leak\t1");
    assert!(first.prints[2].starts_with("string.format\tfalse\t"), "{:?}", first.prints);
    assert!(first.prints[2].contains("read-only"), "{:?}", first.prints);
    assert_eq!(first.prints[3], "metatable\tfalse");
    let other = runner.run(&RunOptions::new(Variant::Patched.fixes(), 6)).unwrap();
    assert_ne!(first.prints[4], other.prints[4], "math.random follows the run's seed");
}

#[test]
fn a_reused_runner_gives_what_a_fresh_run_gives() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/race4_shm.lua")).unwrap();
    let runner = Runner::new("race4_shm.lua", &source, Default::default()).unwrap();
    for seed in 1..40 {
        for variant in Variant::ALL {
            let options = RunOptions::new(variant.fixes(), seed);
            let reused = runner.run(&options).unwrap();
            let fresh = run("race4_shm.lua", &source, &options).unwrap();
            assert_eq!(reused.outcome, fresh.outcome, "seed {seed} {variant}");
            assert_eq!(reused.events, fresh.events, "seed {seed} {variant}");
            assert_eq!(reused.choices, fresh.choices, "seed {seed} {variant}");
        }
    }
}

/// A runner keeps the state boot and set-up leave and starts later runs with
/// the same set-up from a copy of it: a run must not change that copy, and
/// a copy must give everything a fresh set-up gives, whatever ran between.
/// Most copies go into the simulator and kernel of the set-up's last run
/// (which may have broken an invariant, or run another kernel or with the
/// event log in between).
#[test]
fn runs_from_a_kept_set_up_give_what_a_fresh_set_up_gives() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/race1_fork.lua")).unwrap();
    let runner = Runner::new("race1_fork.lua", &source, Default::default()).unwrap();
    // Seeds innermost: every kernel (and the event log on or off) is a set-up
    // of its own, more than the runner keeps, so alternating them with every
    // run would never start one from a kept set-up.
    for round in 0..3 {
        for variant in Variant::ALL {
            for seed in 1..25 {
                let options =
                    RunOptions { record_events: (seed + round) % 2 == 0, ..RunOptions::new(variant.fixes(), seed) };
                let reused = runner.run(&options).unwrap();
                let fresh = run("race1_fork.lua", &source, &options).unwrap();
                let what = format!("round {round} seed {seed} {variant}");
                assert_eq!(reused.outcome, fresh.outcome, "{what}");
                assert_eq!(reused.steps, fresh.steps, "{what}");
                assert_eq!(reused.time_ns, fresh.time_ns, "{what}");
                assert_eq!(reused.stats, fresh.stats, "{what}");
                assert_eq!(reused.printk, fresh.printk, "{what}");
                assert_eq!(reused.events, fresh.events, "{what}");
                assert_eq!(reused.choices, fresh.choices, "{what}");
                assert_eq!(reused.tasks, fresh.tasks, "{what}");
                assert_eq!(reused.run_tasks, fresh.run_tasks, "{what}");
                assert_eq!(reused.calls, fresh.calls, "{what}");
            }
        }
    }
    // Every set-up (a kernel, with the event log on or off) is made once
    // per round (the runner keeps fewer than there are); every other run
    // of it starts in the state of its last run.
    let runs = 3 * Variant::ALL.len() as u64 * 24;
    let set_ups = 3 * Variant::ALL.len() as u64 * 2;
    assert_eq!(runner.set_up_copies(), (runs - 2 * set_ups, set_ups));
}

/// The instruction budget starts afresh in every run, down to the hook's
/// count on the main thread: a scenario that spends close to its budget
/// hits the limit in a reused runner exactly when it does in a fresh one
/// (Lua's count carried the last run's remainder over, so a run could hit
/// the limit after one run and not after another).
#[test]
fn the_instruction_budget_does_not_carry_over_between_runs() {
    // Each seed loops a different number of times (math.random), so runs end
    // at different points of the hook's interval.
    let source = r#"
machine { cpus = 1, memory_pages = 32, swap_devices = { 8 } }
local n = 100000 + math.random(40000)
for i = 1, n do end
process("p", function() exit() end)
"#;
    for budget in (100_000..=150_000).step_by(5_000) {
        let limits = script::sandbox::SandboxLimits { max_instructions: budget, ..Default::default() };
        let runner = Runner::new("budget.lua", source, limits).unwrap();
        for seed in 1..=8 {
            let options = RunOptions { limits, ..RunOptions::new(Variant::Patched.fixes(), seed) };
            let reused = runner.run(&options).map(|r| r.outcome);
            let fresh = run("budget.lua", source, &options).map(|r| r.outcome);
            assert_eq!(reused, fresh, "budget {budget}, seed {seed}");
        }
    }
}

/// Forked programs pay for their first instructions when they start: many
/// short children cannot run unpaid past the budget.
#[test]
fn forked_programs_pay_for_their_first_instructions() {
    let source = r#"
machine { cpus = 1, memory_pages = 32, swap_devices = { 8 }, step_budget = 10000000 }
process("p", function()
  for i = 1, 5000 do
    waitpid(fork(function() local x = 0 for j = 1, 200 do x = x + j end end))
  end
end)
"#;
    // 5000 children of ~1 000 instructions each: ~5 M instructions, under a
    // 1 M budget. Each is reaped, so zombies never reach max_threads.
    let limits = script::sandbox::SandboxLimits { max_instructions: 1_000_000, ..Default::default() };
    let options = RunOptions { limits, record_events: false, ..RunOptions::new(Variant::Patched.fixes(), 1) };
    let err = run("forks.lua", source, &options).expect_err("the budget runs out");
    assert!(err.message.starts_with("instruction limit exceeded"), "{err}");
    assert_eq!(err.location.as_deref(), Some("forks.lua:5"), "{err}");
}
