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

fn patrol() {
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = now_ms();
        let all: Vec<Arc<Watch>> =
            watches().lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Weak::upgrade).collect();
        for watch in all {
            let started = watch.started.load(Ordering::Acquire);
            if started != 0 && now + 1 - started > watch.limit_secs.saturating_mul(1000) {
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
