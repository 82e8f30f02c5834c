//! A recorded schedule, followed by its semantic events.

use super::{Chooser, Decision, EventClass, LabelView, SemanticEvent};

/// Where a semantic replay could not follow its recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The decision (0-based, counting every decision of the phase).
    pub decision: usize,
    /// The step the decision starts (1-based, as in the event log).
    pub step: u64,
    /// The recorded event it could not match.
    pub expected: SemanticEvent,
    /// The labels on offer.
    pub offered: Vec<SemanticEvent>,
}

/// How a semantic replay went (written by [`SemanticReplayChooser`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SemanticReplayReport {
    /// Recorded events in the recording.
    pub recorded: usize,
    /// Recorded events matched by a decision of this run.
    pub matched: usize,
    /// Recorded events skipped: their task is gone (exited, or its process
    /// is no longer in the scenario).
    pub skipped: usize,
    /// Steps of a task the recording expected next, taken at another label
    /// than the recorded one (it does work the recording did not have).
    pub catch_up: usize,
    /// Steps of tasks the recording does not know (new in the scenario).
    pub new_steps: usize,
    /// Allocation and fault decisions the recording does not have (they
    /// took the default: no sleep, no fault).
    pub unrecorded: usize,
    /// Where following the recording became impossible; the rest of the
    /// run took the default options.
    pub divergence: Option<Divergence>,
    /// Where the current stretch of steps that match no recorded event
    /// began (catch-up and new-task steps); cleared by the next match. If
    /// the run ends with recorded events left and no divergence, this is
    /// where it went off the recording for good.
    pub off_since: Option<Divergence>,
    /// The first decision that did not simply follow the recording (a
    /// skip, a catch-up or new-task step, an unrecorded allocation).
    pub first_off: Option<Divergence>,
}

/// Where a [`SemanticReplayChooser`] writes its report.
pub type SemanticLog = std::rc::Rc<std::cell::RefCell<SemanticReplayReport>>;

/// Replays a recorded schedule by its semantic events rather than by
/// option index, so that it survives edits that shift step indices but do
/// not touch the interleaving (an unrelated process added, a task that does
/// a little more work). Needs a run with `SimConfig::record_labels`.
///
/// The policy, at each decision, with `e` the next recorded event not yet
/// matched (`values[i]` is the recorded choice of event `i`, 0 past its end):
///
/// - **Step decision** (which option runs):
///   1. an option whose label equals `e` runs; `e` is matched;
///   2. else, if `e`'s task is gone (it exited in this run, or no task of
///      its root process exists), `e` is skipped and the next event tried;
///   3. else, if `e`'s task is on offer at another label (class `run`), it
///      runs: it catches up on work the recording did not have;
///   4. else, the first option of a task the recording does not know (a
///      new process, or a child of one) runs;
///   5. else the replay **diverges** here: the decision, step, `e` and the
///      labels on offer are recorded, and every later decision takes
///      option 0 (no sleep, no fault), so the run still ends.
/// - **Allocation or fault decision**: if its label equals `e`, the
///   recorded value is taken and `e` matched; else, after skipping events
///   of gone tasks, it takes the default (0) and `e` stays next.
/// - Once every recorded event is matched, option 0 everywhere.
///
/// Deterministic: it reads only the labels and the recording.
pub struct SemanticReplayChooser {
    events: Vec<SemanticEvent>,
    values: Vec<u32>,
    /// The keys of the recording, sorted (for "a task it does not know").
    known: Vec<String>,
    next: usize,
    decisions: usize,
    steps: u64,
    log: SemanticLog,
}

impl SemanticReplayChooser {
    pub fn new(events: Vec<SemanticEvent>, values: Vec<u32>, log: SemanticLog) -> SemanticReplayChooser {
        let mut known: Vec<String> = events.iter().map(|e| e.task.clone()).collect();
        known.sort();
        known.dedup();
        *log.borrow_mut() = SemanticReplayReport { recorded: events.len(), ..SemanticReplayReport::default() };
        SemanticReplayChooser { events, values, known, next: 0, decisions: 0, steps: 0, log }
    }

    fn knows(&self, key: &str) -> bool {
        self.known.binary_search_by(|k| k.as_str().cmp(key)).is_ok()
    }

    /// `key`'s task exited in this run, or its root process is not in it.
    fn gone(key: &str, view: &LabelView<'_>) -> bool {
        let root = key.split('/').next().unwrap_or(key);
        view.tasks.iter().any(|t| t.key == key && t.done) || !view.tasks.iter().any(|t| t.key == root)
    }

    fn divergence(&self, decision: usize, view: &LabelView<'_>) -> Divergence {
        Divergence {
            decision,
            step: self.steps + 1,
            expected: self.events[self.next].clone(),
            offered: view.labels.iter().map(|l| view.event(l)).collect(),
        }
    }

