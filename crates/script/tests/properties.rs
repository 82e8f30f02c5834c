//! Properties that must hold for every seed and every small program:
//! determinism, exact replay of a recorded schedule, and the patched kernel
//! keeping every invariant (but for the races the patch leaves open) on
//! generated workloads; and a guard of the generator's power: pre4 must
//! break in a stated share of the cases it generates.
//!
//! A workload is a small machine under memory pressure (reclaim runs: the
//! allocations reach `pages_low` and `pages_min`), one to three swap
//! devices, a shm segment attached in every process, and programs of
//! random system calls: faults on anonymous and shm pages, fork, thread,
//! exec, munmap, swap_out, try_to_free_pages, shm_swap, sleep, wait_exit,
//! swapoff and swapon of any device; often a process that only switches devices
//! off and on, sometimes kswapd.

use engine::Outcome;
use kernel::Variant;
use proptest::prelude::*;
use script::{run::run, RunOptions};

/// One system call of a generated program. Pages are numbered within the
/// process's anonymous mapping (`PAGES`) or the shm attach (`SHM_PAGES`);
/// devices are taken modulo the machine's.
#[derive(Clone, Debug)]
enum Op {
    Read(u8),
    Write(u8),
    ShmRead(u8),
    ShmWrite(u8),
    SwapOut(u8),
    Fork(Vec<Op>),
    Thread(Vec<Op>),
    Swapoff(u8),
    Swapon(u8),
    Munmap(u8),
    Exec,
    Reclaim,
    ShmSwap,
    Sleep(u8),
    /// `wait_exit` of a process declared before this one's (none for the
    /// first: a `getpid` instead), so waits never form a cycle.
    WaitExit(u8),
}

const PAGES: u8 = 4;
const SHM_PAGES: u8 = 2;
const ANON: &str = "0x10000";
const SHM: &str = "0x40000000";

fn op() -> impl Strategy<Value = Op> {
    let leaf = prop_oneof![
        3 => (0..PAGES).prop_map(Op::Read),
        3 => (0..PAGES).prop_map(Op::Write),
        2 => (0..SHM_PAGES).prop_map(Op::ShmRead),
        2 => (0..SHM_PAGES).prop_map(Op::ShmWrite),
        2 => (0..PAGES).prop_map(Op::SwapOut),
        2 => (0u8..3).prop_map(Op::Swapoff),
        1 => (0u8..3).prop_map(Op::Swapon),
        1 => (0..PAGES).prop_map(Op::Munmap),
        1 => Just(Op::Exec),
        1 => Just(Op::Reclaim),
        1 => Just(Op::ShmSwap),
        1 => (0u8..3).prop_map(Op::Sleep),
        1 => (0u8..3).prop_map(Op::WaitExit),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 0..4).prop_map(Op::Fork),
            1 => prop::collection::vec(inner, 0..4).prop_map(Op::Thread),
        ]
    })
}

/// A generated case: the machine, the programs and their set-up, and the
/// seed of its run.
#[derive(Clone, Debug)]
struct Workload {
    cpus: u8,
    memory_pages: u16,
    devices: u8,
    kswapd: bool,
    /// A process that only switches devices off and on.
    swapoffer: bool,
    programs: Vec<Vec<Op>>,
    /// Pages of each process swapped out in set-up (the first N), each to
    /// its own device in turn.
    swapped: u8,
    /// Shm pages written and swapped out in set-up.
    shm_swapped: u8,
    seed: u64,
}

