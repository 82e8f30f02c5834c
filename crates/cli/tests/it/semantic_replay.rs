//! Replay that survives edits: a schedule records the semantic event of
//! each decision (task, named point, occurrence) as well as the option
//! index, so it still replays after an edit of the scenario that does not
//! touch the race, and says where it diverged after one that does.

use std::path::{Path, PathBuf};

use crate::{root, swapsim};

/// A fresh folder for one test.
/// The schedule as swapsim 0.0.1 would have written it (its scenario path
/// made absolute, so that it replays from anywhere).
fn as_if_from_an_old_tool(schedule: &str) -> String {
    schedule.replacen(&format!("tool {}", env!("CARGO_PKG_VERSION")), "tool 0.0.1", 1).replacen(
        "scenario scenarios/",
        &format!("scenario {}/scenarios/", root().display()),
        1,
    )
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swapsim-semantic-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Race 1 under pre4, seed 3, unshrunk: a format-2 schedule file's text.
fn race1_schedule(out: &Path) -> String {
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
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    std::fs::read_to_string(out.join("race1_fork-pre4-3.schedule")).expect("the schedule file")
}

/// Race 1 with `edit` applied to its text, saved in `dir` as `name`, and the
/// schedule beside it naming it.
fn edited(dir: &Path, name: &str, schedule: &str, edit: impl Fn(&str) -> String) -> String {
    let source = std::fs::read_to_string(root().join("scenarios/race1_fork.lua")).unwrap();
    let changed = edit(&source);
    assert_ne!(changed, source, "the edit changes the scenario");
    std::fs::write(dir.join(name), changed).unwrap();
    let file = dir.join(format!("{name}.schedule"));
    let text: String = schedule
        .lines()
        .map(|l| if l.starts_with("scenario ") { format!("scenario {name}\n") } else { format!("{l}\n") })
        .collect();
    std::fs::write(&file, text).unwrap();
    file.to_str().unwrap().to_string()
}

/// A process that has nothing to do with the race, declared between the
/// parent and swapoff: every task after it gets another id, the child
/// another pid, and the run other options at each step.
fn add_bystander(source: &str) -> String {
    source.replace(
        "-- Another task switches",
        "local bystander = process(\"bystander\", function()\n  write(0x40000)\n  read(0x40000)\n  getpid()\nend)\n\
         bystander:map(0x40000, 1)\n\n-- Another task switches",
    )
}

/// The same file as format 1: the choices only.
fn as_format_1(schedule: &str) -> String {
    let head = &schedule[..schedule.find("\ntasks ").expect("a format-2 file") + 1];
    head.replacen("swapsim-schedule 2", "swapsim-schedule 1", 1)
}

fn line<'a>(stdout: &'a str, start: &str) -> &'a str {
    stdout.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("no line {start:?} in\n{stdout}"))
}

