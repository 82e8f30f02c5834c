//! The scenario API reference (docs/scenario-api.md) and the LuaLS
//! annotations (docs/lua/swapsim.lua) name exactly what the API registers.
//!
//! The reference documents each global function under a heading
//! "### `name(args)`", each process-handle method under "### `p:name(args)`",
//! each process-handle field under "### `p.name`" and each segment field
//! under "### `seg.name`". The annotation file declares globals as
//! `function name(` lines and methods as `function Class:name(` lines.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::rc::Rc;

use mlua::{Lua, Value};

/// The fields of a process handle (`api.rs` adds them with
/// `add_field_method_get`, which cannot be listed from Lua).
const PROCESS_FIELDS: &[&str] = &["pid", "name"];
/// The fields of a segment handle.
const SEGMENT_FIELDS: &[&str] = &["id", "pages"];

/// A file of the repository, by its path from the repository root.
fn repo_file(relative: &'static str) -> (&'static str, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    (relative, text)
}

/// The names of the global functions of a Lua state.
fn global_functions(lua: &Lua) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for pair in lua.globals().pairs::<Value, Value>() {
        let (key, value) = pair.expect("globals iterate");
        if let (Value::String(name), Value::Function(_)) = (key, value) {
            names.insert(name.to_string_lossy());
        }
    }
    names
}

/// A sandbox exactly as a run builds it, without and with the API.
fn sandbox(with_api: bool) -> Lua {
    let (lua, _prints) = script::sandbox::new_sandbox(1, Default::default()).expect("the sandbox builds");
    if with_api {
        script::api::register(&lua, Rc::new(RefCell::new(script::spec::RawSpec::default())))
            .expect("the API registers");
    }
    lua
}

/// The global functions the API adds to the sandbox.
fn registered_globals() -> BTreeSet<String> {
    let before = global_functions(&sandbox(false));
    let after = global_functions(&sandbox(true));
    after.difference(&before).cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// What docs/scenario-api.md documents, by kind of heading.
#[derive(Default)]
struct Documented {
    globals: BTreeSet<String>,
    methods: BTreeSet<String>,
    process_fields: BTreeSet<String>,
    segment_fields: BTreeSet<String>,
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn documented(text: &str) -> Documented {
    let mut doc = Documented::default();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(heading) = line.strip_prefix("### `") else { continue };
        let Some(code) = heading.strip_suffix('`') else {
            bad.push(format!("line {}: {line}", i + 1));
            continue;
        };
        let (target, name) = if let Some(call) = code.strip_prefix("p:") {
            (&mut doc.methods, call.split_once('(').map(|(name, _)| name))
        } else if let Some(field) = code.strip_prefix("p.") {
            (&mut doc.process_fields, Some(field))
        } else if let Some(field) = code.strip_prefix("seg.") {
            (&mut doc.segment_fields, Some(field))
        } else {
            (&mut doc.globals, code.split_once('(').map(|(name, _)| name))
        };
        match name.filter(|n| is_name(n)) {
            Some(name) if target.insert(name.to_string()) => {}
            Some(name) => bad.push(format!("line {}: `{name}` is documented twice", i + 1)),
            None => bad.push(format!("line {}: {line}", i + 1)),
        }
    }
    assert!(
        bad.is_empty(),
        "docs/scenario-api.md: headings \"### `...`\" must be \"### `name(args)`\", \"### `p:name(args)`\", \
         \"### `p.name`\" or \"### `seg.name`\":\n  {}",
        bad.join("\n  ")
    );
    doc
}

/// An empty string when `documented` and `registered` agree, else what
/// differs, for the failure message.
fn differences(what: &str, documented: &BTreeSet<String>, registered: &BTreeSet<String>, doc: &str) -> String {
    let undocumented: Vec<_> = registered.difference(documented).cloned().collect();
    let stale: Vec<_> = documented.difference(registered).cloned().collect();
    let mut out = String::new();
    if !undocumented.is_empty() {
        out += &format!("\n  {what} registered but not documented in {doc}: {}", undocumented.join(", "));
    }
    if !stale.is_empty() {
        out += &format!("\n  {what} documented in {doc} but not registered: {}", stale.join(", "));
    }
    out
}

#[test]
fn the_reference_documents_every_global_method_and_field_and_nothing_else() {
    let (path, text) = repo_file("docs/scenario-api.md");
    let doc = documented(&text);
    let registered = registered_globals();
    let mut problems = String::new();
    problems += &differences("global functions", &doc.globals, &registered, "docs/scenario-api.md");
    problems +=
        &differences("api::API (the table api.rs keeps)", &set(&script::api::globals()), &registered, "api::API");
    problems += &differences(
        "process-handle methods",
        &doc.methods,
        &set(&script::api::process_methods()),
        "docs/scenario-api.md",
    );
    problems +=
        &differences("process-handle fields", &doc.process_fields, &set(PROCESS_FIELDS), "docs/scenario-api.md");
    problems +=
        &differences("segment-handle fields", &doc.segment_fields, &set(SEGMENT_FIELDS), "docs/scenario-api.md");

    // The handles as a scenario sees them: every documented method is a
    // function on a real process handle, every documented field has a value.
    let lua = sandbox(true);
    let handles = lua
        .load(r#"local p = process("p"); local seg = shmget(1); return p, seg"#)
        .set_name("=api_reference")
        .eval::<(Value, Value)>();
    let (p, seg) = handles.expect("process() and shmget() make handles");
    let type_of = lua
        .load("return function(handle, key) return type(handle[key]) end")
        .eval::<mlua::Function>()
        .expect("a Lua helper compiles");
    let index = |handle: &Value, key: &str| -> String {
        type_of.call::<String>((handle.clone(), key)).unwrap_or_else(|e| format!("an error ({e})"))
    };
    for method in &doc.methods {
        let kind = index(&p, method);
        if kind != "function" {
            problems += &format!("\n  p:{method} is documented, but p.{method} on a process handle is {kind}");
        }
    }
    for field in &doc.process_fields {
        let kind = index(&p, field);
        if kind == "nil" || kind == "function" || kind.starts_with("an error") {
            problems += &format!("\n  p.{field} is documented, but on a process handle it is {kind}");
        }
    }
    for field in &doc.segment_fields {
        let kind = index(&seg, field);
        if kind == "nil" || kind == "function" || kind.starts_with("an error") {
            problems += &format!("\n  seg.{field} is documented, but on a segment handle it is {kind}");
        }
    }
    assert!(problems.is_empty(), "{path} and the scenario API disagree:{problems}");
}

/// The declarations of docs/lua/swapsim.lua: global functions, and
/// methods by class.
fn annotated(text: &str) -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let mut globals = BTreeSet::new();
    let mut methods = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("function ") else { continue };
        let Some((name, _)) = rest.split_once('(') else { continue };
        match name.split_once(':') {
            Some((class, method)) => methods.insert((class.to_string(), method.to_string())),
            None => globals.insert(name.to_string()),
        };
    }
    (globals, methods)
}