    fn pick(&mut self, decision: Decision<'_>, view: &LabelView<'_>, index: usize) -> usize {
        let step = matches!(decision, Decision::Step { .. });
        let mut log = self.log.borrow_mut();
        if log.divergence.is_some() {
            return 0;
        }
        loop {
            let Some(expected) = self.events.get(self.next) else { return 0 };
            if let Some(i) = view.labels.iter().position(|l| view.is(l, expected)) {
                let value = if step { i } else { self.values.get(self.next).copied().unwrap_or(0) as usize };
                self.next += 1;
                log.matched += 1;
                log.off_since = None;
                return value;
            }
            if Self::gone(&expected.task, view) {
                if log.first_off.is_none() {
                    log.first_off = Some(self.divergence(index, view));
                }
                self.next += 1;
                log.skipped += 1;
                continue;
            }
            break;
        }
        if log.first_off.is_none() {
            log.first_off = Some(self.divergence(index, view));
        }
        if !step {
            log.unrecorded += 1;
            return 0;
        }
        let expected = &self.events[self.next];
        let catch_up = view
            .labels
            .iter()
            .position(|l| l.class == EventClass::Run && view.tasks[l.task.0 as usize].key == expected.task);
        let new = || view.labels.iter().position(|l| !self.knows(&view.tasks[l.task.0 as usize].key));
        let off = match (catch_up, catch_up.is_none().then(new).flatten()) {
            (Some(i), _) => {
                log.catch_up += 1;
                Some(i)
            }
            (None, Some(i)) => {
                log.new_steps += 1;
                Some(i)
            }
            (None, None) => None,
        };
        match off {
            Some(i) => {
                if log.off_since.is_none() {
                    log.off_since = Some(self.divergence(index, view));
                }
                i
            }
            None => {
                log.divergence = Some(self.divergence(index, view));
                0
            }
        }
    }
}

impl Chooser for SemanticReplayChooser {
    /// Without labels there is nothing to follow: the defaults.
    fn choose(&mut self, decision: Decision<'_>, _n: usize) -> usize {
        self.decisions += 1;
        if matches!(decision, Decision::Step { .. }) {
            self.steps += 1;
        }
        0
    }

