//! The seam between the scheduler and the task handle: all that `Task`
//! (task.rs) asks of [`Sim`], grouped by what it asks for.
//!
//! - Locks: [`Sim::lock`] does one [`LockOp`] on one lock (log a request,
//!   try to take it, spin on it, release it, ask who holds it), and
//!   [`Sim::kernel_lock`] moves the task's BKL depth ([`KernelLock`]).
//! - Scheduling: [`Sim::schedule`] ([`Sched`]: sleep, wake a queue,
//!   cond_resched, return to user), [`Sim::go_on`] (past a named point,
//!   without parking when the next step is the task's own), [`Sim::spawn_child`], and
//!   [`Sim::choose_at`] for a recorded decision (an allocation, a fault).
//! - Observation: [`Sim::record`] ([`Record`]: a named point, work, a
//!   violation) and [`Sim::note`].
//! - Queries: [`Sim::task_now`], and Sim's public `is_stopped`; a new lock
//!   comes from Sim's public `new_lock`.
//!
//! Each call is synchronous: it changes or reads the scheduler's state and
//! returns. Ending a step (parking the future) is the task's side, so the
//! loops of the primitives (spin, sleep and retry) read top to bottom in
//! task.rs, and the scheduler's state stays private to sim.rs and here.

use std::future::Future;
use std::rc::Rc;

use super::{touch_lock, Next, Sim, StepOption, Waiting};
use crate::choice::{Decision, EventClass};
use crate::event::EventKind;
use crate::fast_hash::ByAddress;
use crate::footprint;
use crate::lock::LockId;
use crate::task::{Task, TaskId, TaskState};
use crate::Point;

/// What a sleeping task waits for.
pub(crate) enum SleepOn {
    Lock(LockId),
    Timer(u64),
}

/// One operation of a task on one lock.
#[derive(Clone, Copy)]
pub(crate) enum LockOp {
    /// Log a request; `read` for the read side of an rwlock, `trylock`
    /// for a request that never waits.
    Attempt {
        point: Point,
        read: bool,
        trylock: bool,
    },
    /// Log that the request found the lock taken.
    Contended {
        point: Point,
        read: bool,
        trylock: bool,
    },
    /// One try of a lock that waits if it fails (spin, down, lock_page):
    /// true if taken.
    Take {
        point: Point,
        read: bool,
    },
    /// A trylock (TryLockPage): it never waits, so it orders nothing. True
    /// if taken.
    TryTake {
        point: Point,
    },
    /// The try failed: spin on the CPU until the lock is free.
    Spin,
    Release {
        point: Point,
        read: bool,
    },
    /// Async I/O owns the held page lock now: its completion releases it.
    GiveToIo,
    /// Whether anyone holds it (PG_locked is set).
    IsHeld,
    /// Whether this task holds it (exclusively or as a reader). Not a
    /// footprint read: no other task can change the answer.
    Holds,
}

/// A move of the task's BKL depth (`current->lock_depth`).
#[derive(Clone, Copy)]
pub(crate) enum KernelLock {
    /// `lock_kernel`'s `++`.
    Enter,
    /// `unlock_kernel`'s `--`: at -1 the BKL is released; below, it is a
    /// lock-discipline violation.
    Exit(Point),
    /// Read it.
    Depth,
}

/// What a task asks of the scheduler.
pub(crate) enum Sched {
    /// Give up the CPU until woken; the task parks next.
    Sleep(SleepOn, Point),
    /// `wake_up(queue)`: make every sleeper on it runnable.
    WakeUp(LockId, Point),
    /// `cond_resched`'s `need_resched` test: if true, the task has yielded
    /// to every task that could step now, and sleeps (for no time) next.
    CondResched,
    /// Back to user space: a preemption point; holding a lock here is
    /// reported. The task parks next.
    ReturnToUser(Point),
}

/// What happened on a task, for the event log and the run's outcome.
pub(crate) enum Record {
    /// An interleaving point was reached: the step ends here.
    Point(Point),
    /// `ns` of simulated work, charged to the current step.
    Work(u64),
    /// A broken invariant: the run stops at the end of this step.
    Violation(&'static str, String),
}

impl Sim {
    // The entry points are inlined dispatchers: at each call site in
    // task.rs the operation is a constant, so the match folds away and
    // what runs is the one helper behind the seam that does it.

