//! The scheduler: tasks, CPUs, the clock, timers, and lock acquisition.
//!
//! One *step* is one poll of one task's future: the code between two
//! interleaving points, run atomically. At each step the chooser picks one
//! option: run the task on a busy CPU, dispatch a queued task to an idle
//! CPU, or fire the earliest timer (an I/O completing, a sleep ending).
//! A task keeps its CPU until it sleeps or returns to user space (2.3 has
//! no kernel preemption); tasks on different CPUs interleave at every step.

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::fast_hash::{self, ByAddress, FastMap, FastSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slotmap::SlotMap;

use crate::choice::{Chooser, Decision, EventClass, Label, LabelView, SemanticEvent, StepKind, TaskTag, PRUNE};
use crate::event::{Event, EventKind, StallCause};
use crate::footprint;
use crate::lock::{LockId, LockKind, LockName, LockState};
use crate::outcome::{Outcome, Violation};
use crate::task::{Task, TaskId, TaskState};
use crate::Point;

pub(crate) mod seam;
mod timers;
use seam::SleepOn;
use timers::TimerQueue;

/// Simulated costs of the engine's own operations, in ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Costs {
    /// Every step (the code between two interleaving points).
    pub step: u64,
    /// Taking or releasing a lock.
    pub lock_op: u64,
    /// Putting a task on a CPU.
    pub context_switch: u64,
}

impl Default for Costs {
    /// A ~500 MHz CPU of 2000: a step is a few dozen instructions.
    fn default() -> Costs {
        Costs { step: 100, lock_op: 40, context_switch: 3_000 }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    pub cpus: usize,
    /// A run that takes more steps than this ends as [`Outcome::StepLimit`].
    pub step_budget: u64,
    pub costs: Costs,
    /// Keep the event log (off for long searches that only need outcomes).
    pub record_events: bool,
    /// Keep at most this many of the latest events (a long run keeps its
    /// tail, which is where a violation's story is).
    pub event_limit: usize,
    /// Record every choice (the run's schedule, for replay). A long run's
    /// schedule costs 4 bytes a step.
    pub record_choices: bool,
    /// Count how often each named interleaving point is reached.
    pub count_points: bool,
    /// Record the lock-class order graph (lockdep): which class was held
    /// when another was taken, and where.
    pub lock_order: bool,
    /// Record which named points of different tasks followed each other
    /// (interleaving coverage).
    pub point_pairs: bool,
    /// Label every option of every decision semantically (task, named
    /// point, occurrence), hand the labels to the chooser, and record the
    /// chosen one per decision (for schedule files and semantic replay).
    /// Off in searches: it costs a lookup per option.
    pub record_labels: bool,
    /// Record each step's footprint ([`crate::footprint`]) and hand it to
    /// the chooser (`Chooser::stepped`): for dfs with sleep sets.
    pub record_footprints: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            cpus: 1,
            step_budget: 1_000_000,
            costs: Costs::default(),
            record_events: true,
            event_limit: 200_000,
            record_choices: true,
            lock_order: false,
            point_pairs: false,
            count_points: false,
            record_labels: false,
            record_footprints: false,
        }
    }
}

enum TimerAction {
    Wake(TaskId),
    /// An I/O completion, with the task that started it and where (its label).
    Call(Box<dyn FnOnce()>, TaskId, Point),
}

#[derive(Clone)]
struct Cpu {
    current: Option<TaskId>,
    /// The cost model's clock: the CPU's work and the waits the cost model
    /// implies (for a lock's release, a wake-up). Choosers see these times.
    clock: u64,
    /// Stalls so far: the CPU's time on the run's one timeline is
    /// `clock + lag` (docs/timing.md).
    lag: u64,
}

/// What a task that cannot run waits for (for deadlock reports).
#[derive(Clone, Copy)]
enum Waiting {
    Spins { lock: LockId, number: Option<u32> },
    Sleeps { lock: LockId, number: Option<u32> },
    Timer { ns: u64, point: Point },
}

impl Waiting {
    fn lock(&self) -> Option<LockId> {
        match *self {
            Waiting::Spins { lock, .. } | Waiting::Sleeps { lock, .. } => Some(lock),
            Waiting::Timer { .. } => None,
        }
    }
}

#[derive(Clone)]
struct TaskInfo {
    name: String,
    /// The named point of the primitive the task is parked in (where its
    /// next step starts): set when it yields, sleeps or returns to user.
    at: Point,
    /// How many tasks it spawned (for its children's keys).
    children: u32,
    /// A kernel daemon (kswapd): its timed wake-ups do not keep a run
    /// alive, and the run is over when only daemons are left.
    daemon: bool,
    state: TaskState,
    spin_read: bool,
    cpu: Option<usize>,
    lock_depth: i32,
    held: Vec<LockId>,
    /// Time of the task when off CPU; it cannot run before this.
    ready_at: u64,
    /// The same on the one timeline (at least `ready_at`).
    ready_timeline: u64,
    /// Catch-ups of the task's clock that the order, not the cost model,
    /// made (`StallCause::LockOrder`): its cost-model time is its clock
    /// less these.
    skew: u64,
    /// The length of every stall span of the task so far (its timers' and
    /// I/Os' lateness included): an event's cost-model time is its
    /// timeline time less these.
    stalls: u64,
    /// What it sleeps or spins on, for deadlock reports.
    waiting: Option<Waiting>,
    /// Steps taken so far.
    steps: u64,
    /// After `cond_resched`: the tasks that could step then, with their
    /// step counts. Each goes first — takes a step or stops being able to —
    /// before the yielder runs again, as on a fair machine where the other
    /// CPUs run meanwhile; a search must not starve them.
    yielded_to: Vec<(TaskId, u64)>,
}

/// What the top of a step decided.
#[derive(Clone, Debug)]
pub(super) enum Next {
    Over(Outcome),
    Step(StepOption),
}

#[derive(Clone, Copy, Debug)]
pub(super) enum StepOption {
    Run(usize),
    Dispatch(TaskId),
    Timer,
}

