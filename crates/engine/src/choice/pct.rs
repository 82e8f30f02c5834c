//! Probabilistic concurrency testing.

use crate::fast_hash::FastMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::random::draw_sleep;
use super::{Chooser, Decision, StepKind};
use crate::task::TaskId;

/// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi and
/// Nagarakatte, ASPLOS 2010): every task gets a random priority (at least
/// `depth`); at each step the highest-priority task that can step runs; at
/// `depth - 1` change points drawn uniformly from the first `steps` steps,
/// the running task drops to priority 1, 2, ... For a bug of depth `d` in a
/// run of `n` tasks and `k` steps, one run finds it with probability at
/// least 1/(n·k^(d-1)). Timers count as one more "task", except that a timer
/// due by the chosen task's time fires first (the interrupt). Allocation sleeps
/// are drawn as in [`RandomChooser`].
pub struct PctChooser {
    rng: ChaCha8Rng,
    sleep_probability: f64,
    depth: u32,
    /// The steps at which a priority change happens, with its new priority.
    change_points: Vec<(u64, u32)>,
    priorities: FastMap<Option<TaskId>, u32>,
    step: u64,
}

impl PctChooser {
    pub fn new(seed: u64, depth: u32, steps: u64, sleep_probability: f64) -> PctChooser {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        let depth = depth.max(1);
        let mut change_points: Vec<(u64, u32)> =
            (1..depth).map(|i| (rng.random_range(1..=steps.max(1)), depth - i)).collect();
        change_points.sort();
        PctChooser { rng, sleep_probability, depth, change_points, priorities: FastMap::default(), step: 0 }
    }

    fn priority(&mut self, who: Option<TaskId>) -> u32 {
        if let Some(&p) = self.priorities.get(&who) {
            return p;
        }
        // Distinct random priorities above every change-point priority.
        let p = loop {
            let candidate = self.depth + self.rng.random_range(0..1_000_000u32);
            if !self.priorities.values().any(|&q| q == candidate) {
                break candidate;
            }
        };
        self.priorities.insert(who, p);
        p
    }
}

impl Chooser for PctChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        match decision {
            Decision::Step { options, times } => {
                self.step += 1;
                let who = |o: &StepKind| match o {
                    StepKind::Task(t) => Some(*t),
                    StepKind::Timer => None,
                };
                let mut best = 0;
                let mut best_priority = 0;
                for (i, option) in options.iter().enumerate() {
                    let p = self.priority(who(option));
                    if p > best_priority {
                        best = i;
                        best_priority = p;
                    }
                }
                // A timer due by the chosen task's time fires first, as the
                // interrupt would: a high-priority task busy-waiting for
                // the wake-up must not hold time still.
                if let Some(timer) = options.iter().position(|o| *o == StepKind::Timer) {
                    if times[timer] <= times[best] {
                        best = timer;
                    }
                }
                while let Some(&(at, new_priority)) = self.change_points.first() {
                    if at > self.step {
                        break;
                    }
                    self.change_points.remove(0);
                    self.priorities.insert(who(&options[best]), new_priority);
                }
                best.min(n - 1)
            }
            Decision::Inject { ppm, .. } => usize::from(self.rng.random_bool(f64::from(ppm.min(1_000_000)) / 1e6)),
            Decision::MaySleep { .. } => draw_sleep(&mut self.rng, self.sleep_probability, n),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pct_runs_the_highest_priority_task_until_a_change_point() {
        let options = [StepKind::Task(TaskId(0)), StepKind::Task(TaskId(1)), StepKind::Timer];
        // The timer is not due before the tasks' time: priorities decide.
        let times = [0, 0, 1000];
        let mut c = PctChooser::new(3, 1, 100, 0.0);
        let first = c.choose(Decision::Step { options: &options, times: &times }, 3);
        // Depth 1: no change points; the same option wins every time.
        assert!((0..50).all(|_| c.choose(Decision::Step { options: &options, times: &times }, 3) == first));
        // Depth 3 over 10 steps: the preferred option changes at least once.
        let mut c = PctChooser::new(3, 3, 10, 0.0);
        let picks: Vec<usize> =
            (0..20).map(|_| c.choose(Decision::Step { options: &options, times: &times }, 3)).collect();
        assert!(picks.windows(2).any(|w| w[0] != w[1]), "{picks:?}");
    }

    #[test]
    fn pct_fires_a_due_timer_whatever_the_priorities() {
        let options = [StepKind::Task(TaskId(0)), StepKind::Timer];
        for seed in 0..20 {
            let mut c = PctChooser::new(seed, 1, 100, 0.0);
            assert_eq!(c.choose(Decision::Step { options: &options, times: &[500, 400] }, 2), 1, "seed {seed}");
        }
    }
}
