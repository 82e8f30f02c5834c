//! What a sweep writes: each run's costs (`measure`), results.csv and
//! samples.csv (columns in docs/sweep.md), PARTIAL, the summary table and
//! the plots (drawn by `plots.rs`), and the runs that broke something.

use std::path::Path;
use std::process::ExitCode;

use engine::Outcome;
use script::RunReport;

use crate::output::csv::writer;
use crate::output::write_file;
use crate::seed_search::Shard;

/// The columns of results.csv after the parameters (docs/sweep.md).
pub const COLUMNS: &[&str] = &[
    "kernel",
    "seed",
    "outcome",
    "invariant",
    "steps",
    "time_ns",
    "swapoffs",
    "swapoff_ns_mean",
    "swapoff_ns_max",
    "faults",
    "faults_during_swapoff",
    "fault_ns_p50",
    "fault_ns_p99",
    "swap_ins",
    "swap_outs",
    "tool",
    "scenario",
    "scenario_fnv1a",
    "runs",
    "shard",
];

/// A parameter's column: `param.NAME`, so that no name can clash with
/// another column or start a cell with `=`.
pub const PARAM: &str = "param.";

/// The columns of samples.csv: each run's faults during swapoff, as
/// (latency, how many) pairs.
pub const SAMPLE_COLUMNS: [&str; 3] = ["run", "fault_ns", "count"];

/// Which sweep rows belong to: the same in every row of one sweep and of
/// each of its shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub tool: String,
    /// The scenario's file name (for titles; the hash is what must agree).
    pub scenario: String,
    pub hash: String,
    /// Runs in the whole grid.
    pub runs: usize,
}

/// One run of the grid and what it cost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its index in grid order (from 0).
    pub run: usize,
    pub point: Vec<(String, i64)>,
    pub kernel: String,
    pub seed: u64,
    /// "1/1" unless the run came from a shard of an unfinished merge.
    pub shard: String,
    pub row: Row,
}

/// What one run cost. `None` is a missing value (no sample): an empty
/// field in the CSV.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// `clean`, `violation`, `deadlock`, `step-limit` or `aborted`.
    pub outcome: String,
    /// The invariant a violation broke (empty otherwise).
    pub invariant: String,
    pub steps: u64,
    pub time_ns: u64,
    pub swapoffs: u64,
    pub swapoff_ns_mean: Option<u64>,
    pub swapoff_ns_max: Option<u64>,
    pub faults: u64,
    pub faults_during_swapoff: u64,
    pub fault_ns_p50: Option<u64>,
    pub fault_ns_p99: Option<u64>,
    pub swap_ins: u64,
    pub swap_outs: u64,
    /// The latencies of the faults during swapoff: (ns, count), ascending.
    pub fault_samples: Vec<(u64, u64)>,
    /// With --lock-stat: the run's lock statistics (not in results.csv).
    pub locks: Vec<report::LockStat>,
}

impl Row {
    pub fn clean(&self) -> bool {
        self.outcome == "clean"
    }
}

pub fn measure(report: &RunReport) -> Row {
    let swapoffs: Vec<(u64, u64)> =
        report.calls.iter().filter(|c| c.name == "swapoff").map(|c| (c.start_ns, c.end_ns)).collect();
    let durations: Vec<u64> = swapoffs.iter().map(|(s, e)| e - s).collect();
    let mut during: Vec<u64> = report
        .calls
        .iter()
        .filter(|c| c.name == "fault" && swapoffs.iter().any(|&(s, e)| c.start_ns < e && s < c.end_ns))
        .map(|c| c.end_ns - c.start_ns)
        .collect();
    during.sort_unstable();
    let rank = |p: u32| (!during.is_empty()).then(|| report::nearest_rank(&during, p));
    let mut fault_samples: Vec<(u64, u64)> = Vec::new();
    for &ns in &during {
        match fault_samples.last_mut() {
            Some((last, n)) if *last == ns => *n += 1,
            _ => fault_samples.push((ns, 1)),
        }
    }
    let (outcome, invariant) = match &report.outcome {
        Outcome::Finished => ("clean", String::new()),
        Outcome::Violation(v) => ("violation", v.invariant.to_string()),
        Outcome::Deadlock(_) => ("deadlock", String::new()),
        Outcome::StepLimit(_) => ("step-limit", String::new()),
        Outcome::Aborted => ("aborted", String::new()),
    };
    Row {
        outcome: outcome.to_string(),
        invariant,
        steps: report.steps,
        time_ns: report.time_ns,
        swapoffs: durations.len() as u64,
        swapoff_ns_mean: (!durations.is_empty()).then(|| durations.iter().sum::<u64>() / durations.len() as u64),
        swapoff_ns_max: durations.iter().copied().max(),
        faults: report.stats.faults,
        faults_during_swapoff: during.len() as u64,
        fault_ns_p50: rank(50),
        fault_ns_p99: rank(99),
        swap_ins: report.stats.swap_ins,
        swap_outs: report.stats.swap_outs,
        fault_samples,
        locks: Vec::new(),
    }
}

