//! Hostile input beyond one bad file: runs that must share nothing (a leak
//! battery), finds that must survive a signal, a full disk or another
//! search, and names and commands that must stay unambiguous.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{root, swapsim, Run};

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swapsim-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every way a run could leave something behind for the next, each
/// checked at the start of the run: a trace of an earlier run is an error
/// (exit 2 for the whole range), so a range that shares state fails where
/// its seeds alone do not. Whether a seed breaks depends only on its
/// `math.random`.
const LEAK_BATTERY: &str = r#"
machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
local seen = {}
local function leaked(what) seen[#seen + 1] = what end
-- rawset on the read-only library proxies
for _, lib in ipairs({ string, table, math, utf8 }) do
  if rawget(lib, "leak") ~= nil then leaked("rawset on a library") end
  rawset(lib, "leak", true)
end
-- the raw library behind a proxy, through pairs (its second value)
local _, state = pairs(string)
if type(state) == "table" and rawget(state, "t") ~= nil then
  if rawget(state.t, "leak2") ~= nil then leaked("the raw string library") end
  rawset(state.t, "leak2", true)
end
for k in pairs(string) do
  if k == "leak2" or k == "leak3" then leaked("a key added to string") end
end
-- the numbers tostring gives objects, and string.format's %s
if tostring({}) ~= "table: #1" then leaked("tostring's counter: " .. tostring({})) end
if string.format("%s", {}) ~= "table: #2" then leaked("string.format's %s") end
-- globals, and the metatables a scenario might reach
if leak_global ~= nil then leaked("a global") end
leak_global = true
if getmetatable("") ~= false then leaked("the string metatable is reachable") end
local p = process("p", function()
  expect(math.random(4) ~= 1, "the seed's draw")
  exit()
end)
if getmetatable(p) ~= false then leaked("a process handle's metatable is reachable") end
-- the library functions themselves
if string.rep("ab", 2) ~= "abab" or table.concat({ 1, 2 }, ",") ~= "1,2" then leaked("a library function") end
if #seen > 0 then error("leaked from an earlier run: " .. table.concat(seen, "; ")) end
"#;

#[test]
fn leak_battery_every_seed_of_a_range_reproduces_alone_and_jobs_do_not_matter() {
    let out = out_dir("leaks");
    let file = out.join("leaks.lua");
    std::fs::write(&file, LEAK_BATTERY).unwrap();
    let file = file.to_str().unwrap();
    let range = swapsim(&["run", file, "--seeds", "1..16"]);
    assert_eq!(range.code, 1, "{}{}", range.stdout, range.stderr);
    let broken: Vec<u64> =
        range.stdout.lines().filter_map(|l| l.strip_prefix("seed ")?.split(':').next()?.parse().ok()).collect();
    assert!(!broken.is_empty() && broken.len() < 16, "{}", range.stdout);
    for seed in 1..=16u64 {
        let alone = swapsim(&["run", file, "--seed", &seed.to_string()]);
        let expected = if broken.contains(&seed) { 1 } else { 0 };
        assert_eq!(alone.code, expected, "seed {seed} alone: {}{}", alone.stdout, alone.stderr);
    }
    // The same search on one thread and on two: the same bytes.
    let csv = |jobs: &str| {
        let path = out.join(format!("jobs{jobs}.csv"));
        let run = swapsim(&[
            "explore",
            file,
            "--runs",
            "40",
            "--jobs",
            jobs,
            "--no-shrink",
            "--csv",
            path.to_str().unwrap(),
            "--out",
            out.join(format!("out{jobs}")).to_str().unwrap(),
        ]);
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        std::fs::read(path).unwrap()
    };
    assert_eq!(csv("1"), csv("2"));
}

/// Run `swapsim` from the workspace root, send it `signal` after `after`,
/// and collect its output and peak memory (MiB).
// The child is reaped by wait4, which also gives its rusage.
#[allow(clippy::zombie_processes)]
fn signalled(args: &[&str], after: Duration, signal: i32) -> (Run, f64) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_swapsim"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    std::thread::sleep(after);
    let pid = child.id() as libc::pid_t;
    // SAFETY: the child has not been reaped, so the pid is still ours.
    unsafe { libc::kill(pid, signal) };
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 reaps exactly this child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    let run = Run { code, stdout: reader.join().unwrap(), stderr: errors.join().unwrap() };
    (run, usage.ru_maxrss as f64 / 1024.0)
}

