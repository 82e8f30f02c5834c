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
    /// The schedule held something back longer than the cost model says:
    /// a CPU (or a task waiting for an idle CPU) did nothing while other
    /// CPUs' steps ran, or a timer (an I/O completion, the end of a timed
    /// sleep) fired after its due time. The span runs from `from` to the
    /// event's `time`, on the one timeline; see docs/timing.md.
    Stall {
        from: u64,
        cause: StallCause,
    },
    /// A counter of the model changed (free pages, swap slots in use), as
    /// sampled after a step by [`crate::Sim::set_sampler`]'s function.
    Counter {
        name: &'static str,
        value: i64,
    },
}

/// Why a stall span is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StallCause {
    /// A task on a CPU waited while other CPUs' steps ran first.
    Cpu,
    /// A runnable task waited for a CPU although one was idle.
    Dispatch,
    /// An I/O completed after its due time.
    IoLate,
    /// A timed sleep (an allocation's wait, a cond_resched) ended late.
    TimerLate,
    /// A lock's previous holder took it later, by the cost model, than
    /// this task asked for it, yet the schedule ran the holder first: the
    /// task catches up with the release (the event names the lock).
    LockOrder,
}

impl StallCause {
    /// A short name: "cpu", "dispatch", "io-late", "timer-late".
    pub fn name(self) -> &'static str {
        match self {
            StallCause::Cpu => "cpu",
            StallCause::Dispatch => "dispatch",
            StallCause::IoLate => "io-late",
            StallCause::TimerLate => "timer-late",
            StallCause::LockOrder => "lock-order",
        }
    }
}

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub step: u64,
    /// Time in ns on the run's one timeline: never less than any earlier
    /// event's.
    pub time: u64,
    /// The cost model's time of the event in ns: `time` less every stall
    /// of its task so far (of the task whose I/O or timer it is, for an
    /// interrupt). Durations in lock statistics are differences of these.
    pub cost: u64,
    /// A read-side lock operation (read_lock / read_unlock of an rwlock).
    pub read: bool,
    /// A lock operation that never waits (TryLockPage): its `Contended`
    /// is a failed try, not the start of a wait.
    pub trylock: bool,
    pub cpu: Option<usize>,
    pub task: Option<TaskId>,
    pub kind: EventKind,
    pub lock: Option<LockId>,
    /// The lock's number in the name table: it names the lock even after
    /// the lock is freed and its key reused.
    pub lock_number: Option<u32>,
    pub point: Point,
}
