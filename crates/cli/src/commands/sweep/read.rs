//! The shards of one sweep read back (`swapsim merge --out DIR`): their
//! results.csv and samples.csv joined in grid order, refusing what does not
//! belong, and written again as one sweep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kernel::Variant;

use super::results::{Identity, Record, Row, Whole, COLUMNS, PARAM, SAMPLE_COLUMNS};
use crate::output::csv::csv_error;
use crate::output::error;

/// Whether `swapsim merge` was given sweep results: a directory, or a CSV
/// whose first column is `run` (an explore CSV's is `tool`).
pub fn is_sweep(inputs: &[PathBuf]) -> bool {
    inputs.iter().any(|input| {
        input.is_dir()
            || std::fs::read_to_string(input).is_ok_and(|text| text.starts_with("run,") || text.starts_with("\"run\","))
    })
}

/// `swapsim merge --out DIR` of sweep shards: their results.csv (or their
/// directories) joined in grid order, and the plots drawn from the whole.
pub fn merge(out: &Path, inputs: &[PathBuf]) -> ExitCode {
    if out.join("results.csv").exists() {
        eprintln!("error: {} already holds results; choose another --out", out.display());
        return ExitCode::from(2);
    }
    let whole = match read_shards(inputs) {
        Ok(whole) => whole,
        Err(e) => return error(e),
    };
    println!(
        "merged:   {} inputs: {} of the {} runs of {} (content fnv1a {})",
        inputs.len(),
        whole.records.len(),
        whole.identity.runs,
        whole.identity.scenario,
        whole.identity.hash
    );
    if let Some((n, of)) = whole.partial {
        println!("partial:  {n} of {of} runs (a shard is missing or was interrupted); the files say so");
    }
    match whole.write(out) {
        Ok(code) => code,
        Err(e) => error(e),
    }
}

/// The shards' results as one sweep. Refuses results of different sweeps
/// (another scenario, tool or grid), of different splits, the same shard
/// twice, the same run twice, and malformed rows.
fn read_shards(inputs: &[PathBuf]) -> Result<Whole, String> {
    let mut whole: Option<Whole> = None;
    let mut shards: BTreeMap<u64, String> = BTreeMap::new();
    let mut split: Option<(u64, String)> = None;
    let mut partial_marker = false;
    for input in inputs {
        let file = if input.is_dir() { input.join("results.csv") } else { input.clone() };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        partial_marker |= dir.join("PARTIAL").exists();
        let shard = read_results(&file, &dir.join("samples.csv"))?;
        let name = file.display().to_string();
        match &mut whole {
            None => whole = Some(shard.whole),
            Some(all) => {
                if all.identity.hash != shard.whole.identity.hash
                    || all.identity.tool != shard.whole.identity.tool
                    || all.identity.runs != shard.whole.identity.runs
                    || all.names != shard.whole.names
                {
                    let show = |w: &Whole| {
                        format!(
                            "{} (content fnv1a {}, swapsim {}, {} runs, parameters {})",
                            w.identity.scenario,
                            w.identity.hash,
                            w.identity.tool,
                            w.identity.runs,
                            w.names.join(", ")
                        )
                    };
                    return Err(format!(
                        "{name}: a shard of another sweep: {} against {}",
                        show(&shard.whole),
                        show(all)
                    ));
                }
                all.records.extend(shard.whole.records);
            }
        }
        for (index, count) in shard.shards {
            match &split {
                Some((n, first)) if *n != count => {
                    return Err(format!(
                        "{name}: shard {index}/{count} of a split into {count}, but {first} was split into {n}"
                    ))
                }
                Some(_) => {}
                None => split = Some((count, name.clone())),
            }
            if let Some(other) = shards.insert(index, name.clone()) {
                return Err(format!("{name}: shard {index}/{count} is there twice (also in {other})"));
            }
        }
    }
    let mut whole = whole.ok_or("no inputs")?;
    whole.records.sort_by_key(|r| r.run);
    if let Some(twice) = whole.records.windows(2).find(|w| w[0].run == w[1].run) {
        return Err(format!("run {} is in two inputs: the same shard twice?", twice[0].run));
    }
    let runs = whole.identity.runs;
    if whole.records.len() == runs && !partial_marker {
        for r in &mut whole.records {
            r.shard = "1/1".to_string();
        }
        whole.partial = None;
    } else {
        whole.partial = Some((whole.records.len(), runs));
    }
    Ok(whole)
}

/// One results.csv (with its samples.csv), and the shards its rows came
/// from, as (K, N).
struct ShardResults {
    whole: Whole,
    shards: Vec<(u64, u64)>,
}

