//! Ctrl-C (and SIGTERM, SIGHUP): the flag every long loop polls.

/// Set by Ctrl-C: long loops stop at the next run and report what they found.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}
