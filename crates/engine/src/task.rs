//! Tasks and the primitives a task's code awaits.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::lock::{LockId, LockKind, LockName};
use crate::sim::seam::{KernelLock, LockOp, Record, Sched, SleepOn};
use crate::sim::Sim;
use crate::{Decision, Point};

/// A simulated task (a kernel thread or a process in the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u32);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

/// Where a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// On a CPU or in the run queue, ready for its next step.
    Runnable,
    /// On a CPU, spinning for a lock; it steps again once the lock is free.
    Spinning(LockId),
    /// Off CPU, asleep until woken.
    Sleeping,
    Done,
}

/// Resolves on its second poll. Awaiting it ends the current step; the
/// scheduler decides when (and, for a blocked task, whether) to poll again.
pub(crate) struct Park(bool);

impl Future for Park {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

pub(crate) fn park() -> Park {
    Park(false)
}

/// The handle a task's code uses: which task it is, and the simulator.
/// Passed explicitly (no thread-locals) as the first argument of every
/// kernel routine. It reaches the scheduler only through the seam
/// (sim/seam.rs).
#[derive(Clone)]
pub struct Task {
    sim: Rc<Sim>,
    id: TaskId,
}

impl Task {
    pub(crate) fn new(sim: Rc<Sim>, id: TaskId) -> Task {
        Task { sim, id }
    }

    pub fn id(&self) -> TaskId {
        self.id
    }

    pub fn sim(&self) -> &Rc<Sim> {
        &self.sim
    }

    /// Simulated time on this task's CPU, in ns.
    pub fn now(&self) -> u64 {
        self.sim.task_now(self.id)
    }

    /// An interleaving point: the step ends here and any CPU may run next.
    pub async fn point(&self, point: Point) {
        self.sim.record(self.id, Record::Point(point));
        if !self.sim.go_on(self.id) {
            park().await;
        }
    }

    /// Charge `ns` of simulated work to the current step.
    pub fn work(&self, ns: u64) {
        self.sim.record(self.id, Record::Work(ns));
    }

    /// Record free text (a printk, a result) in the event log.
    /// `text` is only built when the run records events: notes are for
    /// readers of the log, and formatting them cost ~8% of a search run.
    pub fn note(&self, point: Point, text: impl FnOnce() -> String) {
        self.sim.note(self.id, point, text);
    }

    /// Report a broken invariant; the run stops at the end of this step.
    pub fn violation(&self, invariant: &'static str, message: impl Into<String>) {
        self.sim.record(self.id, Record::Violation(invariant, message.into()));
    }

    /// Whether the run has been stopped by a violation.
    pub fn stopped(&self) -> bool {
        self.sim.is_stopped()
    }

    // ---- spinlocks and rwlocks ----

    /// `spin_lock`: spins (keeping the CPU) until the lock is free.
    pub async fn spin_lock(&self, lock: LockId, point: Point) {
        self.point(point).await;
        self.spin_acquire(lock, false, point).await;
    }

    /// `spin_unlock`.
    pub fn spin_unlock(&self, lock: LockId, point: Point) {
        self.sim.lock(self.id, lock, LockOp::Release { point, read: false });
    }

    /// `read_lock` on a spinning rwlock.
    pub async fn read_lock(&self, lock: LockId, point: Point) {
        self.point(point).await;
        self.spin_acquire(lock, true, point).await;
    }

    pub fn read_unlock(&self, lock: LockId, point: Point) {
        self.sim.lock(self.id, lock, LockOp::Release { point, read: true });
    }

    /// `write_lock` on a spinning rwlock.
    pub async fn write_lock(&self, lock: LockId, point: Point) {
        self.point(point).await;
        self.spin_acquire(lock, false, point).await;
    }

    pub fn write_unlock(&self, lock: LockId, point: Point) {
        self.sim.lock(self.id, lock, LockOp::Release { point, read: false });
    }

    async fn spin_acquire(&self, lock: LockId, read: bool, point: Point) {
        self.sim.lock(self.id, lock, LockOp::Attempt { point, read, trylock: false });
        let mut contended = false;
        loop {
            if self.sim.lock(self.id, lock, LockOp::Take { point, read }) {
                return;
            }
            if !contended {
                self.sim.lock(self.id, lock, LockOp::Contended { point, read, trylock: false });
                contended = true;
            }
            if self.sim.is_stopped() {
                // The lock is gone or the run is over: stay parked.
                park().await;
                continue;
            }
            self.sim.lock(self.id, lock, LockOp::Spin);
            park().await;
        }
    }

    // ---- the big kernel lock ----

