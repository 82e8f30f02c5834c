//! The event log: every lock attempt, contention, acquisition, release,
//! sleep, wake and named point, with time, task, CPU, lock and point.

use crate::lock::LockId;
use crate::task::TaskId;
use crate::Point;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A task reached a named interleaving point.
    Point,
    /// A task was put on a CPU.
    Dispatch,
    /// A task went back to the run queue (return to user space).
    Preempt,
    /// A lock was asked for.
    Attempt,
    /// The lock was busy: the task spins (spinlocks) or sleeps (sleeping locks).
    Contended,
    Acquired,
    Released,
    /// The big kernel lock was dropped because its holder slept.
    BklDropped,
    /// The task slept; the string says on what.
    Sleep(String),
    /// The task was woken.
    Wake,
    /// Free text from the model (a printk, a syscall result).
    Note(String),
    /// The task finished.
    Exit,
}

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub step: u64,
    /// Simulated time in ns on the task's CPU.
    pub time: u64,
    pub cpu: Option<usize>,
    pub task: Option<TaskId>,
    pub kind: EventKind,
    pub lock: Option<LockId>,
    /// The lock's number in the name table: it names the lock even after
    /// the lock is freed and its key reused.
    pub lock_number: Option<u32>,
    pub point: Point,
}