/// The program of process `me` (its children's too).
fn lua(ops: &[Op], devices: u8, me: usize) -> String {
    let device = |d: &u8| d % devices + 1;
    ops.iter()
        .map(|op| match op {
            Op::Read(i) => format!("read({ANON} + {i} * 4096)"),
            Op::Write(i) => format!("write({ANON} + {i} * 4096)"),
            Op::ShmRead(i) => format!("read({SHM} + {i} * 4096)"),
            Op::ShmWrite(i) => format!("write({SHM} + {i} * 4096)"),
            Op::SwapOut(i) => format!("swap_out({ANON} + {i} * 4096)"),
            Op::Fork(child) => format!("fork(function() {} end)", lua(child, devices, me)),
            Op::Thread(child) => format!("thread(function() {} end)", lua(child, devices, me)),
            Op::Swapoff(d) => format!("swapoff({})", device(d)),
            Op::Swapon(d) => format!("swapon({})", device(d)),
            Op::Munmap(i) => format!("munmap({ANON} + {i} * 4096, 1)"),
            Op::Exec => "exec()".to_string(),
            Op::Reclaim => "try_to_free_pages()".to_string(),
            Op::ShmSwap => "shm_swap()".to_string(),
            Op::Sleep(ms) => format!("sleep({ms})"),
            Op::WaitExit(_) if me == 0 => "getpid()".to_string(),
            Op::WaitExit(m) => format!("wait_exit(p{}.pid)", *m as usize % me),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn scenario(w: &Workload) -> String {
    let devices = vec!["16"; w.devices as usize].join(", ");
    let mut s = format!(
        "machine {{ cpus = {}, memory_pages = {}, swap_devices = {{ {devices} }}, alloc_sleep = 0.3, kswapd = {} }}\n",
        w.cpus, w.memory_pages, w.kswapd
    );
    s += &format!("local seg = shmget({SHM_PAGES})\n");
    for (n, program) in w.programs.iter().enumerate() {
        s += &format!("local p{n} = process(\"p{n}\", function() {} end)\n", lua(program, w.devices, n));
        s += &format!("p{n}:map({ANON}, {PAGES})\n");
        s += &format!("p{n}:shmat(seg, {SHM})\n");
        for i in 0..PAGES {
            s += &format!("p{n}:write({ANON} + {i} * 4096)\n");
        }
        for i in 0..w.swapped.min(PAGES) {
            let device = (n as u8 + i) % w.devices + 1;
            s += &format!("p{n}:swap_out({ANON} + {i} * 4096, {device})\n");
        }
    }
    for i in 0..w.shm_swapped.min(SHM_PAGES) {
        s += &format!("p0:write({SHM} + {i} * 4096)\np0:swap_out({SHM} + {i} * 4096)\n");
    }
    if w.swapoffer {
        s += "process(\"swapoffer\", function()\n";
        for d in 1..=w.devices {
            s += &format!("  swapoff({d}); swapon({d})\n");
        }
        s += "end)\n";
    }
    s
}

fn workload() -> impl Strategy<Value = Workload> {
    (
        (1u8..=3, prop::sample::select(vec![20u16, 24, 28]), 1u8..=3, any::<bool>(), prop::bool::weighted(0.9)),
        prop::collection::vec(prop::collection::vec(op(), 1..6), 1..4),
        (1u8..=PAGES, 0u8..=SHM_PAGES, any::<u64>()),
    )
        .prop_map(|((cpus, memory_pages, devices, kswapd, swapoffer), programs, (swapped, shm_swapped, seed))| {
            Workload { cpus, memory_pages, devices, kswapd, swapoffer, programs, swapped, shm_swapped, seed }
        })
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48)
}

/// The cases are drawn from a fixed seed, so CI runs the same cases every
/// time (a red CI is reproducible); `PROPTEST_RNG_SEED=N` draws others, as
/// scripts/proptest_long.sh does.
fn rng_seed() -> u64 {
    std::env::var("PROPTEST_RNG_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000_421)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        rng_seed: proptest::test_runner::RngSeed::Fixed(rng_seed()),
        ..ProptestConfig::default()
    }
}

/// The races the patch leaves open (docs/races.md): a violation under the
/// patch is one of them when the run's key events match the race's
/// signature (its bucket, `kernel::signatures`): race 7
/// (`race7-shm-nopage`: a shm_nopage worked from an SHM_ENTRY that
/// shm_unuse replaced meanwhile) or the shm_swap window
/// (`shm-swap-window`: swapoff took a slot shm_swap had not published).
/// Anything else, `unclassified` included, is a failure.
fn known_open_race(report: &script::RunReport) -> Option<&'static str> {
    let bucket = report.bucket.as_ref()?;
    ["race7-shm-nopage", "shm-swap-window"].into_iter().find(|&open| bucket.name == open)
}

fn run_case(w: &Workload, variant: Variant) -> script::RunReport {
    let source = scenario(w);
    let options = RunOptions { count_points: true, record_events: false, ..RunOptions::new(variant.fixes(), w.seed) };
    run("gen.lua", &source, &options).unwrap_or_else(|e| panic!("{e}\n{source}"))
}

proptest! {
    // 48 cases in CI; PROPTEST_CASES=N for a longer search.
    #![proptest_config(config())]

    #[test]
    fn the_patched_kernel_keeps_every_invariant_but_the_open_races(w in workload()) {
        let report = run_case(&w, Variant::Patched);
        prop_assert!(
            report.outcome == Outcome::Finished || known_open_race(&report).is_some(),
            "{}\n{:?}\n{:?}", scenario(&w), report.outcome, report.printk
        );
    }

    #[test]
    fn the_later_swapoff_designs_keep_every_invariant(w in workload()) {
        // The designs that close every race (6.9 has every later fix).
        for variant in [Variant::Linux2_4_10, Variant::Linux5_1, Variant::Linux6_9] {
            let report = run_case(&w, variant);
            prop_assert!(
                report.outcome == Outcome::Finished,
                "{} under {}\n{:?}\n{:?}", scenario(&w), variant, report.outcome, report.printk
            );
        }
    }

    #[test]
    fn a_run_is_a_function_of_its_inputs_and_replays_from_its_choices(w in workload()) {
        let source = scenario(&w);
        for variant in Variant::ALL {
            let first = run("gen.lua", &source, &RunOptions::new(variant.fixes(), w.seed)).unwrap();
            let again = run("gen.lua", &source, &RunOptions::new(variant.fixes(), w.seed)).unwrap();
            prop_assert_eq!(&first.events, &again.events);
            prop_assert_eq!(&first.outcome, &again.outcome);
            let replay_options = RunOptions { schedule: Some(first.choices.clone()), ..RunOptions::new(variant.fixes(), w.seed) };
            let replayed = run("gen.lua", &source, &replay_options).unwrap();
            prop_assert_eq!(&first.events, &replayed.events, "replaying the recorded choices");
            prop_assert_eq!(&first.outcome, &replayed.outcome);
        }
    }
}

/// The generator's power: pre4 breaks an invariant in at least
/// `PRE4_SHARE` percent of `POWER_CASES` generated cases, while the patched
/// kernel breaks nothing but the open races on the same cases, and those
/// in at most `OPEN_SHARE` percent. Measured on 2026-12-06: pre4 broke 90
/// of the 200 CI cases (45%: swapoff-completeness 49, swap-count 36,
/// fault-result 5), and 67 to 89 (33.5 to 44.5%) with `PROPTEST_RNG_SEED`
/// 1 to 11; the patch's open races 6 (race 7; 2 to 8 with the other
/// seeds). Free memory fell to `pages_low` in about 30% of the runs under
/// pre4, to `pages_min` in about 12%. The narrow generator of before (128
/// pages, one device, no shm, no reclaim) broke pre4 in 7% of its cases. A
/// change that weakens the generator (or stops the model finding pre4's
/// races) fails here, not silently in the properties above.
const POWER_CASES: usize = 200;
const PRE4_SHARE: usize = 30;
const OPEN_SHARE: usize = 5;

#[test]
fn the_generator_breaks_pre4_in_a_stated_share_of_cases() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::new(config());
    let (mut pre4, mut open, mut by_invariant) = (0, 0, std::collections::BTreeMap::<&str, usize>::new());
    let mut unclassified: Vec<String> = Vec::new();
    for _ in 0..POWER_CASES {
        let w = workload().new_tree(&mut runner).expect("a case").current();
        let report = run_case(&w, Variant::Pre4);
        if let Outcome::Violation(v) = &report.outcome {
            pre4 += 1;
            *by_invariant.entry(v.invariant).or_default() += 1;
        }
        let patched = run_case(&w, Variant::Patched);
        match known_open_race(&patched) {
            Some(_) => open += 1,
            None if patched.outcome != Outcome::Finished => {
                unclassified.push(format!("seed {}: {:?}\n{}", w.seed, patched.outcome, scenario(&w)));
            }
            None => {}
        }
    }
    eprintln!("pre4 broke {pre4} of {POWER_CASES} cases {by_invariant:?}; the patch's open races {open}");
    assert!(unclassified.is_empty(), "the patched kernel broke outside the open races:\n{}", unclassified.join("\n"));
    assert!(pre4 * 100 >= PRE4_SHARE * POWER_CASES, "pre4 broke only {pre4} of {POWER_CASES} cases {by_invariant:?}");
    assert!(open * 100 <= OPEN_SHARE * POWER_CASES, "the open races broke {open} of {POWER_CASES} patched cases");
}

