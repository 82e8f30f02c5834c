//! What explore does with its find: shrink the schedule, write it to
//! `--out` with its bug-report bundle, and print how to replay it.

use std::path::Path;
use std::process::ExitCode;

use script::Strategy;

use super::{ExploreArgs, StrategyName};
use crate::args::KernelChoice;
use crate::commands::options;
use crate::commands::shrink::{shrink, trimmed, with_events};
use crate::input::content_hash;
use crate::output::write_whole;
use crate::schedule::ScheduleFile;

/// Write the schedule of a find to `--out` (shrunk first unless
/// `--no-shrink`), print where it is and how to replay it; exit 1.
#[allow(clippy::too_many_arguments)]
pub(super) fn save_schedule(
    args: &ExploreArgs,
    kernel: &KernelChoice,
    path: &str,
    source: &str,
    seed: u64,
    tag: &str,
    invariant: &str,
    step: u64,
    choices: &[u32],
) -> ExitCode {
    let mut schedule = ScheduleFile {
        tool: env!("CARGO_PKG_VERSION").to_string(),
        scenario: path.to_string(),
        content_hash: content_hash(source.as_bytes()),
        variant: kernel.variant,
        fixes: kernel.fixes,
        seed,
        strategy: match args.strategy {
            StrategyName::Random => "random".into(),
            StrategyName::Pct => format!("pct depth {}", args.depth),
            StrategyName::Dfs => format!("dfs preemptions {}", args.preemptions_flag()),
        },
        violation: invariant.to_string(),
        step,
        choices: trimmed(choices),
        semantic: None,
    };
    let before = ScheduleFile::size(&schedule.choices);
    let mut note = String::new();
    if !args.no_shrink {
        let (shrunk, replays, _) = shrink(path, source, &schedule);
        schedule = shrunk;
        let after = ScheduleFile::size(&schedule.choices);
        note = format!(
            " (shrunk from {} choices, {} not the default, to {} choices, {} not the default, in {replays} replays)",
            before.0, before.1, after.0, after.1
        );
    }
    with_events(path, source, &mut schedule);
    let name = find_name(&args.file, kernel, tag);
    let file = args.out.join(format!("{name}.schedule"));
    if let Err(e) = std::fs::create_dir_all(&args.out).and_then(|_| write_whole(&file, schedule.render().as_bytes())) {
        // The find is not lost: its seed reproduces it.
        eprintln!(
            "error: cannot write the schedule to {}: {e}; the find is seed {seed}: `swapsim run {} {} --seed {seed}` \
             shows it again",
            file.display(),
            crate::output::report::shell_quote(path),
            kernel.flags()
        );
        return ExitCode::from(2);
    }
    println!("schedule: {}{note}", file.display());
    let bundle = replayed(source, &schedule).and_then(|report| {
        let dir = args.out.join(format!("{name}.bundle"));
        crate::output::bundle::write_bundle(&dir, &args.file, source, &schedule, &report).map_err(|e| e.to_string())
    });
    match bundle {
        Ok(dir) => println!("bundle:   {} (scenario, schedule, report, command: one folder to send)", dir.display()),
        Err(e) => eprintln!("warning: the bug-report bundle was not written: {e}"),
    }
    println!("replay:   swapsim replay {}", crate::output::report::shell_quote(&file.display().to_string()));
    ExitCode::from(1)
}

/// The name of a find's schedule and bundle: the scenario (with its folder
/// when that is not `scenarios/`), the kernel with its fix switches, and
/// the seed or schedule: `race1_fork-patched-no-mmlist-1`,
/// `tmp_a_race1_fork-pre4-3`. Two searches that differ in any of them
/// never write the same file.
fn find_name(scenario: &Path, kernel: &KernelChoice, tag: &str) -> String {
    let word = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
    };
    let stem = scenario.file_stem().map(|s| word(&s.to_string_lossy())).unwrap_or_else(|| "scenario".into());
    let folders: Vec<String> = scenario
        .parent()
        .into_iter()
        .flat_map(|dir| dir.components())
        .filter_map(|c| match c {
            std::path::Component::Normal(name) => Some(word(&name.to_string_lossy())),
            std::path::Component::ParentDir => Some("up".into()),
            _ => None,
        })
        .collect();
    let folder = match folders.as_slice() {
        [] => String::new(),
        [only] if only == "scenarios" => String::new(),
        parts => format!("{}_", parts.join("_")),
    };
    let switches: String = kernel
        .fixes
        .diff(&kernel.variant.fixes())
        .iter()
        .map(|switch| match switch.split_at(1) {
            ("+", name) => format!("-fix-{name}"),
            (_, name) => format!("-no-{name}"),
        })
        .collect();
    format!("{folder}{stem}-{}{switches}-{tag}", kernel.variant)
}

/// The run of the schedule again, for its bundle's report.
fn replayed(source: &str, schedule: &ScheduleFile) -> Result<script::RunReport, String> {
    let opts = options(schedule.fixes, schedule.seed, Strategy::Random, Some(schedule.choices.clone()));
    script::run::run(&schedule.scenario, source, &opts).map_err(|e| e.to_string())
}
