//! `cargo bench -p cli`: how fast the simulator runs the race-1 scenario,
//! a long swapoff loop, and the seed's own stress test.
//! Prints figures; asserts nothing about speed (timing belongs here, not in
//! tests). Wall-clock time is read only to report speed, never fed into a
//! run.
//!
//! `cargo bench -p cli -- SECTION...` runs only the named sections
//! (`race1`, `toy`, `long`, `stress`, `dfs`); `quick` (alone or with sections)
//! runs race 1 only on the patched kernel with events off and the Lua state
//! reused, stress only on the patched kernel, and no long run: a short run
//! for comparing builds.

use std::time::Instant;

/// As the swapsim binary (src/main.rs).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kernel::Variant;
use script::RunOptions;

fn main() {
    let sections: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let quick = sections.iter().any(|s| s == "quick");
    let named: Vec<&String> = sections.iter().filter(|s| *s != "quick").collect();
    let on = |name: &str| named.is_empty() || named.iter().any(|s| *s == name);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let path = "scenarios/race1_fork.lua";
    let source = std::fs::read_to_string(format!("{root}/{path}")).expect("the race-1 scenario");
    println!(
        "{:<10} {:<8} {:<7} {:>6} {:>10} {:>12} {:>14}",
        "kernel", "events", "lua", "runs", "steps", "runs/s", "steps/s"
    );
    let race1_variants: &[Variant] = if !on("race1") {
        &[]
    } else if quick {
        &[Variant::Patched]
    } else {
        &Variant::ALL
    };
    let race1_modes: &[(bool, bool)] =
        if quick { &[(false, true)] } else { &[(false, true), (true, true), (false, false)] };
    for &variant in race1_variants {
        for &(record_events, reuse) in race1_modes {
            let runs = if reuse { 20_000u64 } else { 2000 };
            let start = Instant::now();
            let mut steps = 0u64;
            // What explore does: one Lua state and compiled chunk for all runs.
            let runner = script::run::Runner::new(path, &source, Default::default()).expect("the scenario loads");
            for seed in 1..=runs {
                // With the event log off, a run as explore makes it: lock
                // orders and point pairs recorded, no lists in the report
                // (so that explore's overhead over this loop is its own).
                let options = RunOptions {
                    record_events,
                    lock_order: !record_events,
                    point_pairs: !record_events,
                    details: record_events,
                    ..RunOptions::new(variant.fixes(), seed)
                };
                let report = if reuse { runner.run(&options) } else { script::run::run(path, &source, &options) };
                steps += report.expect("the scenario runs").steps;
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{:<10} {:<8} {:<7} {:>6} {:>10} {:>12.0} {:>14.0}",
                variant.name(),
                if record_events { "on" } else { "off" },
                if reuse { "reused" } else { "fresh" },
                runs,
                steps,
                runs as f64 / secs,
                steps as f64 / secs
            );
        }
    }
    // A toy: two tasks on two CPUs, one fault each (the smallest run that
    // interleaves anything): the per-run overhead of Lua and boot.
    let toy = r#"
        machine { cpus = 2, memory_pages = 64, swap_devices = { 16 } }
        process("a", function() write(0x100000) end):map(0x100000, 1)
        process("b", function() write(0x100000) end):map(0x100000, 1)
    "#;
    if on("toy") {
        toy_bench(toy);
    }
    if on("long") && !quick {
        long_bench();
    }
    if on("stress") {
        let variants: &[Variant] = if quick { &[Variant::Patched] } else { &Variant::ALL };
        stress_bench(root, variants);
    }
    if on("dfs") && !quick {
        for file in ["race5_munmap.lua", "race6_readahead.lua"] {
            dfs_bench(root, file);
        }
    }
}