#[test]
fn explore_saves_format_2_and_an_exact_replay_checks_the_events() {
    let out = dir("exact");
    let schedule = race1_schedule(&out);
    assert!(schedule.starts_with("swapsim-schedule 2\n"), "{schedule}");
    assert!(schedule.contains("\ntasks 2\nparent parent\nswapoff swapoff\nevents "), "{schedule}");
    assert!(schedule.contains("\nsleep 0 1 do_fork:alloc_task_struct\n"), "{schedule}");
    let file = out.join("race1_fork-pre4-3.schedule");
    let replay = swapsim(&["replay", file.to_str().unwrap()]);
    assert_eq!(replay.code, 1, "{}{}", replay.stdout, replay.stderr);
    assert!(replay.stdout.contains("replayed: swapoff-completeness at step 47, as recorded"), "{}", replay.stdout);
    let events: usize = line(&schedule, "events ")["events ".len()..].parse().unwrap();
    assert_eq!(
        line(&replay.stdout, "events:"),
        format!("events:   the {events} recorded events agree with the replay")
    );
    // The bundle's schedule is format 2 too.
    let bundle = std::fs::read_to_string(out.join("race1_fork-pre4-3.bundle/schedule")).unwrap();
    assert!(bundle.starts_with("swapsim-schedule 2\n") && bundle.contains("\nevents "), "{bundle}");
    // An exact replay by events (--semantic) matches every event too.
    let semantic = swapsim(&["replay", file.to_str().unwrap(), "--semantic"]);
    assert_eq!(semantic.code, 1);
    assert_eq!(
        line(&semantic.stdout, "replayed semantically:"),
        format!(
            "replayed semantically: {events} of {events} recorded events matched, violation swapoff-completeness \
             reproduced at step 47"
        )
    );
    // A newer tool replays by events by itself, and says so.
    let old = out.join("old-tool.schedule");
    std::fs::write(&old, as_if_from_an_old_tool(&schedule)).unwrap();
    let replay = swapsim(&["replay", old.to_str().unwrap()]);
    assert_eq!(replay.code, 1, "{}{}", replay.stdout, replay.stderr);
    assert!(
        replay.stdout.contains(&format!(
            "note:     recorded by swapsim 0.0.1 (this is {}): replaying by the recorded events",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        replay.stdout
    );
    assert!(line(&replay.stdout, "replayed semantically:").contains("reproduced at step 47"), "{}", replay.stdout);
}

#[test]
fn an_unrelated_process_added_breaks_index_replay_but_not_semantic_replay() {
    let out = dir("bystander");
    let schedule = race1_schedule(&out);
    let file = edited(&out, "race1_bystander.lua", &schedule, add_bystander);
    // By default a changed scenario is refused, and the refusal says what to do.
    let refused = swapsim(&["replay", &file]);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("race1_bystander.lua is not the scenario this schedule was recorded in"));
    assert!(refused.stderr.contains(&format!("`swapsim replay {file} --semantic` replays it by its recorded events")));
    // The same choices by index in the edited scenario (a format-1 file
    // claiming its hash): the steps shifted, the race is gone.
    let run = swapsim(&["run", &out.join("race1_bystander.lua").to_string_lossy(), "--kernel", "pre4"]);
    let hash = line(&run.stdout, "scenario:").split("fnv1a ").nth(1).unwrap().trim_end_matches(')').to_string();
    let forged = out.join("forged.schedule");
    let v1 = as_format_1(&std::fs::read_to_string(&file).unwrap());
    let old_hash = line(&v1, "content-fnv1a ").to_string();
    std::fs::write(&forged, v1.replacen(&old_hash, &format!("content-fnv1a {hash}"), 1)).unwrap();
    let by_index = swapsim(&["replay", forged.to_str().unwrap()]);
    assert_eq!(by_index.code, 0, "{}{}", by_index.stdout, by_index.stderr);
    assert!(by_index.stdout.contains("diverged: recorded swapoff-completeness at step 47, replay ran without it"));
    // By its events it reproduces the same invariant.
    let semantic = swapsim(&["replay", &file, "--semantic", "--report"]);
    assert_eq!(semantic.code, 1, "{}{}", semantic.stdout, semantic.stderr);
    let events: usize = line(&schedule, "events ")["events ".len()..].parse().unwrap();
    let summary = line(&semantic.stdout, "replayed semantically:");
    assert!(
        summary.starts_with(&format!("replayed semantically: {events} of {events} recorded events matched, violation swapoff-completeness reproduced at step ")),
        "{}",
        semantic.stdout
    );
    assert!(semantic.stdout.contains("| bystander"), "the edited scenario ran: {}", semantic.stdout);
    assert!(semantic.stdout.contains("VIOLATION swapoff-completeness"), "{}", semantic.stdout);
    assert!(!semantic.stdout.contains("diverged"), "{}", semantic.stdout);
    assert!(line(&semantic.stdout, "replay:").ends_with("--semantic"));
    // Deterministic: the same replay twice is the same bytes.
    let again = swapsim(&["replay", &file, "--semantic", "--report"]);
    assert_eq!(again.stdout, semantic.stdout);
    // --rate works around the choices the semantic replay made.
    let rate = swapsim(&["replay", &file, "--semantic", "--rate", "20", "--perturb", "0"]);
    assert!(
        rate.stdout.contains("rate:     20 of 20 runs around the schedule (p = 0) break swapoff-completeness"),
        "{}",
        rate.stdout
    );
}

#[test]
fn an_edit_that_removes_the_fork_reports_where_the_replay_left_the_recording() {
    let out = dir("nofork");
    let schedule = race1_schedule(&out);
    let file = edited(&out, "race1_nofork.lua", &schedule, |s| {
        s.replace("  fork(function()\n    read(0x10000)\n    exit()\n  end)\n", "")
    });
    let replay = swapsim(&["replay", &file, "--semantic"]);
    assert_eq!(replay.code, 0, "{}{}", replay.stdout, replay.stderr);
    let summary = line(&replay.stdout, "replayed semantically:");
    assert!(
        summary.contains("violation swapoff-completeness did not reproduce (finished: every invariant held)"),
        "{summary}"
    );
    // Where nothing matched any more, and where it first left the recording:
    // the parent was to fork, and exits instead.
    let off = line(&replay.stdout, "went off the recording for good at decision ");
    assert!(off.contains("): expected swapoff at "), "{off}");
    assert_eq!(
        line(&replay.stdout, "  first left the recording at"),
        "  first left the recording at decision 1 (step 2): expected parent at do_fork:alloc_task_struct #1; on \
         offer: parent at do_exit:lock_kernel #1"
    );
    let again = swapsim(&["replay", &file, "--semantic"]);
    assert_eq!(again.stdout, replay.stdout);
}

#[test]
fn format_1_schedules_replay_by_index_only() {
    let out = dir("format1");
    let schedule = race1_schedule(&out);
    let v1 = as_format_1(&schedule);
    let file = out.join("v1.schedule");
    std::fs::write(&file, &v1).unwrap();
    let replay = swapsim(&["replay", file.to_str().unwrap()]);
    assert_eq!(replay.code, 1, "{}{}", replay.stdout, replay.stderr);
    assert!(replay.stdout.contains("replayed: swapoff-completeness at step 47, as recorded"), "{}", replay.stdout);
    assert!(!replay.stdout.contains("recorded events agree"), "{}", replay.stdout);
    let semantic = swapsim(&["replay", file.to_str().unwrap(), "--semantic"]);
    assert_eq!(semantic.code, 2);
    assert!(semantic.stderr.contains("a format-1 schedule has no recorded events to replay by"), "{}", semantic.stderr);
    // Shrinking a format-1 file re-records it as format 2, consistent with its choices.
    let shrink = swapsim(&["shrink", file.to_str().unwrap()]);
    assert_eq!(shrink.code, 0, "{}{}", shrink.stdout, shrink.stderr);
    let shrunk = std::fs::read_to_string(&file).unwrap();
    assert!(shrunk.starts_with("swapsim-schedule 2\n"), "{shrunk}");
    let replay = swapsim(&["replay", file.to_str().unwrap()]);
    assert_eq!(replay.code, 1);
    assert!(replay.stdout.contains(", as recorded"), "{}", replay.stdout);
    assert!(line(&replay.stdout, "events:").contains("recorded events agree with the replay"), "{}", replay.stdout);
    // A format-1 file of an edited scenario cannot be rescued: refused.
    let changed = edited(&out, "race1_bystander.lua", &v1, add_bystander);
    let refused = swapsim(&["replay", &changed]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("a format-1 schedule replays by index only"), "{}", refused.stderr);
}

#[test]
fn under_the_fixed_kernel_the_replay_diverges_where_swapoff_can_no_longer_follow() {
    let out = dir("patched");
    let schedule = race1_schedule(&out);
    // The same scenario (its hash matches) under the patched kernel: the
    // parent takes the mm list lock in mm_alloc, and swapoff waits.
    let file = out.join("patched.schedule");
    let text = schedule.replacen("kernel pre4", "kernel patched", 1).replacen(
        "scenario scenarios/",
        &format!("scenario {}/scenarios/", root().display()),
        1,
    );
    std::fs::write(&file, text).unwrap();
    let file = file.to_str().unwrap();
    let by_index = swapsim(&["replay", file]);
    assert_eq!(by_index.code, 0, "{}{}", by_index.stdout, by_index.stderr);
    assert_eq!(
        line(&by_index.stdout, "events:"),
        "events:   the replay differs from the recorded events at decision 8: recorded parent at \
         copy_mm:down_mmap_sem #1, replayed parent at mm_alloc:mmlist_modify_lock #1"
    );
    let semantic = swapsim(&["replay", file, "--semantic"]);
    assert_eq!(semantic.code, 0, "{}{}", semantic.stdout, semantic.stderr);
    assert!(
        line(&semantic.stdout, "replayed semantically:")
            .ends_with("violation swapoff-completeness did not reproduce (finished: every invariant held)"),
        "{}",
        semantic.stdout
    );
    let diverged = line(&semantic.stdout, "diverged at decision ");
    assert!(diverged.contains("expected swapoff at sys_swapoff:before_clear_writeok #1; on offer: "), "{diverged}");
    assert!(semantic.stdout.contains("  first left the recording at decision 8 (step 6)"), "{}", semantic.stdout);
}

#[test]
fn shrink_semantic_re_records_a_schedule_in_the_edited_scenario_and_shrinks_it() {
    let out = dir("shrink-bystander");
    let schedule = race1_schedule(&out);
    let file = edited(&out, "race1_bystander.lua", &schedule, add_bystander);
    // Plain shrink refuses the changed scenario, and says what to do.
    let refused = swapsim(&["shrink", &file]);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "`swapsim shrink {file} --semantic` re-records it from a replay by its recorded events"
        )),
        "{}",
        refused.stderr
    );
    let shrink = swapsim(&["shrink", &file, "--semantic"]);
    assert_eq!(shrink.code, 0, "{}{}", shrink.stdout, shrink.stderr);
    let events: usize = line(&schedule, "events ")["events ".len()..].parse().unwrap();
    assert_eq!(
        line(&shrink.stdout, "replayed semantically:"),
        format!(
            "replayed semantically: {events} of {events} recorded events matched, violation swapoff-completeness \
             reproduced at step 49"
        )
    );
    // The sizes are those of the run in the edited scenario: the bystander's
    // steps shift the options. The shrink keeps the bucket (race 1): the
    // all-default schedule breaks the same invariant by race 3's mechanism,
    // so it is not taken.
    assert_eq!(
        line(&shrink.stdout, "shrunk:"),
        format!(
            "shrunk:   36 choices (8 not the default) -> 33 choices (6 not the default), 17 replays; {file} still \
             breaks swapoff-completeness at step 52"
        )
    );
    // Re-recorded in the edited scenario: its hash, this tool, the new step.
    let text = std::fs::read_to_string(&file).unwrap();
    let run = swapsim(&["run", &out.join("race1_bystander.lua").to_string_lossy(), "--kernel", "pre4"]);
    let hash = line(&run.stdout, "scenario:").split("fnv1a ").nth(1).unwrap().trim_end_matches(')').to_string();
    assert_eq!(line(&text, "content-fnv1a "), format!("content-fnv1a {hash}"));
    assert_eq!(line(&text, "tool "), format!("tool {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(line(&text, "step "), "step 52");
    assert!(text.contains("\nbystander bystander\n"), "the events name the new task: {text}");
    // A plain replay, by index, reproduces it exactly and its events agree.
    let replay = swapsim(&["replay", &file]);
    assert_eq!(replay.code, 1, "{}{}", replay.stdout, replay.stderr);
    assert_eq!(line(&replay.stdout, "replayed:"), "replayed: swapoff-completeness at step 52, as recorded");
    assert!(line(&replay.stdout, "events:").ends_with("recorded events agree with the replay"), "{}", replay.stdout);
    // Shrinking again (now by index) keeps it as it is.
    let again = swapsim(&["shrink", &file]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn shrink_semantic_that_does_not_reproduce_leaves_the_file_as_it_was() {
    let out = dir("shrink-nofork");
    let schedule = race1_schedule(&out);
    let file = edited(&out, "race1_nofork.lua", &schedule, |s| {
        s.replace("  fork(function()\n    read(0x10000)\n    exit()\n  end)\n", "")
    });
    let before = std::fs::read(&file).unwrap();
    let shrink = swapsim(&["shrink", &file, "--semantic"]);
    assert_eq!(shrink.code, 1, "{}{}", shrink.stdout, shrink.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), before, "the file is byte-identical");
    assert_eq!(
        line(&shrink.stdout, "not shrunk:"),
        format!("not shrunk: {file} is left as it was (the replay by its events did not break swapoff-completeness)")
    );
    // The divergence report is replay --semantic's, line for line.
    let replay = swapsim(&["replay", &file, "--semantic"]);
    let report: Vec<&str> = replay.stdout.lines().skip_while(|l| !l.starts_with("replayed semantically:")).collect();
    let report = &report[..report.len() - 1]; // without the replay: line
    assert!(report.len() >= 3, "{}", replay.stdout);
    let shrunk: Vec<&str> = shrink.stdout.lines().collect();
    assert_eq!(&shrunk[..shrunk.len() - 1], report, "{}", shrink.stdout);
    assert!(shrink.stdout.contains("\n  first left the recording at decision 1 (step 2): expected parent at "));
    // A format-1 file has no events to follow.
    let v1 = out.join("v1.schedule");
    std::fs::write(&v1, as_format_1(&schedule)).unwrap();
    let refused = swapsim(&["shrink", v1.to_str().unwrap(), "--semantic"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("a format-1 schedule has no recorded events to replay by"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&v1).unwrap(), as_format_1(&schedule));
}

#[test]
fn shrink_of_a_schedule_from_another_tool_version_follows_its_events_as_replay_does() {
    let out = dir("shrink-old-tool");
    let schedule = race1_schedule(&out);
    let old = out.join("old-tool.schedule");
    std::fs::write(&old, as_if_from_an_old_tool(&schedule)).unwrap();
    let shrink = swapsim(&["shrink", old.to_str().unwrap()]);
    assert_eq!(shrink.code, 0, "{}{}", shrink.stdout, shrink.stderr);
    assert_eq!(
        line(&shrink.stdout, "note:"),
        format!(
            "note:     recorded by swapsim 0.0.1 (this is {}): replaying by the recorded events",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(line(&shrink.stdout, "replayed semantically:").ends_with("reproduced at step 47"), "{}", shrink.stdout);
    assert!(line(&shrink.stdout, "shrunk:").contains("still breaks swapoff-completeness at step "));
    let text = std::fs::read_to_string(&old).unwrap();
    assert_eq!(line(&text, "tool "), format!("tool {}", env!("CARGO_PKG_VERSION")), "re-recorded by this tool");
    let replay = swapsim(&["replay", old.to_str().unwrap()]);
    assert_eq!(replay.code, 1);
    assert!(line(&replay.stdout, "replayed:").ends_with(", as recorded"), "{}", replay.stdout);
}

#[test]
fn shrink_by_index_of_a_schedule_that_does_not_break_leaves_it_as_it_was() {
    let out = dir("shrink-no-break");
    let schedule = race1_schedule(&out);
    // The same scenario (its hash matches) under the patched kernel: by
    // index the run holds, so there is nothing to shrink.
    let file = out.join("patched.schedule");
    let text = schedule.replacen("kernel pre4", "kernel patched", 1).replacen(
        "scenario scenarios/",
        &format!("scenario {}/scenarios/", root().display()),
        1,
    );
    std::fs::write(&file, &text).unwrap();
    let file = file.to_str().unwrap();
    let shrink = swapsim(&["shrink", file]);
    assert_eq!(shrink.code, 1, "{}{}", shrink.stdout, shrink.stderr);
    assert_eq!(
        shrink.stdout,
        format!(
            "not shrunk: {file} is left as it was (a replay by index did not break swapoff-completeness; `swapsim \
             replay {file}` shows the run)\n"
        )
    );
    assert_eq!(std::fs::read_to_string(file).unwrap(), text);
}
