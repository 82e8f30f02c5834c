//! Race 1 of the seed: found under pre4, gone under the patch.

use crate::swapsim;

/// The seed the README tells newcomers to try first.
const README_SEED: &str = "3";

#[test]
fn pre4_breaks_race1_with_the_readme_seed() {
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seed", README_SEED]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("result:   VIOLATION swapoff-completeness"), "{}", run.stdout);
    assert!(run.stdout.contains("swapoff(1) returned 0 but the pte at 0x10000"), "{}", run.stdout);
    assert!(run.stdout.contains("which was not on the task list"), "{}", run.stdout);
    assert!(run.stdout.contains("VM: Undead swap entry 1:1"), "{}", run.stdout);
    assert!(
        run.stdout.contains("copied swap entry 1:1 at 0x10000 into mm#3"),
        "the story shows the copy: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("replay:   swapsim run scenarios/race1_fork.lua --kernel pre4 --seed 3"),
        "{}",
        run.stdout
    );
}

#[test]
fn patched_runs_the_readme_seed_clean() {
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "patched", "--seed", README_SEED]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("result:   clean: every invariant held"), "{}", run.stdout);
    assert!(run.stdout.contains("1 swapoffs"), "swapoff really ran: {}", run.stdout);
}

#[test]
fn a_thousand_seeds_break_pre4_and_none_break_the_patch() {
    let pre4 = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seeds", "1..1000"]);
    assert_eq!(pre4.code, 1, "{}", pre4.stdout);
    let summary = pre4.stdout.lines().find(|l| l.starts_with("result:")).unwrap();
    assert!(summary.contains("swapoff-completeness"), "{summary}");
    let broke: u64 = summary.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(broke >= 100, "race 1 should be common in pre4: {summary}");

    let patched = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "patched", "--seeds", "1..1000"]);
    assert_eq!(patched.code, 0, "{}", patched.stdout);
    assert!(patched.stdout.contains("result:   1000 seeds, none broke"), "{}", patched.stdout);
}

#[test]
fn the_race1_report_matches_its_golden_file() {
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seed", README_SEED]);
    crate::determinism::check_golden("race1_pre4_seed3.txt", &run.stdout);
}

#[test]
fn kernels_lists_both_variants() {
    let run = swapsim(&["kernels"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("pre4 ") && run.stdout.contains("patched "), "{}", run.stdout);
}

#[test]
fn the_swapoff_loop_breaks_pre4_and_holds_patched() {
    let pre4 = swapsim(&["run", "scenarios/swapoff_loop.lua", "--kernel", "pre4", "--seeds", "1..10"]);
    assert_eq!(pre4.code, 1, "{}", pre4.stdout);
    assert!(pre4.stdout.contains("fault-result"), "race 3 shows: {}", pre4.stdout);
    let patched = swapsim(&["run", "scenarios/swapoff_loop.lua", "--kernel", "patched", "--seeds", "1..10"]);
    assert_eq!(patched.code, 0, "{}", patched.stdout);
}

#[test]
fn list_points_names_the_interleaving_points_reached() {
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--list-points", "--seeds", "1..20"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for point in ["do_fork:lock_kernel", "dup_mmap:kmem_cache_alloc", "try_to_unuse:after_read_swap_cache", "unuse_vma"]
    {
        assert!(run.stdout.lines().any(|l| l.trim_start().starts_with(point)), "{point}: {}", run.stdout);
    }
    let patched = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "patched", "--list-points"]);
    assert!(patched.stdout.contains("unuse_mm:down_mmap_sem"), "the patch's own points: {}", patched.stdout);
    assert!(patched.stdout.contains("try_to_unuse:mmlist_access_lock"), "{}", patched.stdout);
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let run = swapsim(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("swapsim") && run.stdout.contains("list-points"), "{shell}");
    }
    let run = swapsim(&["completions", "tcsh"]);
    assert_eq!(run.code, 2);
}

#[test]
fn every_help_carries_an_example() {
    for args in [vec!["--help"], vec!["run", "--help"], vec!["kernels", "--help"], vec!["completions", "--help"]] {
        let run = swapsim(&args);
        assert_eq!(run.code, 0);
        assert!(run.stdout.contains("Example"), "{args:?}: {}", run.stdout);
    }
}