    fn choose_labeled(&mut self, decision: Decision<'_>, n: usize, labels: &LabelView<'_>) -> usize {
        let index = self.decisions;
        let pick = self.pick(decision, labels, index).min(n - 1);
        self.decisions += 1;
        if matches!(decision, Decision::Step { .. }) {
            self.steps += 1;
        }
        pick
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::choice::{Label, StepKind, TaskTag};
    use crate::task::TaskId;

    fn tag(key: &str, done: bool) -> TaskTag {
        TaskTag { key: key.to_string(), done }
    }

    fn run(task: u32, point: &'static str, occurrence: u32) -> Label {
        Label { class: EventClass::Run, task: TaskId(task), point, occurrence }
    }

    fn event(class: EventClass, task: &str, point: &str, occurrence: u32) -> SemanticEvent {
        SemanticEvent { class, task: task.to_string(), point: point.to_string(), occurrence }
    }

    fn chooser(events: Vec<SemanticEvent>, values: Vec<u32>) -> (SemanticReplayChooser, SemanticLog) {
        let log = SemanticLog::default();
        (SemanticReplayChooser::new(events, values, std::rc::Rc::clone(&log)), log)
    }

    fn step<'a>(options: &'a [StepKind]) -> Decision<'a> {
        Decision::Step { options, times: &[] }
    }

    #[test]
    fn the_option_with_the_recorded_label_runs_whatever_its_index() {
        use EventClass::Run;
        let (mut c, log) = chooser(vec![event(Run, "b", "x:lock", 1), event(Run, "a", "start", 1)], vec![1, 0]);
        // Recorded with options [a, b]; now a new task sits first: [n, a, b].
        let tasks = [tag("n", false), tag("a", false), tag("b", false)];
        let labels = [run(0, "start", 1), run(1, "start", 1), run(2, "x:lock", 1)];
        let kinds = [StepKind::Task(TaskId(0)), StepKind::Task(TaskId(1)), StepKind::Task(TaskId(2))];
        let view = LabelView { labels: &labels, tasks: &tasks };
        assert_eq!(c.choose_labeled(step(&kinds), 3, &view), 2);
        assert_eq!(c.choose_labeled(step(&kinds), 3, &view), 1);
        // The recording is over: option 0.
        assert_eq!(c.choose_labeled(step(&kinds), 3, &view), 0);
        let report = log.borrow().clone();
        assert_eq!((report.recorded, report.matched, report.new_steps), (2, 2, 0));
        assert_eq!(report.divergence, None);
    }

    #[test]
    fn a_new_task_runs_while_the_recorded_event_is_not_on_offer() {
        use EventClass::Run;
        let (mut c, log) = chooser(vec![event(Run, "a", "y", 1)], vec![]);
        let tasks = [tag("a", false), tag("new", false), tag("new/1", false)];
        let kinds = [StepKind::Task(TaskId(2)), StepKind::Timer];
        // a sleeps; the timer wakes new's child; then a's step is on offer.
        let labels =
            [run(2, "start", 1), Label { class: EventClass::Timer, task: TaskId(0), point: "y", occurrence: 1 }];
        let view = LabelView { labels: &labels, tasks: &tasks };
        assert_eq!(c.choose_labeled(step(&kinds), 2, &view), 0, "new/1 is new: it runs");
        let labels = [run(1, "z", 3), run(0, "y", 1)];
        let view = LabelView { labels: &labels, tasks: &tasks };
        assert_eq!(c.choose_labeled(step(&kinds), 2, &view), 1);
        let report = log.borrow().clone();
        assert_eq!((report.matched, report.new_steps, report.off_since), (1, 1, None));
    }

    #[test]
    fn events_of_gone_tasks_are_skipped_and_a_late_task_catches_up() {
        use EventClass::Run;
        let recorded = vec![
            event(Run, "gone", "p", 1), // its process is not in the scenario any more
            event(Run, "a/1", "q", 1),  // a's first child exited already
            event(Run, "b", "r", 2),    // b is at another point: it catches up
            event(Run, "b", "r", 2),
        ];
        let (mut c, log) = chooser(recorded, vec![]);
        let tasks = [tag("a", false), tag("a/1", true), tag("b", false)];
        let kinds = [StepKind::Task(TaskId(0)), StepKind::Task(TaskId(2))];
        let labels = [run(0, "s", 1), run(2, "extra", 1)];
        let view = LabelView { labels: &labels, tasks: &tasks };
        assert_eq!(c.choose_labeled(step(&kinds), 2, &view), 1, "b runs its extra step");
        let labels = [run(0, "s", 1), run(2, "r", 2)];
        let view = LabelView { labels: &labels, tasks: &tasks };
        assert_eq!(c.choose_labeled(step(&kinds), 2, &view), 1);
        let report = log.borrow().clone();
        assert_eq!((report.skipped, report.catch_up, report.matched), (2, 1, 1));
        assert_eq!(report.divergence, None);
    }

    #[test]
    fn allocation_decisions_take_the_recorded_value_or_the_default() {
        let (mut c, log) = chooser(vec![event(EventClass::Sleep, "a", "kmalloc", 2)], vec![2]);
        let tasks = [tag("a", false)];
        let sleep = Decision::MaySleep { point: "kmalloc" };
        let first = [Label { class: EventClass::Sleep, task: TaskId(0), point: "kmalloc", occurrence: 1 }];
        assert_eq!(c.choose_labeled(sleep, 3, &LabelView { labels: &first, tasks: &tasks }), 0, "not recorded");
        let second = [Label { occurrence: 2, ..first[0] }];
        assert_eq!(c.choose_labeled(sleep, 3, &LabelView { labels: &second, tasks: &tasks }), 2, "the recorded sleep");
        let report = log.borrow().clone();
        assert_eq!((report.matched, report.unrecorded), (1, 1));
    }

    #[test]
    fn a_recorded_event_that_cannot_happen_is_a_divergence_and_the_rest_takes_option_0() {
        use EventClass::Run;
        let (mut c, log) =
            chooser(vec![event(Run, "a", "s", 1), event(Run, "a/1", "start", 1), event(Run, "b", "t", 4)], vec![]);
        let tasks = [tag("a", false), tag("b", false)];
        let kinds = [StepKind::Task(TaskId(0)), StepKind::Task(TaskId(1))];
        let labels = [run(0, "s", 1), run(1, "t", 4)];
        let view = LabelView { labels: &labels, tasks: &tasks };
        assert_eq!(c.choose_labeled(step(&kinds), 2, &view), 0);
        // a never forked: its child's first step is not on offer, and b is known.
        let labels = [run(1, "t", 4), run(0, "exit", 1)];
        let view = LabelView { labels: &labels, tasks: &tasks };
        assert_eq!(c.choose_labeled(step(&kinds), 2, &view), 0);
        assert_eq!(c.choose_labeled(Decision::MaySleep { point: "t" }, 3, &view), 0);
        let report = log.borrow().clone();
        let divergence = report.divergence.expect("a divergence");
        assert_eq!((divergence.decision, divergence.step), (1, 2));
        assert_eq!(divergence.expected, event(Run, "a/1", "start", 1));
        assert_eq!(divergence.offered, vec![event(Run, "b", "t", 4), event(Run, "a", "exit", 1)]);
        assert_eq!(report.matched, 1);
    }
}
