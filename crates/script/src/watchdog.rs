//! The wall-clock watchdog: the last line behind the instruction budget.
//!
//! The budget counts Lua instructions, and a few things run none: one call
//! into a C library function (a backtracking `string.find` pattern), or a
//! bug of ours. A watchdog thread looks at every [`Runner`](crate::run::Runner)
//! of the process a few times a second; a run that has taken longer than
//! its limit ends the process with exit status 2 and a message that says
//! so. It only ever stops a run: a run that finishes is never touched by
//! it, so the clock reaches no output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// One runner's run under way, as the watchdog sees it.
pub struct Watch {
    path: String,
    limit_secs: u64,
    /// When the current run started, in ms since [`epoch`] plus one; 0 when idle.
    started: AtomicU64,
    seed: AtomicU64,
}

impl Watch {
    /// A run of `seed` starts.
    pub fn start(&self, seed: u64) {
        self.seed.store(seed, Ordering::Relaxed);
        self.started.store(now_ms() + 1, Ordering::Release);
    }

    /// The run ended.
    pub fn stop(&self) {
        self.started.store(0, Ordering::Release);
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

fn watches() -> &'static Mutex<Vec<Weak<Watch>>> {
    static WATCHES: Mutex<Vec<Weak<Watch>>> = Mutex::new(Vec::new());
    &WATCHES
}

/// Watch the runs of a runner of `path`, each for at most `limit_secs`.
pub fn watch(path: &str, limit_secs: u64) -> Arc<Watch> {
    let watch =
        Arc::new(Watch { path: path.to_string(), limit_secs, started: AtomicU64::new(0), seed: AtomicU64::new(0) });
    epoch();
    {
        let mut all = watches().lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&watch));
    }
    static THREAD: OnceLock<()> = OnceLock::new();
    THREAD.get_or_init(|| {
        let _ = std::thread::Builder::new().name("watchdog".into()).spawn(patrol);
    });
    watch
}

/// Whether a run that started at `started` (ms since [`epoch`] plus one;
/// 0: no run) has run longer than `limit_secs` at `now`. A run may have
/// started after `now` was read (another thread, a millisecond later):
/// it has run for no time, not for the clock's whole range.
fn overran(now: u64, started: u64, limit_secs: u64) -> bool {
    started != 0 && (now + 1).saturating_sub(started) > limit_secs.saturating_mul(1000)
}

fn patrol() {
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = now_ms();
        let all: Vec<Arc<Watch>> =
            watches().lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Weak::upgrade).collect();
        for watch in all {
            let started = watch.started.load(Ordering::Acquire);
            if overran(now, started, watch.limit_secs) {
                eprintln!(
                    "error: {}: the run of seed {} took more than {} s of wall-clock time, the watchdog's limit \
                     (a library call that never returns, such as a backtracking string pattern? raise the limit \
                     with --watchdog-seconds N)",
                    watch.path,
                    watch.seed.load(Ordering::Relaxed),
                    watch.limit_secs
                );
                std::process::exit(2);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::overran;

    #[test]
    fn a_run_is_over_its_limit_only_after_it() {
        // A run that started at ms S is stored as S + 1.
        assert!(!overran(5_000, 0, 1), "no run");
        assert!(!overran(5_000, 4_001 + 1, 1), "999 ms into a 1 s limit");
        assert!(!overran(5_000, 4_000 + 1, 1), "1 s into a 1 s limit");
        assert!(overran(5_000, 3_999 + 1, 1), "1.001 s into a 1 s limit");
    }

    /// The patrol reads the clock, then each run's start: a run that began
    /// in between (a millisecond later) started after `now`. Its elapsed
    /// time wrapped around to the clock's whole range, and the watchdog
    /// ended healthy searches with exit 2 now and then.
    #[test]
    fn a_run_that_started_after_the_clock_was_read_has_not_overrun() {
        assert!(!overran(5_000, 5_001 + 1, 60));
        assert!(!overran(5_000, u64::MAX, 60));
    }
}