struct SimState {
    cfg: SimConfig,
    tasks: Vec<TaskInfo>,
    cpus: Vec<Cpu>,
    runqueue: VecDeque<TaskId>,
    locks: SlotMap<LockId, LockState>,
    /// Names of every lock ever created, kept after it is freed so that
    /// the event log can still name it.
    /// Indexed by a lock's `number`, which is never reused (slotmap keys
    /// are, once a lock is freed).
    lock_names: Vec<(LockName, LockKind, &'static str)>,
    timers: TimerQueue,
    timer_seq: u64,
    chooser: ChooserSlot,
    choices: Vec<u32>,
    /// With `record_labels`: each task's key (by id), the label chosen at
    /// each decision, and how often each label was taken.
    tags: Vec<TaskTag>,
    labels: Vec<Label>,
    occurrences: FastMap<(EventClass, TaskId, Point), u32>,
    step: u64,
    events: VecDeque<Event>,
    /// Events dropped from the front of the log to respect `event_limit`.
    events_dropped: u64,
    /// How often each named point was reached, in first-reached order.
    point_counts: FastMap<Point, u64>,
    /// (class held, class taken) -> (where the held one was taken, where the
    /// other was), first seen in this run.
    /// Keyed by address (cheap); read out by content (see [`ByAddress`]).
    /// A run takes a few orders: a list searched from the front costs less
    /// than a hash map.
    lock_order: Vec<((ByAddress, ByAddress), (Point, Point))>,
    point_pairs: FastSet<(ByAddress, ByAddress)>,
    last_point: Option<(TaskId, Point)>,
    bkl: LockId,
    stop: Option<Outcome>,
    /// Time of the timer callback being run (an interrupt), if any.
    irq_time: Option<u64>,
    /// Due time of the last timer fired: time passes while CPUs idle.
    last_timer: u64,
    /// The one timeline: the time of the latest event (or step start). No
    /// event is logged before it, and a CPU that runs a step first catches
    /// up with it (a stall) if its own time is behind.
    timeline: u64,
    /// The timeline time of the timer callback being run, if any.
    irq_timeline: Option<u64>,
    /// Stalls so far, in ns, summed over CPUs and timers.
    stalled: u64,
    /// The skew of the task whose I/O completion is being run.
    irq_skew: u64,
    /// The task whose timer is being run.
    irq_task: Option<TaskId>,
    /// The counters last sampled.
    counters: Vec<(&'static str, i64)>,
    /// The flags of the lock operation being logged (read side, trylock).
    op_read: bool,
    op_trylock: bool,
    /// The step decision's buffers, kept between steps so that a step
    /// allocates nothing (their contents are rebuilt every step).
    scratch_options: Vec<StepOption>,
    scratch_kinds: Vec<StepKind>,
    scratch_times: Vec<u64>,
    /// Every task before this index is done or a daemon (done is final and
    /// a daemon stays one), so the end-of-run check starts here.
    settled_prefix: usize,
    /// A decision `go_on` made for the loop (the task it ran for parked).
    decided: Option<Next>,
    /// `go_on` ended the step that the loop's poll returns from.
    step_ended: bool,
    /// The daemons, in creation order (the end-of-run check looks at them
    /// apart from the prefix).
    daemons: Vec<TaskId>,
    /// How many timers are I/O completions (`TimerAction::Call`).
    io_timers: usize,
    /// The named points tasks wait for (`Sim::watch_point`).
    watches: Vec<PointWatch>,
}

/// A named point whose passes are counted, and the wait queue each pass
/// wakes.
#[derive(Clone, Debug)]
struct PointWatch {
    point: Point,
    queue: LockId,
    passes: u64,
}

type TaskFuture = Pin<Box<dyn Future<Output = ()>>>;

/// A simulator's state between phases (see [`Sim::snapshot`]).
pub struct SimSnapshot(SimState);

/// Initial capacity of the lock table and the task list.
const INITIAL_LOCKS: usize = 64;
const INITIAL_TASKS: usize = 16;

/// The simulator. Shared as `Rc<Sim>`: tasks hold a handle to it.
pub struct Sim {
    st: RefCell<SimState>,
    futures: RefCell<Vec<Option<TaskFuture>>>,
    /// Reads the model's counters after each step (with the event log on).
    sampler: RefCell<Option<Sampler>>,
}

/// Fills in the model's counters: (name, value) pairs, always in the same order.
pub type Sampler = Box<dyn Fn(&mut Vec<(&'static str, i64)>)>;

impl Sim {
    pub fn new(cfg: SimConfig, chooser: Box<dyn Chooser>) -> Rc<Sim> {
        assert!(cfg.cpus >= 1, "a machine has at least one CPU");
        // Room for a small run's locks and tasks from the start: growing
        // these a few times per run showed up in profiles of short runs.
        // (Capacity changes no key a slotmap hands out.)
        let mut locks = SlotMap::with_capacity_and_key(INITIAL_LOCKS);
        let bkl = locks.insert(LockState::new(LockKind::Bkl));
        let mut lock_names = Vec::with_capacity(INITIAL_LOCKS);
        lock_names.push((LockName::Static("kernel_flag"), LockKind::Bkl, "kernel_flag"));
        let cpus = (0..cfg.cpus).map(|_| Cpu { current: None, clock: 0, lag: 0 }).collect();
        let mut st = SimState::blank(cfg, chooser);
        st.locks = locks;
        st.lock_names = lock_names;
        st.bkl = bkl;
        st.cpus = cpus;
        Rc::new(Sim {
            st: RefCell::new(st),
            futures: RefCell::new(Vec::with_capacity(INITIAL_TASKS)),
            sampler: RefCell::new(None),
        })
    }

    // ---------------------------------------------------------------
    // Set-up and results
    // ---------------------------------------------------------------

    /// Start a task; it joins the run queue.
    pub fn spawn<F, Fut>(self: &Rc<Self>, name: impl Into<String>, body: F) -> TaskId
    where
        F: FnOnce(Task) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        self.spawn_from(None, name, body)
    }

    fn spawn_from<F, Fut>(self: &Rc<Self>, parent: Option<TaskId>, name: impl Into<String>, body: F) -> TaskId
    where
        F: FnOnce(Task) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        footprint::touch(footprint::TASK_TABLE, 0, true);
        let id = {
            let mut st = self.st.borrow_mut();
            let id = TaskId(st.tasks.len() as u32);
            let ready_at = parent.map(|p| st.task_now(p)).unwrap_or(0);
            let ready_timeline = parent.map(|p| st.task_now(p) + st.task_lag(p)).unwrap_or(0).max(ready_at);
            let name = name.into();
            if st.cfg.record_labels {
                let key = st.task_key(parent, &name);
                st.tags.push(TaskTag { key, done: false });
            }
            st.tasks.push(TaskInfo {
                name,
                at: "start",
                children: 0,
                daemon: false,
                state: TaskState::Runnable,
                spin_read: false,
                cpu: None,
                lock_depth: -1,
                held: Vec::new(),
                ready_at,
                ready_timeline,
                skew: 0,
                stalls: 0,
                waiting: None,
                steps: 0,
                yielded_to: Vec::new(),
            });
            st.runqueue.push_back(id);
            id
        };
        let future = body(Task::new(Rc::clone(self), id));
        self.futures.borrow_mut().push(Some(Box::pin(future)));
        id
    }

    /// The state at the end of a phase that ran to completion — every task
    /// done, no timer pending, not stopped — for starting other runs from
    /// it ([`Sim::from_snapshot`]) instead of running that phase again.
    /// None if anything is still pending.
    pub fn snapshot(&self) -> Option<SimSnapshot> {
        let st = self.st.borrow();
        let settled = st.timers.is_empty() && st.stop.is_none() && self.futures.borrow().iter().all(Option::is_none);
        settled.then(|| SimSnapshot(st.copy_settled(Box::new(crate::ReplayChooser::new(Vec::new())))))
    }

    /// A simulator in the state of `snapshot` (a copy: the snapshot stays
    /// as it is), choosing with `chooser`.
    pub fn from_snapshot(snapshot: &SimSnapshot, chooser: Box<dyn Chooser>) -> Rc<Sim> {
        let st = snapshot.0.copy_settled(chooser);
        let mut futures = Vec::with_capacity(st.tasks.len().max(INITIAL_TASKS));
        futures.resize_with(st.tasks.len(), || None);
        Rc::new(Sim { st: RefCell::new(st), futures: RefCell::new(futures), sampler: RefCell::new(None) })
    }

    /// Put this simulator in the state of `snapshot`, choosing with
    /// `chooser`: what [`Sim::from_snapshot`] makes, but in the buffers this
    /// one has already grown (a search's runs then allocate little). Only a
    /// simulator whose tasks are all shut down can be reset.
    pub fn reset_to(&self, snapshot: &SimSnapshot, chooser: Box<dyn Chooser>) {
        let mut futures = self.futures.borrow_mut();
        assert!(futures.iter().all(Option::is_none), "reset_to a simulator with live tasks: shut it down first");
        *self.sampler.borrow_mut() = None;
        let mut st = self.st.borrow_mut();
        snapshot.0.copy_settled_into(&mut st);
        st.chooser = ChooserSlot::new(chooser);
        futures.clear();
        futures.resize_with(st.tasks.len(), || None);
    }

    /// Sample the model's counters after every step while the event log is
    /// on, and log each change as a `Counter` event (for the trace's
    /// counter tracks). The function only reads the model.
    pub fn set_sampler(&self, sampler: Sampler) {
        *self.sampler.borrow_mut() = Some(sampler);
        self.sample();
    }

    fn sample(&self) {
        let sampler = self.sampler.borrow();
        let Some(sampler) = sampler.as_ref() else { return };
        if !self.st.borrow().cfg.record_events {
            return;
        }
        let mut values = Vec::new();
        sampler(&mut values);
        let mut st = self.st.borrow_mut();
        for (i, &(name, value)) in values.iter().enumerate() {
            if st.counters.get(i) != Some(&(name, value)) {
                st.log(None, EventKind::Counter { name, value }, None, "counter");
            }
        }
        st.counters = values;
    }

    /// Lower the step budget of this phase to `max` (never raise it).
    pub fn limit_steps(&self, max: u64) {
        let mut st = self.st.borrow_mut();
        st.cfg.step_budget = st.cfg.step_budget.min(max);
    }

    /// Mark a task as a daemon (a kernel thread like kswapd).
    pub fn set_daemon(&self, task: TaskId) {
        let mut st = self.st.borrow_mut();
        if !st.tasks[task.0 as usize].daemon {
            st.tasks[task.0 as usize].daemon = true;
            st.daemons.push(task);
        }
    }

    /// Wake every task asleep on a wait queue (`wake_up`), from an
    /// interrupt or outside any task.
    pub fn wake_up(&self, queue: LockId, point: Point) {
        self.st.borrow_mut().wake_all(queue, None, point);
    }

    /// Start a new phase with a new chooser (e.g. the interleaved run after
    /// a deterministic set-up): the record of choices, the step count and
    /// the event log start again.
    pub fn set_chooser(&self, chooser: Box<dyn Chooser>) {
        let mut st = self.st.borrow_mut();
        st.chooser = ChooserSlot::new(chooser);
        st.choices.clear();
        st.labels.clear();
        st.occurrences.clear();
        st.events.clear();
        st.point_counts.clear();
        st.lock_order.clear();
        st.point_pairs.clear();
        st.last_point = None;
        st.events_dropped = 0;
        st.step = 0;
        // The phase starts when the last one ended, on every CPU: CPUs
        // and queued tasks the last phase left behind join the timeline
        // there (their cost clocks stay: a set-up step costs what it costs).
        let now = st.timeline;
        for cpu in &mut st.cpus {
            cpu.lag = cpu.lag.max(now.saturating_sub(cpu.clock));
        }
        for task in &mut st.tasks {
            task.ready_timeline = task.ready_timeline.max(now);
        }
    }

    pub fn new_lock(&self, kind: LockKind, class: &'static str, name: LockName) -> LockId {
        let mut st = self.st.borrow_mut();
        let lock = st.locks.insert(LockState::new(kind));
        footprint::touch(footprint::LOCK_TABLE, 0, true);
        touch_lock(lock, true);
        let number = st.lock_names.len() as u32;
        st.locks[lock].number = number;
        st.lock_names.push((name, kind, class));
        lock
    }

    /// Free a lock with its object. Freeing a held or awaited lock is a
    /// use-after-free in the model and is reported.
    pub fn destroy_lock(&self, lock: LockId) {
        footprint::touch(footprint::LOCK_TABLE, 0, true);
        touch_lock(lock, true);
        let mut st = self.st.borrow_mut();
        if st.locks.get(lock).is_some_and(|l| l.is_held() || !l.sleepers.is_empty()) {
            let name = st.lock_name(lock);
            st.violate(None, "use-after-free", format!("{name} was freed while held or awaited"));
        }
        st.locks.remove(lock);
    }

    pub fn bkl(&self) -> LockId {
        self.st.borrow().bkl
    }

    pub fn lock_name(&self, lock: LockId) -> String {
        self.st.borrow().lock_name(lock)
    }

    pub fn lock_class(&self, lock: LockId) -> &'static str {
        let st = self.st.borrow();
        st.locks.get(lock).map(|l| st.lock_names[l.number as usize].2).unwrap_or("(freed)")
    }

    pub fn task_name(&self, task: TaskId) -> String {
        self.st.borrow().tasks[task.0 as usize].name.clone()
    }

    pub fn task_state(&self, task: TaskId) -> TaskState {
        self.st.borrow().tasks[task.0 as usize].state
    }

    pub fn task_count(&self) -> usize {
        self.st.borrow().tasks.len()
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.st.borrow().step
    }

    /// Simulated time by the cost model: the latest CPU clock, in ns.
    pub fn now(&self) -> u64 {
        let st = self.st.borrow();
        st.cpus.iter().map(|c| c.clock).max().unwrap_or(0).max(st.last_timer)
    }

    /// The end of the run's one timeline so far, in ns: the latest event's
    /// time (at least [`Sim::now`]).
    pub fn timeline(&self) -> u64 {
        let st = self.st.borrow();
        let cpus = st.cpus.iter().map(|c| c.clock + c.lag).max().unwrap_or(0);
        st.timeline.max(cpus).max(st.last_timer)
    }

    /// The stalls of the run so far, in ns: how much longer than the cost
    /// model says the schedule held CPUs and timers back.
    pub fn stalled(&self) -> u64 {
        self.st.borrow().stalled
    }

    /// The choices made since the last [`Sim::set_chooser`], in order.
    pub fn choices(&self) -> Vec<u32> {
        self.st.borrow().choices.clone()
    }

    /// With `record_labels`: the label chosen at each decision since the
    /// last [`Sim::set_chooser`], in run-independent terms.
    pub fn semantic_events(&self) -> Vec<SemanticEvent> {
        let st = self.st.borrow();
        let view = LabelView { labels: &[], tasks: &st.tags };
        st.labels.iter().map(|l| view.event(l)).collect()
    }

    /// A task's key ([`TaskTag::key`]; empty without `record_labels`).
    pub fn task_key(&self, task: TaskId) -> String {
        self.st.borrow().tags.get(task.0 as usize).map(|t| t.key.clone()).unwrap_or_default()
    }

    /// The event log so far.
    pub fn events(&self) -> Vec<Event> {
        self.st.borrow().events.iter().cloned().collect()
    }

    /// How many early events the log dropped to keep within `event_limit`.
    pub fn events_dropped(&self) -> u64 {
        self.st.borrow().events_dropped
    }

    /// Stop the run at the end of this step with [`Outcome::Aborted`].
    pub fn abort(&self) {
        let mut st = self.st.borrow_mut();
        if st.stop.is_none() {
            st.stop = Some(Outcome::Aborted);
        }
    }

    /// One event as a line of text: step, time, CPU, task, what, lock, point.
    pub fn render_event(&self, event: &Event) -> String {
        let st = self.st.borrow();
        let cpu = event.cpu.map(|c| format!("cpu{c}")).unwrap_or_else(|| "irq".to_string());
        let task = event.task.map(|t| st.tasks[t.0 as usize].name.clone()).unwrap_or_else(|| "-".to_string());
        let lock = event.lock_number.map(|n| st.lock_names[n as usize].0.to_string()).unwrap_or_default();
        let what = match &event.kind {
            EventKind::Point => "point".to_string(),
            EventKind::Dispatch => "dispatch".to_string(),
            EventKind::Preempt => "preempt".to_string(),
            EventKind::Attempt => "try".to_string(),
            EventKind::Contended => "contended".to_string(),
            EventKind::Acquired => "acquired".to_string(),
            EventKind::Released => "released".to_string(),
            EventKind::BklDropped => "bkl-dropped".to_string(),
            EventKind::Sleep(_) => "sleep".to_string(),
            EventKind::Wake => "wake".to_string(),
            EventKind::Note(_) => "note".to_string(),
            EventKind::Exit => "exit".to_string(),
            EventKind::Stall { .. } => "stall".to_string(),
            EventKind::Counter { .. } => "counter".to_string(),
        };
        let time = format_ns(event.time);
        match &event.kind {
            // Free text goes last, after the point that said it.
            EventKind::Note(text) => {
                format!("{:>7} {time:>14} {cpu:<5} {task:<12} note        {}: {text}", event.step, event.point)
            }
            EventKind::Counter { name, value } => {
                format!("{:>7} {time:>14} {cpu:<5} {task:<12} counter     {name} = {value}", event.step)
            }
            EventKind::Stall { from, cause } => format!(
                "{:>7} {time:>14} {cpu:<5} {task:<12} stall       {} {} since {} (not in the cost model)",
                event.step,
                cause.name(),
                format_ns(event.time - from),
                format_ns(*from)
            ),
            _ => format!("{:>7} {time:>14} {cpu:<5} {task:<12} {what:<11} {lock:<26} {}", event.step, event.point)
                .trim_end()
                .to_string(),
        }
    }

    /// The name and class of the lock an event is about, as it was when the
    /// event happened (the lock may be freed since).
    pub fn event_lock(&self, event: &Event) -> Option<(String, &'static str)> {
        let st = self.st.borrow();
        event.lock_number.map(|n| {
            let (name, _, class) = &st.lock_names[n as usize];
            (name.to_string(), *class)
        })
    }

    /// Whether an event tells the story of an interleaving: who ran, who
    /// waited, slept, woke, and what the kernel said — not every spinlock
    /// taken without contention.
    pub fn is_key_event(&self, event: &Event) -> bool {
        let st = self.st.borrow();
        let sleeping_lock = event.lock_number.is_some_and(|n| !st.lock_names[n as usize].1.forbids_sleep());
        match event.kind {
            EventKind::Attempt | EventKind::Point | EventKind::Counter { .. } => false,
            EventKind::Acquired | EventKind::Released => sleeping_lock,
            _ => true,
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.st.borrow().stop.is_some()
    }

    // ---------------------------------------------------------------
    // The scheduler loop
    // ---------------------------------------------------------------

    /// Run until every task is done, an invariant breaks, nothing can run,
    /// or the step budget is spent.
    pub fn run(self: &Rc<Self>) -> Outcome {
        let record_footprints = self.st.borrow().cfg.record_footprints;
        footprint::set_recording(record_footprints);
        let outcome = self.run_steps(record_footprints);
        footprint::set_recording(false);
        if record_footprints {
            // For a DPOR search: whether the run stopped early, and the
            // steps its end cut short (none in a deadlock: nothing could step).
            let st = &mut *self.st.borrow_mut();
            let stopped = !matches!(outcome, Outcome::Finished | Outcome::Deadlock(_));
            let ready = |t: &TaskInfo| matches!(t.state, TaskState::Runnable | TaskState::Spinning(_));
            let mut cut: Vec<StepKind> = Vec::new();
            if !matches!(outcome, Outcome::Deadlock(_)) {
                let tasks = (0..st.tasks.len() as u32).map(TaskId);
                cut.extend(tasks.filter(|t| ready(&st.tasks[t.0 as usize])).map(StepKind::Task));
                if !st.timers.is_empty() {
                    cut.push(StepKind::Timer);
                }
            }
            st.chooser.ended(&cut, stopped);
        }
        outcome
    }

    fn run_steps(self: &Rc<Self>, record_footprints: bool) -> Outcome {
        loop {
            let next = {
                let mut st = self.st.borrow_mut();
                match st.decided.take() {
                    Some(next) => next,
                    None => st.next_step(),
                }
            };
            match next {
                Next::Over(outcome) => return outcome,
                Next::Step(StepOption::Run(cpu)) => {
                    let task = self.st.borrow().cpus[cpu].current.expect("a busy CPU has a task");
                    self.st.borrow_mut().catch_up(cpu, task);
                    self.poll_task(task);
                }
                Next::Step(StepOption::Dispatch(task)) => {
                    self.st.borrow_mut().dispatch(task);
                    self.poll_task(task);
                }
                Next::Step(StepOption::Timer) => self.fire_timer(),
            }
            if std::mem::take(&mut self.st.borrow_mut().step_ended) {
                // The task went on past a point (`go_on`), which ended
                // the step already.
                continue;
            }
            self.end_step(record_footprints);
        }
    }

    /// After a step: hand its footprint to the chooser, sample the counters.
    #[inline]
    pub(super) fn end_step(&self, record_footprints: bool) {
        if record_footprints {
            let footprint = footprint::take();
            self.st.borrow_mut().chooser.stepped(footprint);
        }
        if self.sampler.borrow().is_some() {
            self.sample();
            // Reading the counters is the report's, not the step's.
            drop(footprint::take());
        }
    }

    /// Drop every task's future and the sampler. Futures hold `Rc<Sim>`,
    /// and a sampler may hold what holds it (the kernel), so a finished
    /// simulation must be shut down to be freed.
    pub fn shutdown(&self) {
        let futures = std::mem::take(&mut *self.futures.borrow_mut());
        drop(futures);
        let sampler = self.sampler.borrow_mut().take();
        drop(sampler);
    }

    fn poll_task(&self, task: TaskId) {
        let mut future = self.futures.borrow_mut()[task.0 as usize].take().expect("a runnable task has a future");
        self.st.borrow_mut().start_step(task);
        let mut cx = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(()) => self.st.borrow_mut().finish(task),
            Poll::Pending => self.futures.borrow_mut()[task.0 as usize] = Some(future),
        }
    }

    fn fire_timer(&self) {
        // Which timer is the earliest depends on them all.
        footprint::touch(footprint::TIMERS, footprint::ALL, true);
        let (due, action) = {
            let mut st = self.st.borrow_mut();
            let timers::Timer { due, lag, action, .. } = st.timers.pop_first().expect("timer option without a timer");
            if matches!(action, TimerAction::Call(..)) {
                st.io_timers -= 1;
            }
            st.last_timer = st.last_timer.max(due);
            // On the timeline the timer is due at its cost-model time plus
            // the stalls of the CPU that set it; if the schedule fires it
            // after other steps that came later, it fires late: a stall.
            let (on_time, task, cause) = match &action {
                TimerAction::Wake(task) => (due + lag, *task, StallCause::TimerLate),
                TimerAction::Call(_, task, _) => (due + lag, *task, StallCause::IoLate),
            };
            let fired = on_time.max(st.timeline);
            if fired > on_time {
                st.stalled += fired - on_time;
                st.log_stall(None, Some(task), on_time, fired, cause, None);
            }
            st.timeline = fired;
            st.irq_timeline = Some(fired);
            st.irq_skew = st.tasks[task.0 as usize].skew;
            st.irq_task = Some(task);
            (due, action)
        };
        match action {
            TimerAction::Wake(task) => self.st.borrow_mut().wake(task, due, "timer"),
            TimerAction::Call(callback, _, _) => {
                self.st.borrow_mut().irq_time = Some(due);
                callback();
                self.st.borrow_mut().irq_time = None;
            }
        }
        let mut st = self.st.borrow_mut();
        st.irq_timeline = None;
        st.irq_task = None;
    }

    /// Run `callback` as an interrupt `delay_ns` after `from`'s now (an
    /// asynchronous I/O completing). It may release page locks with
    /// [`Sim::irq_unlock_page`].
    pub fn after(&self, from: TaskId, delay_ns: u64, callback: impl FnOnce() + 'static) {
        let mut st = self.st.borrow_mut();
        let due = st.task_now(from) + delay_ns;
        touch_timer(due);
        let seq = st.timer_seq;
        st.timer_seq += 1;
        let at = st.tasks[from.0 as usize].at;
        let lag = st.task_lag(from);
        st.timers.insert(due, seq, lag, TimerAction::Call(Box::new(callback), from, at));
        st.io_timers += 1;
    }

    /// I/O completion clears PG_locked and wakes the waiters.
    pub fn irq_unlock_page(&self, page_lock: LockId, point: Point) {
        self.st.borrow_mut().release(None, page_lock, false, point);
    }

    // ---------------------------------------------------------------
    // Point watches and the run's statistics. (What a task asks of the
    // scheduler is in sim/seam.rs, the only surface `Task` uses.)
    // ---------------------------------------------------------------

    /// Count the passes of the named `point` from now on — a task that
    /// yielded there going on to its next point, back to user space or to
    /// its end — and wake every task asleep on `queue` at each one (for a
    /// scenario that orders its tasks by what another one has done).
    /// Returns the watch's number for [`Sim::point_passes`].
    pub fn watch_point(&self, point: Point, queue: LockId) -> usize {
        let mut st = self.st.borrow_mut();
        st.watches.push(PointWatch { point, queue, passes: 0 });
        st.watches.len() - 1
    }

    /// How often the point of watch `watch` has been passed (its count
    /// lives with its wait queue, for the step's footprint).
    pub fn point_passes(&self, watch: usize) -> u64 {
        let st = self.st.borrow();
        touch_lock(st.watches[watch].queue, false);
        st.watches[watch].passes
    }

    /// The lock-class orders this run took (with `lock_order` on): (class
    /// held, class taken, where the held one was taken, where the other was).
    pub fn lock_order(&self) -> Vec<(&'static str, &'static str, Point, Point)> {
        self.st.borrow().lock_order.iter().map(|&((a, b), (pa, pb))| (a.0, b.0, pa, pb)).collect()
    }

    /// With `point_pairs` on: every (A, B) where a task reached named point
    /// A and the next named point reached, by another task, was B.
    pub fn point_pairs(&self) -> Vec<(Point, Point)> {
        self.st.borrow().point_pairs.iter().map(|&(a, b)| (a.0, b.0)).collect()
    }

    /// The named points reached so far (with `count_points`), with counts.
    pub fn point_counts(&self) -> Vec<(Point, u64)> {
        self.st.borrow().point_counts.iter().map(|(&p, &n)| (p, n)).collect()
    }
}

/// Nanoseconds as milliseconds with ns resolution (`1.234567ms`), no floats.
pub fn format_ns(ns: u64) -> String {
    format!("{}.{:06}ms", ns / 1_000_000, ns % 1_000_000)
}

/// The run's chooser, with what it says of itself read once (each step
/// would otherwise ask it through a virtual call).
struct ChooserSlot {
    chooser: Box<dyn Chooser>,
    /// [`Chooser::reads_options`].
    reads_options: bool,
    /// [`Chooser::one_option_is_free`].
    one_option_is_free: bool,
}

impl ChooserSlot {
    fn new(chooser: Box<dyn Chooser>) -> ChooserSlot {
        let (reads_options, one_option_is_free) = (chooser.reads_options(), chooser.one_option_is_free());
        ChooserSlot { chooser, reads_options, one_option_is_free }
    }
}

impl std::ops::Deref for ChooserSlot {
    type Target = dyn Chooser;

