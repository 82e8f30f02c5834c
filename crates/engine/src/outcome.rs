//! How a run ends. A race found in the model is a *result*, not an error.

use crate::task::TaskId;

/// A broken invariant: which one, what exactly, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Short stable name of the invariant, e.g. `"swapoff-completeness"`.
    pub invariant: &'static str,
    /// One paragraph saying what broke, in kernel terms.
    pub message: String,
    /// The step at which it was detected.
    pub step: u64,
    /// The task that detected or caused it, if any.
    pub task: Option<TaskId>,
}

/// The end of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every task ran to completion and no invariant broke.
    Finished,
    /// An invariant broke; the run stopped at that step.
    Violation(Violation),
    /// No task can run while some still wait: each entry says who waits
    /// for what and who holds it.
    Deadlock(Vec<String>),
    /// The step budget ran out (a livelock, or a scenario that is too long).
    StepLimit(u64),
    /// The driver stopped the run (e.g. the scenario's own code failed);
    /// the driver says why.
    Aborted,
}

impl Outcome {
    /// Whether this outcome is a finding (exit code 1 at the CLI).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Finished)
    }
}