fn read_results(file: &Path, samples: &Path) -> Result<ShardResults, String> {
    let name = file.display().to_string();
    let mut reader =
        csv::ReaderBuilder::new().from_path(file).map_err(|e| format!("cannot read {name}: {}", csv_error(&e)))?;
    let header: Vec<String> =
        reader.headers().map_err(|e| format!("{name}: {}", csv_error(&e)))?.iter().map(String::from).collect();
    let params = header.len().saturating_sub(1 + COLUMNS.len());
    let names: Vec<String> =
        header.iter().skip(1).take(params).filter_map(|h| h.strip_prefix(PARAM)).map(String::from).collect();
    if header.first().map(String::as_str) != Some("run") || names.len() != params || header[1 + params..] != *COLUMNS {
        return Err(format!(
            "{name}: not the results.csv of a sweep (its header must be run, param.NAME..., {})",
            COLUMNS.join(", ")
        ));
    }
    let mut records = Vec::new();
    let mut identity: Option<Identity> = None;
    let mut shards: Vec<(u64, u64)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let bad = |what: String| format!("{name}:{line}: {what}");
        let record = record.map_err(|e| bad(csv_error(&e)))?;
        let field = |column: &str| -> &str {
            let at = header.iter().position(|h| h == column).expect("a known column");
            record.get(at).unwrap_or("")
        };
        let number = |column: &str| -> Result<u64, String> {
            field(column).parse().map_err(|_| bad(format!("{column} is not a count: {:?}", field(column))))
        };
        let optional = |column: &str| -> Result<Option<u64>, String> {
            if field(column).is_empty() {
                Ok(None)
            } else {
                number(column).map(Some)
            }
        };
        let mut point = Vec::new();
        for n in &names {
            let text = field(&format!("{PARAM}{n}"));
            let value = text.parse::<i64>().map_err(|_| bad(format!("{PARAM}{n} is not an integer: {text:?}")))?;
            point.push((n.clone(), value));
        }
        let outcome = field("outcome");
        if !["clean", "violation", "deadlock", "step-limit", "aborted"].contains(&outcome) {
            return Err(bad(format!("outcome {outcome:?} is none of clean, violation, deadlock, step-limit, aborted")));
        }
        let kernel = field("kernel");
        if Variant::from_name(kernel).is_none() {
            return Err(bad(format!("unknown kernel {kernel:?}")));
        }
        let this = Identity {
            tool: field("tool").to_string(),
            scenario: field("scenario").to_string(),
            hash: field("scenario_fnv1a").to_string(),
            runs: number("runs")? as usize,
        };
        let runs = this.runs;
        match &identity {
            None => identity = Some(this),
            Some(first) if *first != this => {
                return Err(bad(format!(
                    "a row of another sweep ({} {} swapsim {}) in a file of {} {} swapsim {}",
                    this.scenario, this.hash, this.tool, first.scenario, first.hash, first.tool
                )))
            }
            Some(_) => {}
        }
        let run = number("run")? as usize;
        let shard_text = field("shard");
        let shard = crate::seed_search::parse_shard(shard_text).map_err(|e| bad(e.replace("--shard", "shard")))?;
        if run >= runs || run as u64 % shard.count != shard.index - 1 {
            return Err(bad(format!("run {run} is not a run of shard {shard_text} of a grid of {runs} runs")));
        }
        if !shards.contains(&(shard.index, shard.count)) {
            shards.push((shard.index, shard.count));
        }
        records.push(Record {
            run,
            point,
            kernel: kernel.to_string(),
            seed: number("seed")?,
            shard: shard_text.to_string(),
            row: Row {
                outcome: outcome.to_string(),
                invariant: field("invariant").to_string(),
                steps: number("steps")?,
                time_ns: number("time_ns")?,
                swapoffs: number("swapoffs")?,
                swapoff_ns_mean: optional("swapoff_ns_mean")?,
                swapoff_ns_max: optional("swapoff_ns_max")?,
                faults: number("faults")?,
                faults_during_swapoff: number("faults_during_swapoff")?,
                fault_ns_p50: optional("fault_ns_p50")?,
                fault_ns_p99: optional("fault_ns_p99")?,
                swap_ins: number("swap_ins")?,
                swap_outs: number("swap_outs")?,
                fault_samples: Vec::new(),
                locks: Vec::new(),
            },
        });
    }
    let identity = identity.ok_or_else(|| format!("{name}: no rows"))?;
    read_samples(samples, &mut records)?;
    let whole = Whole { identity, names, records, partial: None, shard: None };
    Ok(ShardResults { whole, shards })
}

/// samples.csv beside a results.csv: each run's fault latencies.
fn read_samples(file: &Path, records: &mut [Record]) -> Result<(), String> {
    let name = file.display().to_string();
    let mut reader = csv::ReaderBuilder::new().from_path(file).map_err(|e| {
        format!(
            "cannot read {name} (the fault samples beside results.csv, for the p99 of merged runs): {}",
            csv_error(&e)
        )
    })?;
    let header: Vec<String> =
        reader.headers().map_err(|e| format!("{name}: {}", csv_error(&e)))?.iter().map(String::from).collect();
    if header != SAMPLE_COLUMNS {
        return Err(format!("{name}: not a samples.csv (its header must be {})", SAMPLE_COLUMNS.join(",")));
    }
    let by_run: BTreeMap<usize, usize> = records.iter().enumerate().map(|(i, r)| (r.run, i)).collect();
    for (i, record) in reader.records().enumerate() {
        let bad = |what: String| format!("{name}:{}: {what}", i + 2);
        let record = record.map_err(|e| bad(csv_error(&e)))?;
        let numbers: Vec<u64> =
            record.iter().map(|f| f.parse::<u64>()).collect::<Result<_, _>>().map_err(|_| {
                bad(format!("run, fault_ns and count are counts: {:?}", record.iter().collect::<Vec<_>>()))
            })?;
        let run = numbers.first().copied().unwrap_or(0) as usize;
        let Some(&at) = by_run.get(&run) else {
            return Err(bad(format!("run {run} is not in the results.csv beside it")));
        };
        records[at].row.fault_samples.push((numbers[1], numbers[2]));
    }
    Ok(())
}