    /// `lock_kernel`: recursive; spins only when this task does not hold it.
    pub async fn lock_kernel(&self, point: Point) {
        let (depth, bkl) = self.sim.kernel_lock(self.id, KernelLock::Enter);
        if depth > 0 {
            return;
        }
        self.point(point).await;
        self.spin_acquire(bkl, false, point).await;
    }

    /// `unlock_kernel`.
    pub fn unlock_kernel(&self, point: Point) {
        self.sim.kernel_lock(self.id, KernelLock::Exit(point));
    }

    /// This task's `lock_depth` (-1: BKL not held).
    pub fn lock_depth(&self) -> i32 {
        self.sim.kernel_lock(self.id, KernelLock::Depth).0
    }

    // ---- sleeping locks ----

    /// `down` on a semaphore used as a mutex: sleeps while it is held.
    pub async fn down(&self, sem: LockId, point: Point) {
        self.point(point).await;
        self.sleeping_acquire(sem, point).await;
    }

    /// `up`: releases and wakes the first sleeper, which retries.
    pub fn up(&self, sem: LockId, point: Point) {
        self.sim.lock(self.id, sem, LockOp::Release { point, read: false });
    }

    /// `down_read` on an rw_semaphore: sleeps while a writer holds it.
    pub async fn down_read(&self, sem: LockId, point: Point) {
        self.point(point).await;
        self.sleeping_acquire_as(sem, true, point).await;
    }

    /// `up_read`: wakes the sleepers to try again.
    pub fn up_read(&self, sem: LockId, point: Point) {
        self.sim.lock(self.id, sem, LockOp::Release { point, read: true });
    }

    /// `down_write` on an rw_semaphore: sleeps while anyone holds it.
    pub async fn down_write(&self, sem: LockId, point: Point) {
        self.point(point).await;
        self.sleeping_acquire_as(sem, false, point).await;
    }

    /// `up_write`.
    pub fn up_write(&self, sem: LockId, point: Point) {
        self.sim.lock(self.id, sem, LockOp::Release { point, read: false });
    }

    /// `lock_page`: sleeps while PG_locked is set.
    pub async fn lock_page(&self, page_lock: LockId, point: Point) {
        self.point(point).await;
        self.sleeping_acquire(page_lock, point).await;
    }

    /// `TryLockPage`: takes the bit if it is clear; never sleeps. Returns
    /// whether it was taken (note: the C macro returns the *old* bit).
    pub fn try_lock_page(&self, page_lock: LockId, point: Point) -> bool {
        self.sim.lock(self.id, page_lock, LockOp::Attempt { point, read: false, trylock: true });
        let taken = self.sim.lock(self.id, page_lock, LockOp::TryTake { point });
        if !taken {
            self.sim.lock(self.id, page_lock, LockOp::Contended { point, read: false, trylock: true });
        }
        taken
    }

    /// `UnlockPage`: clears the bit and wakes every waiter.
    pub fn unlock_page(&self, page_lock: LockId, point: Point) {
        self.sim.lock(self.id, page_lock, LockOp::Release { point, read: false });
    }

    /// Async I/O now owns the locked page: the bit stays set, and the I/O
    /// completion (not this task) will clear it.
    pub fn give_page_lock_to_io(&self, page_lock: LockId) {
        self.sim.lock(self.id, page_lock, LockOp::GiveToIo);
    }

    /// `lockdep_assert_held`: whether this task holds `lock` (a spinlock,
    /// rwlock or semaphore it took and has not released).
    pub fn holds(&self, lock: LockId) -> bool {
        self.sim.lock(self.id, lock, LockOp::Holds)
    }

    /// Whether PG_locked is set (`PageLocked`).
    pub fn page_locked(&self, page_lock: LockId) -> bool {
        self.sim.lock(self.id, page_lock, LockOp::IsHeld)
    }

    /// `___wait_on_page`: sleeps until PG_locked is clear, without taking it.
    pub async fn wait_on_page(&self, page_lock: LockId, point: Point) {
        self.point(point).await;
        while self.sim.lock(self.id, page_lock, LockOp::IsHeld) {
            self.sleep(SleepOn::Lock(page_lock), point).await;
        }
    }

    async fn sleeping_acquire(&self, lock: LockId, point: Point) {
        self.sleeping_acquire_as(lock, false, point).await;
    }

    async fn sleeping_acquire_as(&self, lock: LockId, read: bool, point: Point) {
        self.sim.lock(self.id, lock, LockOp::Attempt { point, read, trylock: false });
        let mut contended = false;
        loop {
            if self.sim.lock(self.id, lock, LockOp::Take { point, read }) {
                return;
            }
            if !contended {
                self.sim.lock(self.id, lock, LockOp::Contended { point, read, trylock: false });
                contended = true;
            }
            self.sleep(SleepOn::Lock(lock), point).await;
        }
    }

