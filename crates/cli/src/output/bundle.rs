//! The bug-report bundle of a find: one folder to mail or attach to a bug,
//! written whole or not at all.

use std::path::{Path, PathBuf};

use script::RunReport;

use super::report::{render_one, side_by_side};
use crate::args::KernelChoice;
use crate::schedule::ScheduleFile;

/// One folder per find: the scenario, the schedule (naming the scenario
/// beside it), the report of `report` (the schedule's run: side by side,
/// then as `run` prints it), and the command that replays it from inside
/// the folder.
pub fn write_bundle(
    dir: &Path,
    scenario: &Path,
    source: &str,
    schedule: &ScheduleFile,
    report: &RunReport,
) -> std::io::Result<PathBuf> {
    let name = scenario.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "scenario.lua".into());
    let local = ScheduleFile { scenario: name.clone(), ..schedule.clone() }.render();
    let kernel =
        KernelChoice { variant: schedule.variant, fixes: schedule.fixes, faults: None, limits: Default::default() };
    let mut text = side_by_side(report);
    text.push_str(&render_one(schedule.seed, &kernel, &name, source, report, None));
    let command =
        format!("# swapsim {}: from inside this folder\nswapsim replay schedule --report\n", env!("CARGO_PKG_VERSION"));
    let files: [(&str, &[u8]); 4] = [
        (&name, source.as_bytes()),
        ("schedule", local.as_bytes()),
        ("report.txt", text.as_bytes()),
        ("COMMAND", command.as_bytes()),
    ];
    super::atomic::write_folder(dir, "bundle", &files)?;
    Ok(dir.to_path_buf())
}