#[test]
fn the_luals_annotations_declare_every_global_and_method_and_nothing_else() {
    let (path, text) = repo_file("docs/lua/swapsim.lua");
    assert!(text.starts_with("---@meta"), "{path} must start with ---@meta");
    // It must be valid Lua (compiled, not run).
    if let Err(e) = Lua::new().load(text.as_str()).set_name("=docs/lua/swapsim.lua").into_function() {
        panic!("{path} is not valid Lua: {e}");
    }
    let (globals, methods) = annotated(&text);
    let mut problems = differences("global functions", &globals, &registered_globals(), "docs/lua/swapsim.lua");
    let others: Vec<String> =
        methods.iter().filter(|(class, _)| class != "Process").map(|(class, m)| format!("{class}:{m}")).collect();
    if !others.is_empty() {
        problems += &format!("\n  only the class Process has methods, but these are declared: {}", others.join(", "));
    }
    let process_methods: BTreeSet<String> =
        methods.iter().filter(|(class, _)| class == "Process").map(|(_, m)| m.clone()).collect();
    problems += &differences(
        "process-handle methods",
        &process_methods,
        &set(&script::api::process_methods()),
        "docs/lua/swapsim.lua",
    );
    for field in PROCESS_FIELDS {
        if !text.lines().any(|l| l.starts_with(&format!("---@field {field} "))) {
            problems += &format!("\n  the process handle's field {field} has no ---@field line");
        }
    }
    for field in SEGMENT_FIELDS {
        if !text.lines().any(|l| l.starts_with(&format!("---@field {field} "))) {
            problems += &format!("\n  the segment handle's field {field} has no ---@field line");
        }
    }
    assert!(problems.is_empty(), "{path} and the scenario API disagree:{problems}");
}