#[test]
fn trace_csv_and_stats_outputs() {
    let dir = std::env::temp_dir().join(format!("swapsim-outputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("race1.json");
    let csv = dir.join("race1.csv");
    let run = swapsim(&[
        "run",
        "scenarios/swapoff_loop.lua",
        "--kernel",
        "patched",
        "--seed",
        "1",
        "--stats",
        "--trace",
        trace.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("lock_stat version 0.4"), "{}", run.stdout);
    assert!(run.stdout.lines().any(|l| l.trim_start().starts_with("kernel_flag:")), "{}", run.stdout);
    for call in ["fault", "swapoff", "swapon"] {
        assert!(run.stdout.lines().any(|l| l.starts_with(call)), "{call}: {}", run.stdout);
    }
    let json = std::fs::read_to_string(&trace).unwrap();
    assert!(json.starts_with("{\"traceEvents\":["), "{}", &json[..80]);
    assert!(json.contains("\"ph\":\"X\"") && json.contains("\"name\":\"cpu0\""), "spans and CPU tracks");
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "step,time_ns,cost_ns,cpu,task,event,lock,lock_class,read,point,sleep_ns,text"
    );
    assert!(csv.lines().count() > 1000);
    // One missing-value convention (empty), and timed sleeps' lengths in a column.
    let rows: Vec<csv::StringRecord> = csv::Reader::from_reader(csv.as_bytes()).records().map(|r| r.unwrap()).collect();
    assert!(rows.iter().all(|r| r.iter().all(|field| field != "-")), "no \"-\" for a missing value");
    // step, time_ns, cost_ns, cpu, task, event, lock, lock_class, read, point, sleep_ns, text
    let timed: Vec<&csv::StringRecord> = rows.iter().filter(|r| !r[10].is_empty()).collect();
    assert!(!timed.is_empty(), "the loop's sleeps have lengths");
    assert!(timed.iter().all(|r| &r[5] == "sleep" && r[11].contains(&format!("sleeps {} ns", &r[10]))));
}

#[test]
fn injected_faults_take_the_kernels_error_paths() {
    // An allocation failure in swapoff's read: try_to_unuse returns -ENOMEM
    // and sys_swapoff puts the device back; no invariant breaks.
    let run = swapsim(&[
        "run",
        "scenarios/race1_fork.lua",
        "--kernel",
        "patched",
        "--inject",
        "alloc-fail=0.05",
        "--seed",
        "25",
    ]);
    assert!(run.stdout.contains("swapoff(1) failed with -12"), "{}", run.stdout);
    assert!(run.stdout.contains("__alloc_pages: 0-order allocation failed (injected)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("result:   VIOLATION scenario-expectation"),
        "only the scenario's own expect: {}",
        run.stdout
    );
    // A failed swap read is used as if it had worked, in both kernels.
    let run = swapsim(&[
        "run",
        "scenarios/race3_fault.lua",
        "--kernel",
        "patched",
        "--inject",
        "read-error=0.5",
        "--seed",
        "1",
    ]);
    assert!(run.stdout.contains("saw the garbage of a failed swap read"), "{}", run.stdout);
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--inject", "bogus=1"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("the faults are alloc-fail, alloc-fail-nth, io-delay, read-error"), "{}", run.stderr);
}

#[test]
fn a_failed_fault_names_what_failed() {
    // handle_mm_fault returns -1 for both; the model's message says which.
    // An injected allocation failure in the child's swap-in:
    let run = swapsim(&[
        "run",
        "scenarios/race1_fork.lua",
        "--kernel",
        "patched",
        "--inject",
        "alloc-fail=0.3",
        "--seed",
        "46",
    ]);
    assert!(
        run.stdout.contains(
            "pid 3 killed: its read fault at 0x10000 failed: out of memory, the page allocation at \
             read_swap_cache_async:__get_free_page failed (handle_mm_fault returned -1)"
        ),
        "{}",
        run.stdout
    );
    // Race 1: the child faults on the entry that swapoff freed behind it.
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seed", "632"]);
    assert!(
        run.stdout.contains(
            "pid 3 killed: its read fault at 0x10000 failed: swap entry 1:1 is no longer in use, swap_duplicate \
             refused it (handle_mm_fault returned -1)"
        ),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("out of memory"), "{}", run.stdout);
}