    fn deref(&self) -> &(dyn Chooser + 'static) {
        &*self.chooser
    }
}

impl std::ops::DerefMut for ChooserSlot {
    fn deref_mut(&mut self) -> &mut (dyn Chooser + 'static) {
        &mut *self.chooser
    }
}

impl SimState {
    /// The top of a step: whether the run is over (stopped, finished,
    /// deadlocked, out of steps, pruned by the chooser), and if not, the
    /// option the chooser picks (the step is counted).
    pub(super) fn next_step(&mut self) -> Next {
        if let Some(outcome) = self.stop.clone() {
            return Next::Over(outcome);
        }
        if let Some(cpu) = self.sole_option() {
            // Most steps: the task on the CPU goes on and nothing else can
            // step. The same checks and the same call of the chooser as
            // below, without building the option list.
            debug_assert!({
                let mut options = Vec::new();
                self.options_into(&mut options);
                matches!(options[..], [StepOption::Run(c)] if c == cpu)
            });
            if self.step >= self.cfg.step_budget {
                return Next::Over(Outcome::StepLimit(self.step));
            }
            if !self.cfg.record_labels && !self.chooser.reads_options {
                if self.chooser.one_option_is_free {
                    // The chooser would pick 0 and change nothing.
                    if self.cfg.record_choices {
                        self.choices.push(0);
                    }
                } else if self.choose(Decision::Step { options: &[], times: &[] }, 1) == PRUNE {
                    return Next::Over(Outcome::Aborted);
                }
                self.step += 1;
                return Next::Step(StepOption::Run(cpu));
            }
        }
        let mut options = std::mem::take(&mut self.scratch_options);
        self.options_into(&mut options);
        // A task that can run or be dispatched is not done, so only a run
        // with timers alone left to fire can be finished.
        let someone_runs = options.iter().any(|o| !matches!(o, StepOption::Timer));
        if !someone_runs && self.finished() {
            self.scratch_options = options;
            return Next::Over(Outcome::Finished);
        }
        if !self.can_progress(&options) {
            return Next::Over(Outcome::Deadlock(self.describe_waiters()));
        }
        if self.step >= self.cfg.step_budget {
            return Next::Over(Outcome::StepLimit(self.step));
        }
        // A chooser that picks by index alone (the random walk) gets no
        // option kinds or times: nothing is computed for it.
        let reads_options = self.cfg.record_labels || self.chooser.reads_options;
        let (mut kinds, mut times) = (Vec::new(), Vec::new());
        if reads_options {
            kinds = std::mem::take(&mut self.scratch_kinds);
            kinds.clear();
            times = std::mem::take(&mut self.scratch_times);
            times.clear();
            kinds.extend(options.iter().map(|o| match *o {
                StepOption::Run(cpu) => StepKind::Task(self.cpus[cpu].current.expect("a busy CPU")),
                StepOption::Dispatch(task) => StepKind::Task(task),
                StepOption::Timer => StepKind::Timer,
            }));
            times.extend(options.iter().map(|o| self.option_time(*o)));
        }
        let decision = Decision::Step { options: &kinds, times: &times };
        let pick = if self.cfg.record_labels {
            let labels: Vec<Label> = kinds.iter().map(|k| self.step_label(*k)).collect();
            self.choose_labeled(decision, options.len(), labels)
        } else {
            self.choose(decision, options.len())
        };
        let next = if pick == PRUNE {
            Next::Over(Outcome::Aborted)
        } else {
            self.step += 1;
            Next::Step(options[pick])
        };
        self.scratch_options = options;
        if reads_options {
            self.scratch_kinds = kinds;
            self.scratch_times = times;
        }
        next
    }

