//! Timed mode: the earliest option in simulated time.

use super::random::RandomChooser;
use super::{Chooser, Decision};

/// Timed mode: the option that happens first in simulated time goes next
/// (ties by option order, so a run is still a function of its seed); the
/// costs of the work decide the interleaving, as on a real machine.
/// Allocation sleeps and faults are drawn from the seed as in
/// [`RandomChooser`], and disk latencies get a jitter the same way.
pub struct TimedChooser {
    random: RandomChooser,
}

impl TimedChooser {
    pub fn new(seed: u64, sleep_probability: f64) -> TimedChooser {
        TimedChooser { random: RandomChooser::new(seed, sleep_probability) }
    }
}

impl Chooser for TimedChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        match decision {
            Decision::Step { times, .. } => {
                times.iter().enumerate().min_by_key(|(i, t)| (**t, *i)).map(|(i, _)| i).unwrap_or(0).min(n - 1)
            }
            other => self.random.choose(other, n),
        }
    }
}
