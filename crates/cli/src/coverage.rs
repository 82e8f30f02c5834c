//! Interleaving coverage of a search: which named points of two tasks
//! followed each other (A, then B by another task), and which pairs were
//! seen in both orders. When the last new pair came long before the end,
//! more runs of the same strategy stop paying.

use engine::fast_hash::{ByAddress, FastMap};

type Point = &'static str;

#[derive(Default)]
pub struct Coverage {
    /// (A, B) -> the lowest seed whose run had B right after A (another task).
    /// (Nothing reads it in its order.)
    first_seen: FastMap<(Point, Point), u64>,
    /// The same by the names' addresses, to skip a pair already seen with
    /// a lower seed at the cost of a pointer's hash, not its text's: most
    /// of a search's runs see nothing new.
    seen: FastMap<(ByAddress, ByAddress), u64>,
}

impl Coverage {
    pub fn add_run(&mut self, seed: u64, pairs: &[(Point, Point)]) {
        for &(a, b) in pairs {
            let first = self.seen.entry((ByAddress(a), ByAddress(b))).or_insert(u64::MAX);
            if seed < *first {
                *first = seed;
                self.add((a, b), seed);
            }
        }
    }

    fn add(&mut self, pair: (Point, Point), seed: u64) {
        let first = self.first_seen.entry(pair).or_insert(seed);
        *first = (*first).min(seed);
    }

    pub fn merge(&mut self, other: Coverage) {
        for (pair, seed) in other.first_seen {
            self.add(pair, seed);
        }
    }

    /// Pairs of distinct points seen in both orders.
    pub fn both_orders(&self) -> usize {
        self.first_seen.keys().filter(|&&(a, b)| a < b && self.first_seen.contains_key(&(b, a))).count()
    }

    /// The line explore prints; `seeds` are the seeds the search ran.
    pub fn report(&self, seeds: &[u64]) -> String {
        let last = self.first_seen.values().max().copied();
        let saturation = match last {
            Some(seed) => {
                let run = seeds.iter().position(|&s| s == seed).map_or(0, |i| i + 1);
                format!("the last new pair came at run {run} of {} (seed {seed})", seeds.len())
            }
            None => "no task interleaved with another".to_string(),
        };
        format!(
            "coverage: {} point pairs interleaved (A, then B by another task), {} seen in both orders; {saturation}\n",
            self.first_seen.len(),
            self.both_orders()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_keep_their_first_seed_and_count_both_orders_once() {
        let mut c = Coverage::default();
        c.add_run(5, &[("a", "b"), ("b", "c")]);
        let mut other = Coverage::default();
        other.add_run(2, &[("a", "b")]);
        other.add_run(7, &[("b", "a"), ("c", "c")]);
        c.merge(other);
        assert_eq!(c.both_orders(), 1);
        assert_eq!(
            c.report(&[2, 5, 7, 9]),
            "coverage: 4 point pairs interleaved (A, then B by another task), 1 seen in both orders; \
             the last new pair came at run 3 of 4 (seed 7)\n"
        );
    }
}
