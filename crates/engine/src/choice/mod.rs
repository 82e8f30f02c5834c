//! Where the nondeterminism goes: every choice a run makes is asked of one
//! [`Chooser`] and recorded, so a run is a pure function of its choices.
//!
//! One file per strategy: [`random`] (the seeded walk), [`pct`]
//! (probabilistic concurrency testing), [`dfs`] (bounded depth-first search
//! with sleep sets), [`replay`] (a recorded schedule), [`perturb`] (a
//! recorded schedule redrawn at random), [`semantic`] (a recorded schedule
//! followed by its events) and [`timed`] (the earliest option in simulated
//! time). This file holds what they share: the decisions and their labels.

pub mod dfs;
pub mod dpor;
pub mod pct;
pub mod perturb;
pub mod random;
pub mod replay;
pub mod semantic;
pub mod timed;

use crate::footprint::Footprint;
use crate::task::TaskId;
use crate::Point;

/// One option of a step decision: which task would run, or the timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Run (or dispatch onto an idle CPU) this task.
    Task(TaskId),
    /// Fire the earliest timer (an I/O completes, a sleep ends).
    Timer,
}

/// What is being decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Which of the step options happens next, and when each would happen
    /// in simulated time.
    Step { options: &'a [StepKind], times: &'a [u64] },
    /// Whether an allocation that may block does block: option 0 = it
    /// succeeds at once, 1 = the task sleeps briefly (kswapd frees a page),
    /// 2 = it sleeps long (it waits for swap-out I/O). `point` names the
    /// allocation site.
    MaySleep { point: &'static str },
    /// Whether an injected fault happens here (option 1) or not (0), with
    /// the given probability in parts per million: a recorded choice, so a
    /// replay reproduces the same faults.
    Inject { point: &'static str, ppm: u32 },
}

/// Picks one of `n >= 1` options for a decision.
pub trait Chooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize;

    /// The same decision with the semantic label of every option (only
    /// called when the run records labels, `SimConfig::record_labels`).
    /// Choosers that decide by index ignore the labels.
    fn choose_labeled(&mut self, decision: Decision<'_>, n: usize, _labels: &LabelView<'_>) -> usize {
        self.choose(decision, n)
    }

    /// What the step just taken touched (only called when the run records
    /// footprints, `SimConfig::record_footprints`).
    fn stepped(&mut self, _footprint: Footprint) {}

    /// Whether a step decision must say what its options are and when each
    /// would happen; a chooser that picks by index alone (a random walk, a
    /// recorded schedule) gets empty slices, and the simulator saves
    /// computing them at every step.
    fn reads_options(&self) -> bool {
        true
    }

    /// Whether a step decision with one option leaves the chooser as it
    /// was: it would pick 0 and change nothing (a random walk). The
    /// simulator then does not call it for a step only one task can take;
    /// a chooser that counts or records steps says no.
    fn one_option_is_free(&self) -> bool {
        false
    }

    /// The run is over: `cut_short` could still step (tasks ready to run
    /// or spinning, `Timer` for a pending timer), and `stopped` says
    /// whether the run stopped before its tasks were done (a violation, the
    /// step budget, the driver). Only called when the run records
    /// footprints.
    fn ended(&mut self, _cut_short: &[StepKind], _stopped: bool) {}
}

/// What [`Chooser::choose`] returns for a step decision to end the run
/// there ([`crate::Outcome::Aborted`]): a search that knows every schedule
/// going on from here is covered elsewhere.
pub const PRUNE: usize = usize::MAX;

/// What kind of event a semantic label names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventClass {
    /// A step of a task (run on its CPU, or dispatched to an idle one).
    Run,
    /// A timer fires: a timed sleep ends or an I/O completes.
    Timer,
    /// An allocation that may sleep decides whether it does.
    Sleep,
    /// An injected fault happens or not.
    Fault,
}

impl EventClass {
    pub const ALL: [EventClass; 4] = [EventClass::Run, EventClass::Timer, EventClass::Sleep, EventClass::Fault];

    /// The word of schedule files and reports.
    pub fn name(self) -> &'static str {
        match self {
            EventClass::Run => "run",
            EventClass::Timer => "timer",
            EventClass::Sleep => "sleep",
            EventClass::Fault => "fault",
        }
    }

    pub fn from_name(name: &str) -> Option<EventClass> {
        EventClass::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The semantic label of one option of a decision, in this run's terms:
/// which task, at which named point, for the how-manyth time.
///
/// - `Run`: `task` takes a step from `point`, the point its pending
///   primitive yielded at (`"start"` before its first step).
/// - `Timer`: the earliest timer fires; it wakes `task` asleep at `point`,
///   or completes an I/O `task` started at `point`.
/// - `Sleep`, `Fault`: the decision of `task` at `point`.
///
/// `occurrence` counts from 1: the label (class, task, point) was taken
/// `occurrence - 1` times before in this phase of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label {
    pub class: EventClass,
    pub task: TaskId,
    pub point: Point,
    pub occurrence: u32,
}

/// What a task is known as across runs, for semantic labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskTag {
    /// Stable across edits that do not touch the task: a task spawned from
    /// outside any task is its name (`"parent"`, `"kswapd"`; a second one
    /// of the same name `"boot~2"`), a task spawned by a task is its
    /// parent's key, `/` and its rank among that parent's children
    /// (`"parent/1"`: the first child `parent` forked, whatever its pid).
    /// Whitespace in a name becomes `_`, so a key is one word.
    pub key: String,
    pub done: bool,
}

/// The labels of one decision, and the run's task keys to read them with.
#[derive(Clone, Copy, Debug)]
pub struct LabelView<'a> {
    /// One per option (step decisions) or one (allocation and fault
    /// decisions: the decision's own label).
    pub labels: &'a [Label],
    /// Every task of the run, indexed by `TaskId`.
    pub tasks: &'a [TaskTag],
}

impl LabelView<'_> {
    /// A label in run-independent terms.
    pub fn event(&self, label: &Label) -> SemanticEvent {
        SemanticEvent {
            class: label.class,
            task: self.tasks[label.task.0 as usize].key.clone(),
            point: label.point.to_string(),
            occurrence: label.occurrence,
        }
    }

    pub(crate) fn is(&self, label: &Label, event: &SemanticEvent) -> bool {
        label.class == event.class
            && label.occurrence == event.occurrence
            && label.point == event.point
            && self.tasks[label.task.0 as usize].key == event.task
    }
}

/// A semantic event in run-independent terms: a [`Label`] with the task's
/// key instead of its id (what a schedule file records per decision).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemanticEvent {
    pub class: EventClass,
    /// The task's key ([`TaskTag::key`]).
    pub task: String,
    pub point: String,
    pub occurrence: u32,
}
