//! docs/tutorial.md is true: every command of its ```console blocks runs,
//! exits as it says, and prints the output lines it shows.
//!
//! The conventions of the tutorial that this test relies on:
//!
//! - In a ```console block, a line starting with `$ ` is a command, run
//!   from the repository root. The lines after it, up to the next command
//!   or the end of the block, are output it must print.
//! - `$ cargo ...` lines (building and installing swapsim) are **not run**:
//!   cargo has already built the binary this test uses. Output shown after
//!   them is not checked.
//! - `$ swapsim ...` runs the binary built for this test
//!   (`CARGO_BIN_EXE_swapsim`) in place of `swapsim`.
//! - `$ grep PATTERN FILE` is done by the test itself, as grep does it: the
//!   lines of FILE that contain PATTERN, exit status 0 if there are any and
//!   1 if there are none. PATTERN must be a plain string (no regular
//!   expression characters), so that a plain substring search is exactly
//!   what grep does.
//! - Any other command, and any shell syntax other than quotes and a
//!   trailing comment (pipes, redirections, variables), fails the test.
//! - Exit status: a command line that ends in the shell comment `# exit N`
//!   must exit with N. Without it, 0 or 1 is accepted (2 is bad usage or a
//!   bad scenario, never right in a tutorial).
//! - Output: each non-empty expected line, trimmed, must be found inside
//!   one line of the real output (stdout, then stderr). `...` at the start
//!   or at the end of an expected line stands for text left out and is
//!   dropped before the search; a line that is only `...` stands for lines
//!   left out and is skipped.
//! - Files under `output/` are written to a temporary directory instead of
//!   the repository's `output/`.
//! - `my_race2.lua`, the scenario the tutorial has the reader write, is the
//!   last ```lua block before the command. The test writes it to a
//!   temporary directory and puts that path in place of `my_race2.lua`, in
//!   the command and in its expected output.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::root;

const TUTORIAL: &str = "docs/tutorial.md";
const SCENARIO: &str = "my_race2.lua";

/// One command of a ```console block.
struct Step {
    /// Line of docs/tutorial.md.
    line: usize,
    command: String,
    expected: Vec<String>,
    /// The last ```lua block before it.
    lua: Option<String>,
}

fn parse(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut fence: Option<String> = None;
    let mut block: Vec<String> = Vec::new();
    let mut last_lua: Option<String> = None;
    let mut console_start = 0;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if let Some(lang) = line.strip_prefix("```") {
            match fence.take() {
                None => {
                    fence = Some(lang.trim().to_string());
                    console_start = steps.len();
                    block.clear();
                }
                Some(lang) if lang == "lua" => last_lua = Some(block.join("\n") + "\n"),
                Some(lang) if lang == "console" => {
                    assert!(steps.len() > console_start, "{TUTORIAL}:{line_no}: a ```console block without a command");
                }
                Some(_) => {}
            }
            continue;
        }
        match fence.as_deref() {
            Some("lua") => block.push(line.to_string()),
            Some("console") => {
                if let Some(command) = line.strip_prefix("$ ") {
                    steps.push(Step {
                        line: line_no,
                        command: command.to_string(),
                        expected: Vec::new(),
                        lua: last_lua.clone(),
                    });
                } else if steps.len() > console_start {
                    steps.last_mut().unwrap().expected.push(line.to_string());
                } else if !line.trim().is_empty() {
                    panic!("{TUTORIAL}:{line_no}: output before the first command of a ```console block: {line}");
                }
            }
            _ => {}
        }
    }
    assert!(fence.is_none(), "{TUTORIAL}: a code block is not closed");
    steps
}

/// A command line split into words as sh would, for the little syntax a
/// tutorial needs: words, single and double quotes, and a trailing
/// comment. Returns the words and the comment.
fn split(command: &str) -> Result<(Vec<String>, Option<String>), String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '#' if word.is_none() => {
                let comment: String = chars.collect();
                return Ok((words, Some(comment.trim().to_string())));
            }
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(other) => w.push(other),
                        None => return Err(format!("unclosed quote {c}")),
                    }
                }
            }
            '|' | '>' | '<' | ';' | '&' | '$' | '`' | '\\' | '*' | '?' => {
                return Err(format!("shell syntax {c:?} is not supported here"));
            }
            _ => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok((words, None))
}

struct Outcome {
    code: i32,
    output: String,
}