/// A whole bounded dfs (2 preemptions) of a scenario under the patch, with
/// sleep sets and without: what the footprints cost per run against what
/// the schedules they cut save.
fn dfs_bench(root: &str, file: &str) {
    let path = format!("scenarios/{file}");
    let source = std::fs::read_to_string(format!("{root}/{path}")).expect("the scenario");
    let runner = script::run::Runner::new(&path, &source, Default::default()).expect("the scenario loads");
    for sleep_sets in [true, false] {
        let start = Instant::now();
        let (mut complete, mut cut) = (0u64, 0u64);
        let mut plan = engine::DfsPlan { sleep_sets, ..Default::default() };
        loop {
            let options = RunOptions {
                record_events: false,
                dfs: Some(plan.clone()),
                ..RunOptions::new(Variant::Patched.fixes(), 1)
            };
            runner.run(&options).expect("the scenario runs");
            let run = std::mem::take(&mut *plan.log.borrow_mut());
            if run.pruned {
                cut += 1;
            } else {
                complete += 1;
            }
            match plan.next(&run, 2) {
                Some(next) => plan = next,
                None => break,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "dfs {file} (patched, 2 preemptions, sleep sets {}): {complete} schedules, {cut} cut short, {secs:.2} s, {:.0} runs/s",
            if sleep_sets { "on" } else { "off" },
            (complete + cut) as f64 / secs
        );
    }
}

fn toy_bench(toy: &str) {
    let runner = script::run::Runner::new("toy.lua", toy, Default::default()).expect("the toy loads");
    let runs = 20_000u64;
    let start = Instant::now();
    let mut steps = 0;
    for seed in 1..=runs {
        let options = RunOptions { record_events: false, ..RunOptions::new(Variant::Patched.fixes(), seed) };
        steps += runner.run(&options).expect("the toy runs").steps;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "toy (two tasks, one fault each, lua reused): {runs} runs, {steps} steps, {:.0} runs/s",
        runs as f64 / secs
    );
}

fn long_bench() {
    // The engine alone: a long run of one scenario, where Lua set-up is a
    // negligible share of the time.
    let long = r#"
        machine { cpus = 2, memory_pages = 256, swap_devices = { 64 }, alloc_sleep = 0.1 }
        local p = process("p", function()
          for round = 1, 200 do
            for i = 0, 7 do write(0x100000 + i * 4096) end
            for i = 0, 7 do swap_out(0x100000 + i * 4096) end
            for i = 0, 7 do read(0x100000 + i * 4096) end
          end
        end)
        p:map(0x100000, 8)
        process("q", function()
          for round = 1, 50 do swapoff(1); swapon(1) end
        end)
    "#;
    let start = Instant::now();
    let mut steps = 0;
    let runs = 20;
    for seed in 1..=runs {
        let options = RunOptions { record_events: false, ..RunOptions::new(Variant::Patched.fixes(), seed) };
        steps += script::run::run("long.lua", long, &options).expect("the long scenario runs").steps;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "long run (patched, 2 cpus, swapoff/swapon loop): {runs} runs, {steps} steps, {:.0} steps/s",
        steps as f64 / secs
    );
}

fn stress_bench(root: &str, variants: &[Variant]) {
    // The seed's own test: 4 CPUs, 24 MB, make -j4 against 200 swapoff cycles.
    let stress = std::fs::read_to_string(format!("{root}/scenarios/stress_make_j4.lua")).expect("the stress scenario");
    for &variant in variants {
        let start = Instant::now();
        let options = RunOptions { record_events: false, ..RunOptions::new(variant.fixes(), 1) };
        let report =
            script::run::run("scenarios/stress_make_j4.lua", &stress, &options).expect("the stress scenario runs");
        let secs = start.elapsed().as_secs_f64();
        println!(
            "stress_make_j4 ({}, seed 1): {} steps in {:.2} s, {:.0} steps/s; {} swapoffs, {} forks, {} faults, {} swap-ins, {} swap-outs",
            variant.name(),
            report.steps,
            secs,
            report.steps as f64 / secs,
            report.stats.swapoffs,
            report.stats.forks,
            report.stats.faults,
            report.stats.swap_ins,
            report.stats.swap_outs
        );
    }
}