/// The editor set-up: `.luarc.json` points LuaLS at the annotations and
/// disables what the sandbox lacks; `SweepOptions.kernels` takes every
/// kernel there is, so every sweep scenario satisfies it.
#[test]
fn the_editor_configuration_matches_the_sandbox_and_the_kernels() {
    let (_, luarc) = repo_file(".luarc.json");
    let compact: String = luarc.split_whitespace().collect();
    assert!(compact.contains(r#""workspace.library":["docs/lua"]"#), "{luarc}");
    assert!(compact.contains(r#""runtime.version":"Lua5.4""#), "{luarc}");
    for library in ["io", "os", "package", "debug"] {
        assert!(compact.contains(&format!(r#""{library}":"disable""#)), "{library}: {luarc}");
    }
    let (_, annotations) = repo_file("docs/lua/swapsim.lua");
    assert!(annotations.contains("---@field kernels? SweepKernel[]"), "SweepOptions.kernels is typed");
    let alias = annotations.lines().find_map(|l| l.strip_prefix("---@alias SweepKernel ")).expect("the alias");
    let typed: Vec<&str> = alias.split('|').map(|k| k.trim_matches('"')).collect();
    let kernels: Vec<&str> = kernel::Variant::ALL.iter().map(|v| v.name()).collect();
    assert_eq!(typed, kernels);
    // Every sweep scenario's kernels are among them.
    let scenarios = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    for entry in std::fs::read_dir(scenarios).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() || path.extension().is_none_or(|x| x != "lua") {
            continue; // scenarios/later/, scenarios/claims/
        }
        let source = std::fs::read_to_string(&path).unwrap();
        if let Some(at) = source.find("kernels = {") {
            let list = &source[at + "kernels = {".len()..];
            let list = &list[..list.find('}').unwrap()];
            for name in list.split(',').map(|k| k.trim().trim_matches('"')).filter(|k| !k.is_empty()) {
                assert!(typed.contains(&name), "{}: kernel {name} is not a SweepKernel", path.display());
            }
        }
    }
}

/// Every function of the API refuses one argument more than it takes, at
/// the caller's line, naming the argument and the call: declarations and
/// methods while the file loads, system calls inside a program. The list
/// is `api::API`, so a function added to the API cannot skip the check.
#[test]
fn every_api_function_refuses_an_extra_argument() {
    use script::api::{ApiKind, API};
    let mut problems = String::new();
    for f in API {
        // The check comes before any other: the arguments it takes can be nil.
        let args: Vec<&str> = f.params.iter().map(|_| "nil").chain(["7"]).collect();
        let args = args.join(", ");
        let (source, line) = match f.kind {
            ApiKind::Declaration => (format!("process(\"q\")\n{}({args})\n", f.name), 2),
            ApiKind::ProcessMethod => (format!("local p = process(\"q\")\np:{}({args})\n", f.name), 2),
            ApiKind::SystemCall => (format!("process(\"q\", function()\n  {}({args})\nend)\n", f.name), 2),
        };
        let error = match f.kind {
            ApiKind::SystemCall => {
                let options = script::RunOptions::new(kernel::Variant::Patched.fixes(), 1);
                script::run::run("extra.lua", &source, &options).err()
            }
            _ => script::run::load("extra.lua", &source, Default::default()).err(),
        };
        let n = f.params.len();
        let expected = format!(
            "extra.lua:{line}: {}: takes {}, {}; got {} (argument #{} is 7)",
            f.shown(),
            match (n, f.params.iter().any(|p| p.ends_with('?'))) {
                (0, _) => "no arguments".to_string(),
                (1, false) => "1 argument".to_string(),
                (1, true) => "at most 1 argument".to_string(),
                (n, false) => format!("{n} arguments"),
                (n, true) => format!("at most {n} arguments"),
            },
            f.call(),
            n + 1,
            n + 1
        );
        match error {
            Some(e) if e.to_string() == expected => {}
            other => problems += &format!("\n  {}: expected {expected:?}, got {other:?}", f.shown()),
        }
    }
    assert!(problems.is_empty(), "an extra argument was not refused as it should be:{problems}");
}

/// The reference's headings and the annotations' declarations write every
/// call with the parameters `api::API` lists (the argument check's table):
/// `### \`swap_out(addr [, pid])\``, `function swap_out(addr, pid)` with
/// `---@param pid? ...` for an optional one.
#[test]
fn the_reference_and_the_annotations_write_each_call_as_the_api_table_does() {
    use script::api::{ApiKind, API};
    let (_, reference) = repo_file("docs/scenario-api.md");
    let (_, annotations) = repo_file("docs/lua/swapsim.lua");
    let mut problems = String::new();
    for f in API {
        let heading = format!("### `{}`", f.call());
        if !reference.lines().any(|l| l == heading) {
            problems += &format!("\n  docs/scenario-api.md has no heading {heading}");
        }
        let params: Vec<&str> = f.params.iter().map(|p| p.trim_end_matches('?')).collect();
        let declared = match f.kind {
            ApiKind::ProcessMethod => format!("function Process:{}({})", f.name, params.join(", ")),
            _ => format!("function {}({})", f.name, params.join(", ")),
        };
        let Some(at) = annotations.lines().position(|l| l.starts_with(&declared)) else {
            problems += &format!("\n  docs/lua/swapsim.lua does not declare {declared}");
            continue;
        };
        // The ---@param lines just above the declaration.
        let lines: Vec<&str> = annotations.lines().collect();
        let above: Vec<&str> = lines[..at].iter().rev().take_while(|l| l.starts_with("---")).copied().collect();
        for param in f.params {
            let optional = param.ends_with('?');
            let name = param.trim_end_matches('?');
            let tag = if optional { format!("---@param {name}? ") } else { format!("---@param {name} ") };
            if !above.iter().any(|l| l.starts_with(&tag)) {
                problems += &format!("\n  {declared}: no line {tag}...");
            }
        }
    }
    assert!(problems.is_empty(), "the API table and its docs disagree:{problems}");
}
