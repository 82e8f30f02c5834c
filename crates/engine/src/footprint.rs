//! What a step touched, for partial-order reduction.
//!
//! A dfs search with sleep sets (Godefroid 1996) skips a schedule when it
//! only reorders steps that commute. Two steps commute when neither writes
//! what the other reads or writes: their *footprints* do not conflict. A
//! footprint lists the objects a step read or wrote, each named by a
//! *space* (what kind of object: a lock, the timer queue, a kernel arena)
//! and a key within it, or the whole space.
//!
//! Recording is per thread and off unless a run asks for it
//! ([`crate::SimConfig::record_footprints`]): the engine's own state is
//! recorded by the engine, and code outside it (the kernel model's arenas,
//! the Lua state) calls [`touch`] on every access. A missed access would
//! make the search unsound, so callers wrap their state in types that
//! record every access (the kernel's `tracked.rs`), and whatever cannot be
//! named precisely is recorded as its whole space, or as everything.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A kind of object. The engine's own spaces are below [`FIRST_USER_SPACE`].
pub type Space = u32;

/// A lock's state and waiters (key: the lock's slot key).
pub const LOCK: Space = 1;
/// The lock table itself: creating a lock.
pub const LOCK_TABLE: Space = 2;
/// The timer queue (I/O completions and timed sleeps), by due time.
pub const TIMERS: Space = 3;
/// Which CPUs are idle, and their clocks.
pub const CPUS: Space = 4;
/// A task's scheduling state (key: its id): its own steps, wake-ups, its
/// place in the run queue.
pub const TASK: Space = 5;
/// The task table: spawning a task.
pub const TASK_TABLE: Space = 6;
/// Spaces from here on are named by the engine's users.
pub const FIRST_USER_SPACE: Space = 100;

/// The key that stands for every object of a space.
pub const ALL: u64 = u64::MAX;

/// One object read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub space: Space,
    pub key: u64,
    pub write: bool,
}

impl Access {
    fn overlaps(&self, other: &Access) -> bool {
        self.space == other.space
            && (self.key == other.key || self.key == ALL || other.key == ALL)
            && (self.write || other.write)
    }
}

/// Everything one step read or wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Sorted by (space, key), one entry per object (a write if it was
    /// written at all).
    accesses: Vec<Access>,
    /// The step read everything (an invariant check of the whole state).
    reads_everything: bool,
    /// The step may have written anything (state that cannot be named).
    writes_everything: bool,
}

impl Footprint {
    /// The footprint of a step that read and may have written everything:
    /// it conflicts with every step that touches anything.
    pub fn everything() -> Footprint {
        Footprint { accesses: Vec::new(), reads_everything: true, writes_everything: true }
    }

    pub fn accesses(&self) -> &[Access] {
        &self.accesses
    }

    /// Whether the two steps may not commute: one writes what the other
    /// reads or writes.
    pub fn conflicts(&self, other: &Footprint) -> bool {
        let writes = |f: &Footprint| f.writes_everything || f.accesses.iter().any(|a| a.write);
        let touches = |f: &Footprint| f.reads_everything || f.writes_everything || !f.accesses.is_empty();
        if (self.writes_everything && touches(other)) || (other.writes_everything && touches(self)) {
            return true;
        }
        if (self.reads_everything && writes(other)) || (other.reads_everything && writes(self)) {
            return true;
        }
        // Both sorted by space: walk them together, space by space.
        let (a, b) = (&self.accesses, &other.accesses);
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let space = a[i].space;
            if space < b[j].space {
                i += 1;
                continue;
            }
            if b[j].space < space {
                j += 1;
                continue;
            }
            let a_end = i + a[i..].iter().take_while(|x| x.space == space).count();
            let b_end = j + b[j..].iter().take_while(|x| x.space == space).count();
            if a[i..a_end].iter().any(|x| b[j..b_end].iter().any(|y| x.overlaps(y))) {
                return true;
            }
            i = a_end;
            j = b_end;
        }
        false
    }

    /// Why the two steps conflict, for diagnostics: each overlapping pair
    /// of accesses as (space, key, how), `how` one of "w/w", "r/w", "all"
    /// (one side is a whole space) or "everything".
    pub fn conflicts_on(&self, other: &Footprint) -> Vec<(Space, u64, &'static str)> {
        let mut why = Vec::new();
        let wild = |f: &Footprint, g: &Footprint| {
            f.writes_everything || (f.reads_everything && (g.writes_everything || g.accesses.iter().any(|a| a.write)))
        };
        if wild(self, other) || wild(other, self) {
            let g = if self.reads_everything || self.writes_everything { other } else { self };
            why.extend(g.accesses.iter().map(|a| (a.space, a.key, "everything")));
            if why.is_empty() {
                why.push((0, 0, "everything"));
            }
            return why;
        }
        for x in &self.accesses {
            for y in other.accesses.iter().filter(|y| x.overlaps(y)) {
                let how = match (x.key == ALL || y.key == ALL, x.write && y.write) {
                    (true, _) => "all",
                    (false, true) => "w/w",
                    (false, false) => "r/w",
                };
                why.push((x.space, if x.key == ALL { y.key } else { x.key }, how));
            }
        }
        why
    }

    fn normalize(&mut self) {
        // Writes sort after reads of the same object: keep the last.
        self.accesses.sort_unstable();
        self.accesses.dedup_by(|later, earlier| {
            if later.space == earlier.space && later.key == earlier.key {
                earlier.write |= later.write;
                true
            } else {
                false
            }
        });
    }
}

/// How many threads record footprints now: while none does, an access
/// costs one load of this counter (a thread-local test cost 8% of a race-1
/// run, measured by callgrind).
static RECORDING_THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static CURRENT: RefCell<Footprint> = RefCell::new(Footprint::default());
}