    /// Done when every task is, but daemons asleep (not mid-work), and no
    /// I/O is in flight.
    fn finished(&mut self) -> bool {
        let settled = |t: &TaskInfo| t.state == TaskState::Done || (t.daemon && t.state == TaskState::Sleeping);
        while self.settled_prefix < self.tasks.len() && {
            let t = &self.tasks[self.settled_prefix];
            t.state == TaskState::Done || t.daemon
        } {
            self.settled_prefix += 1;
        }
        self.io_timers == 0
            && self.daemons.iter().all(|d| settled(&self.tasks[d.0 as usize]))
            && self.tasks[self.settled_prefix..].iter().all(settled)
    }

    /// A step of `task` starts (the loop polls it, or it goes on past a
    /// point).
    #[inline]
    pub(super) fn start_step(&mut self, task: TaskId) {
        footprint::touch(footprint::TASK, task.0.into(), true);
        self.tasks[task.0 as usize].steps += 1;
        let cost = self.cfg.costs.step;
        self.charge(task, cost);
    }

    /// A state with nothing in it (no CPU, no lock, not even the BKL):
    /// what [`Sim::new`] fills in, or a snapshot is copied into.
    fn blank(cfg: SimConfig, chooser: Box<dyn Chooser>) -> SimState {
        SimState {
            cfg,
            tasks: Vec::with_capacity(INITIAL_TASKS),
            cpus: Vec::new(),
            runqueue: VecDeque::new(),
            locks: SlotMap::with_key(),
            lock_names: Vec::new(),
            timers: TimerQueue::default(),
            timer_seq: 0,
            chooser: ChooserSlot::new(chooser),
            choices: Vec::new(),
            tags: Vec::new(),
            labels: Vec::new(),
            occurrences: FastMap::default(),
            step: 0,
            events: VecDeque::new(),
            events_dropped: 0,
            point_counts: FastMap::default(),
            lock_order: Vec::new(),
            point_pairs: FastSet::default(),
            last_point: None,
            bkl: LockId::default(),
            stop: None,
            irq_time: None,
            last_timer: 0,
            timeline: 0,
            irq_timeline: None,
            stalled: 0,
            irq_skew: 0,
            irq_task: None,
            counters: Vec::new(),
            op_read: false,
            op_trylock: false,
            scratch_options: Vec::new(),
            scratch_kinds: Vec::new(),
            scratch_times: Vec::new(),
            settled_prefix: 0,
            decided: None,
            step_ended: false,
            daemons: Vec::new(),
            io_timers: 0,
            watches: Vec::new(),
        }
    }

