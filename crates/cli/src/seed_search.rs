//! Many seeded runs of one scenario, on several threads and across
//! machines (`explore --jobs`, `--shard`, `--csv`, `swapsim merge`).
//!
//! Determinism: a run depends only on its seed, each thread has its own Lua
//! state, and the rows are put back in seed order, so the summary, the CSV
//! and the schedule saved do not depend on `--jobs`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use engine::Outcome;
use script::RunOptions;

/// What one run of a search found: a row of the explore CSV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub seed: u64,
    /// `finished`, `violation`, `deadlock`, `step-limit` or `aborted`.
    pub outcome: &'static str,
    /// The invariant a violation broke (the outcome's name otherwise, empty
    /// when the run finished): what the summary counts.
    pub kind: String,
    pub step: u64,
    pub steps: u64,
    pub time_ns: u64,
}

pub const CSV_HEADER: &str = "seed,outcome,invariant,step,steps,simulated_ns";

impl RunRow {
    fn of(seed: u64, report: &script::RunReport) -> RunRow {
        let (outcome, kind, step) = match &report.outcome {
            Outcome::Finished => ("finished", String::new(), report.steps),
            Outcome::Violation(v) => ("violation", v.invariant.to_string(), v.step),
            Outcome::Deadlock(_) => ("deadlock", "deadlock".into(), report.steps),
            Outcome::StepLimit(_) => ("step-limit", "step-limit".into(), report.steps),
            Outcome::Aborted => ("aborted", "aborted".into(), report.steps),
        };
        RunRow { seed, outcome, kind, step, steps: report.steps, time_ns: report.time_ns }
    }

    pub fn failed(&self) -> bool {
        self.outcome != "finished"
    }

    pub fn csv_line(&self) -> String {
        format!("{},{},{},{},{},{}", self.seed, self.outcome, self.kind, self.step, self.steps, self.time_ns)
    }
}

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
    let done = AtomicU64::new(0);
    let found = AtomicU64::new(0);
    let (done, found) = (&done, &found);
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
                        if crate::run_cmd::interrupted() {
                            break;
                        }
                        let report = runner.run(&options(seed)).map_err(|e| e.to_string())?;
                        let row = RunRow::of(seed, &report);
                        found.fetch_add(u64::from(row.failed()), Ordering::Relaxed);
                        done.fetch_add(1, Ordering::Relaxed);
                        rows.push(row);
                        order.add_run(seed, &report.lock_order);
                        coverage.add_run(seed, &report.point_pairs);
                    }
                    Ok((rows, order, coverage))
                })
            })
            .collect();
        if std::io::stderr().is_terminal() {
            show_progress(&handles, done, found, seeds.len());
        }
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a search thread panicked".into()))).collect()
    });
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

/// Runs, finds, runs/s and ETA on one stderr line, while the threads run
/// (a terminal only: wall-clock time is shown, never fed into a run).
fn show_progress<T>(handles: &[std::thread::ScopedJoinHandle<'_, T>], done: &AtomicU64, found: &AtomicU64, total: u64) {
    let started = std::time::Instant::now();
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(std::time::Duration::from_millis(250));
        let (n, f) = (done.load(Ordering::Relaxed), found.load(Ordering::Relaxed));
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let eta = total.saturating_sub(n) as f64 / rate.max(1e-3);
        eprint!("\r{n}/{total} runs, {f} found something, {rate:.0} runs/s, ETA {eta:.0} s   ");
    }
    eprint!("\r\x1b[K");
}

pub fn render_csv(rows: &[RunRow]) -> String {
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for row in rows {
        text.push_str(&row.csv_line());
        text.push('\n');
    }
    text
}

/// Combine the CSVs of the shards of one search into one, in seed order.
/// Refuses files that are not explore CSVs, and a seed that two files
/// report differently (shards of different searches).
pub fn merge(inputs: &[&Path]) -> Result<String, String> {
    let mut lines: std::collections::BTreeMap<u64, String> = std::collections::BTreeMap::new();
    for input in inputs {
        let text = std::fs::read_to_string(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
        let mut body = text.lines();
        if body.next() != Some(CSV_HEADER) {
            return Err(format!("{}: not an explore CSV (the first line must be {CSV_HEADER})", input.display()));
        }
        for (n, line) in body.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            let seed = match (fields.len(), fields[0].parse::<u64>()) {
                (6, Ok(seed)) => seed,
                _ => return Err(format!("{}:{}: not a row of an explore CSV: {line:?}", input.display(), n + 2)),
            };
            match lines.get(&seed) {
                Some(seen) if seen != line => {
                    return Err(format!(
                        "{}:{}: seed {seed} is reported differently in another file ({seen:?}): \
                         shards of different searches?",
                        input.display(),
                        n + 2
                    ))
                }
                _ => {
                    lines.insert(seed, line.to_string());
                }
            }
        }
    }
    let mut text = String::from(CSV_HEADER);
    text.push('\n');
    for line in lines.values() {
        text.push_str(line);
        text.push('\n');
    }
    Ok(text)
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