#[test]
fn sigint_and_sigterm_during_explore_keep_the_find_and_mark_the_output_partial() {
    for (signal, name) in [(libc::SIGINT, "int"), (libc::SIGTERM, "term")] {
        let out = out_dir(&format!("kill-explore-{name}"));
        let csv = out.join("runs.csv");
        // 10^10 runs: the seeds are never listed first (the memory stays small).
        let (run, rss) = signalled(
            &[
                "explore",
                "scenarios/race1_fork.lua",
                "--runs",
                "10000000000",
                "--no-shrink",
                "--csv",
                csv.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            Duration::from_millis(2500),
            signal,
        );
        assert_eq!(run.code, 1, "SIG{name}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("interrupted: stopped after "), "{}", run.stdout);
        assert!(rss < 200.0, "peak memory {rss:.0} MiB");
        let rows = std::fs::read_to_string(&csv).unwrap();
        let found = rows.lines().filter(|l| l.contains(",violation,")).count();
        assert!(found > 0, "{rows}");
        let schedule = run.stdout.lines().find_map(|l| l.strip_prefix("schedule: ")).expect("a schedule line");
        assert!(Path::new(schedule.split(" (").next().unwrap()).is_file(), "{}", run.stdout);
        assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
    }
}

/// A small sweep of many quick runs.
const SWEEP: &str = r#"
local values = {}
for i = 1, 50000 do values[i] = i end
sweep { params = { n = values }, kernels = { "pre4", "patched" }, seeds = 2 }
machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
local p = process("p", function() read(0x10000); exit() end)
p:map(0x10000, 1)
"#;

#[test]
fn sigint_and_sigterm_during_sweep_write_every_run_done_and_mark_the_output_partial() {
    for (signal, name) in [(libc::SIGINT, "int"), (libc::SIGTERM, "term")] {
        let out = out_dir(&format!("kill-sweep-{name}"));
        let file = out.join("sweep.lua");
        std::fs::write(&file, SWEEP).unwrap();
        let results = out.join("results");
        let (run, _) = signalled(
            &["sweep", file.to_str().unwrap(), "--out", results.to_str().unwrap(), "--jobs", "2"],
            Duration::from_millis(2500),
            signal,
        );
        assert_eq!(run.code, 130, "SIG{name}: {}{}", run.stdout, run.stderr);
        let done: usize = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("interrupted: "))
            .and_then(|l| l.split(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("an interrupted line: {}", run.stdout));
        let csv = std::fs::read_to_string(results.join("results.csv")).unwrap();
        assert_eq!(csv.lines().count(), done + 1, "{csv}");
        let marker = std::fs::read_to_string(results.join("PARTIAL")).unwrap();
        assert!(marker.contains(&format!("partial: {done} of 200000 runs")), "{marker}");
        assert!(leftovers(&results).is_empty(), "{:?}", leftovers(&results));
    }
}

/// Temporary files and folders swapsim left in `dir`.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".swapsim-") || n.contains(".tmp") || n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_file_size_limit_loses_no_find_and_leaves_no_temporary_file() {
    let out = out_dir("ulimit");
    let swapsim_bin = env!("CARGO_BIN_EXE_swapsim");
    // 1 KiB of file size: the schedule (2 KiB) cannot be written.
    let script = format!(
        "ulimit -f 1; exec {swapsim_bin} explore scenarios/race1_fork.lua --runs 20 --no-shrink --out {}",
        out.display()
    );
    let output = Command::new("sh").arg("-c").arg(&script).current_dir(root()).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write the schedule"), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    // The find is in the message: its seed reproduces it.
    let command = stderr.split('`').nth(1).expect("a command in backquotes");
    let seed = command.rsplit(' ').next().unwrap();
    let again = swapsim(&["run", "scenarios/race1_fork.lua", "--kernel", "pre4", "--seed", seed]);
    assert_eq!(again.code, 1, "{command}: {}", again.stdout);
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

fn explore_find(out: &Path, extra: &[&str]) -> Run {
    let mut args =
        vec!["explore", "scenarios/race1_fork.lua", "--runs", "30", "--no-shrink", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    swapsim(&args)
}

fn saved(run: &Run) -> String {
    let line = run.stdout.lines().find_map(|l| l.strip_prefix("schedule: ")).expect("a schedule line");
    Path::new(line.split(" (").next().unwrap()).file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn find_names_carry_the_fix_switches_and_the_scenario_folder() {
    let out = out_dir("names");
    let a = explore_find(&out, &["--kernel", "patched", "--no-fix", "mmlist"]);
    let b = explore_find(&out, &["--kernel", "patched", "--no-fix", "mmap-sem"]);
    assert_eq!(a.code, 1, "{}{}", a.stdout, a.stderr);
    assert_eq!(b.code, 1, "{}{}", b.stdout, b.stderr);
    assert!(saved(&a).starts_with("race1_fork-patched-no-mmlist-"), "{}", saved(&a));
    assert!(saved(&b).starts_with("race1_fork-patched-no-mmap-sem-"), "{}", saved(&b));
    // The same file name in another folder is another scenario.
    let other = out.join("mine");
    std::fs::create_dir_all(&other).unwrap();
    let copy = other.join("race1_fork.lua");
    std::fs::copy(root().join("scenarios/race1_fork.lua"), &copy).unwrap();
    let c =
        swapsim(&["explore", copy.to_str().unwrap(), "--runs", "30", "--no-shrink", "--out", out.to_str().unwrap()]);
    assert_eq!(c.code, 1, "{}{}", c.stdout, c.stderr);
    assert!(saved(&c).contains("_mine_race1_fork-pre4-"), "{}", saved(&c));
}

#[test]
fn two_explores_into_one_out_folder_write_whole_bundles() {
    let out = out_dir("together");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_swapsim"))
            .args(["explore", "scenarios/race1_fork.lua", "--runs", "30", "--out", out.to_str().unwrap()])
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    for child in [first, second] {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(!String::from_utf8_lossy(&output.stderr).contains("warning"), "{output:?}");
    }
    let bundles: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bundle"))
        .collect();
    // One bundle per bucket: seeds 3 (race 1) and 8 (race 3's mechanism),
    // each written whole though both searches wrote it.
    assert_eq!(bundles.len(), 2, "{bundles:?}");
    for bundle in &bundles {
        for part in ["race1_fork.lua", "schedule", "report.txt", "COMMAND"] {
            assert!(bundle.join(part).is_file(), "{}: {part}", bundle.display());
        }
    }
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}

#[test]
fn a_bundle_replays_its_own_copy_of_the_scenario() {
    let out = out_dir("bundle-copy");
    let run = explore_find(&out, &["--kernel", "pre4"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let bundle = out.join(saved(&run).replace(".schedule", ".bundle"));
    // The current folder holds another race1_fork.lua (which fails to load).
    let elsewhere = out_dir("bundle-cwd");
    std::fs::write(elsewhere.join("race1_fork.lua"), "error('the wrong file')\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_swapsim"))
        .args(["replay", bundle.join("schedule").to_str().unwrap()])
        .current_dir(&elsewhere)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(", as recorded"), "{stdout}");
}

#[test]
fn the_printed_replay_command_is_shell_quoted_and_paths_with_newlines_are_refused() {
    let out = out_dir("quoting");
    let odd = out.join("it's a race.lua");
    std::fs::copy(root().join("scenarios/race1_fork.lua"), &odd).unwrap();
    let run = swapsim(&["run", odd.to_str().unwrap(), "--kernel", "pre4", "--seed", "3"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let replay = run.stdout.lines().find_map(|l| l.strip_prefix("replay:   ")).expect("a replay line");
    // The shell reads the command back into the same arguments.
    let words = Command::new("sh").arg("-c").arg(format!("printf '%s\\n' {replay}")).output().unwrap();
    let words = String::from_utf8_lossy(&words.stdout);
    assert_eq!(words.lines().nth(2), Some(odd.to_str().unwrap()), "{replay}");
    let newline = out.join("two\nlines.lua");
    std::fs::copy(root().join("scenarios/race1_fork.lua"), &newline).unwrap();
    let run = swapsim(&["explore", newline.to_str().unwrap(), "--runs", "5", "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("has a control character (a newline?) in its name"), "{}", run.stderr);
    let run = swapsim(&["run", "scenarios/race1_fork.lua", "--events", newline.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn printed_text_and_expect_messages_carry_no_terminal_escapes() {
    let out = out_dir("escapes");
    let file = out.join("escapes.lua");
    std::fs::write(
        &file,
        "machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }\n\
         print('\\27[2Jcleared\\nsecond line')\n\
         process('p', function() expect(false, '\\27]0;title\\7 gone') end)\n",
    )
    .unwrap();
    let run = swapsim(&["run", file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains('\u{1b}') && !run.stdout.contains('\u{7}'), "{:?}", run.stdout);
    assert!(run.stdout.contains("print:    \\x1b[2Jcleared\\nsecond line"), "{}", run.stdout);
    assert!(run.stdout.contains("\\x1b]0;title\\x07 gone"), "{}", run.stdout);
}
