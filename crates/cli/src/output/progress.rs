//! One progress line on a terminal for every long command (`run --seeds`,
//! `explore`, `sweep`): runs done, finds so far, rate and ETA. It is drawn
//! on stderr only when stderr is a terminal (indicatif hides it otherwise),
//! so no wall-clock time reaches stdout or a file.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    found: std::sync::atomic::AtomicU64,
    /// Not drawn (stderr is no terminal): then a run's `inc` does nothing,
    /// not even the bar's own check of the clock.
    hidden: bool,
}

impl Progress {
    /// A line for `total` runs (u64::MAX: no bound is known, as for a dfs
    /// search that runs until it is done; then no total and no ETA).
    pub fn new(total: u64) -> Progress {
        let bounded = total != u64::MAX;
        let bar = ProgressBar::with_draw_target(bounded.then_some(total), ProgressDrawTarget::stderr());
        let template = if bounded {
            "{pos}/{len} runs, {msg} found something, {per_sec}, ETA {eta}"
        } else {
            "{pos} runs, {msg} found something, {per_sec}"
        };
        let style = ProgressStyle::with_template(template).expect("a valid progress template");
        bar.set_style(style);
        bar.set_message("0");
        let hidden = bar.is_hidden();
        Progress { bar, found: std::sync::atomic::AtomicU64::new(0), hidden }
    }

    /// One more run done; `found`: it broke something.
    pub fn inc(&self, found: bool) {
        if self.hidden {
            return;
        }
        if found {
            let n = self.found.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            self.bar.set_message(n.to_string());
        }
        self.bar.inc(1);
    }

    /// Runs `f` (which prints to stdout) with the line cleared, then draws
    /// it again, so the two do not mix on one terminal.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Clears the line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
