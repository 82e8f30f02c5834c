//! Many seeded runs of one scenario, on several threads and across
//! machines (`explore --jobs`, `--shard`, `--csv`, `swapsim merge`).
//!
//! Determinism: a run depends only on its seed, each thread has its own Lua
//! state, and the rows are put back in seed order, so the summary, the CSV
//! and the schedule saved do not depend on `--jobs`.

use std::path::Path;

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
    /// Steps the run took (it stops at a violation).
    pub steps: u64,
    pub time_ns: u64,
}

/// The columns of the explore CSV: the search's identity (the same in
/// every row of a search and of each of its shards), then the run's.
pub const CSV_COLUMNS: [&str; 15] = [
    "tool",
    "scenario_fnv1a",
    "kernel",
    "fixes",
    "strategy",
    "pct_depth",
    "pct_steps",
    "first_seed",
    "runs",
    "shard",
    "seed",
    "outcome",
    "invariant",
    "steps",
    "simulated_ns",
];

/// The outcomes a row may have.
const OUTCOMES: [&str; 5] = ["finished", "violation", "deadlock", "step-limit", "aborted"];

/// Which search rows come from: everything that decides its runs but the
/// seed (the shard only says which of them this file holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchIdentity {
    /// swapsim's version.
    pub tool: String,
    /// The scenario's content hash (fnv1a, 16 hex digits).
    pub scenario_fnv1a: String,
    pub kernel: String,
    /// The fixes switched on top of the kernel ("+page-lock -mmlist"), or empty.
    pub fixes: String,
    /// `random` or `pct`.
    pub strategy: String,
    /// PCT's depth d and measured run length k (empty for random).
    pub pct_depth: String,
    pub pct_steps: String,
    pub first_seed: u64,
    pub runs: u64,
}

impl SearchIdentity {
    fn fields(&self) -> [String; 9] {
        [
            self.tool.clone(),
            self.scenario_fnv1a.clone(),
            self.kernel.clone(),
            self.fixes.clone(),
            self.strategy.clone(),
            self.pct_depth.clone(),
            self.pct_steps.clone(),
            self.first_seed.to_string(),
            self.runs.to_string(),
        ]
    }

    fn describe(&self) -> String {
        let pct = if self.pct_depth.is_empty() {
            String::new()
        } else {
            format!(" depth {} k {}", self.pct_depth, self.pct_steps)
        };
        let fixes = if self.fixes.is_empty() { String::new() } else { format!(" {}", self.fixes) };
        format!(
            "swapsim {}, scenario {}, kernel {}{fixes}, {}{pct}, seeds {}..{}",
            self.tool,
            self.scenario_fnv1a,
            self.kernel,
            self.strategy,
            self.first_seed,
            self.first_seed + self.runs.saturating_sub(1)
        )
    }
}

impl RunRow {
    fn of(seed: u64, report: &script::RunReport) -> RunRow {
        let (outcome, kind) = match &report.outcome {
            Outcome::Finished => ("finished", String::new()),
            Outcome::Violation(v) => ("violation", v.invariant.to_string()),
            Outcome::Deadlock(_) => ("deadlock", "deadlock".into()),
            Outcome::StepLimit(_) => ("step-limit", "step-limit".into()),
            Outcome::Aborted => ("aborted", "aborted".into()),
        };
        RunRow { seed, outcome, kind, steps: report.steps, time_ns: report.time_ns }
    }

    pub fn failed(&self) -> bool {
        self.outcome != "finished"
    }