/// Note that the current step read (or wrote) `key` of `space`. Costs a
/// thread-local flag test when no footprint is being recorded.
#[inline(always)]
pub fn touch(space: Space, key: u64, write: bool) {
    if RECORDING_THREADS.load(Ordering::Relaxed) != 0 && RECORDING.with(Cell::get) {
        CURRENT.with(|f| {
            let mut f = f.borrow_mut();
            // After a read of everything, reads add nothing.
            if write || !f.reads_everything {
                f.accesses.push(Access { space, key, write });
            }
        });
    }
}

/// [`touch`] with a key that is worked out only if some thread records
/// (a slotmap key's number is a shift and an or, on ~900 accesses a run).
#[inline(always)]
pub fn touch_keyed(space: Space, key: impl FnOnce() -> u64, write: bool) {
    if RECORDING_THREADS.load(Ordering::Relaxed) != 0 {
        touch(space, key(), write);
    }
}

/// Note that the current step read every object of each space in
/// `spaces`: one test, not one a space, when nothing records.
pub fn touch_spaces(spaces: std::ops::RangeInclusive<Space>) {
    if RECORDING_THREADS.load(Ordering::Relaxed) != 0 && RECORDING.with(Cell::get) {
        for space in spaces {
            touch(space, ALL, false);
        }
    }
}

/// Note that the current step read everything (`write`: or may have
/// written anything), engine state included: later reads of the step are
/// then not recorded one by one.
pub fn touch_everything(write: bool) {
    if RECORDING_THREADS.load(Ordering::Relaxed) != 0 && RECORDING.with(Cell::get) {
        CURRENT.with(|f| {
            let mut f = f.borrow_mut();
            f.reads_everything = true;
            f.writes_everything |= write;
        });
    }
}

/// Whether footprints are being recorded on this thread.
pub fn recording() -> bool {
    RECORDING.with(Cell::get)
}

/// Start recording on this thread (`on`), or stop.
pub(crate) fn set_recording(on: bool) {
    let was = RECORDING.with(|r| r.replace(on));
    match (was, on) {
        (false, true) => RECORDING_THREADS.fetch_add(1, Ordering::Relaxed),
        (true, false) => RECORDING_THREADS.fetch_sub(1, Ordering::Relaxed),
        _ => 0,
    };
    CURRENT.with(|f| *f.borrow_mut() = Footprint::default());
}

/// The footprint recorded since the last call, normalized; recording
/// starts afresh.
pub(crate) fn take() -> Footprint {
    CURRENT.with(|f| {
        let mut f = f.borrow_mut();
        f.normalize();
        // One allocation of the right size; the buffer stays for the next step.
        let taken = f.clone();
        f.accesses.clear();
        f.reads_everything = false;
        f.writes_everything = false;
        taken
    })
}

/// The footprint of `f` alone (for tests of code that records accesses).
pub fn record(f: impl FnOnce()) -> Footprint {
    let was = recording();
    set_recording(true);
    f();
    let footprint = take();
    set_recording(was);
    footprint
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(accesses: &[(Space, u64, bool)]) -> Footprint {
        let mut f = Footprint {
            accesses: accesses.iter().map(|&(space, key, write)| Access { space, key, write }).collect(),
            ..Footprint::default()
        };
        f.normalize();
        f
    }

    #[test]
    fn reads_commute_and_a_write_conflicts_with_any_access_of_its_object() {
        let read_a = fp(&[(LOCK, 1, false)]);
        let write_a = fp(&[(LOCK, 1, true)]);
        let write_b = fp(&[(LOCK, 2, true)]);
        let other_space = fp(&[(TIMERS, 1, true)]);
        assert!(!read_a.conflicts(&read_a));
        assert!(read_a.conflicts(&write_a) && write_a.conflicts(&read_a));
        assert!(!write_a.conflicts(&write_b));
        assert!(!write_a.conflicts(&other_space));
    }

    #[test]
    fn the_whole_space_overlaps_each_object_in_it() {
        let iterate = fp(&[(FIRST_USER_SPACE, ALL, false)]);
        assert!(iterate.conflicts(&fp(&[(FIRST_USER_SPACE, 7, true)])));
        assert!(!iterate.conflicts(&fp(&[(FIRST_USER_SPACE, 7, false)])));
        assert!(!iterate.conflicts(&fp(&[(FIRST_USER_SPACE + 1, 7, true)])));
    }

    #[test]
    fn everything_conflicts_with_every_write_and_writing_everything_with_all() {
        let check = Footprint { reads_everything: true, ..Footprint::default() };
        let wild = Footprint { reads_everything: true, writes_everything: true, ..Footprint::default() };
        assert!(check.conflicts(&fp(&[(TASK, 3, true)])));
        assert!(!check.conflicts(&fp(&[(TASK, 3, false)])));
        assert!(!check.conflicts(&check));
        assert!(wild.conflicts(&fp(&[(TASK, 3, false)])));
        assert!(!wild.conflicts(&Footprint::default()));
    }

    #[test]
    fn a_read_and_a_write_of_one_object_in_a_step_record_one_write() {
        let f = fp(&[(LOCK, 1, false), (LOCK, 1, true), (LOCK, 1, false), (LOCK, 0, false)]);
        assert_eq!(
            f.accesses(),
            &[Access { space: LOCK, key: 0, write: false }, Access { space: LOCK, key: 1, write: true }]
        );
    }

    #[test]
    fn recording_is_off_unless_asked_for() {
        set_recording(false);
        touch(LOCK, 1, true);
        assert_eq!(take(), Footprint::default());
        set_recording(true);
        touch(LOCK, 1, true);
        assert_eq!(take().accesses().len(), 1);
        assert_eq!(take(), Footprint::default());
        set_recording(false);
    }
}