    /// A copy of a settled state (no timer pending, so nothing that cannot
    /// be copied) that chooses with `chooser`.
    fn copy_settled(&self, chooser: Box<dyn Chooser>) -> SimState {
        let mut st = SimState::blank(self.cfg.clone(), chooser);
        self.copy_settled_into(&mut st);
        st
    }

    /// Make `into` a copy of this settled state (all but its chooser),
    /// reusing `into`'s buffers: their capacity stays, so a run that
    /// starts from it grows none that an earlier run grew. Every field is
    /// named, so that a new one cannot be left out of snapshots.
    fn copy_settled_into(&self, into: &mut SimState) {
        let SimState {
            cfg,
            tasks,
            cpus,
            runqueue,
            locks,
            lock_names,
            timers,
            timer_seq,
            chooser: _,
            choices,
            tags,
            labels,
            occurrences,
            step,
            events,
            events_dropped,
            point_counts,
            lock_order,
            point_pairs,
            last_point,
            bkl,
            stop,
            irq_time,
            last_timer,
            timeline,
            irq_timeline,
            stalled,
            irq_skew,
            irq_task,
            counters,
            op_read: _,
            op_trylock: _,
            scratch_options: _,
            scratch_kinds: _,
            scratch_times: _,
            settled_prefix,
            decided: _,
            step_ended: _,
            daemons,
            io_timers,
            watches,
        } = self;
        assert!(timers.is_empty(), "a settled simulator has no timer pending");
        into.cfg.clone_from(cfg);
        into.tasks.clone_from(tasks);
        into.cpus.clone_from(cpus);
        into.runqueue.clone_from(runqueue);
        into.locks.clone_from(locks);
        into.lock_names.clone_from(lock_names);
        into.timers.clear();
        into.timer_seq = *timer_seq;
        into.choices.clone_from(choices);
        into.tags.clone_from(tags);
        into.labels.clone_from(labels);
        fast_hash::copy_map(&mut into.occurrences, occurrences);
        into.step = *step;
        into.events.clone_from(events);
        into.events_dropped = *events_dropped;
        fast_hash::copy_map(&mut into.point_counts, point_counts);
        into.lock_order.clone_from(lock_order);
        fast_hash::copy_set(&mut into.point_pairs, point_pairs);
        into.last_point = *last_point;
        into.bkl = *bkl;
        into.stop.clone_from(stop);
        into.irq_time = *irq_time;
        into.last_timer = *last_timer;
        into.timeline = *timeline;
        into.irq_timeline = *irq_timeline;
        into.stalled = *stalled;
        into.irq_skew = *irq_skew;
        into.irq_task = *irq_task;
        into.counters.clone_from(counters);
        into.op_read = false;
        into.op_trylock = false;
        into.settled_prefix = *settled_prefix;
        into.decided = None;
        into.step_ended = false;
        into.daemons.clone_from(daemons);
        into.io_timers = *io_timers;
        into.watches.clone_from(watches);
    }

    /// `task` goes on from the point it yielded at: a pass of that point,
    /// counted for a watch of it, whose waiters wake.
    #[inline]
    fn leave_point(&mut self, task: TaskId) {
        if !self.watches.is_empty() {
            self.pass_watched_point(task);
        }
    }

    /// A pass of the point `task` leaves, for each watch of it.
    fn pass_watched_point(&mut self, task: TaskId) {
        let at = self.tasks[task.0 as usize].at;
        for i in 0..self.watches.len() {
            if self.watches[i].point == at {
                self.watches[i].passes += 1;
                let queue = self.watches[i].queue;
                self.wake_all(queue, Some(task), at);
            }
        }
    }

    /// "spins on NAME", "sleeps on NAME", "sleeps N ns at POINT": by lock
    /// number, so a lock freed since still has its name.
    fn describe_waiting(&self, waiting: &Waiting) -> String {
        let name = |number: Option<u32>| match number {
            Some(n) => self.lock_names[n as usize].0.to_string(),
            None => "(freed lock)".to_string(),
        };
        match *waiting {
            Waiting::Spins { number, .. } => format!("spins on {}", name(number)),
            Waiting::Sleeps { number, .. } => format!("sleeps on {}", name(number)),
            Waiting::Timer { ns, point } => format!("sleeps {ns} ns at {point}"),
        }
    }

    fn lock_name(&self, lock: LockId) -> String {
        match self.locks.get(lock) {
            Some(l) => self.lock_names[l.number as usize].0.to_string(),
            None => "(freed lock)".to_string(),
        }
    }

    fn task_now(&self, task: TaskId) -> u64 {
        let info = &self.tasks[task.0 as usize];
        match info.cpu {
            Some(cpu) => self.cpus[cpu].clock,
            None => info.ready_at,
        }
    }