/// The results of a sweep (or of one shard, or of a merge of shards).
pub struct Whole {
    pub identity: Identity,
    pub names: Vec<String>,
    /// In grid order.
    pub records: Vec<Record>,
    /// (runs done, runs meant): the run stopped early or shards are missing.
    pub partial: Option<(usize, usize)>,
    /// This is one shard of the grid.
    pub shard: Option<Shard>,
}

impl Whole {
    /// results.csv, samples.csv, PARTIAL (or none) and the plots; reports
    /// the runs that broke something; the exit status.
    pub fn write(&self, dir: &Path) -> Result<ExitCode, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let marker = dir.join("PARTIAL");
        match self.partial {
            Some((n, of)) => {
                let text =
                    format!("partial: {n} of {of} runs; results.csv, samples.csv and the plots cover only those\n");
                write_file(&marker, text.as_bytes())?;
            }
            None => {
                let _ = std::fs::remove_file(&marker);
            }
        }
        let results = dir.join("results.csv");
        write_file(&results, &self.results_csv())?;
        let samples = dir.join("samples.csv");
        write_file(&samples, &self.samples_csv())?;
        println!("results:  {} ({} rows), {}", results.display(), self.records.len(), samples.display());
        if let Some(table) = self.summary() {
            let file = dir.join("summary.md");
            write_file(&file, table.render_markdown().as_bytes())?;
            print!("{}", table.render());
            println!("summary:  {}", file.display());
        }
        let broken: Vec<&Record> = self.records.iter().filter(|r| !r.row.clean()).collect();
        self.draw_plots(dir, broken.len())?;
        if let Some(shard) = self.shard {
            println!(
                "shard:    {}/{}; `swapsim merge --out DIR` with the other shards' results.csv draws the whole",
                shard.index, shard.count
            );
        }
        if !broken.is_empty() {
            println!("broken:   {} runs (flagged in results.csv, left out of the plots):", broken.len());
            for r in broken.iter().take(20) {
                let what = if r.row.invariant.is_empty() { r.row.outcome.clone() } else { r.row.invariant.clone() };
                println!("  run {}: {} kernel {} seed {}: {what}", r.run, point_text(&r.point), r.kernel, r.seed);
            }
            if broken.len() > 20 {
                println!("  ... and {} more", broken.len() - 20);
            }
        }
        Ok(if self.partial.is_some() && crate::interrupt::interrupted() {
            ExitCode::from(130)
        } else if !broken.is_empty() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }

    fn header(&self) -> Vec<String> {
        let params = self.names.iter().map(|n| format!("{PARAM}{n}"));
        std::iter::once("run".to_string()).chain(params).chain(COLUMNS.iter().map(|c| c.to_string())).collect()
    }

    fn results_csv(&self) -> Vec<u8> {
        let mut csv = writer();
        csv.write_record(self.header()).expect("CSV into memory");
        let na = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let id = &self.identity;
        for r in &self.records {
            let row = &r.row;
            let mut fields = vec![r.run.to_string()];
            fields.extend(r.point.iter().map(|(_, v)| v.to_string()));
            fields.extend([
                r.kernel.clone(),
                r.seed.to_string(),
                row.outcome.clone(),
                row.invariant.clone(),
                row.steps.to_string(),
                row.time_ns.to_string(),
                row.swapoffs.to_string(),
                na(row.swapoff_ns_mean),
                na(row.swapoff_ns_max),
                row.faults.to_string(),
                row.faults_during_swapoff.to_string(),
                na(row.fault_ns_p50),
                na(row.fault_ns_p99),
                row.swap_ins.to_string(),
                row.swap_outs.to_string(),
                id.tool.clone(),
                id.scenario.clone(),
                id.hash.clone(),
                id.runs.to_string(),
                r.shard.clone(),
            ]);
            csv.write_record(&fields).expect("CSV into memory");
        }
        csv.into_inner().expect("CSV into memory")
    }

    fn samples_csv(&self) -> Vec<u8> {
        let mut csv = writer();
        csv.write_record(SAMPLE_COLUMNS).expect("CSV into memory");
        for r in &self.records {
            for (ns, count) in &r.row.fault_samples {
                csv.write_record([r.run.to_string(), ns.to_string(), count.to_string()]).expect("CSV into memory");
            }
        }
        csv.into_inner().expect("CSV into memory")
    }
}

pub fn point_text(point: &[(String, i64)]) -> String {
    point.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ")
}
