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

    /// The kinds with their count and first seed, `unclassified` buckets
    /// first (candidate new races), then by name.
    pub fn unclassified_first(&self) -> Vec<(&str, u64, u64)> {
        let mut kinds: Vec<(&str, u64, u64)> = self.kinds.iter().map(|(k, &(n, s))| (k.as_str(), n, s)).collect();
        kinds.sort_by_key(|&(k, _, _)| !k.starts_with("unclassified"));
        kinds
    }

    /// The summary's bucket lines: "buckets:" then one line per bucket,
    /// with its count and first `what` ("seed", or "run" for replay --rate).
    pub fn bucket_lines_by(&self, what: &str) -> String {
        let mut out = String::new();
        if self.total == 0 {
            return out;
        }
        out += "buckets:  what broke, by race signature (docs/races.md § Signatures); unclassified first\n";
        for (name, n, seed) in self.unclassified_first() {
            out += &format!("  {n:>6}  first {what} {seed:<6}  {name}\n");
        }
        out
    }

    /// `bucket_lines_by("seed")`.
    pub fn bucket_lines(&self) -> String {
        self.bucket_lines_by("seed")
    }
}

/// A run's bucket: its race signature's name for a violation, the outcome's
/// kind for a deadlock, step limit or abort, None for a clean run.
pub fn bucket_of(report: &script::RunReport) -> Option<String> {
    match (&report.outcome, &report.bucket) {
        (engine::Outcome::Finished, _) => None,
        (_, Some(bucket)) => Some(bucket.name.clone()),
        (outcome, None) => Some(script::run::describe(outcome).split(':').next().unwrap_or("").to_string()),
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

    #[test]
    fn unclassified_buckets_come_first() {
        let mut tally = super::Tally::default();
        for (kind, seed) in [("race1-fork", 3), ("unclassified: swap-count: x", 7), ("race3-do-swap-page", 4)] {
            tally.add(kind, seed);
        }
        let names: Vec<&str> = tally.unclassified_first().iter().map(|b| b.0).collect();
        assert_eq!(names, ["unclassified: swap-count: x", "race1-fork", "race3-do-swap-page"]);
        assert!(tally.bucket_lines().lines().nth(1).unwrap().ends_with("unclassified: swap-count: x"));
    }
}
