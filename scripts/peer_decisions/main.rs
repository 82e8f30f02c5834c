//! How many scheduling decisions one execution of the peer models makes
//! under shuttle: the denominator that turns executions per second into
//! decisions per second. `scripts/speed_ratios.sh` builds this file in a
//! copy of the peer benchmark (`../shared/peers`), beside its `race1.rs` and
//! `toy.rs`, so that it runs exactly the peer's models; it is not part of
//! the workspace.
//!
//! A decision is one call of shuttle's `Scheduler::next_task`: shuttle makes
//! one at every operation of its primitives (lock, unlock, spawn, join),
//! whether one task or several can run, as swapsim makes one at every step.
//!
//!   swapsim-peers toy|race1 EXECUTIONS
//! prints `peer.shuttle.<case>.random.decisions_per_iter = <mean>`.

mod race1;
mod toy;

use shuttle::scheduler::{RandomScheduler, Schedule, Scheduler, Task, TaskId};
use shuttle::{Config, FailurePersistence, Runner};
use std::sync::atomic::{AtomicU64, Ordering};

/// The peer benchmark's seed (src/main.rs `SEED_BASE`).
const SEED_BASE: u64 = 0x5_3A95_0000;

static DECISIONS: AtomicU64 = AtomicU64::new(0);

/// The peer's random scheduler, counting the decisions it is asked for.
struct Counting(RandomScheduler);

impl Scheduler for Counting {
    fn new_execution(&mut self) -> Option<Schedule> {
        self.0.new_execution()
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, is_yielding: bool) -> Option<TaskId> {
        DECISIONS.fetch_add(1, Ordering::Relaxed);
        self.0.next_task(runnable, current, is_yielding)
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (case, iters) = match args.as_slice() {
        [case, n] if n.parse::<usize>().is_ok() => (case.as_str(), n.parse::<usize>().unwrap_or(0)),
        _ => {
            eprintln!("usage: swapsim-peers toy|race1 EXECUTIONS");
            std::process::exit(2);
        }
    };
    let body: fn() = match case {
        "toy" => toy::shuttle_body,
        "race1" => || race1::on_shuttle::scenario(race1::Variant::Patched),
        _ => {
            eprintln!("swapsim-peers: no case {case} (toy or race1)");
            std::process::exit(2);
        }
    };
    let mut config = Config::new();
    config.failure_persistence = FailurePersistence::None;
    config.silence_warnings = true;
    let runner = Runner::new(Counting(RandomScheduler::new_from_seed(SEED_BASE, iters)), config);
    let ran = runner.run(body);
    let label = if case == "race1" { "patched" } else { "toy" };
    let mean = DECISIONS.load(Ordering::Relaxed) as f64 / ran.max(1) as f64;
    println!("peer.shuttle.{label}.random.decisions_per_iter = {mean:.1}");
}
