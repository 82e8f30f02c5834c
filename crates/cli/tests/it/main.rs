//! Integration tests: real scenarios through the `swapsim` binary.

mod atomic;
mod bad_inputs;
mod bad_scenarios;
mod claims;
mod cli_names;
mod csv_files;
mod determinism;
mod explore;
mod hostile;
mod later;
mod race1;
mod races;
mod semantic_replay;
mod signatures;
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

/// A run of `swapsim` and what it cost: wall-clock time and peak resident
/// memory, measured for that child alone (`wait4`'s rusage).
pub struct Measured {
    pub run: Run,
    pub seconds: f64,
    pub max_rss_mb: f64,
}

/// Run `swapsim` with `args` from the workspace root, measured.
// The child is reaped by wait4, which also gives its rusage.
#[allow(clippy::zombie_processes)]
pub fn swapsim_measured(args: &[&str]) -> Measured {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_swapsim"))
        .args(args)
        .current_dir(root())
        .env_remove("RUST_BACKTRACE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("swapsim starts");
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = out.read_to_end(&mut text);
        text
    });
    let mut stderr = Vec::new();
    let _ = err.read_to_end(&mut stderr);
    let stdout = reader.join().expect("reader");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 reaps exactly this child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 reaps swapsim");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    Measured {
        run: Run {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        },
        seconds: started.elapsed().as_secs_f64(),
        // Linux reports ru_maxrss in KiB.
        max_rss_mb: usage.ru_maxrss as f64 / 1024.0,
    }
}
