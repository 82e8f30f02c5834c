//! Explore, save, shrink and replay: the schedule found is reproduced
//! exactly, shrinking keeps the same violation, and bad schedule files are
//! refused clearly.

use std::path::PathBuf;

use crate::swapsim;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swapsim-explore-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn schedule_path(stdout: &str) -> String {
    let line = stdout.lines().find(|l| l.starts_with("schedule: ")).expect("a schedule line");
    line["schedule: ".len()..].split(" (").next().unwrap().to_string()
}

#[test]
fn explore_finds_race1_saves_a_schedule_that_replays_as_recorded() {
    let out = out_dir("race1");
    let run = swapsim(&[
        "explore",
        "scenarios/race1_fork.lua",
        "--kernel",
        "pre4",
        "--runs",
        "50",
        "--invariant",
        "swapoff-completeness",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("first:    seed "), "{}", run.stdout);
    assert!(run.stdout.contains("shrunk from"), "{}", run.stdout);
    let file = schedule_path(&run.stdout);
    let replay = swapsim(&["replay", &file]);
    assert_eq!(replay.code, 1, "{}", replay.stdout);
    assert!(replay.stdout.contains("replayed: swapoff-completeness at step"), "{}", replay.stdout);
    assert!(replay.stdout.contains(", as recorded"), "{}", replay.stdout);
    // The bundle: the scenario beside its schedule, the report, the command;
    // it replays from anywhere.
    let bundle = std::path::Path::new(&file).with_extension("bundle");
    for part in ["race1_fork.lua", "schedule", "report.txt", "COMMAND"] {
        assert!(bundle.join(part).is_file(), "{part} in {}", bundle.display());
    }
    let report = std::fs::read_to_string(bundle.join("report.txt")).unwrap();
    assert!(report.contains("VIOLATION swapoff-completeness"), "{report}");
    let replay = swapsim(&["replay", bundle.join("schedule").to_str().unwrap()]);
    assert!(replay.stdout.contains(", as recorded"), "{}{}", replay.stdout, replay.stderr);
    // The reproduction rate around the schedule: deterministic, and the
    // schedule itself (p = 0) always reproduces.
    let rate = |p: &str| {
        let run = swapsim(&["replay", &file, "--rate", "200", "--perturb", p]);
        run.stdout.lines().find(|l| l.starts_with("rate:")).expect("a rate line").to_string()
    };
    assert_eq!(rate("0.1"), rate("0.1"));
    assert!(rate("0").contains("200 of 200 runs around the schedule (p = 0) break swapoff-completeness"));
    let bad = swapsim(&["replay", &file, "--rate", "10", "--perturb", "1.5"]);
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr, "error: --perturb is a probability from 0 to 1, got \"1.5\"\n");
    assert_eq!(bad.stdout, "", "refused before anything runs");
}

