//! docs/fidelity.md against the model: every named interleaving point of
//! the kernel model has a row that names the C line it stands for, and the
//! table names no point the model no longer has; likewise every async
//! kernel routine has a row naming the C function it models.
//!
//! A named point is a string literal `"function:where"` handed to an engine
//! primitive; routines are the `async fn`s of crates/kernel/src. Both are
//! read from the source text, so a point added, renamed or removed without
//! its row fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The model's source files (the unit tests aside: their points are made up).
fn model_sources() -> Vec<(String, String)> {
    let dir = repo_root().join("crates/kernel/src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("crates/kernel/src")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter(|path| path.file_name().is_some_and(|name| name != "tests.rs"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("model source");
            (name, text)
        })
        .collect()
}

include!("../point_literals.rs");

/// The async routines of the source text (`async fn NAME`).
fn routines_in(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .filter_map(|line| line.split_once("async fn ").map(|(_, rest)| rest))
        .map(|rest| rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect())
        .collect()
}

/// The rows of the tables under `## heading` (up to the next `## `): the
/// cells of each row, the header and separator left out.
fn table_rows(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            inside = title.trim() == heading;
            continue;
        }
        let line = line.trim();
        if !inside || !line.starts_with('|') {
            continue;
        }
        let cells: Vec<String> = line.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect();
        let separator = cells.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':'));
        if separator {
            continue;
        }
        rows.push(cells);
    }
    // The first row of each table is its header: headers have no backticks.
    rows.retain(|cells| cells[0].starts_with('`'));
    rows
}

fn unquote(cell: &str) -> String {
    cell.trim_matches('`').to_string()
}

fn fidelity_doc() -> String {
    std::fs::read_to_string(repo_root().join("docs/fidelity.md")).expect("docs/fidelity.md")
}

#[test]
fn every_named_point_has_its_c_line_and_no_row_is_stale() {
    let mut in_model: BTreeSet<String> = BTreeSet::new();
    for (_, text) in model_sources() {
        in_model.extend(points_in(&text));
    }
    assert!(in_model.len() > 100, "found only {} named points: is the scan broken?", in_model.len());

    let doc = fidelity_doc();
    let rows = table_rows(&doc, "Named points");
    let mut in_table = BTreeSet::new();
    let mut problems = Vec::new();
    for cells in &rows {
        let point = unquote(&cells[0]);
        if !in_table.insert(point.clone()) {
            problems.push(format!("`{point}` has two rows"));
        }
        // | point | kind | C line | what the C does there |
        let c_line = cells.get(2).map(String::as_str).unwrap_or("");
        if !c_line.contains(':') {
            problems.push(format!("`{point}` names no C line (file:line): {c_line:?}"));
        }
        if cells.get(3).is_none_or(|what| what.is_empty()) {
            problems.push(format!("`{point}` does not say what the C does there"));
        }
    }
    for point in in_model.difference(&in_table) {
        problems.push(format!("`{point}` is in the model but has no row in docs/fidelity.md § Named points"));
    }
    for point in in_table.difference(&in_model) {
        problems.push(format!("`{point}` has a row in docs/fidelity.md but the model no longer has it"));
    }
    assert!(problems.is_empty(), "docs/fidelity.md drifted from the model:\n{}", problems.join("\n"));
}

#[test]
fn every_kernel_routine_names_the_c_function_it_models() {
    // A routine is its file and name: try_to_unuse is in swapfile.rs and in
    // each later era's file.
    let mut in_model: BTreeSet<String> = BTreeSet::new();
    for (file, text) in model_sources() {
        in_model.extend(routines_in(&text).into_iter().map(|name| format!("{file} {name}")));
    }
    let doc = fidelity_doc();
    let rows = table_rows(&doc, "Routines");
    let mut in_table = BTreeSet::new();
    let mut problems = Vec::new();
    for cells in &rows {
        let file = cells.get(1).and_then(|place| place.split(':').next()).unwrap_or("");
        let routine = format!("{file} {}", unquote(&cells[0]));
        in_table.insert(routine.clone());
        // | routine | model file:line | C function | C file:lines |
        let c_place = cells.get(3).map(String::as_str).unwrap_or("");
        if !c_place.contains(':') {
            problems.push(format!("`{routine}` names no C file:lines: {c_place:?}"));
        }
    }
    for routine in in_model.difference(&in_table) {
        problems.push(format!("`{routine}` is a kernel routine with no row in docs/fidelity.md § Routines"));
    }
    for routine in in_table.difference(&in_model) {
        problems.push(format!("`{routine}` has a row in docs/fidelity.md § Routines but the model no longer has it"));
    }
    assert!(problems.is_empty(), "docs/fidelity.md drifted from the model:\n{}", problems.join("\n"));
}

#[test]
fn the_point_scan_reads_literals_and_skips_comments() {
    let text = "t.down(sem, \"copy_mm:down_mmap_sem\").await; // \"not:this\"\nlet s = \"a message: with a space\";\n";
    assert_eq!(points_in(text), vec!["copy_mm:down_mmap_sem".to_string()]);
    assert_eq!(routines_in("pub async fn do_fork(k: &Kernel)\n// async fn old()\n"), vec!["do_fork".to_string()]);
}
