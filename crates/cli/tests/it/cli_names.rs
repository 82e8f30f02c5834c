//! The command line names what it takes: kernels, fixes, invariants and
//! strategies complete in bash, zsh and fish; a wrong name is a usage
//! error; every help says its exit status; --version and the man page.

use crate::swapsim;

#[test]
fn completions_offer_the_kernels_fixes_invariants_and_strategies() {
    let bash = swapsim(&["completions", "bash"]);
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    // `--kernel <TAB>` offers the kernels, not file names.
    assert!(bash.stdout.contains("pre4 patched 2.4.10 5.1"), "{}", bash.stdout);
    for shell in ["bash", "zsh", "fish"] {
        let run = swapsim(&["completions", shell]);
        for name in ["2.4.10", "no-new-refs", "lookup-wait", "swapoff-completeness", "sleep-in-atomic", "pct", "dfs"] {
            assert!(run.stdout.contains(name), "{shell} completions lack {name}");
        }
    }
}

#[test]
fn an_unknown_name_is_a_usage_error() {
    let run = swapsim(&["explore", "scenarios/race1_fork.lua", "--runs", "5", "--invariant", "no-such-invariant"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("swapoff-completeness"), "it lists the invariants: {}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing ran: {}", run.stdout);
    for args in [
        ["run", "scenarios/race1_fork.lua", "--kernel", "2.6"],
        ["run", "scenarios/race1_fork.lua", "--fix", "no-such-fix"],
        ["run", "scenarios/race1_fork.lua", "--no-fix", "no-such-fix"],
    ] {
        let run = swapsim(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("possible values"), "{args:?}: {}", run.stderr);
    }
    let reduce = swapsim(&["reduce", "scenarios/race2_exit.lua", "--invariant", "nope", "--out", "/dev/null"]);
    assert_eq!(reduce.code, 2);
}

#[test]
fn every_subcommand_says_its_exit_status() {
    let all = ["run", "explore", "replay", "shrink", "reduce", "merge", "sweep", "kernels", "completions", "man"];
    let top = swapsim(&["--help"]);
    assert!(top.stdout.contains("Exit status"), "{}", top.stdout);
    for sub in all {
        let run = swapsim(&[sub, "--help"]);
        assert_eq!(run.code, 0, "{sub}");
        assert!(run.stdout.contains("Exit status"), "{sub} --help: {}", run.stdout);
        assert!(top.stdout.contains(&format!("  {sub} ")), "{sub} is listed");
    }
}

#[test]
fn version_names_the_commit_and_the_schedule_format() {
    let run = swapsim(&["--version"]);
    assert_eq!(run.code, 0);
    let line = run.stdout.trim();
    assert!(line.starts_with(&format!("swapsim {} (commit ", env!("CARGO_PKG_VERSION"))), "{line}");
    assert!(line.ends_with("; schedule files: swapsim-schedule 2)"), "{line}");
    // A hex commit, or "unknown" outside a git checkout.
    let commit = line.split("(commit ").nth(1).unwrap().split(';').next().unwrap();
    assert!(commit == "unknown" || commit.bytes().all(|b| b.is_ascii_hexdigit()), "{commit}");
}

#[test]
fn a_man_page_for_swapsim_and_each_subcommand() {
    let run = swapsim(&["man"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(".TH swapsim 1"), "{}", &run.stdout[..200.min(run.stdout.len())]);
    assert!(run.stdout.contains("sweep") && run.stdout.contains("Exit status"), "subcommands and exit status");
    let sweep = swapsim(&["man", "sweep"]);
    assert!(sweep.stdout.contains(".TH swapsim-sweep 1") && sweep.stdout.contains("\\-\\-shard"), "{}", sweep.stdout);
    assert_eq!(swapsim(&["man", "nope"]).code, 2);
}

#[test]
fn no_progress_or_wall_clock_when_stderr_is_not_a_terminal() {
    // The tests' stderr is a pipe: the progress line (runs/s, ETA) stays
    // hidden, and no timing reaches stdout or stderr.
    let out = std::env::temp_dir().join(format!("swapsim-progress-{}", std::process::id()));
    let out = out.to_str().unwrap();
    for args in [
        vec!["run", "scenarios/race1_fork.lua", "--seeds", "1..30"],
        vec!["explore", "scenarios/race1_fork.lua", "--runs", "30", "--no-shrink", "--out", out],
        vec!["explore", "scenarios/race2_exit.lua", "--kernel", "patched", "--strategy", "dfs", "--runs", "30"],
    ] {
        let run = swapsim(&args);
        for text in [&run.stdout, &run.stderr] {
            for clock in ["runs/s", "ETA", " s:", "/s)"] {
                assert!(!text.contains(clock), "{args:?}: {clock:?} in {text}");
            }
        }
    }
}

#[test]
fn one_progress_line_on_a_terminal() {
    // Under a pseudo-terminal (util-linux `script`), run --seeds, explore
    // and sweep draw the same line: runs done, finds, rate, ETA.
    if std::process::Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to give swapsim a terminal");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_swapsim");
    let out = std::env::temp_dir().join(format!("swapsim-tty-{}", std::process::id()));
    let out = out.to_str().unwrap();
    for command in [
        format!("{bin} run scenarios/race1_fork.lua --seeds 1..300"),
        format!("{bin} explore scenarios/race1_fork.lua --runs 300 --no-shrink --out {out}"),
        format!("{bin} sweep crates/cli/tests/fixtures/small_sweep.lua --out {out}/sweep --force --jobs 1"),
    ] {
        let run = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(crate::root())
            .output()
            .unwrap();
        let screen = String::from_utf8_lossy(&run.stdout);
        assert!(
            screen.contains(" runs, ") && screen.contains("found something") && screen.contains("ETA"),
            "{command}: {screen}"
        );
    }
}
