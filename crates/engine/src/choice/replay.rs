//! A recorded schedule, followed by index.

use super::{Chooser, Decision};

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
    fn choose(&mut self, _decision: Decision<'_>, n: usize) -> usize {
        let choice = self.choices.get(self.next).copied().unwrap_or(0) as usize;
        self.next += 1;
        choice.min(n - 1)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn replay_clamps_and_runs_out_to_zero() {
        let mut c = ReplayChooser::new(vec![3, 9]);
        let step = Decision::Step { options: &[], times: &[] };
        assert_eq!(c.choose(step, 4), 3);
        assert_eq!(c.choose(step, 4), 3);
        assert_eq!(c.choose(step, 4), 0);
    }
}