fn run_swapsim(args: &[String]) -> Outcome {
    let out = Command::new(env!("CARGO_BIN_EXE_swapsim"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("swapsim runs");
    Outcome {
        code: out.status.code().expect("swapsim exited"),
        output: String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    }
}

fn run_grep(args: &[String]) -> Result<Outcome, String> {
    let [pattern, file] = args else { return Err("grep takes PATTERN FILE here".into()) };
    if let Some(c) = pattern.chars().find(|c| ".[]*^$\\+?(){}|".contains(*c)) {
        return Err(format!("grep pattern {pattern:?} has the regular-expression character {c:?}"));
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("grep: cannot read {file}: {e}"))?;
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(pattern.as_str())).collect();
    let code = if lines.is_empty() { 1 } else { 0 };
    Ok(Outcome { code, output: lines.iter().map(|l| format!("{l}\n")).collect() })
}

/// Run one step; an error says what is wrong with it.
fn check(step: &Step, tmp: &Path) -> Result<(), String> {
    let (mut words, comment) = split(&step.command)?;
    let scenario = tmp.join(SCENARIO);
    let scenario_path = scenario.to_str().expect("a UTF-8 temporary path").to_string();
    let mut expected: Vec<String> = step.expected.clone();
    for word in words.iter_mut() {
        if let Some(rest) = word.strip_prefix("output/") {
            *word = tmp.join("output").join(rest).to_str().expect("a UTF-8 temporary path").to_string();
        } else if word == SCENARIO {
            let lua = step.lua.as_ref().ok_or("my_race2.lua is used before any ```lua block")?;
            std::fs::write(&scenario, lua).map_err(|e| format!("cannot write {}: {e}", scenario.display()))?;
            *word = scenario_path.clone();
            expected = expected.iter().map(|l| l.replace(SCENARIO, &scenario_path)).collect();
        }
    }
    let want_code = match comment.as_deref() {
        None => None,
        Some(c) => match c.strip_prefix("exit ").map(str::trim).map(str::parse::<i32>) {
            Some(Ok(n)) => Some(n),
            _ => None, // any other comment is for the reader
        },
    };
    let (program, args) = words.split_first().ok_or("an empty command")?;
    let outcome = match program.as_str() {
        "swapsim" => run_swapsim(args),
        "grep" => run_grep(args)?,
        other => return Err(format!("the test does not know how to run {other:?} (only swapsim, grep and cargo)")),
    };
    let code_ok = match want_code {
        Some(n) => outcome.code == n,
        None => outcome.code == 0 || outcome.code == 1,
    };
    let mut problems = Vec::new();
    if !code_ok {
        let want = want_code.map_or("0 or 1".to_string(), |n| n.to_string());
        problems.push(format!("exit status {} (the tutorial says {want})", outcome.code));
    }
    for line in &expected {
        let mut want = line.trim();
        want = want.strip_prefix("...").unwrap_or(want);
        want = want.strip_suffix("...").unwrap_or(want);
        let want = want.trim();
        if want.is_empty() {
            continue;
        }
        if !outcome.output.lines().any(|l| l.contains(want)) {
            problems.push(format!("this line is not in the output:\n      {want}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n    output was:\n{}", problems.join("\n    "), indent(&outcome.output)))
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("      | {l}\n")).collect()
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("swapsim-tutorial-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("output")).expect("a temporary directory");
    dir
}

#[test]
fn every_command_of_the_tutorial_runs_as_it_says() {
    let text = std::fs::read_to_string(root().join(TUTORIAL)).expect("docs/tutorial.md exists");
    let steps = parse(&text);
    let tmp = temp_dir();
    let mut ran = 0;
    let mut failures = Vec::new();
    for step in &steps {
        if step.command.starts_with("cargo ") {
            continue; // building is the reader's job; cargo built this test's binary
        }
        ran += 1;
        if let Err(e) = check(step, &tmp) {
            failures.push(format!("{TUTORIAL}:{}: $ {}\n    {e}", step.line, step.command));
        }
    }
    assert!(ran >= 10, "{TUTORIAL}: only {ran} commands found to run");
    assert!(
        failures.is_empty(),
        "{} of {ran} commands of {TUTORIAL} fail:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_command_splitter_handles_quotes_and_comments() {
    let (words, comment) = split(r#"grep 'a b' "c d" file   # exit 1"#).unwrap();
    assert_eq!(words, ["grep", "a b", "c d", "file"]);
    assert_eq!(comment.as_deref(), Some("exit 1"));
    let (words, comment) = split("grep mm#3 output/x.log").unwrap();
    assert_eq!(words, ["grep", "mm#3", "output/x.log"]);
    assert_eq!(comment, None);
    assert!(split("swapsim run x.lua | head").is_err());
    assert!(split("swapsim run x.lua > out").is_err());
}
