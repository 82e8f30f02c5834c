//! Properties that must hold for every seed and every small program:
//! determinism, exact replay of a recorded schedule, and the patched kernel
//! keeping every invariant on random fork/exit/exec/fault/munmap/swapoff
//! workloads. (Shm is left out: race 7 stays open under the patch.)

use engine::Outcome;
use kernel::Variant;
use proptest::prelude::*;
use script::{run::run, RunOptions};

/// One system call of a generated program.
#[derive(Clone, Debug)]
enum Op {
    Read(u8),
    Write(u8),
    SwapOut(u8),
    Fork(Vec<Op>),
    Swapoff,
    Swapon,
    Munmap(u8),
    Exec,
}

fn op() -> impl Strategy<Value = Op> {
    let leaf = prop_oneof![
        (0u8..4).prop_map(Op::Read),
        (0u8..4).prop_map(Op::Write),
        (0u8..4).prop_map(Op::SwapOut),
        Just(Op::Swapoff),
        Just(Op::Swapon),
        (0u8..4).prop_map(Op::Munmap),
        Just(Op::Exec),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| prop::collection::vec(inner, 0..4).prop_map(Op::Fork))
}

fn lua(ops: &[Op]) -> String {
    ops.iter()
        .map(|op| match op {
            Op::Read(i) => format!("read(0x10000 + {i} * 4096)"),
            Op::Write(i) => format!("write(0x10000 + {i} * 4096)"),
            Op::SwapOut(i) => format!("swap_out(0x10000 + {i} * 4096)"),
            Op::Fork(child) => format!("fork(function() {} end)", lua(child)),
            Op::Swapoff => "swapoff(1)".to_string(),
            Op::Swapon => "swapon(1)".to_string(),
            Op::Munmap(i) => format!("munmap(0x10000 + {i} * 4096, 1)"),
            Op::Exec => "exec()".to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn scenario(cpus: u8, programs: &[Vec<Op>], swapped: u8) -> String {
    let mut s =
        format!("machine {{ cpus = {cpus}, memory_pages = 128, swap_devices = {{ 32 }}, alloc_sleep = 0.3 }}\n");
    for (n, program) in programs.iter().enumerate() {
        s += &format!("local p{n} = process(\"p{n}\", function() {} end)\n", lua(program));
        s += &format!("p{n}:map(0x10000, 4)\n");
        for i in 0..4 {
            s += &format!("p{n}:write(0x10000 + {i} * 4096)\n");
        }
        for i in 0..swapped.min(4) {
            s += &format!("p{n}:swap_out(0x10000 + {i} * 4096)\n");
        }
    }
    s
}

fn workload() -> impl Strategy<Value = (u8, Vec<Vec<Op>>, u8, u64)> {
    (1u8..=3, prop::collection::vec(prop::collection::vec(op(), 1..6), 1..4), 0u8..=4, any::<u64>())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48)
}

/// The cases are drawn from a fixed seed, so CI runs the same cases every
/// time (a red CI is reproducible); `PROPTEST_RNG_SEED=N` draws others, as
/// scripts/proptest_long.sh does.
fn config() -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000_421);
    ProptestConfig {
        cases: cases(),
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

proptest! {
    // 48 cases in CI; PROPTEST_CASES=N for a longer search.
    #![proptest_config(config())]

    #[test]
    fn the_patched_kernel_keeps_every_invariant((cpus, programs, swapped, seed) in workload()) {
        let source = scenario(cpus, &programs, swapped);
        let report = run("gen.lua", &source, &RunOptions::new(Variant::Patched.fixes(), seed)).unwrap();
        prop_assert_eq!(&report.outcome, &Outcome::Finished, "{}\n{:?}", source, report.printk);
    }

    #[test]
    fn the_later_swapoff_designs_keep_every_invariant((cpus, programs, swapped, seed) in workload()) {
        let source = scenario(cpus, &programs, swapped);
        for variant in [Variant::Linux2_4_10, Variant::Linux5_1] {
            let report = run("gen.lua", &source, &RunOptions::new(variant.fixes(), seed)).unwrap();
            prop_assert_eq!(&report.outcome, &Outcome::Finished, "{} under {}\n{:?}", source, variant, report.printk);
        }
    }

    #[test]
    fn a_run_is_a_function_of_its_inputs_and_replays_from_its_choices((cpus, programs, swapped, seed) in workload()) {
        let source = scenario(cpus, &programs, swapped);
        for variant in Variant::ALL {
            let first = run("gen.lua", &source, &RunOptions::new(variant.fixes(), seed)).unwrap();
            let again = run("gen.lua", &source, &RunOptions::new(variant.fixes(), seed)).unwrap();
            prop_assert_eq!(&first.events, &again.events);
            prop_assert_eq!(&first.outcome, &again.outcome);
            let replay_options = RunOptions { schedule: Some(first.choices.clone()), ..RunOptions::new(variant.fixes(), seed) };
            let replayed = run("gen.lua", &source, &replay_options).unwrap();
            prop_assert_eq!(&first.events, &replayed.events, "replaying the recorded choices");
            prop_assert_eq!(&first.outcome, &replayed.outcome);
        }
    }
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
    fn injected_faults_never_break_the_patched_kernel((cpus, programs, swapped, seed) in workload(), rate in 0u32..200_000) {
        let source = scenario(cpus, &programs, swapped);
        let faults = kernel::Faults { alloc_fail_ppm: rate, alloc_fail_nth: None, io_delay_ppm: 100_000, read_error_ppm: 0 };
        let options = RunOptions { faults: Some(faults), ..RunOptions::new(Variant::Patched.fixes(), seed) };
        let report = run("gen.lua", &source, &options).unwrap();
        prop_assert_eq!(&report.outcome, &Outcome::Finished, "{}\n{:?}", source, report.printk);
    }
}
