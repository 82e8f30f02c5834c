//! The explore CSV: what one run of a search found (`RunRow`, also what
//! explore's summary counts), the search's identity, the columns, the CSV
//! written (`render_csv`) and the shards' CSVs merged back (`merge`).

use std::path::Path;

use engine::Outcome;

use crate::seed_search::{parse_shard, Shard};

/// What one run of a search found: a row of the explore CSV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRow {
    pub seed: u64,
    /// `finished`, `violation`, `deadlock`, `step-limit` or `aborted`.
    pub outcome: &'static str,
    /// The invariant a violation broke (the outcome's name otherwise, empty
    /// when the run finished): what the summary counts.
    pub kind: String,
    /// The race signature a violation matched (`unclassified: ...` when
    /// none did; the outcome's kind otherwise; empty when the run finished).
    pub bucket: String,
    /// Steps the run took (it stops at a violation).
    pub steps: u64,
    pub time_ns: u64,
}

/// The columns of the explore CSV: the search's identity (the same in
/// every row of a search and of each of its shards), then the run's.
pub const CSV_COLUMNS: [&str; 16] = [
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
    "bucket",
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
    pub fn of(seed: u64, report: &script::RunReport) -> RunRow {
        let (outcome, kind) = match &report.outcome {
            Outcome::Finished => ("finished", String::new()),
            Outcome::Violation(v) => ("violation", v.invariant.to_string()),
            Outcome::Deadlock(_) => ("deadlock", "deadlock".into()),
            Outcome::StepLimit(_) => ("step-limit", "step-limit".into()),
            Outcome::Aborted => ("aborted", "aborted".into()),
        };
        let bucket = super::tally::bucket_of(report).unwrap_or_default();
        RunRow { seed, outcome, kind, bucket, steps: report.steps, time_ns: report.time_ns }
    }

    pub fn failed(&self) -> bool {
        self.outcome != "finished"
    }

    /// The run's fields of a CSV row: seed, outcome, invariant (empty
    /// unless a violation), bucket, steps, simulated ns.
    fn fields(&self) -> [String; 6] {
        let invariant = if self.outcome == "violation" { self.kind.clone() } else { String::new() };
        [
            self.seed.to_string(),
            self.outcome.to_string(),
            invariant,
            self.bucket.clone(),
            self.steps.to_string(),
            self.time_ns.to_string(),
        ]
    }
}

/// The explore CSV (RFC 4180, written by the csv crate): the header, then
/// one row per run in the given order, each with the search's identity and
/// `shard` ("K/N"; "1/1" for a whole search).
pub fn render_csv(identity: &SearchIdentity, shard: Option<Shard>, rows: &[RunRow]) -> String {
    let shard = shard.map_or_else(|| "1/1".to_string(), |s| format!("{}/{}", s.index, s.count));
    let mut csv = super::csv::writer();
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
    let mut csv = super::csv::writer();
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
    count(14)?;
    count(15)?;
    let fields = (10..16).map(|i| f(i).to_string()).collect();
    Ok(ReadRow { identity, shard, fields, seed })
}