    /// One [`LockOp`] of `task` on `lock`. True if the lock was taken
    /// (`Take`, `TryTake`) or the question's answer (`IsHeld`, `Holds`);
    /// false otherwise.
    #[inline(always)]
    pub(crate) fn lock(&self, task: TaskId, lock: LockId, op: LockOp) -> bool {
        match op {
            LockOp::Attempt { point, read, trylock } => {
                self.log_lock_op(task, EventKind::Attempt, lock, point, read, trylock)
            }
            LockOp::Contended { point, read, trylock } => {
                self.log_lock_op(task, EventKind::Contended, lock, point, read, trylock)
            }
            LockOp::Take { point, read } => return self.try_acquire(task, lock, read, point, true),
            LockOp::TryTake { point } => return self.try_acquire(task, lock, false, point, false),
            LockOp::Spin => self.spin_on(task, lock),
            LockOp::Release { point, read } => self.release(task, lock, read, point),
            LockOp::GiveToIo => self.disown(task, lock),
            LockOp::IsHeld => return self.lock_is_held(lock),
            LockOp::Holds => return self.lock_held_by(lock, task),
        }
        false
    }

    /// Move `task`'s BKL depth; returns the depth after it, and the BKL.
    #[inline(always)]
    pub(crate) fn kernel_lock(&self, task: TaskId, op: KernelLock) -> (i32, LockId) {
        match op {
            KernelLock::Enter => self.bkl_depth_inc(task),
            KernelLock::Exit(point) => self.bkl_depth_dec(task, point),
            KernelLock::Depth => self.bkl_depth(task),
        }
    }

    /// `task` has reached a named point: end its step there and decide the
    /// next, as the run loop would. If the next step is `task`'s own (its
    /// CPU's), start it here and return true: the task goes on without
    /// giving its future back to the loop, which saves unwinding and
    /// re-polling every routine it is nested in. Otherwise the decision
    /// is left for the loop and the task parks. The state, the chooser's
    /// calls and the outcome are exactly the loop's.
    pub(crate) fn go_on(&self, task: TaskId) -> bool {
        if self.sampler.borrow().is_some() {
            return false;
        }
        let record_footprints = self.st.borrow().cfg.record_footprints;
        self.end_step(record_footprints);
        let mut st = self.st.borrow_mut();
        let next = st.next_step();
        if let Next::Step(StepOption::Run(cpu)) = next {
            if st.cpus[cpu].current == Some(task) {
                st.catch_up(cpu, task);
                st.start_step(task);
                return true;
            }
        }
        st.decided = Some(next);
        st.step_ended = true;
        false
    }

    /// Do what `task` asks of the scheduler. True only for a
    /// `CondResched` that rescheduled.
    #[inline(always)]
    pub(crate) fn schedule(&self, task: TaskId, request: Sched) -> bool {
        match request {
            Sched::Sleep(on, point) => self.go_to_sleep(task, on, point),
            Sched::WakeUp(queue, point) => self.wake_up_from(task, queue, point),
            Sched::CondResched => {
                if !self.need_resched(task) {
                    return false;
                }
                self.yield_to_others(task);
                return true;
            }
            Sched::ReturnToUser(point) => {
                self.check_no_locks_held(task, point);
                self.preempt(task, point);
            }
        }
        false
    }

    /// Start a child of `parent` (it joins the run queue).
    pub(crate) fn spawn_child<F, Fut>(self: &Rc<Self>, parent: TaskId, name: impl Into<String>, body: F) -> TaskId
    where
        F: FnOnce(Task) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        self.spawn_from(Some(parent), name, body)
    }

    /// A decision `task` makes at `point` (an allocation, a fault).
    pub(crate) fn choose_at(&self, task: TaskId, decision: Decision<'_>, n: usize) -> usize {
        let mut st = self.st.borrow_mut();
        let (class, point) = match decision {
            Decision::MaySleep { point } => (EventClass::Sleep, point),
            Decision::Inject { point, .. } => (EventClass::Fault, point),
            Decision::Step { .. } => return st.choose(decision, n),
        };
        if st.cfg.record_labels {
            let label = st.label(class, task, point);
            st.choose_labeled(decision, n, vec![label])
        } else {
            st.choose(decision, n)
        }
    }