/// Random bytes and mutated scenario files fed to the loader: an error or a
/// scenario, never a panic.
fn mutated_scenario() -> impl Strategy<Value = String> {
    let base = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/race1_fork.lua")).unwrap();
    (any::<u64>(), prop::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 1..8)).prop_map(move |(_, edits)| {
        let mut bytes = base.clone().into_bytes();
        for (at, byte, kind) in edits {
            let at = at as usize % (bytes.len() + 1);
            match kind {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_loader_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let source = String::from_utf8_lossy(&bytes).into_owned();
        let limits = script::sandbox::SandboxLimits { max_instructions: 1_000_000, max_memory_bytes: 16 << 20, ..Default::default() };
        let _ = script::run::load("fuzz.lua", &source, limits);
    }

    #[test]
    fn the_loader_and_a_run_never_panic_on_mutated_scenarios(source in mutated_scenario(), seed in 1u64..1000) {
        let limits = script::sandbox::SandboxLimits { max_instructions: 1_000_000, max_memory_bytes: 16 << 20, ..Default::default() };
        if script::run::load("mutant.lua", &source, limits).is_ok() {
            let options = RunOptions { limits, ..RunOptions::new(Variant::Patched.fixes(), seed) };
            let _ = run("mutant.lua", &source, &options);
        }
    }

    #[test]
    fn injected_faults_never_break_the_patched_kernel(w in workload(), rate in 0u32..200_000) {
        let source = scenario(&w);
        let faults = kernel::Faults { alloc_fail_ppm: rate, alloc_fail_nth: None, io_delay_ppm: 100_000, read_error_ppm: 0 };
        let options = RunOptions { faults: Some(faults), count_points: true, ..RunOptions::new(Variant::Patched.fixes(), w.seed) };
        let report = run("gen.lua", &source, &options).unwrap();
        prop_assert!(
            report.outcome == Outcome::Finished || known_open_race(&report).is_some(),
            "{}\n{:?}\n{:?}", source, report.outcome, report.printk
        );
    }
}
