//! What the runs of `run --seeds` and `explore` broke, by kind (the
//! invariant, or deadlock, step limit, aborted): how many of each and the
//! first seed of each, as their summaries print them. Grouping finds
//! another way (a race signature) is one more `Tally` of the same runs.

use std::collections::BTreeMap;

/// Finds by kind, added in seed order.
#[derive(Default)]
pub struct Tally {
    /// kind -> (how many, the first seed).
    kinds: BTreeMap<String, (u64, u64)>,
    total: u64,
    first: Option<u64>,
}

impl Tally {
    /// One more find of `kind`, by `seed` (seeds come in order).
    pub fn add(&mut self, kind: &str, seed: u64) {
        self.kinds.entry(kind.to_string()).or_insert((0, seed)).0 += 1;
        self.total += 1;
        self.first.get_or_insert(seed);
    }

    /// How many finds in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The seed of the first find.
    pub fn first(&self) -> Option<u64> {
        self.first
    }

    /// "swap-cache 3, deadlock 1": each kind with its count, by name.
    pub fn counts(&self) -> String {
        self.kinds.iter().map(|(k, (n, _))| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    }

    /// "swap-cache seed 4; deadlock seed 9": each kind's first seed.
    pub fn firsts(&self) -> String {
        self.kinds.iter().map(|(k, (_, seed))| format!("{k} seed {seed}")).collect::<Vec<_>>().join("; ")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kinds_are_counted_by_name_with_their_first_seed() {
        let mut tally = super::Tally::default();
        for (kind, seed) in [("swap-cache", 3), ("deadlock", 5), ("swap-cache", 8)] {
            tally.add(kind, seed);
        }
        assert_eq!((tally.total(), tally.first()), (3, Some(3)));
        assert_eq!(tally.counts(), "deadlock 1, swap-cache 2");
        assert_eq!(tally.firsts(), "deadlock seed 5; swap-cache seed 3");
    }
}