    /// Record what happened on `task`.
    #[inline(always)]
    pub(crate) fn record(&self, task: TaskId, what: Record) {
        match what {
            Record::Point(point) => self.reach_point(task, point),
            Record::Work(ns) => self.charge(task, ns),
            Record::Violation(invariant, message) => self.report_violation(task, invariant, message),
        }
    }

    /// Log free text (a printk, a result) if the run records events;
    /// `text` is built only then.
    pub(crate) fn note(&self, task: TaskId, point: Point, text: impl FnOnce() -> String) {
        if self.records_events() {
            self.log_note(task, point, text());
        }
    }

    /// Simulated time on `task`'s CPU, in ns.
    pub(crate) fn task_now(&self, task: TaskId) -> u64 {
        self.st.borrow().task_now(task)
    }

    // ---- behind the seam ----

    #[inline]
    fn log_lock_op(&self, task: TaskId, kind: EventKind, lock: LockId, point: Point, read: bool, trylock: bool) {
        self.st.borrow_mut().log_lock_op(task, kind, lock, point, read, trylock);
    }

    /// One try; `waits`: the lock waits if it fails (spin, down,
    /// lock_page), so a take records its lock-class order after the locks
    /// the task holds; a trylock never waits and records none. In the
    /// step's footprint a failed try only reads the lock, a take writes it.
    fn try_acquire(&self, task: TaskId, lock: LockId, read: bool, point: Point, waits: bool) -> bool {
        self.st.borrow_mut().try_acquire(task, lock, read, point, waits)
    }

    fn spin_on(&self, task: TaskId, lock: LockId) {
        touch_lock(lock, false);
        let mut st = self.st.borrow_mut();
        let number = st.locks.get(lock).map(|l| l.number);
        let info = &mut st.tasks[task.0 as usize];
        info.state = TaskState::Spinning(lock);
        info.waiting = Some(Waiting::Spins { lock, number });
    }

    fn release(&self, task: TaskId, lock: LockId, read: bool, point: Point) {
        self.st.borrow_mut().release(Some(task), lock, read, point);
    }

    fn disown(&self, task: TaskId, lock: LockId) {
        touch_lock(lock, true);
        let mut st = self.st.borrow_mut();
        if let Some(state) = st.locks.get_mut(lock) {
            if state.owner == Some(task) {
                state.owner = None;
            }
        }
        st.tasks[task.0 as usize].held.retain(|&l| l != lock);
    }

    fn lock_is_held(&self, lock: LockId) -> bool {
        touch_lock(lock, false);
        self.st.borrow().locks.get(lock).is_some_and(|l| l.is_held())
    }

    fn lock_held_by(&self, lock: LockId, task: TaskId) -> bool {
        self.st.borrow().locks.get(lock).is_some_and(|l| l.owner == Some(task) || l.readers.contains(&task))
    }

    fn bkl_depth_inc(&self, task: TaskId) -> (i32, LockId) {
        let mut st = self.st.borrow_mut();
        let bkl = st.bkl;
        let info = &mut st.tasks[task.0 as usize];
        info.lock_depth += 1;
        (info.lock_depth, bkl)
    }

    fn bkl_depth_dec(&self, task: TaskId, point: Point) -> (i32, LockId) {
        let mut st = self.st.borrow_mut();
        let bkl = st.bkl;
        let depth = {
            let info = &mut st.tasks[task.0 as usize];
            info.lock_depth -= 1;
            info.lock_depth
        };
        if depth < -1 {
            st.violate(Some(task), "lock-discipline", format!("unlock_kernel at {point} without lock_kernel"));
        } else if depth == -1 {
            st.release(Some(task), bkl, false, point);
        }
        (depth, bkl)
    }

    fn bkl_depth(&self, task: TaskId) -> (i32, LockId) {
        let st = self.st.borrow();
        (st.tasks[task.0 as usize].lock_depth, st.bkl)
    }

