//! The program memo (`script::memo`): a run whose Lua steps come from the
//! memo reports exactly what it reports when its Lua runs, whatever the
//! runs before it did; a scenario that draws random numbers runs its Lua.

use kernel::Variant;
use script::run::Runner;
use script::RunOptions;

/// Every field of a report that a run's Lua side can reach.
fn digest(report: &script::RunReport) -> String {
    format!(
        "{:?}\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        report.outcome,
        report.steps,
        report.choices,
        report.prints,
        report.printk,
        report.calls,
        report.bucket,
        report.tasks,
        report.stats
    )
}

/// Runs seeds 1..=n on one runner with the memo and on one without, and
/// checks each pair; returns the memo runner's (steps from memo, in Lua).
fn same_with_and_without_memo(path: &str, source: &str, variant: Variant, n: u64) -> (u64, u64) {
    let memoised = Runner::new(path, source, Default::default()).unwrap();
    let plain = Runner::new(path, source, Default::default()).unwrap();
    for seed in 1..=n {
        let options = RunOptions { record_events: false, ..RunOptions::new(variant.fixes(), seed) };
        let with = memoised.run(&options);
        let without = plain.run(&RunOptions { memo: false, ..options.clone() });
        match (with, without) {
            (Ok(a), Ok(b)) => assert_eq!(digest(&a), digest(&b), "{path} seed {seed}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "{path} seed {seed}"),
            (a, b) => panic!("{path} seed {seed}: {a:?} against {b:?}"),
        }
    }
    assert_eq!(plain.program_steps().0, 0, "memo off: every step ran in Lua");
    memoised.program_steps()
}

fn scenario(name: &str) -> (String, String) {
    let path = format!("{}/../../scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap();
    (path, source)
}

#[test]
fn race_scenarios_report_the_same_from_the_memo() {
    for (name, variant) in
        [("race1_fork.lua", Variant::Pre4), ("race1_fork.lua", Variant::Patched), ("race3_fault.lua", Variant::Pre4)]
    {
        let (path, source) = scenario(name);
        let (from_memo, in_lua) = same_with_and_without_memo(&path, &source, variant, 300);
        assert!(from_memo > 3 * in_lua, "{name}: the memo served {from_memo} steps, Lua ran {in_lua}");
    }
}

/// Programs that share Lua state (a global and an upvalue written by one
/// and read by another, a forked child's closure over its parent's local)
/// and print: the memo keys the steps of all programs in their order, so
/// what one program did to the state is part of every later step's key.
#[test]
fn programs_sharing_state_and_printing_report_the_same() {
    let source = r#"
machine { cpus = 2, memory_pages = 64, swap_devices = { 16 }, alloc_sleep = 0.5 }
print("loaded")
local shared = 0
seen = {}
local a = process("a", function()
  local mine = 0
  fork(function()
    mine = mine + 1
    shared = shared + 10
    read(0x10000)
    print("child sees", shared, mine)
  end)
  write(0x10000)
  shared = shared + 1
  seen[#seen + 1] = "a"
  print("a sees", shared, mine, #seen)
  expect(shared < 12 or mine == 1, "a saw the child's writes " .. shared)
end)
a:map(0x10000, 1)
a:write(0x10000)
a:swap_out(0x10000)
process("b", function()
  seen[#seen + 1] = "b"
  print("b sees", shared, #seen)
  local r = swapoff(1)
  expect(r == 0 or shared > 0, "swapoff " .. r)
end)
"#;
    let (from_memo, in_lua) = same_with_and_without_memo("shared.lua", source, Variant::Pre4, 400);
    assert!(from_memo > in_lua, "the memo served {from_memo} steps, Lua ran {in_lua}");
}

/// A program that draws random numbers depends on the seed: the memo turns
/// itself off, and every run runs its Lua.
#[test]
fn a_scenario_that_draws_random_numbers_runs_its_lua() {
    let source = r#"
machine { cpus = 1, memory_pages = 64, swap_devices = { 16 } }
local p = process("p", function()
  read(0x10000)
  if math.random(2) == 1 then write(0x10000) end
  print("drew")
end)
p:map(0x10000, 1)
"#;
    let (from_memo, in_lua) = same_with_and_without_memo("random.lua", source, Variant::Patched, 50);
    assert_eq!(from_memo, 0, "the first run drew: no run after it used the memo");
    assert!(in_lua >= 50 * 2, "every run ran its Lua: {in_lua}");
}

/// A scenario error (an error raised by a program after some calls) comes
/// back from the memo with the same message and line.
#[test]
fn a_program_error_comes_back_from_the_memo() {
    let source = r#"
machine { cpus = 1, memory_pages = 64, swap_devices = { 16 } }
local p = process("p", function()
  read(0x10000)
  error("the program gives up")
end)
p:map(0x10000, 1)
"#;
    let (from_memo, _) = same_with_and_without_memo("error.lua", source, Variant::Patched, 20);
    assert!(from_memo > 0);
}
