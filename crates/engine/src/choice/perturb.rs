//! A recorded schedule whose default choices are redrawn at random.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::random::RandomChooser;
use super::replay::ReplayChooser;
use super::{Chooser, Decision};

/// A recorded schedule, perturbed: the choices it makes (non-zero) are
/// kept, and each one it leaves at 0 is drawn at random with probability
/// `p`. For `replay --rate`: how often does the bug recur around it?
pub struct PerturbChooser {
    replay: ReplayChooser,
    random: RandomChooser,
    coin: ChaCha8Rng,
    p: f64,
}

impl PerturbChooser {
    pub fn new(choices: Vec<u32>, seed: u64, p: f64, sleep_probability: f64) -> PerturbChooser {
        let mut coin = ChaCha8Rng::seed_from_u64(seed);
        coin.set_stream(1);
        PerturbChooser {
            replay: ReplayChooser::new(choices),
            random: RandomChooser::new(seed, sleep_probability),
            coin,
            p: p.clamp(0.0, 1.0),
        }
    }
}

impl Chooser for PerturbChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        let recorded = self.replay.choose(decision, n);
        if recorded == 0 && n > 1 && self.coin.random_bool(self.p) {
            self.random.choose(decision, n)
        } else {
            recorded
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn perturbing_keeps_the_recorded_choices_and_varies_the_rest() {
        let step = Decision::Step { options: &[], times: &[] };
        let draw = |seed, p| {
            let mut c = PerturbChooser::new(vec![2, 0, 0, 1], seed, p, 0.0);
            (0..40).map(|_| c.choose(step, 3)).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 0.0)[..5], [2, 0, 0, 1, 0]);
        assert!(draw(1, 0.0)[4..].iter().all(|&c| c == 0));
        let varied = draw(1, 1.0);
        assert_eq!((varied[0], varied[3]), (2, 1), "recorded choices stay");
        assert!(varied[4..].iter().any(|&c| c != 0), "{varied:?}");
        assert_eq!(draw(5, 0.5), draw(5, 0.5));
    }
}
