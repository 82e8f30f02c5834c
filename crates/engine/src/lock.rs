//! Lock state. The acquire/release logic lives in `sim.rs`, next to the
//! scheduler, because taking a lock and choosing who runs are one mechanism.

use std::collections::VecDeque;
use std::fmt;

use crate::task::TaskId;

slotmap::new_key_type! {
    /// A lock instance (one `mmap_sem` of one mm, one page's PG_locked, ...).
    pub struct LockId;
}

/// The lock kinds of a 2.3 kernel, with their real semantics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `spinlock_t`: a waiter spins and keeps its CPU; the holder must not sleep.
    Spin,
    /// `rwlock_t`: spinning, many readers or one writer; the holder must not sleep.
    RwSpin,
    /// `struct semaphore` used as a mutex (count 1): a waiter sleeps.
    Semaphore,
    /// The `PG_locked` page bit: `lock_page` sleeps, `UnlockPage` wakes all
    /// waiters; it may be released by I/O completion rather than a task.
    PageBit,
    /// The big kernel lock: recursive per task (`lock_depth`), dropped by
    /// `schedule()` when its holder sleeps and taken back before it runs on.
    Bkl,
    /// A wait queue (`wait_queue_head_t`): not a lock; tasks sleep on it
    /// until `wake_up`.
    WaitQueue,
    /// `struct rw_semaphore` (`down_read`/`down_write`): many readers or one
    /// writer; a waiter sleeps. A release wakes every sleeper to try again,
    /// so a reader may pass a waiting writer (Linux queues them in order:
    /// the model admits more reader orders than the kernel, never fewer).
    RwSem,
}

impl LockKind {
    /// Holding a lock of this kind forbids sleeping.
    pub fn forbids_sleep(self) -> bool {
        matches!(self, LockKind::Spin | LockKind::RwSpin)
    }

    /// A lock with a read side (`rwlock_t`, `rw_semaphore`).
    pub fn has_readers(self) -> bool {
        matches!(self, LockKind::RwSpin | LockKind::RwSem)
    }
}

/// A lock instance's name, put together only when something reads it (a
/// run creates a lock per page and per mm, and most names are never read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockName {
    /// A fixed name: `"tasklist_lock"`.
    Static(&'static str),
    /// `prefix`, a number, `suffix`: `Numbered("mm#", 3, ".mmap_sem")` is
    /// `"mm#3.mmap_sem"`.
    Numbered(&'static str, u64, &'static str),
    /// Any other text.
    Owned(String),
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockName::Static(name) => f.write_str(name),
            LockName::Numbered(prefix, number, suffix) => write!(f, "{prefix}{number}{suffix}"),
            LockName::Owned(name) => f.write_str(name),
        }
    }
}

impl From<&'static str> for LockName {
    fn from(name: &'static str) -> LockName {
        LockName::Static(name)
    }
}

impl From<String> for LockName {
    fn from(name: String) -> LockName {
        LockName::Owned(name)
    }
}

pub(crate) struct LockState {
    pub kind: LockKind,
    /// Index of the lock's name in the simulator's name table.
    pub number: u32,
    /// Exclusive holder (spin, write side, BKL, semaphore, page bit taken by a task).
    pub owner: Option<TaskId>,
    /// Read-side holders of an rwlock.
    pub readers: Vec<TaskId>,
    /// The page bit, which can be set with no task owning it (I/O in flight).
    pub locked: bool,
    /// Tasks asleep waiting for a sleeping lock, in arrival order.
    pub sleepers: VecDeque<TaskId>,
    /// Simulated time of the last release: a waiter cannot have taken the
    /// lock before this.
    pub released_at: u64,
    /// Where it was last taken (for the lock-order graph).
    pub taken_at: crate::Point,
    /// The cost-model time it was last taken at.
    pub taken_cost: u64,
    /// The cost-model time of the last release (`released_at` less the
    /// releaser's stalls).
    pub released_cost: u64,
}

/// Cloned for simulator snapshots, where almost every lock is free and
/// unawaited: empty holder and sleeper lists are made, not copied.
impl Clone for LockState {
    fn clone(&self) -> LockState {
        LockState {
            kind: self.kind,
            number: self.number,
            owner: self.owner,
            readers: if self.readers.is_empty() { Vec::new() } else { self.readers.clone() },
            locked: self.locked,
            sleepers: if self.sleepers.is_empty() { VecDeque::new() } else { self.sleepers.clone() },
            released_at: self.released_at,
            taken_at: self.taken_at,
            taken_cost: self.taken_cost,
            released_cost: self.released_cost,
        }
    }
}

impl LockState {
    pub fn new(kind: LockKind) -> LockState {
        LockState {
            kind,
            number: 0,
            owner: None,
            readers: Vec::new(),
            locked: false,
            sleepers: VecDeque::new(),
            released_at: 0,
            taken_at: "",
            taken_cost: 0,
            released_cost: 0,
        }
    }

    /// Whether `task` could take the lock now (exclusively, or as a reader).
    pub fn available(&self, read: bool) -> bool {
        match self.kind {
            LockKind::RwSpin | LockKind::RwSem if read => self.owner.is_none(),
            LockKind::RwSpin | LockKind::RwSem => self.owner.is_none() && self.readers.is_empty(),
            LockKind::PageBit => !self.locked,
            LockKind::WaitQueue => false,
            _ => self.owner.is_none(),
        }
    }

    pub fn is_held(&self) -> bool {
        self.owner.is_some() || !self.readers.is_empty() || self.locked
    }
}
