//! The seeded random walk.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Chooser, Decision};

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
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        match decision {
            Decision::Step { .. } => {
                if n == 1 {
                    0
                } else {
                    self.rng.random_range(0..n)
                }
            }
            Decision::Inject { ppm, .. } => usize::from(self.rng.random_bool(f64::from(ppm.min(1_000_000)) / 1e6)),
            Decision::MaySleep { .. } => draw_sleep(&mut self.rng, self.sleep_probability, n),
        }
    }

    fn reads_options(&self) -> bool {
        false
    }

    /// One option: 0, with no draw.
    fn one_option_is_free(&self) -> bool {
        true
    }
}

/// An allocation sleep: none, short (1) or, one time in four, long (2).
pub(crate) fn draw_sleep(rng: &mut ChaCha8Rng, sleep_probability: f64, n: usize) -> usize {
    if !rng.random_bool(sleep_probability) {
        0
    } else if n > 2 && rng.random_bool(0.25) {
        2
    } else {
        1
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
                .map(|i| {
                    c.choose(
                        if i % 2 == 0 {
                            Decision::Step { options: &[], times: &[] }
                        } else {
                            Decision::MaySleep { point: "p" }
                        },
                        5,
                    )
                })
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
}
