//! Many seeded runs of one scenario, on several threads and across
//! machines (`explore --jobs`, `--shard`); the CSV of their rows and its
//! merge are `output/search_csv.rs`.
//!
//! Determinism: a run depends only on its seed, each thread has its own Lua
//! state, and the rows are put back in seed order, so the summary, the CSV
//! and the schedule saved do not depend on `--jobs`.

use script::RunOptions;

use crate::output::search_csv::RunRow;

/// `K/N`: this machine runs the seeds whose index i has i % N == K - 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let bad = || format!("--shard wants K/N with 1 <= K <= N (e.g. 2/8), got {text:?}");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(Shard { index: k, count: n })
}

/// The seeds of runs 0..runs that belong to a shard, computed when needed
/// (`--runs 10000000000` must not make a list first). The caller checks
/// that `first + runs - 1` fits in a u64.
#[derive(Clone, Copy, Debug)]
pub struct Seeds {
    first: u64,
    runs: u64,
    shard: Shard,
}

impl Seeds {
    pub fn new(first: u64, runs: u64, shard: Option<Shard>) -> Seeds {
        Seeds { first, runs, shard: shard.unwrap_or(Shard { index: 1, count: 1 }) }
    }

    /// How many runs are this shard's.
    pub fn len(&self) -> u64 {
        let offset = self.shard.index - 1;
        if self.runs > offset {
            (self.runs - 1 - offset) / self.shard.count + 1
        } else {
            0
        }
    }

    /// The seed of the shard's k-th run.
    pub fn get(&self, k: u64) -> u64 {
        self.first + (self.shard.index - 1) + k * self.shard.count
    }
}

/// The seeds of runs 0..runs that belong to `shard`, as a list.
#[cfg(test)]
pub fn seeds(first: u64, runs: u64, shard: Option<Shard>) -> Vec<u64> {
    let seeds = Seeds::new(first, runs, shard);
    (0..seeds.len()).map(|k| seeds.get(k)).collect()
}

/// What a whole search found, in seed order.
pub struct SearchResult {
    pub rows: Vec<RunRow>,
    /// Every lock-class order taken in any run, with the lowest seed that
    /// took it (so the graph does not depend on `--jobs`).
    pub lock_order: crate::lockdep::LockOrder,
    /// Which named points of two tasks followed each other, first seen when.
    pub coverage: crate::coverage::Coverage,
}

/// Run every seed, `jobs` threads each with its own Lua state; rows come
/// back in seed order. A Ctrl-C stops every thread after its current run.
pub fn run_all(
    path: &str,
    source: &str,
    seeds: &Seeds,
    jobs: usize,
    options: &(dyn Fn(u64) -> RunOptions + Sync),
) -> Result<SearchResult, String> {
    let jobs = jobs.clamp(1, seeds.len().clamp(1, 256) as usize);
    let progress = crate::output::progress::Progress::new(seeds.len());
    let progress = &progress;
    type Part = (Vec<RunRow>, crate::lockdep::LockOrder, crate::coverage::Coverage);
    let results: Vec<Result<Part, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|j| {
                scope.spawn(move || {
                    let runner =
                        script::run::Runner::new(path, source, Default::default()).map_err(|e| e.to_string())?;
                    let mut rows = Vec::new();
                    let mut order = crate::lockdep::LockOrder::default();
                    let mut coverage = crate::coverage::Coverage::default();
                    for seed in (j as u64..seeds.len()).step_by(jobs).map(|k| seeds.get(k)) {
                        if crate::interrupt::interrupted() {
                            break;
                        }
                        let report = runner.run(&options(seed)).map_err(|e| e.to_string())?;
                        let row = RunRow::of(seed, &report);
                        progress.inc(row.failed());
                        rows.push(row);
                        order.add_run(seed, &report.lock_order);
                        coverage.add_run(seed, &report.point_pairs);
                    }
                    Ok((rows, order, coverage))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a search thread panicked".into()))).collect()
    });
    progress.finish();
    let mut rows = Vec::new();
    let mut lock_order = crate::lockdep::LockOrder::default();
    let mut coverage = crate::coverage::Coverage::default();
    for result in results {
        let (part, order, covered) = result?;
        rows.extend(part);
        lock_order.merge(order);
        coverage.merge(covered);
    }
    rows.sort_by_key(|r| r.seed);
    Ok(SearchResult { rows, lock_order, coverage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_seeds() {
        let all = seeds(10, 7, None);
        assert_eq!(all, vec![10, 11, 12, 13, 14, 15, 16]);
        let mut union: Vec<u64> = (1..=3).flat_map(|k| seeds(10, 7, Some(Shard { index: k, count: 3 }))).collect();
        union.sort();
        assert_eq!(union, all);
        assert_eq!(seeds(10, 7, Some(Shard { index: 2, count: 3 })), vec![11, 14]);
    }

    #[test]
    fn bad_shards_are_refused() {
        assert_eq!(parse_shard("2/8"), Ok(Shard { index: 2, count: 8 }));
        for bad in ["0/8", "9/8", "2", "a/b", "1/0"] {
            assert!(parse_shard(bad).unwrap_err().contains("K/N"), "{bad}");
        }
    }
}