    /// The stalls behind `task`'s time: its CPU's lag, or when off CPU the
    /// lag it left with (or was woken with).
    fn task_lag(&self, task: TaskId) -> u64 {
        let info = &self.tasks[task.0 as usize];
        match info.cpu {
            Some(cpu) => self.cpus[cpu].lag,
            None => info.ready_timeline.saturating_sub(info.ready_at),
        }
    }

    /// Before `task` steps on `cpu`: if the CPU's time on the timeline is
    /// behind the latest event, the schedule held it back while other
    /// CPUs ran: it catches up, and the gap is a stall.
    pub(super) fn catch_up(&mut self, cpu: usize, task: TaskId) {
        // (A spinner's wait for the lock's release comes after: `try_acquire`.)
        let natural = self.cpus[cpu].clock + self.cpus[cpu].lag;
        if natural < self.timeline {
            let gap = self.timeline - natural;
            self.cpus[cpu].lag += gap;
            self.stalled += gap;
            let to = self.timeline;
            self.log_stall(Some(cpu), Some(task), natural, to, StallCause::Cpu, None);
        }
    }

    /// Log a stall span [from, to] (the event is at `to`).
    fn log_stall(
        &mut self,
        cpu: Option<usize>,
        task: Option<TaskId>,
        from: u64,
        to: u64,
        cause: StallCause,
        lock: Option<LockId>,
    ) {
        if let Some(t) = task {
            self.tasks[t.0 as usize].stalls += to - from;
        }
        if !self.cfg.record_events {
            return;
        }
        if self.events.len() >= self.cfg.event_limit.max(1) {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        let cost = to - task.map(|t| self.tasks[t.0 as usize].stalls).unwrap_or(0);
        let point = task.map(|t| self.tasks[t.0 as usize].at).unwrap_or("timer");
        let lock_number = lock.and_then(|l| self.locks.get(l)).map(|l| l.number);
        self.events.push_back(Event {
            step: self.step,
            time: to,
            cost,
            read: false,
            trylock: false,
            cpu,
            task,
            kind: EventKind::Stall { from, cause },
            lock,
            lock_number,
            point,
        });
        self.timeline = self.timeline.max(to);
    }

    /// A task's time by the cost model: its clock less the catch-ups the
    /// order made.
    fn task_cost(&self, task: TaskId) -> u64 {
        self.task_now(task).saturating_sub(self.tasks[task.0 as usize].skew)
    }

    /// The cost-model time of the interrupt being run.
    fn irq_cost(&self) -> u64 {
        self.irq_time.unwrap_or(0).saturating_sub(self.irq_skew)
    }

    fn charge(&mut self, task: TaskId, ns: u64) {
        if let Some(cpu) = self.tasks[task.0 as usize].cpu {
            self.cpus[cpu].clock += ns;
        }
    }

    /// Log an event, if the run keeps the log. Inlined, so that a run
    /// without a log pays a test per event, not a call.
    #[inline]
    fn log(&mut self, task: Option<TaskId>, kind: EventKind, lock: Option<LockId>, point: Point) {
        if self.cfg.record_events {
            self.push_event(task, kind, lock, point);
        }
    }

    /// Log a lock operation with its read/trylock flags.
    #[inline]
    fn log_lock_op(&mut self, task: TaskId, kind: EventKind, lock: LockId, point: Point, read: bool, trylock: bool) {
        if self.cfg.record_events {
            self.op_read = read;
            self.op_trylock = trylock;
            self.push_event(Some(task), kind, Some(lock), point);
            self.op_read = false;
            self.op_trylock = false;
        }
    }

    #[inline(never)]
    fn push_event(&mut self, task: Option<TaskId>, kind: EventKind, lock: Option<LockId>, point: Point) {
        // A task on a CPU is at its CPU's timeline time; anything else (an
        // interrupt, a task woken off CPU) happens now: at the timer's
        // firing, or at the latest event.
        let (cpu, time) = match task.map(|t| (t, self.tasks[t.0 as usize].cpu)) {
            Some((_, Some(cpu))) => (Some(cpu), self.cpus[cpu].clock + self.cpus[cpu].lag),
            Some((_, None)) | None => (None, self.irq_timeline.unwrap_or(self.timeline)),
        };
        // Never earlier than an event already logged (`catch_up` keeps a
        // stepping CPU at or past it, so this only guards).
        let time = time.max(self.timeline);
        self.timeline = time;
        // The cost-model time: the timeline less the stalls of the task (of
        // the task whose I/O or timer it is, for an interrupt).
        let stalled = task.or(self.irq_task).map(|t| self.tasks[t.0 as usize].stalls).unwrap_or(0);
        let cost = time.saturating_sub(stalled);
        if self.events.len() >= self.cfg.event_limit.max(1) {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        let lock_number = lock.and_then(|l| self.locks.get(l)).map(|l| l.number);
        let (read, trylock) = (self.op_read, self.op_trylock);
        self.events.push_back(Event {
            step: self.step,
            time,
            cost,
            read,
            trylock,
            cpu,
            task,
            kind,
            lock,
            lock_number,
            point,
        });
    }

    fn violate(&mut self, task: Option<TaskId>, invariant: &'static str, message: String) {
        self.log(task, EventKind::Note(format!("VIOLATION {invariant}: {message}")), None, "violation");
        if self.stop.is_none() {
            self.stop = Some(Outcome::Violation(Violation { invariant, message, step: self.step, task }));
        }
    }

    /// A spawned task's key ([`TaskTag::key`]).
    fn task_key(&mut self, parent: Option<TaskId>, name: &str) -> String {
        match parent {
            Some(p) => {
                self.tasks[p.0 as usize].children += 1;
                format!("{}/{}", self.tags[p.0 as usize].key, self.tasks[p.0 as usize].children)
            }
            None => {
                let word: String = name.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
                match self.tasks.iter().filter(|t| t.name == name).count() {
                    0 => word,
                    n => format!("{word}~{}", n + 1),
                }
            }
        }
    }

    /// The label of (class, task, point), with its next occurrence.
    fn label(&self, class: EventClass, task: TaskId, point: Point) -> Label {
        let taken = self.occurrences.get(&(class, task, point)).copied().unwrap_or(0);
        Label { class, task, point, occurrence: taken + 1 }
    }

    /// A step option's label: the task's pending point, or for the timer,
    /// whom the earliest timer wakes (or whose I/O it completes) and where.
    fn step_label(&self, kind: StepKind) -> Label {
        match kind {
            StepKind::Task(task) => self.label(EventClass::Run, task, self.tasks[task.0 as usize].at),
            StepKind::Timer => {
                let (task, point) = match self.timers.first().map(|t| &t.action) {
                    Some(TimerAction::Wake(task)) => (*task, self.tasks[task.0 as usize].at),
                    Some(TimerAction::Call(_, task, point)) => (*task, *point),
                    None => unreachable!("a timer option has a timer"),
                };
                self.label(EventClass::Timer, task, point)
            }
        }
    }

    /// [`SimState::choose`] with the options' labels; records the chosen one.
    fn choose_labeled(&mut self, decision: Decision<'_>, n: usize, labels: Vec<Label>) -> usize {
        let view = LabelView { labels: &labels, tasks: &self.tags };
        let pick = self.chooser.choose_labeled(decision, n, &view);
        if pick == PRUNE {
            return pick;
        }
        debug_assert!(pick < n);
        if self.cfg.record_choices {
            self.choices.push(pick as u32);
        }
        let chosen = labels[pick.min(labels.len() - 1)];
        *self.occurrences.entry((chosen.class, chosen.task, chosen.point)).or_default() += 1;
        self.labels.push(chosen);
        pick
    }

    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        let pick = self.chooser.choose(decision, n);
        if pick == PRUNE {
            return pick;
        }
        debug_assert!(pick < n);
        if self.cfg.record_choices {
            self.choices.push(pick as u32);
        }
        pick
    }

    fn can_acquire(&self, task: TaskId, lock: LockId, read: bool) -> bool {
        match self.locks.get(lock) {
            Some(l) => l.available(read) || (l.kind == LockKind::Bkl && l.owner == Some(task)),
            // A freed lock: let the task step so that it reports the use-after-free.
            None => true,
        }
    }

    /// The step options, into `options` (cleared first).
    fn options_into(&self, options: &mut Vec<StepOption>) {
        options.clear();
        let mut idle_cpu = false;
        for (index, cpu) in self.cpus.iter().enumerate() {
            match cpu.current {
                None => idle_cpu = true,
                Some(task) => {
                    let info = &self.tasks[task.0 as usize];
                    match info.state {
                        TaskState::Runnable => options.push(StepOption::Run(index)),
                        TaskState::Spinning(lock) if self.can_acquire(task, lock, info.spin_read) => {
                            options.push(StepOption::Run(index))
                        }
                        _ => {}
                    }
                }
            }
        }
        let mut held_back = Vec::new();
        if idle_cpu {
            for &t in &self.runqueue {
                if self.yields_still(t) {
                    held_back.push(StepOption::Dispatch(t));
                } else {
                    options.push(StepOption::Dispatch(t));
                }
            }
        }
        if !self.timers.is_empty() {
            options.push(StepOption::Timer);
        }
        if options.is_empty() {
            // Only a yielder can go on (the others wait for it): let it.
            options.extend(held_back);
        }
    }

    /// The CPU whose task is the one step option, when no timer is
    /// pending, no CPU is idle (or none has a task to dispatch) and only
    /// that CPU's task can step: what [`Self::options_into`] would list
    /// alone. None otherwise, and then `next_step` builds the list.
    fn sole_option(&self) -> Option<usize> {
        if !self.timers.is_empty() {
            return None;
        }
        let mut sole = None;
        for (index, cpu) in self.cpus.iter().enumerate() {
            let task = match cpu.current {
                Some(task) => task,
                None if self.runqueue.is_empty() => continue,
                None => return None,
            };
            let info = &self.tasks[task.0 as usize];
            let can_step = match info.state {
                TaskState::Runnable => true,
                TaskState::Spinning(lock) => self.can_acquire(task, lock, info.spin_read),
                _ => false,
            };
            if can_step {
                if sole.is_some() {
                    return None;
                }
                sole = Some(index);
            }
        }
        sole
    }

    /// Whether `task` yielded in cond_resched and some task it yielded to
    /// has neither stepped since nor stopped being able to.
    fn yields_still(&self, task: TaskId) -> bool {
        self.tasks[task.0 as usize].yielded_to.iter().any(|&(other, steps)| {
            let info = &self.tasks[other.0 as usize];
            let can_step = match info.state {
                TaskState::Runnable => true,
                TaskState::Spinning(lock) => self.can_acquire(other, lock, info.spin_read),
                _ => false,
            };
            info.steps == steps && can_step
        })
    }

    /// When an option would happen in simulated time: a busy CPU's clock,
    /// an idle CPU's clock or the queued task's ready time (the later), or
    /// the earliest timer's due time.
    fn option_time(&self, option: StepOption) -> u64 {
        match option {
            StepOption::Run(cpu) => self.cpus[cpu].clock,
            StepOption::Dispatch(task) => {
                let idle = self.cpus.iter().filter(|c| c.current.is_none()).map(|c| c.clock).min().unwrap_or(0);
                idle.max(self.tasks[task.0 as usize].ready_at)
            }
            StepOption::Timer => self.timers.first().map_or(u64::MAX, |t| t.due),
        }
    }

    /// Whether some option can get a non-daemon task further: anything
    /// but a daemon's own periodic wake-up.
    fn can_progress(&self, options: &[StepOption]) -> bool {
        options.iter().any(|o| match o {
            StepOption::Run(_) | StepOption::Dispatch(_) => true,
            StepOption::Timer => self.timers.iter().any(|timer| match timer.action {
                TimerAction::Wake(task) => !self.tasks[task.0 as usize].daemon,
                TimerAction::Call(..) => true,
            }),
        })
    }

    fn wake_all(&mut self, queue: LockId, waker: Option<TaskId>, point: Point) {
        touch_lock(queue, true);
        let now = match waker {
            Some(t) => self.task_now(t),
            None => self.irq_time.unwrap_or(0),
        };
        let sleepers = match self.locks.get_mut(queue) {
            Some(state) => std::mem::take(&mut state.sleepers),
            None => VecDeque::new(),
        };
        for task in sleepers {
            self.wake(task, now, point);
        }
    }

    fn dispatch(&mut self, task: TaskId) {
        footprint::touch(footprint::CPUS, 0, true);
        // The idle CPU that has been idle longest (earliest clock), as the
        // option's time in `option_time` assumes: a CPU whose clock ran
        // ahead must not delay a task another idle CPU could run now.
        let cpu = (0..self.cpus.len())
            .filter(|&c| self.cpus[c].current.is_none())
            .min_by_key(|&c| self.cpus[c].clock)
            .expect("dispatch needs an idle CPU");
        self.runqueue.retain(|&t| t != task);
        let switch = self.cfg.costs.context_switch;
        let info = &mut self.tasks[task.0 as usize];
        info.cpu = Some(cpu);
        // A task that yielded in cond_resched could be dispatched only once
        // the tasks it yielded to had stepped or could not (`yields_still`):
        // the dispatch depends on their steps, so it reads them.
        for &(other, _) in &info.yielded_to {
            footprint::touch(footprint::TASK, other.0.into(), false);
        }
        info.yielded_to.clear();
        let (ready_at, ready_timeline) = (info.ready_at, info.ready_timeline);
        // On the timeline the task starts when both it and the CPU are
        // ready, unless the schedule ran other steps first: a stall.
        let natural = (self.cpus[cpu].clock + self.cpus[cpu].lag).max(ready_timeline);
        if natural < self.timeline {
            self.stalled += self.timeline - natural;
            let to = self.timeline;
            self.log_stall(Some(cpu), Some(task), natural, to, StallCause::Dispatch, None);
        }
        let start = natural.max(self.timeline);
        let c = &mut self.cpus[cpu];
        c.clock = c.clock.max(ready_at);
        c.lag = start - c.clock;
        c.clock += switch;
        self.cpus[cpu].current = Some(task);
        self.log(Some(task), EventKind::Dispatch, None, "schedule");
    }

    fn leave_cpu(&mut self, task: TaskId) {
        footprint::touch(footprint::CPUS, 0, true);
        let now = self.task_now(task);
        let timeline = now + self.task_lag(task);
        let info = &mut self.tasks[task.0 as usize];
        if let Some(cpu) = info.cpu.take() {
            self.cpus[cpu].current = None;
        }
        info.ready_at = now;
        info.ready_timeline = timeline.max(now);
    }

    fn finish(&mut self, task: TaskId) {
        let info = &self.tasks[task.0 as usize];
        // A task cut short by a reported violation (a kernel oops) holds what it held.
        if self.stop.is_none() && (!info.held.is_empty() || info.lock_depth >= 0) {
            let mut names: Vec<String> = info.held.iter().map(|&l| self.lock_name(l)).collect();
            if info.lock_depth >= 0 {
                names.push("kernel_flag".to_string());
            }
            let message = format!("task {} exited holding {}", info.name, names.join(", "));
            self.violate(Some(task), "lock-discipline", message);
        }
        self.log(Some(task), EventKind::Exit, None, "do_exit:schedule");
        self.leave_point(task);
        self.leave_cpu(task);
        self.tasks[task.0 as usize].state = TaskState::Done;
        if let Some(tag) = self.tags.get_mut(task.0 as usize) {
            tag.done = true;
        }
    }

    fn try_acquire(&mut self, task: TaskId, lock: LockId, read: bool, point: Point, may_wait: bool) -> bool {
        // A try that fails only reads the lock; one that takes it writes it.
        touch_lock(lock, false);
        let Some(state) = self.locks.get(lock) else {
            self.violate(Some(task), "use-after-free", format!("lock taken at {point} belongs to a freed object"));
            return false;
        };
        let holds = state.owner == Some(task) || state.readers.contains(&task);
        if holds && !may_wait {
            // TryLockPage / spin_trylock of a lock one holds just fails
            // (test_and_set_bit sees the bit set): no deadlock.
            return false;
        }
        if holds && state.kind != LockKind::Bkl {
            let name = &self.lock_names[state.number as usize].0;
            let message = format!("{name} taken again at {point} by the task that holds it (AA deadlock)");
            self.violate(Some(task), "lock-discipline", message);
            return false;
        }
        if !state.available(read) {
            return false;
        }
        touch_lock(lock, true);
        let (released_at, last_taken, last_released) = (state.released_at, state.taken_cost, state.released_cost);
        let read = read && state.kind.has_readers();
        let lock_op = self.cfg.costs.lock_op;
        if let Some(cpu) = self.tasks[task.0 as usize].cpu {
            let clock = self.cpus[cpu].clock;
            // The release was later than this task's time. If the holder
            // had taken the lock before this task asked (by the cost
            // model), the task waited for it: the cost model's wait. If
            // the holder took it later, only the schedule's order put the
            // holder first: the catch-up is a stall, not a wait.
            let wait = spin_wait(self.task_cost(task), last_taken, last_released);
            let stall = released_at.saturating_sub(clock).saturating_sub(wait);
            if stall > 0 {
                self.tasks[task.0 as usize].skew += stall;
                self.stalled += stall;
                let from = (clock + self.cpus[cpu].lag).max(self.timeline);
                self.log_stall(Some(cpu), Some(task), from, from + stall, StallCause::LockOrder, Some(lock));
            }
            let clock = &mut self.cpus[cpu].clock;
            *clock = (*clock).max(released_at) + lock_op;
        }
        let taken_cost = self.task_cost(task);
        if self.cfg.lock_order && may_wait {
            self.record_lock_order(task, lock, point);
        }
        let state = &mut self.locks[lock];
        state.taken_at = point;
        state.taken_cost = taken_cost;
        if read {
            state.readers.push(task);
        } else {
            state.owner = Some(task);
            state.locked = true;
        }
        let info = &mut self.tasks[task.0 as usize];
        info.held.push(lock);
        info.state = TaskState::Runnable;
        info.spin_read = false;
        info.waiting = None;
        self.log_lock_op(task, EventKind::Acquired, lock, point, read, !may_wait);
        true
    }

    /// lockdep's dependency: every class `task` holds comes before the
    /// class of `lock`. The BKL is left out (it is dropped when its holder
    /// sleeps, so it cannot deadlock), and so is nesting within one class.
    fn record_lock_order(&mut self, task: TaskId, lock: LockId, point: Point) {
        // (class, kind, where taken) of a live lock.
        let info = |l: LockId| self.locks.get(l).map(|s| (self.lock_names[s.number as usize].2, s.kind, s.taken_at));
        let Some((taken, kind, _)) = info(lock) else { return };
        if kind == LockKind::Bkl {
            return;
        }
        for i in 0..self.tasks[task.0 as usize].held.len() {
            let Some((held, kind, at)) = info(self.tasks[task.0 as usize].held[i]) else { continue };
            if kind != LockKind::Bkl && !std::ptr::eq(held, taken) && held != taken {
                let order = (ByAddress(held), ByAddress(taken));
                if !self.lock_order.iter().any(|(seen, _)| *seen == order) {
                    self.lock_order.push((order, (at, point)));
                }
            }
        }
    }

    /// `task` is None for an interrupt (I/O completion clearing PG_locked).
    fn release(&mut self, task: Option<TaskId>, lock: LockId, read: bool, point: Point) {
        touch_lock(lock, true);
        let (now, cost) = match task {
            Some(t) => (self.task_now(t), self.task_cost(t)),
            None => (self.irq_time.unwrap_or(0), self.irq_cost()),
        };
        let Some(state) = self.locks.get_mut(lock) else {
            self.violate(task, "use-after-free", format!("lock released at {point} belongs to a freed object"));
            return;
        };
        let kind = state.kind;
        let holder = if kind.has_readers() && read {
            let position = task.and_then(|t| state.readers.iter().position(|&r| r == t));
            position.map(|p| state.readers.remove(p))
        } else if state.is_held() {
            let owner = state.owner.take();
            state.locked = false;
            owner.or(task)
        } else {
            None
        };
        let Some(holder) =
            holder.or(if kind == LockKind::PageBit && task.is_none() { Some(TaskId(u32::MAX)) } else { None })
        else {
            let name = self.lock_name(lock);
            self.violate(task, "lock-discipline", format!("{name} released at {point} but not held"));
            return;
        };
        // Only semaphores and the page bit may be released by another task
        // than the one that took them (`up` of a locked mutex, I/O completion).
        if !matches!(kind, LockKind::Semaphore | LockKind::PageBit) && Some(holder) != task {
            let name = self.lock_name(lock);
            self.violate(
                task,
                "lock-discipline",
                format!("{name} released at {point} by a task that does not hold it"),
            );
            return;
        }
        state.released_at = now;
        state.released_cost = cost;
        // Who to wake, in order: a semaphore's first sleeper, or every
        // waiter of the page bit (taken whole: no allocation).
        let (first, all) = match kind {
            LockKind::Semaphore => (state.sleepers.pop_front(), VecDeque::new()),
            LockKind::PageBit | LockKind::RwSem => (None, std::mem::take(&mut state.sleepers)),
            _ => (None, VecDeque::new()),
        };
        if let Some(info) = self.tasks.get_mut(holder.0 as usize) {
            if let Some(p) = info.held.iter().position(|&l| l == lock) {
                info.held.remove(p);
            }
        }
        if let Some(cost_task) = task {
            let lock_op = self.cfg.costs.lock_op;
            self.charge(cost_task, lock_op);
        }
        if self.cfg.record_events {
            self.op_read = kind.has_readers() && read;
            self.push_event(task, EventKind::Released, Some(lock), point);
            self.op_read = false;
        }
        for sleeper in first.into_iter().chain(all) {
            self.wake(sleeper, now, point);
        }
    }

    fn go_to_sleep(&mut self, task: TaskId, on: SleepOn, point: Point) {
        match on {
            SleepOn::Lock(lock) => touch_lock(lock, true),
            SleepOn::Timer(ns) => touch_timer(self.task_now(task) + ns),
        }
        let atomic: Vec<String> = self.tasks[task.0 as usize]
            .held
            .iter()
            .filter(|&&l| self.locks.get(l).is_some_and(|s| s.kind.forbids_sleep()))
            .map(|&l| self.lock_name(l))
            .collect();
        if !atomic.is_empty() {
            let message =
                format!("{} slept at {point} while holding {}", self.tasks[task.0 as usize].name, atomic.join(", "));
            self.violate(Some(task), "sleep-in-atomic", message);
        }
        // schedule(): release_kernel_lock() keeps lock_depth, drops kernel_flag.
        if self.tasks[task.0 as usize].lock_depth >= 0 {
            touch_lock(self.bkl, true);
        }
        if self.tasks[task.0 as usize].lock_depth >= 0 && self.locks[self.bkl].owner == Some(task) {
            let bkl = self.bkl;
            let (now, cost) = (self.task_now(task), self.task_cost(task));
            let state = &mut self.locks[bkl];
            state.owner = None;
            state.locked = false;
            state.released_at = now;
            state.released_cost = cost;
            self.tasks[task.0 as usize].held.retain(|&l| l != bkl);
            self.log(Some(task), EventKind::BklDropped, Some(bkl), point);
        }
        let now = self.task_now(task);
        self.tasks[task.0 as usize].at = point;
        let waiting = match on {
            SleepOn::Lock(lock) => {
                let number = self.locks.get_mut(lock).map(|state| {
                    state.sleepers.push_back(task);
                    state.number
                });
                Waiting::Sleeps { lock, number }
            }
            SleepOn::Timer(ns) => {
                let seq = self.timer_seq;
                self.timer_seq += 1;
                let lag = self.task_lag(task);
                self.timers.insert(now + ns, seq, lag, TimerAction::Wake(task));
                Waiting::Timer { ns, point }
            }
        };
        // Described only when someone reads it (the log, a deadlock report).
        if self.cfg.record_events {
            let what = self.describe_waiting(&waiting);
            self.log(Some(task), EventKind::Sleep(what), waiting.lock(), point);
        }
        self.leave_cpu(task);
        let info = &mut self.tasks[task.0 as usize];
        info.state = TaskState::Sleeping;
        info.waiting = Some(waiting);
    }

    fn wake(&mut self, task: TaskId, time: u64, point: Point) {
        // The run queue's order only numbers the options: joining it is a
        // change of the woken task's own state.
        footprint::touch(footprint::TASK, task.0.into(), true);
        let info = &mut self.tasks[task.0 as usize];
        if info.state != TaskState::Sleeping {
            return;
        }
        info.state = TaskState::Runnable;
        info.ready_at = info.ready_at.max(time);
        info.waiting = None;
        // Woken now on the timeline (the waker's time, or the timer's).
        let now = self.irq_timeline.unwrap_or(self.timeline);
        info.ready_timeline = info.ready_timeline.max(now).max(info.ready_at);
        self.runqueue.push_back(task);
        self.log(Some(task), EventKind::Wake, None, point);
    }

    fn describe_waiters(&self) -> Vec<String> {
        let holder_of = |lock: LockId| -> String {
            match self.locks.get(lock) {
                Some(l) => match (l.owner, l.readers.first()) {
                    (Some(owner), _) | (None, Some(&owner)) => {
                        format!(" held by {}", self.tasks[owner.0 as usize].name)
                    }
                    _ if l.locked => " (locked by I/O)".to_string(),
                    _ => String::new(),
                },
                None => String::new(),
            }
        };
        self.tasks
            .iter()
            .filter(|t| t.state != TaskState::Done)
            .map(|t| match &t.waiting {
                Some(waiting) => {
                    let holder = waiting.lock().map(holder_of).unwrap_or_default();
                    format!("{} {}{holder}", t.name, self.describe_waiting(waiting))
                }
                None => format!("{} is runnable but has no CPU", t.name),
            })
            .collect()
    }
}

/// Note a timer added for the step's footprint: two timers commute unless
/// they are due at the same time (then the order they were added in
/// decides which fires first).
fn touch_timer(due: u64) {
    footprint::touch(footprint::TIMERS, due, true);
}

/// Note an access to a lock's state for the step's footprint.
/// How long a task whose cost-model time is `now` spins for a lock last
/// taken at `taken_cost` and released at `released_cost` (cost-model
/// times): until the release, if the holder took it before the task asked;
/// else not at all (the order put the holder first: a stall).
fn spin_wait(now: u64, taken_cost: u64, released_cost: u64) -> u64 {
    if taken_cost <= now {
        released_cost.saturating_sub(now)
    } else {
        0
    }
}

fn touch_lock(lock: LockId, write: bool) {
    footprint::touch_keyed(footprint::LOCK, || slotmap::Key::data(&lock).as_ffi(), write);
}