    /// The run's fields of a CSV row: seed, outcome, invariant (empty
    /// unless a violation), steps, simulated ns.
    fn fields(&self) -> [String; 5] {
        let invariant = if self.outcome == "violation" { self.kind.clone() } else { String::new() };
        [self.seed.to_string(), self.outcome.to_string(), invariant, self.steps.to_string(), self.time_ns.to_string()]
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

/// The explore CSV (RFC 4180, written by the csv crate): the header, then
/// one row per run in the given order, each with the search's identity and
/// `shard` ("K/N"; "1/1" for a whole search).
pub fn render_csv(identity: &SearchIdentity, shard: Option<Shard>, rows: &[RunRow]) -> String {
    let shard = shard.map_or_else(|| "1/1".to_string(), |s| format!("{}/{}", s.index, s.count));
    let mut csv = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    csv.write_record(CSV_COLUMNS).expect("CSV into memory");
    let id = identity.fields();
    for row in rows {
        let fields = id.iter().cloned().chain([shard.clone()]).chain(row.fields());
        csv.write_record(fields).expect("CSV into memory");
    }
    String::from_utf8(csv.into_inner().expect("CSV into memory")).expect("UTF-8 fields")
}

/// One row read back: the search's identity, its shard, the run.
struct ReadRow {
    identity: SearchIdentity,
    shard: Shard,
    fields: Vec<String>,
    seed: u64,
}

/// Combine the CSVs of the shards of one search into one, in seed order;
/// when every shard is there, the result is the CSV of the whole search
/// (its rows' shard "1/1"). Refuses files that are not explore CSVs,
/// malformed rows, shards of different searches, shards of different
/// splits, the same shard twice, and the same seed twice.
pub fn merge(inputs: &[&Path]) -> Result<String, String> {
    let mut rows: std::collections::BTreeMap<u64, ReadRow> = std::collections::BTreeMap::new();
    let mut first: Option<(SearchIdentity, u64, String)> = None;
    let mut shards: std::collections::BTreeMap<u64, String> = std::collections::BTreeMap::new();
    for input in inputs {
        let name = input.display().to_string();
        let mut reader = csv::ReaderBuilder::new().from_path(input).map_err(|e| format!("cannot read {name}: {e}"))?;
        let header = reader.headers().map_err(|e| format!("{name}: {e}"))?.clone();
        if header.iter().ne(CSV_COLUMNS) {
            return Err(format!("{name}: not an explore CSV (its header must be {})", CSV_COLUMNS.join(",")));
        }
        let mut in_file: Vec<u64> = Vec::new();
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let record = record.map_err(|e| match e.kind() {
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                    format!("{name}:{line}: {len} fields where the header has {expected_len}")
                }
                _ => format!("{name}:{line}: {e}"),
            })?;
            let row =
                read_row(&record).map_err(|what| format!("{name}:{line}: not a row of an explore CSV: {what}"))?;
            match &first {
                None => first = Some((row.identity.clone(), row.shard.count, name.clone())),
                Some((identity, _, other)) if *identity != row.identity => {
                    return Err(format!(
                        "{name}:{line}: a row of another search ({}) than {other}'s ({}): shards of different \
                         searches are not merged",
                        row.identity.describe(),
                        identity.describe()
                    ))
                }
                Some((_, count, other)) if *count != row.shard.count => {
                    return Err(format!(
                        "{name}:{line}: shard {}/{} of a split into {}, but {other} was split into {count}",
                        row.shard.index, row.shard.count, row.shard.count
                    ))
                }
                Some(_) => {}
            }
            if !in_file.contains(&row.shard.index) {
                in_file.push(row.shard.index);
                if let Some(other) = shards.insert(row.shard.index, name.clone()) {
                    return Err(format!(
                        "{name}: shard {}/{} is also in {other}: the same shard twice",
                        row.shard.index, row.shard.count
                    ));
                }
            }
            if rows.contains_key(&row.seed) {
                return Err(format!("{name}:{line}: seed {} is in the merge twice", row.seed));
            }
            rows.insert(row.seed, row);
        }
    }
    let Some((identity, count, _)) = first else { return Err("the inputs hold no rows".into()) };
    let whole = shards.len() as u64 == count && rows.len() as u64 == identity.runs;
    let mut csv = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    csv.write_record(CSV_COLUMNS).expect("CSV into memory");
    for row in rows.values() {
        let shard = if whole { "1/1".to_string() } else { format!("{}/{}", row.shard.index, row.shard.count) };
        let fields = row.identity.fields().into_iter().chain([shard]).chain(row.fields.iter().cloned());
        csv.write_record(fields).expect("CSV into memory");
    }
    Ok(String::from_utf8(csv.into_inner().expect("CSV into memory")).expect("UTF-8 fields"))
}

/// A row's fields, checked: what is wrong with it otherwise.
fn read_row(record: &csv::StringRecord) -> Result<ReadRow, String> {
    let f = |i: usize| record.get(i).unwrap_or("");
    let count = |i: usize| f(i).parse::<u64>().map_err(|_| format!("{} is not a count: {:?}", CSV_COLUMNS[i], f(i)));
    let identity = SearchIdentity {
        tool: f(0).to_string(),
        scenario_fnv1a: f(1).to_string(),
        kernel: f(2).to_string(),
        fixes: f(3).to_string(),
        strategy: f(4).to_string(),
        pct_depth: f(5).to_string(),
        pct_steps: f(6).to_string(),
        first_seed: count(7)?,
        runs: count(8)?,
    };
    if identity.scenario_fnv1a.len() != 16 || !identity.scenario_fnv1a.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("scenario_fnv1a is not 16 hex digits: {:?}", identity.scenario_fnv1a));
    }
    if !["random", "pct"].contains(&identity.strategy.as_str()) {
        return Err(format!("strategy {:?} is not random or pct", identity.strategy));
    }
    let shard = parse_shard(f(9)).map_err(|_| format!("shard is not K/N: {:?}", f(9)))?;
    let seed = count(10)?;
    let index = seed.checked_sub(identity.first_seed).filter(|i| *i < identity.runs);
    if index.is_none_or(|i| i % shard.count != shard.index - 1) {
        return Err(format!("seed {seed} is not a run of shard {}/{} of this search", shard.index, shard.count));
    }
    if !OUTCOMES.contains(&f(11)) {
        return Err(format!("outcome {:?} is none of {}", f(11), OUTCOMES.join(", ")));
    }
    count(13)?;
    count(14)?;
    let fields = (10..15).map(|i| f(i).to_string()).collect();
    Ok(ReadRow { identity, shard, fields, seed })
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
