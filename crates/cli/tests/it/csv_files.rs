//! CSV files written and read with the csv crate: awkward parameter
//! names, missing values, the search's identity on explore rows, merges
//! that refuse what does not belong together; sweeps that flag broken runs,
//! stop partway, and run in shards.

use std::path::{Path, PathBuf};

use crate::swapsim;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swapsim-csv-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// docs/sweep.md as one line of words, without Markdown emphasis.
fn sweep_doc() -> String {
    let doc = std::fs::read_to_string(crate::root().join("docs/sweep.md")).unwrap();
    doc.split_whitespace().collect::<Vec<_>>().join(" ").replace("**", "")
}

fn read(path: &Path) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().clone();
    let rows = reader.records().map(|r| r.expect("a well-formed row")).collect();
    (header, rows)
}

fn column(header: &csv::StringRecord, name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// A small sweep scenario with these `params` and a program for the
/// holder (`worker`: whether a worker faults during swapoff).
fn scenario(dir: &Path, params: &str, reads: &str, worker: bool, extra: &str) -> PathBuf {
    let worker = if worker {
        "local w = process('worker', function() local i = 0; while not done do write(0x40000000 + (i % 16) * 4096); \
         i = i + 1; sleep(1) end end)\nw:map(0x40000000, 16)\n"
    } else {
        ""
    };
    let text = format!(
        "sweep {{ params = {{ {params} }}, kernels = {{ 'pre4', 'patched' }}, seeds = 2 }}\n\
         local PAGES = {reads}\n\
         machine {{ cpus = 2, memory_pages = 256, swap_devices = {{ 64 }}, alloc_sleep = 0.1 }}\n\
         done = false\n\
         local p = process('holder')\n\
         p:map(0x100000, PAGES)\n\
         for i = 0, PAGES - 1 do p:write(0x100000 + i * 4096); p:swap_out(0x100000 + i * 4096) end\n\
         {worker}{extra}\
         process('swapoff', function() swapoff(1); done = true end)\n"
    );
    let file = dir.join("sweep.lua");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn awkward_parameter_names_keep_the_columns_straight() {
    // A comma in a name, a name that is another column's, a name that a
    // spreadsheet would take for a formula.
    let dir = out_dir("names");
    let file = scenario(
        &dir,
        "['pages, in use'] = { 4, 8 }, seed = { 7 }, ['=1+1'] = { 1 }",
        "param('pages, in use') + param('seed') - 7 + param('=1+1') - 1",
        true,
        "",
    );
    let results = dir.join("out");
    let run = swapsim(&["sweep", file.to_str().unwrap(), "--out", results.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (header, rows) = read(&results.join("results.csv"));
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r.len() == header.len()), "every row as wide as the header");
    let mut names: Vec<&str> = header.iter().collect();
    names.sort();
    let width = names.len();
    names.dedup();
    assert_eq!(names.len(), width, "one column per name: {header:?}");
    assert_eq!(&header[1], "param.=1+1");
    assert_eq!(&header[2], "param.pages, in use");
    assert_eq!(&header[3], "param.seed");
    assert_eq!(&rows[0][column(&header, "param.pages, in use")], "4");
    assert_eq!(&rows[0][column(&header, "seed")], "1", "the run's seed");
    assert_eq!(&rows[0][column(&header, "param.seed")], "7", "the parameter");
    let text = std::fs::read_to_string(results.join("results.csv")).unwrap();
    for line in text.lines() {
        assert!(line.split(',').all(|cell| !cell.starts_with('=')), "a cell that is a formula: {line}");
    }
}

#[test]
fn a_run_with_no_sample_has_empty_fields_not_zero() {
    // No worker: no fault during swapoff, so no latency to report.
    let dir = out_dir("na");
    let file = scenario(&dir, "pages = { 4 }", "param('pages')", false, "");
    let results = dir.join("out");
    let run = swapsim(&["sweep", file.to_str().unwrap(), "--out", results.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (header, rows) = read(&results.join("results.csv"));
    for row in &rows {
        assert_eq!(&row[column(&header, "faults_during_swapoff")], "0");
        assert_eq!(&row[column(&header, "fault_ns_p50")], "", "{row:?}");
        assert_eq!(&row[column(&header, "fault_ns_p99")], "", "{row:?}");
        assert_ne!(&row[column(&header, "swapoff_ns_mean")], "");
    }
    assert!(sweep_doc().contains("An empty field is a missing value"), "docs/sweep.md says what an empty field is");
}

#[test]
fn runs_that_break_an_invariant_are_flagged_reported_left_out_and_exit_1() {
    let dir = out_dir("broken");
    let breaks = "process('checker', function() expect(param('pages') ~= 8, 'pages 8 breaks') end)\n";
    let file = scenario(&dir, "pages = { 4, 8 }", "param('pages')", true, breaks);
    let results = dir.join("out");
    let run = swapsim(&["sweep", file.to_str().unwrap(), "--out", results.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("broken:   4 runs (flagged in results.csv, left out of the plots)"), "{}", run.stdout);
    assert!(run.stdout.contains("pages=8 kernel pre4 seed 1: scenario-expectation"), "{}", run.stdout);
    let (header, rows) = read(&results.join("results.csv"));
    for row in &rows {
        let broken = &row[column(&header, "param.pages")] == "8";
        let (outcome, invariant) = (&row[column(&header, "outcome")], &row[column(&header, "invariant")]);
        assert_eq!((outcome, invariant), if broken { ("violation", "scenario-expectation") } else { ("clean", "") });
    }
    let svg = std::fs::read_to_string(results.join("swapoff_time.svg")).unwrap();
    assert!(svg.contains("left out: 4 runs that broke an invariant"), "the plot says so");
}

#[test]
fn grid_order_is_as_docs_sweep_md_says_the_seed_fastest() {
    let dir = out_dir("order");
    let run =
        swapsim(&["sweep", "crates/cli/tests/fixtures/small_sweep.lua", "--out", dir.join("o").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (header, rows) = read(&dir.join("o/results.csv"));
    let key = |r: &csv::StringRecord| {
        ["param.pages", "param.processes", "kernel", "seed"].map(|c| r[column(&header, c)].to_string())
    };
    let keys: Vec<[String; 4]> = rows.iter().map(key).collect();
    let k = |a: &str, b: &str, c: &str, d: &str| [a, b, c, d].map(String::from);
    assert_eq!(keys[0], k("8", "1", "pre4", "1"));
    assert_eq!(keys[1], k("8", "1", "pre4", "2"), "the seed varies fastest");
    assert_eq!(keys[2], k("8", "1", "patched", "1"), "then the kernel");
    assert_eq!(keys[4], k("8", "2", "pre4", "1"), "then the last parameter");
    assert_eq!(keys[8], k("16", "1", "pre4", "1"), "the first parameter slowest");
    assert!(sweep_doc().contains("the seed varies fastest, then the kernel, then the parameters"), "docs/sweep.md");
}

#[test]
fn sweep_shards_merge_into_the_whole_sweep_and_other_sweeps_are_refused() {
    let dir = out_dir("shards");
    let d = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let sweep = |extra: &[&str], out: &str| {
        let mut args = vec!["sweep", "crates/cli/tests/fixtures/small_sweep.lua", "--out", out];
        args.extend(extra);
        swapsim(&args)
    };
    assert_eq!(sweep(&[], &d("whole")).code, 0);
    let one = sweep(&["--shard", "1/3"], &d("s1"));
    assert!(one.stdout.contains("shard:    1/3: 6 of the 16 runs"), "{}", one.stdout);
    sweep(&["--shard", "2/3"], &d("s2"));
    sweep(&["--shard", "3/3"], &d("s3"));
    let merged = swapsim(&["merge", "--out", &d("merged"), &d("s3"), &d("s1"), &format!("{}/results.csv", d("s2"))]);
    assert_eq!(merged.code, 0, "{}{}", merged.stdout, merged.stderr);
    for file in ["results.csv", "samples.csv", "swapoff_time.png", "fault_latency_p99.svg"] {
        assert_eq!(
            std::fs::read(dir.join("merged").join(file)).unwrap(),
            std::fs::read(dir.join("whole").join(file)).unwrap(),
            "{file}: the merge is the whole sweep"
        );
    }
    // Two of three shards: merged, but partial, and it says so.
    let two = swapsim(&["merge", "--out", &d("two"), &d("s1"), &d("s2")]);
    assert_eq!(two.code, 0, "{}", two.stderr);
    assert!(two.stdout.contains("partial:  11 of 16 runs"), "{}", two.stdout);
    assert!(dir.join("two/PARTIAL").exists());
    // The same shard twice.
    let twice = swapsim(&["merge", "--out", &d("twice"), &d("s1"), &d("s2"), &d("s1")]);
    assert_eq!(twice.code, 2);
    assert!(twice.stderr.contains("shard 1/3 is there twice"), "{}", twice.stderr);
    // A shard of another sweep (the scenario changed).
    let source = std::fs::read_to_string(crate::root().join("crates/cli/tests/fixtures/small_sweep.lua")).unwrap();
    let other = dir.join("other.lua");
    std::fs::write(&other, source.replace("seeds = 2", "seeds = 1 + 1")).unwrap();
    let run = swapsim(&["sweep", other.to_str().unwrap(), "--out", &d("o2"), "--shard", "2/3"]);
    assert_eq!(run.code, 0);
    let refused = swapsim(&["merge", "--out", &d("refused"), &d("s1"), &d("o2"), &d("s3")]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("a shard of another sweep"), "{}", refused.stderr);
    assert!(!dir.join("refused").exists(), "nothing written");
    // A malformed row: a field short, then a count that is not one.
    let results = std::fs::read_to_string(dir.join("s2/results.csv")).unwrap();
    let mut lines: Vec<String> = results.lines().map(String::from).collect();
    let short = lines[2].rsplit_once(',').unwrap().0.to_string();
    lines[2] = short;
    std::fs::write(dir.join("s2/results.csv"), lines.join("\n") + "\n").unwrap();
    let bad = swapsim(&["merge", "--out", &d("bad"), &d("s1"), &d("s2"), &d("s3")]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("results.csv:3:") && bad.stderr.contains("fields where the header has"),
        "{}",
        bad.stderr
    );
    std::fs::write(dir.join("s2/results.csv"), results.replacen(",clean,", ",sunny,", 1)).unwrap();
    let bad = swapsim(&["merge", "--out", &d("bad"), &d("s1"), &d("s2"), &d("s3")]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("results.csv:2: outcome \"sunny\""), "{}", bad.stderr);
}

#[test]
fn an_interrupted_sweep_covers_the_runs_done_says_partial_and_exits_130() {
    let dir = out_dir("interrupt");
    // Many runs, one at a time: Ctrl-C comes long before the end.
    let source = std::fs::read_to_string(crate::root().join("crates/cli/tests/fixtures/small_sweep.lua")).unwrap();
    let file = dir.join("long.lua");
    std::fs::write(&file, source.replace("seeds = 2", "seeds = 400")).unwrap();
    let out = dir.join("out");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_swapsim"))
        .args(["sweep", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "1"])
        .current_dir(crate::root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(4000));
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let (_, rows) = read(&out.join("results.csv"));
    assert!(!rows.is_empty() && rows.len() < 3200, "{} rows", rows.len());
    let marker = std::fs::read_to_string(out.join("PARTIAL")).unwrap();
    assert!(marker.starts_with(&format!("partial: {} of 3200 runs", rows.len())), "{marker}");
    assert!(stdout.contains(&format!("interrupted: {} of 3200 runs done", rows.len())), "{stdout}");
    let svg = std::fs::read_to_string(out.join("swapoff_time.svg")).unwrap();
    assert!(svg.contains("(partial)") && svg.contains(&format!("PARTIAL: {} of 3200 runs", rows.len())));
}

/// An explore CSV of race 1 under pre4 (random), seeds 1..40, shard `shard`.
fn explore_csv(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let csv = dir.join(name);
    let mut all = vec!["explore", "--runs", "40", "--no-shrink", "--out", dir.to_str().unwrap()];
    all.extend(args);
    all.extend(["--csv", csv.to_str().unwrap()]);
    let run = swapsim(&all);
    assert!(run.code == 0 || run.code == 1, "{args:?}: {}", run.stderr);
    csv
}

#[test]
fn explore_rows_carry_the_search_and_merge_refuses_what_does_not_belong() {
    let dir = out_dir("explore");
    let race1 = ["scenarios/race1_fork.lua", "--kernel", "pre4"];
    fn with<'a>(race1: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        race1.iter().chain(extra).copied().collect()
    }
    let a = explore_csv(&dir, "a.csv", &with(&race1, &["--shard", "1/2"]));
    let b = explore_csv(&dir, "b.csv", &with(&race1, &["--shard", "2/2"]));
    let (header, rows) = read(&a);
    assert_eq!(rows.len(), 20);
    let row = &rows[0];
    assert_eq!(&row[column(&header, "tool")], env!("CARGO_PKG_VERSION"));
    assert_eq!(row[column(&header, "scenario_fnv1a")].len(), 16);
    assert_eq!(&row[column(&header, "kernel")], "pre4");
    assert_eq!(&row[column(&header, "strategy")], "random");
    assert_eq!(&row[column(&header, "shard")], "1/2");
    assert!(!header.iter().any(|h| h == "step"), "step (always equal to steps) is gone: {header:?}");

    // The merge of both shards is the whole search.
    let whole = explore_csv(&dir, "whole.csv", &race1);
    let merged = dir.join("merged.csv");
    let run = swapsim(&["merge", "--out", merged.to_str().unwrap(), b.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), std::fs::read_to_string(&whole).unwrap());

    let refused = |inputs: &[&Path], says: &str| {
        let out = dir.join("refused.csv");
        let mut args = vec!["merge", "--out", out.to_str().unwrap()];
        args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
        let run = swapsim(&args);
        assert_eq!(run.code, 2, "{inputs:?}: {}", run.stdout);
        assert!(run.stderr.contains(says), "{inputs:?}: {}", run.stderr);
        assert!(!out.exists());
    };
    // A race-2/patched/pct shard with a race-1/pre4/random one.
    let other = explore_csv(
        &dir,
        "other.csv",
        &["scenarios/race2_exit.lua", "--kernel", "patched", "--strategy", "pct", "--shard", "2/2"],
    );
    refused(&[&a, &other], "shards of different searches are not merged");
    // The same search with a fix switched: another search too.
    let fixed = explore_csv(&dir, "fixed.csv", &with(&race1, &["--fix", "mmlist", "--shard", "2/2"]));
    refused(&[&a, &fixed], "shards of different searches");
    // The same shard twice.
    refused(&[&a, &b, &a], "the same shard twice");
    // Malformed rows: a field short; a seed not of the shard; a bad outcome.
    let text = std::fs::read_to_string(&b).unwrap();
    let bad = dir.join("bad.csv");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[3] = lines[3].rsplit_once(',').unwrap().0.to_string();
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    refused(&[&a, &bad], "bad.csv:4: 15 fields where the header has 16");
    std::fs::write(&bad, text.replacen("2/2,2,", "2/2,3,", 1)).unwrap();
    refused(&[&a, &bad], "bad.csv:2: not a row of an explore CSV: seed 3 is not a run of shard 2/2");
    std::fs::write(&bad, text.replacen(",finished,", ",fine,", 1)).unwrap();
    refused(&[&a, &bad], "outcome \"fine\"");
}