#[test]
fn pct_finds_the_race4_double_delete_and_the_report_shows_it_side_by_side() {
    let out = out_dir("race4");
    let run = swapsim(&[
        "explore",
        "scenarios/race4_shm.lua",
        "--kernel",
        "pre4",
        "--runs",
        "100",
        "--strategy",
        "pct",
        "--depth",
        "3",
        "--invariant",
        "swap-cache",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("strategy: pct, depth 3"), "{}", run.stdout);
    assert!(run.stdout.contains("with probability >= 1/(n*k^(d-1))"), "{}", run.stdout);
    let file = schedule_path(&run.stdout);
    let trace = out.join("find.json");
    let replay = swapsim(&["replay", &file, "--report", "--trace", trace.to_str().unwrap(), "--stats"]);
    // A pct find opens on a timeline: valid trace-event JSON with the violation.
    let json = std::fs::read_to_string(&trace).expect("replay --trace writes the trace");
    crate::timeline::check_trace(&json);
    assert!(
        json.contains("\"cat\":\"violation\"") && json.contains("\"s\":\"g\""),
        "the violation is a global instant"
    );
    assert!(
        replay.stdout.contains("lock_stat version 0.4") && replay.stdout.contains("lockdep:  "),
        "{}",
        replay.stdout
    );
    assert!(replay.stdout.contains("| shmuser") && replay.stdout.contains("| swapoff"), "{}", replay.stdout);
    assert!(replay.stdout.contains("broken at step"), "{}", replay.stdout);
    assert!(replay.stdout.contains("deleted twice"), "{}", replay.stdout);
    assert!(replay.stdout.contains(", as recorded"), "{}", replay.stdout);
    // The report is a function of the schedule: the golden file pins it.
    let report: String =
        replay.stdout.lines().take_while(|l| !l.starts_with("scenario:")).collect::<Vec<_>>().join("\n");
    crate::determinism::check_golden("race4_pct_report.txt", &report);
}

#[test]
fn the_race1_side_by_side_report_matches_its_golden_file() {
    let out = out_dir("race1-report");
    let run = swapsim(&[
        "explore",
        "scenarios/race1_fork.lua",
        "--kernel",
        "pre4",
        "--seed",
        "3",
        "--runs",
        "1",
        "--no-shrink",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let replay = swapsim(&["replay", &schedule_path(&run.stdout), "--report"]);
    let report: String =
        replay.stdout.lines().take_while(|l| !l.starts_with("scenario:")).collect::<Vec<_>>().join("\n");
    assert!(report.contains("copied swap entry 1:1"), "{report}");
    crate::determinism::check_golden("race1_report.txt", &report);
}

#[test]
fn shrink_keeps_the_violation_and_does_not_grow_the_schedule() {
    let out = out_dir("shrink");
    let run = swapsim(&[
        "explore",
        "scenarios/race3_fault.lua",
        "--kernel",
        "pre4",
        "--runs",
        "100",
        "--invariant",
        "fault-result",
        "--no-shrink",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let file = schedule_path(&run.stdout);
    let before = std::fs::read_to_string(&file).unwrap();
    let shrink = swapsim(&["shrink", &file]);
    assert_eq!(shrink.code, 0, "{}{}", shrink.stdout, shrink.stderr);
    assert!(shrink.stdout.contains("still breaks fault-result"), "{}", shrink.stdout);
    let count =
        |text: &str| -> usize { text.lines().find(|l| l.starts_with("choices ")).unwrap()[8..].parse().unwrap() };
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(count(&after) <= count(&before), "{before}\n{after}");
    let replay = swapsim(&["replay", &file]);
    assert!(replay.stdout.contains("replayed: fault-result"), "{}", replay.stdout);
}

#[test]
fn the_patch_holds_under_exploration() {
    let run = swapsim(&["explore", "scenarios/race1_fork.lua", "--kernel", "patched", "--runs", "200"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("result:   200 runs, no violation"), "{}", run.stdout);
    // The lock-class order graph of the search: the kernel model has no
    // inversion (trylocks order nothing, as in lockdep).
    assert!(run.stdout.contains("lockdep:  6 lock classes, 12 orders taken"), "{}", run.stdout);
    assert!(run.stdout.contains("(held A, took B); no cycle"), "{}", run.stdout);
    assert!(
        run.stdout.contains("coverage: ")
            && run.stdout.contains(" seen in both orders; the last new pair came at run ")
    );
}

#[test]
fn bad_schedule_files_are_refused_clearly() {
    let out = out_dir("bad");
    let run = swapsim(&["explore", "scenarios/race1_fork.lua", "--runs", "20", "--out", out.to_str().unwrap()]);
    let file = schedule_path(&run.stdout);
    let good = std::fs::read_to_string(&file).unwrap();
    let try_file = |name: &str, text: &str| -> String {
        let path = out.join(name);
        std::fs::write(&path, text).unwrap();
        let run = swapsim(&["replay", path.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{name}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{name}: one line: {}", run.stderr);
        run.stderr
    };
    let truncated: String = good.lines().take(5).collect::<Vec<_>>().join("\n");
    assert!(try_file("truncated", &truncated).contains("truncated"));
    let edited = good.replace("kernel pre4", "kernel pre9");
    assert!(try_file("edited", &edited).contains("unknown kernel \"pre9\""));
    let other = good.replace("content-fnv1a ", "content-fnv1a 1");
    let other = other.replacen(&other.lines().nth(3).unwrap().to_string(), "content-fnv1a 0000000000000001", 1);
    assert!(try_file("mismatched", &other).contains("is not the scenario this schedule was recorded in"));
    assert!(try_file("garbage", "hello\n").contains("not a swapsim schedule file"));
}

#[test]
fn dfs_exhausts_the_bounded_schedules_of_the_patched_exit_race() {
    // Race 2 needs two preemptions (the ipc task into shm_ids.sem, then the
    // exiter to it); under the patch one-preemption schedules are exhausted.
    let args = ["explore", "scenarios/race2_exit.lua", "--strategy", "dfs", "--runs", "100000"];
    let patched = swapsim(&[&args[..], &["--kernel", "patched", "--preemptions", "1"]].concat());
    assert_eq!(patched.code, 0, "{}{}", patched.stdout, patched.stderr);
    // The count is part of the deterministic output: the same tree every time.
    assert!(
        patched.stdout.contains("result:   explored all 519 schedules with <= 1 preemptions: no violation"),
        "{}",
        patched.stdout
    );
    assert!(patched.stdout.contains("sleep sets: 367 more schedules cut short"), "{}", patched.stdout);
    // Without sleep sets: every order of independent steps, and the same verdict.
    let full = swapsim(&[&args[..], &["--kernel", "patched", "--preemptions", "1", "--no-sleep-sets"]].concat());
    assert_eq!(full.code, 0, "{}{}", full.stdout, full.stderr);
    assert!(
        full.stdout.contains("result:   explored all 1126 schedules with <= 1 preemptions: no violation"),
        "{}",
        full.stdout
    );
    let pre4_one = swapsim(&[&args[..], &["--kernel", "pre4", "--preemptions", "1"]].concat());
    assert_eq!(pre4_one.code, 0, "{}{}", pre4_one.stdout, pre4_one.stderr);
    let out = out_dir("dfs-race2");
    let pre4 =
        swapsim(&[&args[..], &["--kernel", "pre4", "--preemptions", "2", "--out", out.to_str().unwrap()]].concat());
    assert_eq!(pre4.code, 1, "{}{}", pre4.stdout, pre4.stderr);
    assert!(
        pre4.stdout.contains("result:   schedule 2583 breaks: VIOLATION of swapoff-completeness"),
        "{}",
        pre4.stdout
    );
    let replay = swapsim(&["replay", &schedule_path(&pre4.stdout)]);
    assert_eq!(replay.code, 1, "{}", replay.stdout);
    assert!(replay.stdout.contains(", as recorded"), "{}", replay.stdout);
    let refused = swapsim(&[&args[..], &["--jobs", "2"]].concat());
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--jobs and --csv apply to the random and pct strategies"));
    // Shards split the tree by schedule prefix: together they run the whole
    // search's schedules once (cut short or not), and each runs a part.
    let (mut explored, mut cut) = (0, 0);
    for shard in ["1/3", "2/3", "3/3"] {
        let part = swapsim(&[&args[..], &["--kernel", "patched", "--preemptions", "1", "--shard", shard]].concat());
        assert_eq!(part.code, 0, "{}{}", part.stdout, part.stderr);
        let number = |before: &str| -> u64 {
            let rest = &part.stdout[part.stdout.find(before).expect(before) + before.len()..];
            rest.split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count")
        };
        let n = number("explored all ");
        assert!(n > 0 && n < 519, "shard {shard}: {n} schedules");
        explored += n;
        cut += number("sleep sets: ");
    }
    assert_eq!((explored, cut), (519, 367));
}

#[test]
fn dfs_finds_the_open_race7_under_the_patch() {
    let out = out_dir("dfs-race7");
    let run = swapsim(&[
        "explore",
        "scenarios/race7_shm_nopage.lua",
        "--kernel",
        "patched",
        "--strategy",
        "dfs",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("VIOLATION of swap-count"), "{}", run.stdout);
}

#[test]
fn jobs_do_not_change_the_results_and_shards_merge_into_the_whole_search() {
    let out = out_dir("jobs");
    let dir = out.to_str().unwrap();
    let search = |extra: &[&str], csv: &str| {
        let csv = format!("{dir}/{csv}");
        let mut args = vec!["explore", "scenarios/race4_shm.lua", "--kernel", "pre4", "--runs", "300", "--strategy"];
        args.extend(["pct", "--no-shrink", "--out", dir, "--csv", &csv]);
        args.extend(extra);
        let run = swapsim(&args);
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        (run.stdout.replace(&csv, "CSV"), std::fs::read_to_string(&csv).unwrap())
    };
    let (one, one_csv) = search(&["--jobs", "1"], "one.csv");
    let (two, two_csv) = search(&["--jobs", "2"], "two.csv");
    assert_eq!(one, two);
    assert_eq!(one_csv, two_csv);
    assert_eq!(one_csv.lines().count(), 301, "a header and one row per run");
    assert!(
        one_csv.starts_with(
            "tool,scenario_fnv1a,kernel,fixes,strategy,pct_depth,pct_steps,first_seed,runs,shard,seed,outcome,\
             invariant,bucket,steps,simulated_ns\n"
        ),
        "{one_csv}"
    );

    search(&["--shard", "1/2"], "s1.csv");
    let (shard2, _) = search(&["--shard", "2/2"], "s2.csv");
    assert!(shard2.contains("runs:     150 of 300 (seeds 1..300, shard 2/2)"), "{shard2}");
    let merged = format!("{dir}/merged.csv");
    let merge = swapsim(&["merge", "--out", &merged, &format!("{dir}/s2.csv"), &format!("{dir}/s1.csv")]);
    assert_eq!(merge.code, 0, "{}{}", merge.stdout, merge.stderr);
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), one_csv);

    // Shards of different searches disagree on a seed: refused, nothing written.
    let (_, patched_csv) = {
        let csv = format!("{dir}/patched.csv");
        // (Its find, race 7, goes into the test's directory, not the checkout's output/.)
        let args = ["explore", "scenarios/race4_shm.lua", "--kernel", "patched", "--runs", "300", "--no-shrink"];
        swapsim(&[&args[..], &["--out", dir, "--csv", &csv]].concat());
        ((), std::fs::read_to_string(&csv).unwrap())
    };
    assert_ne!(patched_csv, one_csv);
    let refused = format!("{dir}/refused.csv");
    let bad = swapsim(&["merge", "--out", &refused, &format!("{dir}/one.csv"), &format!("{dir}/patched.csv")]);
    assert_eq!(bad.code, 2, "{}", bad.stdout);
    assert!(bad.stderr.contains("shards of different searches are not merged"), "{}", bad.stderr);
    assert!(!std::path::Path::new(&refused).exists());
}

#[test]
fn reduce_deletes_lines_while_the_race_still_breaks_and_the_result_still_breaks_it() {
    let out = out_dir("reduce");
    let small = out.join("race2_small.lua");
    let run = swapsim(&[
        "reduce",
        "scenarios/race2_exit.lua",
        "--kernel",
        "pre4",
        "--invariant",
        "swapoff-completeness",
        "--out",
        small.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let original = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/race2_exit.lua"))
        .unwrap()
        .lines()
        .count();
    let reduced = std::fs::read_to_string(&small).unwrap();
    let code_lines = reduced.lines().filter(|l| !l.starts_with("--")).count();
    assert!(code_lines < original / 2, "{reduced}");
    assert!(reduced.contains("swapoff(1)"), "{reduced}");
    let search = swapsim(&[
        "explore",
        small.to_str().unwrap(),
        "--runs",
        "200",
        "--invariant",
        "swapoff-completeness",
        "--no-shrink",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(search.code, 1, "{}", search.stdout);
    assert!(search.stdout.contains("first:    seed "), "{}", search.stdout);
    // Under the patch nothing breaks: nothing to reduce, said clearly.
    let patched = swapsim(&[
        "reduce",
        "scenarios/race2_exit.lua",
        "--kernel",
        "patched",
        "--invariant",
        "swapoff-completeness",
        "--out",
        out.join("none.lua").to_str().unwrap(),
    ]);
    assert_eq!(patched.code, 2);
    assert!(patched.stderr.contains("nothing to reduce"), "{}", patched.stderr);
    assert!(!out.join("none.lua").exists());
}

/// The 2.4.10 design rescans while an exiting task finishes; a search that
/// never fired a due timer, or let a busy-waiting swapoff starve the task it
/// waits for, would report a livelock that no fair machine has. With due
/// timers firing by default and cond_resched yielding, the first 2000
/// schedules of race 2's three-CPU tree (too large to exhaust here) hold.
#[test]
fn dfs_searches_the_exit_race_under_2_4_10_without_false_livelocks() {
    let run = swapsim(&[
        "explore",
        "scenarios/race2_exit.lua",
        "--kernel",
        "2.4.10",
        "--strategy",
        "dfs",
        "--preemptions",
        "1",
        "--runs",
        "2000",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("result:   1951 schedules explored, not all (raise --runs): no violation so far"),
        "{}",
        run.stdout
    );
}

/// dfs has no default cap: without --runs it runs until it finds a
/// violation or has explored every schedule within the bound, as the README
/// says; with --runs it stops there and says so.
#[test]
fn dfs_without_runs_explores_until_done() {
    let args = ["explore", "scenarios/race3_fault.lua", "--kernel", "patched", "--strategy", "dfs"];
    let whole =
        swapsim(&[&args[..], &["--preemptions", "1", "--out", out_dir("dfs-nocap").to_str().unwrap()]].concat());
    assert_eq!(whole.code, 0, "{}{}", whole.stdout, whole.stderr);
    assert!(whole.stdout.contains("result:   explored all 120 schedules with <= 1 preemptions"), "{}", whole.stdout);
    let capped = swapsim(&[&args[..], &["--runs", "10", "--out", out_dir("dfs-cap").to_str().unwrap()]].concat());
    assert_eq!(capped.code, 0, "{}{}", capped.stdout, capped.stderr);
    assert!(capped.stdout.contains("10 schedules explored, not all (raise --runs)"), "{}", capped.stdout);
}

/// dfs exhausts race 3's scenario under the patch at two preemptions (every
/// schedule, sleep sets on), and finds race 3 itself under pre4 at the same
/// bound: with mmap_sem held across the walk (the lock-held checks catch a
/// walk without it at once) no schedule of the fault breaks.
#[test]
fn dfs_exhausts_race3_under_the_patch_and_finds_it_under_pre4() {
    let args = ["explore", "scenarios/race3_fault.lua", "--strategy", "dfs", "--preemptions", "2"];
    let patched =
        swapsim(&[&args[..], &["--kernel", "patched", "--out", out_dir("dfs-race3-p").to_str().unwrap()]].concat());
    assert_eq!(patched.code, 0, "{}{}", patched.stdout, patched.stderr);
    assert!(
        patched.stdout.contains("result:   explored all ") && patched.stdout.contains("no violation"),
        "{}",
        patched.stdout
    );
    let pre4 = swapsim(&[&args[..], &["--kernel", "pre4", "--out", out_dir("dfs-race3-4").to_str().unwrap()]].concat());
    assert_eq!(pre4.code, 1, "{}{}", pre4.stdout, pre4.stderr);
    assert!(pre4.stdout.contains("bucket:   race3-do-swap-page"), "{}", pre4.stdout);
}

/// `--reduction dpor`: the same verdicts as the sleep-set dfs on race 3
/// (the first find under pre4, exhaustion under the patch; DPOR's runs
/// match the full search's outcomes in script's sleep_sets tests), and the
/// flags it does not combine with are refused.
#[test]
fn dfs_with_dpor_reaches_the_same_verdicts_as_the_sleep_set_dfs() {
    let args = ["explore", "scenarios/race3_fault.lua", "--strategy", "dfs", "--preemptions", "1", "--no-shrink"];
    let out = out_dir("dfs-dpor");
    let out = out.to_str().unwrap();
    let result = |kernel: &str, reduction: &str| {
        let run = swapsim(&[&args[..], &["--kernel", kernel, "--reduction", reduction, "--out", out]].concat());
        let line = run.stdout.lines().find(|l| l.starts_with("result:")).unwrap_or_default().to_string();
        (run.code, line, run.stdout)
    };
    let (code, dpor, stdout) = result("patched", "dpor");
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("source-DPOR with sleep sets"), "{stdout}");
    assert_eq!(dpor, "result:   explored all 120 schedules with <= 1 preemptions: no violation");
    assert_eq!(result("patched", "sleep-sets").1, dpor);
    let (code, dpor, stdout) = result("pre4", "dpor");
    assert_eq!(code, 1, "{stdout}");
    assert!(dpor.starts_with("result:   schedule 32 breaks: VIOLATION of swap-count"), "{dpor}");
    assert!(stdout.contains("bucket:   race3-do-swap-page"), "{stdout}");
    assert_eq!(result("pre4", "sleep-sets").1, dpor);
    // No bound: `none`.
    let unbounded = swapsim(&[
        "explore",
        "scenarios/race3_fault.lua",
        "--kernel",
        "patched",
        "--strategy",
        "dfs",
        "--preemptions",
        "none",
        "--reduction",
        "dpor",
        "--runs",
        "5",
        "--out",
        out,
    ]);
    assert_eq!(unbounded.code, 0, "{}{}", unbounded.stdout, unbounded.stderr);
    assert!(unbounded.stdout.contains("strategy: dfs, no preemption bound"), "{}", unbounded.stdout);
    let refused = |extra: &[&str], message: &str| {
        let run = swapsim(&[&args[..], &["--kernel", "patched", "--out", out], extra].concat());
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stdout);
        assert!(run.stderr.contains(message), "{extra:?}: {}", run.stderr);
    };
    refused(&["--reduction", "dpor", "--shard", "1/2"], "a dfs with --reduction dpor does not split");
    refused(&["--reduction", "dpor", "--no-sleep-sets"], "cannot be used with");
    let many = swapsim(&["explore", "scenarios/race3_fault.lua", "--strategy", "dfs", "--preemptions", "many"]);
    assert_eq!(many.code, 2);
    assert!(many.stderr.contains("a number of preemptions or none"), "{}", many.stderr);
}