    fn go_to_sleep(&self, task: TaskId, on: SleepOn, point: Point) {
        self.st.borrow_mut().go_to_sleep(task, on, point);
    }

    fn wake_up_from(&self, task: TaskId, queue: LockId, point: Point) {
        self.st.borrow_mut().wake_all(queue, Some(task), point);
    }

    /// need_resched, for a model whose CPUs take turns: another task waits
    /// in the run queue for a CPU, or runs on another CPU. (The second is a
    /// modelling device: real CPUs run at once, so a task busy-waiting in a
    /// cond_resched loop cannot stall another CPU's task, but a search that
    /// keeps running the same task could.)
    fn need_resched(&self, task: TaskId) -> bool {
        footprint::touch(footprint::CPUS, 0, false);
        footprint::touch(footprint::TASK, footprint::ALL, false);
        let st = self.st.borrow();
        !st.runqueue.is_empty()
            || st.cpus.iter().filter_map(|c| c.current).any(|t| {
                t != task && matches!(st.tasks[t.0 as usize].state, TaskState::Runnable | TaskState::Spinning(_))
            })
    }

    /// `task` gives up its CPU in cond_resched: every task that could step
    /// now (queued, or on a CPU) steps before it runs again.
    fn yield_to_others(&self, task: TaskId) {
        // Which tasks may step next now depends on every other task's
        // steps (`yields_still`): no footprint can say that.
        footprint::touch_everything(true);
        let mut st = self.st.borrow_mut();
        let mut others: Vec<(TaskId, u64)> =
            st.runqueue.iter().filter(|&&t| t != task).map(|&t| (t, st.tasks[t.0 as usize].steps)).collect();
        for cpu in &st.cpus {
            if let Some(t) = cpu.current.filter(|&t| t != task) {
                if matches!(st.tasks[t.0 as usize].state, TaskState::Runnable | TaskState::Spinning(_)) {
                    others.push((t, st.tasks[t.0 as usize].steps));
                }
            }
        }
        st.tasks[task.0 as usize].yielded_to = others;
    }

    fn check_no_locks_held(&self, task: TaskId, point: Point) {
        let mut st = self.st.borrow_mut();
        let info = &st.tasks[task.0 as usize];
        if info.held.is_empty() && info.lock_depth < 0 {
            return;
        }
        let mut names: Vec<String> = info.held.iter().map(|&l| st.lock_name(l)).collect();
        if info.lock_depth >= 0 {
            names.push(format!("kernel_flag (lock_depth {})", info.lock_depth));
        }
        let message = format!("returned to user space at {point} holding {}", names.join(", "));
        st.violate(Some(task), "lock-discipline", message);
    }

    fn preempt(&self, task: TaskId, point: Point) {
        let mut st = self.st.borrow_mut();
        st.log(Some(task), EventKind::Preempt, None, point);
        st.leave_point(task);
        st.tasks[task.0 as usize].at = point;
        st.leave_cpu(task);
        st.tasks[task.0 as usize].state = TaskState::Runnable;
        st.runqueue.push_back(task);
    }

    fn reach_point(&self, task: TaskId, point: Point) {
        let mut st = self.st.borrow_mut();
        st.leave_point(task);
        st.tasks[task.0 as usize].at = point;
        if st.cfg.count_points {
            *st.point_counts.entry(point).or_default() += 1;
        }
        if st.cfg.point_pairs {
            if let Some((other, before)) = st.last_point {
                if other != task {
                    st.point_pairs.insert((ByAddress(before), ByAddress(point)));
                }
            }
            st.last_point = Some((task, point));
        }
        st.log(Some(task), EventKind::Point, None, point);
    }

    fn charge(&self, task: TaskId, ns: u64) {
        self.st.borrow_mut().charge(task, ns);
    }

    fn report_violation(&self, task: TaskId, invariant: &'static str, message: String) {
        self.st.borrow_mut().violate(Some(task), invariant, message);
    }

    fn records_events(&self) -> bool {
        self.st.borrow().cfg.record_events
    }

    fn log_note(&self, task: TaskId, point: Point, text: String) {
        self.st.borrow_mut().log(Some(task), EventKind::Note(text), None, point);
    }
}