    // ---- sleeping, I/O, allocation, user space ----

    /// `schedule()` for a sleep: drops the BKL if held, gives up the CPU, and
    /// after the wake takes the BKL back before returning.
    pub(crate) async fn sleep(&self, on: SleepOn, point: Point) {
        self.sim.schedule(self.id, Sched::Sleep(on, point));
        park().await;
        let (depth, bkl) = self.sim.kernel_lock(self.id, KernelLock::Depth);
        if depth >= 0 {
            self.sim.lock(self.id, bkl, LockOp::Attempt { point, read: false, trylock: false });
            while !self.sim.lock(self.id, bkl, LockOp::Take { point, read: false }) {
                self.sim.lock(self.id, bkl, LockOp::Spin);
                park().await;
            }
        }
    }

    /// `sleep_on(queue)`: sleep until someone calls `wake_up` on it.
    pub async fn sleep_on(&self, queue: LockId, point: Point) {
        self.point(point).await;
        self.sleep(SleepOn::Lock(queue), point).await;
    }

    /// `wait_event(queue, condition)`: sleep on `queue` until `condition`
    /// holds. The check and the sleep happen in one step, as
    /// add_wait_queue-then-check does in the kernel, so a wake-up between
    /// them cannot be lost.
    pub async fn wait_event(&self, queue: LockId, point: Point, condition: impl Fn() -> bool) {
        self.point(point).await;
        while !condition() {
            self.sleep(SleepOn::Lock(queue), point).await;
        }
    }

    /// `wake_up(queue)`: make every sleeper runnable.
    pub fn wake_up(&self, queue: LockId, point: Point) {
        self.sim.schedule(self.id, Sched::WakeUp(queue, point));
    }

    /// Sleep until an I/O of `latency_ns` completes (synchronous disk I/O).
    pub async fn sleep_io(&self, point: Point, latency_ns: u64) {
        self.point(point).await;
        self.sleep(SleepOn::Timer(latency_ns), point).await;
    }

    /// An allocation that may block (`__get_free_page`, `kmem_cache_alloc`
    /// with SLAB_KERNEL, ...). Whether it sleeps is a recorded choice: not
    /// at all, `sleep_ns` (kswapd frees a page), or 100 times that (it waits
    /// for swap-out I/O to finish).
    pub async fn may_sleep(&self, point: Point, sleep_ns: u64) {
        self.point(point).await;
        match self.sim.choose_at(self.id, Decision::MaySleep { point }, 3) {
            0 => {}
            1 => self.sleep(SleepOn::Timer(sleep_ns), point).await,
            _ => self.sleep(SleepOn::Timer(sleep_ns * 100), point).await,
        }
    }

    /// `cond_resched()` (2.4's `if (current->need_resched) schedule()`):
    /// if another task is queued for a CPU, give this one up — as a sleep
    /// of no length, so holding a spinlock here is sleep-in-atomic and the
    /// BKL is dropped and taken back — and run again only after the tasks
    /// queued now have had a CPU (a fair scheduler's schedule(); without
    /// it a search could starve them forever and call it a livelock).
    pub async fn cond_resched(&self, point: Point) {
        self.point(point).await;
        if self.sim.schedule(self.id, Sched::CondResched) {
            self.sleep(SleepOn::Timer(0), point).await;
        }
    }

    /// Whether to inject a fault at `point` (probability `ppm` in a
    /// million): a recorded choice, not an interleaving point.
    pub fn inject(&self, point: Point, ppm: u32) -> bool {
        ppm > 0 && self.sim.choose_at(self.id, Decision::Inject { point, ppm }, 2) == 1
    }

    /// Return to user space: a preemption point. Holding any lock here is a
    /// kernel bug and is reported.
    pub async fn return_to_user(&self, point: Point) {
        self.sim.schedule(self.id, Sched::ReturnToUser(point));
        park().await;
    }

    /// Start a new task (it joins the run queue).
    pub fn spawn<F, Fut>(&self, name: impl Into<String>, body: F) -> TaskId
    where
        F: FnOnce(Task) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        self.sim.spawn_child(self.id, name, body)
    }

    /// Create a lock (a new mm's mmap_sem, a new page's PG_locked, ...).
    pub fn new_lock(&self, kind: LockKind, class: &'static str, name: LockName) -> LockId {
        self.sim.new_lock(kind, class, name)
    }
}
