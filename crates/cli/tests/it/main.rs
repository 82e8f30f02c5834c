//! Integration tests: real scenarios through the `swapsim` binary.

mod bad_inputs;
mod bad_scenarios;
mod determinism;
mod explore;
mod race1;
mod races;
mod semantic_replay;
mod sweep;
mod timeline;
mod tutorial;

use std::path::PathBuf;
use std::process::Command;

/// The workspace root (tests run in the crate's directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `swapsim` with `args` from the workspace root.
pub fn swapsim(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_swapsim"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("swapsim runs");
    Run {
        code: output.status.code().expect("swapsim exited"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}
