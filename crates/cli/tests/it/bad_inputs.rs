//! The corpus of broken inputs in `tests/bad_inputs/`: every scenario
//! (`NN_name.lua`, run with `swapsim run FILE --seed 1`), every schedule
//! (`NN_name.schedule`, run with `swapsim replay FILE`) and every command
//! line (`NN_name.args`: the arguments after `swapsim`, split at white
//! space, run from the repository root) must exit 2, print nothing on
//! stdout, and print exactly the one-line error recorded in
//! `tests/bad_inputs/expected/NN_name.txt`.
//!
//! Each case must also end within [`MAX_SECONDS`] of wall-clock time and
//! [`MAX_RSS_MB`] of peak resident memory, measured for its process alone:
//! a hostile input is refused, never run until memory or patience runs out.
//! Scenarios that `.args` cases name live in `tests/bad_inputs/scenarios/`
//! (they are not cases of their own).
//!
//! `UPDATE_GOLDEN=1 cargo test -p cli --test it bad_inputs` rewrites the
//! expected files from the binary's output instead of comparing (read every
//! changed one before committing it).

use std::fs;
use std::path::Path;

use crate::{root, swapsim_measured};

const DIR: &str = "tests/bad_inputs";
const MIN_CASES: usize = 170;
/// Wall-clock seconds a case may take (a debug build, on a loaded machine;
/// the slowest, 73_memory_bomb, fills the default 256 MiB of Lua memory in
/// about 40 s on a loaded machine; the new cases run into a limit of 1 s or a
/// few million instructions).
const MAX_SECONDS: f64 = 60.0;
/// Peak resident memory a case may use, in MiB.
const MAX_RSS_MB: f64 = 400.0;

/// The inputs, sorted by name, as paths relative to the repository root.
fn cases() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join(DIR))
        .expect("tests/bad_inputs exists")
        .map(|entry| entry.expect("readable directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".lua") || name.ends_with(".schedule") || name.ends_with(".args"))
        .collect();
    names.sort();
    names.into_iter().map(|name| format!("{DIR}/{name}")).collect()
}

/// `tests/bad_inputs/expected/NN_name.txt` for `tests/bad_inputs/NN_name.lua`.
fn expected_path(case: &str) -> String {
    let stem = Path::new(case).file_stem().expect("a file name").to_string_lossy().into_owned();
    format!("{DIR}/expected/{stem}.txt")
}

#[test]
fn bad_inputs_exit_2_with_the_recorded_error() {
    let cases = cases();
    assert!(cases.len() >= MIN_CASES, "only {} cases in {DIR}, expected at least {MIN_CASES}", cases.len());
    let update = std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1");
    let mut failures: Vec<String> = Vec::new();
    for case in &cases {
        let measured = if case.ends_with(".lua") {
            swapsim_measured(&["run", case, "--seed", "1"])
        } else if case.ends_with(".args") {
            let line = fs::read_to_string(root().join(case)).expect("read the command line");
            swapsim_measured(&line.split_whitespace().collect::<Vec<_>>())
        } else {
            swapsim_measured(&["replay", case])
        };
        let run = &measured.run;
        let mut problems: Vec<String> = Vec::new();
        if measured.seconds > MAX_SECONDS {
            problems.push(format!("took {:.1} s (at most {MAX_SECONDS} s)", measured.seconds));
        }
        if measured.max_rss_mb > MAX_RSS_MB {
            problems.push(format!("peak memory {:.0} MiB (at most {MAX_RSS_MB} MiB)", measured.max_rss_mb));
        }
        if run.code != 2 {
            problems.push(format!("exit code {} (expected 2)", run.code));
        }
        if !run.stdout.is_empty() {
            problems.push(format!("stdout is not empty: {:?}", run.stdout));
        }
        if run.stderr.lines().count() != 1 || !run.stderr.starts_with("error: ") {
            problems.push(format!("stderr is not one line starting with \"error: \": {:?}", run.stderr));
        }
        // Scenario errors are located in the scenario: `error: FILE:LINE: ...` (or `error: FILE: ...`).
        if case.ends_with(".lua") && !run.stderr.starts_with(&format!("error: {case}:")) {
            problems.push(format!("stderr does not start with \"error: {case}:\": {:?}", run.stderr));
        }
        let expected_file = expected_path(case);
        if update {
            fs::write(root().join(&expected_file), &run.stderr).expect("write the expected file");
        } else {
            match fs::read_to_string(root().join(&expected_file)) {
                Ok(expected) if expected == run.stderr => {}
                Ok(expected) => problems.push(format!(
                    "stderr differs from {expected_file}:\n  expected: {expected:?}\n  actual:   {:?}",
                    run.stderr
                )),
                Err(e) => problems.push(format!("cannot read {expected_file} ({e}); stderr was {:?}", run.stderr)),
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{case}:\n  {}", problems.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs failed (UPDATE_GOLDEN=1 rewrites the expected files):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_expected_file_has_its_input() {
    let cases = cases();
    let inputs: Vec<String> = cases.iter().map(|case| expected_path(case)).collect();
    let mut orphans: Vec<String> = fs::read_dir(root().join(DIR).join("expected"))
        .expect("tests/bad_inputs/expected exists")
        .map(|entry| {
            format!("{DIR}/expected/{}", entry.expect("readable directory entry").file_name().to_string_lossy())
        })
        .filter(|path| !inputs.contains(path))
        .collect();
    orphans.sort();
    assert!(orphans.is_empty(), "expected files without an input: {orphans:?}");
}
