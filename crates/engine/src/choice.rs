//! Where the nondeterminism goes: every choice a run makes is asked of one
//! [`Chooser`] and recorded, so a run is a pure function of its choices.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What is being decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Which of `n` step options (run a CPU's task, dispatch a queued task,
    /// fire the next timer) happens next.
    Step,
    /// Whether an allocation that may block does block: option 0 = it
    /// succeeds at once, 1 = the task sleeps briefly (kswapd frees a page),
    /// 2 = it sleeps long (it waits for swap-out I/O). `point` names the
    /// allocation site.
    MaySleep { point: &'static str },
}

/// Picks one of `n >= 1` options for a decision.
pub trait Chooser {
    fn choose(&mut self, decision: Decision, n: usize) -> usize;
}

/// A seeded random walk: uniform over step options; an allocation sleeps
/// with probability `sleep_probability`, one sleep in four a long one.
pub struct RandomChooser {
    rng: ChaCha8Rng,
    sleep_probability: f64,
}

impl RandomChooser {
    /// One ChaCha8 stream (stream 0) per run, keyed by the seed.
    pub fn new(seed: u64, sleep_probability: f64) -> RandomChooser {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        RandomChooser { rng, sleep_probability }
    }
}

impl Chooser for RandomChooser {
    fn choose(&mut self, decision: Decision, n: usize) -> usize {
        match decision {
            Decision::Step => {
                if n == 1 {
                    0
                } else {
                    self.rng.random_range(0..n)
                }
            }
            Decision::MaySleep { .. } => {
                if !self.rng.random_bool(self.sleep_probability) {
                    0
                } else if n > 2 && self.rng.random_bool(0.25) {
                    2
                } else {
                    1
                }
            }
        }
    }
}

/// Replays a recorded list of choices, then falls back to option 0
/// (no sleep, first option) once the list runs out.
pub struct ReplayChooser {
    choices: Vec<u32>,
    next: usize,
}

impl ReplayChooser {
    pub fn new(choices: Vec<u32>) -> ReplayChooser {
        ReplayChooser { choices, next: 0 }
    }
}

impl Chooser for ReplayChooser {
    fn choose(&mut self, _decision: Decision, n: usize) -> usize {
        let choice = self.choices.get(self.next).copied().unwrap_or(0) as usize;
        self.next += 1;
        choice.min(n - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_chooser_is_a_function_of_its_seed() {
        let draw = |seed| {
            let mut c = RandomChooser::new(seed, 0.5);
            (0..64)
                .map(|i| c.choose(if i % 2 == 0 { Decision::Step } else { Decision::MaySleep { point: "p" } }, 5))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!(draw(3).iter().all(|&c| c < 5));
    }

    #[test]
    fn sleep_probability_zero_never_sleeps() {
        let mut c = RandomChooser::new(9, 0.0);
        assert!((0..100).all(|_| c.choose(Decision::MaySleep { point: "p" }, 3) == 0));
        let mut c = RandomChooser::new(9, 1.0);
        let picks: Vec<usize> = (0..400).map(|_| c.choose(Decision::MaySleep { point: "p" }, 3)).collect();
        assert!(picks.iter().all(|&p| p == 1 || p == 2));
        assert!(picks.iter().filter(|&&p| p == 2).count() > 50, "long sleeps happen");
    }

    #[test]
    fn replay_clamps_and_runs_out_to_zero() {
        let mut c = ReplayChooser::new(vec![3, 9]);
        assert_eq!(c.choose(Decision::Step, 4), 3);
        assert_eq!(c.choose(Decision::Step, 4), 3);
        assert_eq!(c.choose(Decision::Step, 4), 0);
    }
}
