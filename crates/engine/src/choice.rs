//! Where the nondeterminism goes: every choice a run makes is asked of one
//! [`Chooser`] and recorded, so a run is a pure function of its choices.

use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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

    fn is(&self, label: &Label, event: &SemanticEvent) -> bool {
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

/// A seeded random walk: uniform over step options; an allocation sleeps
/// with probability `sleep_probability`, one sleep in four a long one.
pub struct RandomChooser {
    rng: ChaCha8Rng,
    sleep_probability: f64,
}

impl RandomChooser {
    /// One ChaCha8 stream (stream 0) per run, keyed by the seed.
    pub fn new(seed: u64, sleep_probability: f64) -> RandomChooser {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        RandomChooser { rng, sleep_probability }
    }
}

impl Chooser for RandomChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        match decision {
            Decision::Step { .. } => {
                if n == 1 {
                    0
                } else {
                    self.rng.random_range(0..n)
                }
            }
            Decision::Inject { ppm, .. } => usize::from(self.rng.random_bool(f64::from(ppm.min(1_000_000)) / 1e6)),
            Decision::MaySleep { .. } => draw_sleep(&mut self.rng, self.sleep_probability, n),
        }
    }
}

/// An allocation sleep: none, short (1) or, one time in four, long (2).
fn draw_sleep(rng: &mut ChaCha8Rng, sleep_probability: f64, n: usize) -> usize {
    if !rng.random_bool(sleep_probability) {
        0
    } else if n > 2 && rng.random_bool(0.25) {
        2
    } else {
        1
    }
}

/// Replays a recorded list of choices, then falls back to option 0
/// (no sleep, first option) once the list runs out.
pub struct ReplayChooser {
    choices: Vec<u32>,
    next: usize,
}

impl ReplayChooser {
    pub fn new(choices: Vec<u32>) -> ReplayChooser {
        ReplayChooser { choices, next: 0 }
    }
}

impl Chooser for ReplayChooser {
    fn choose(&mut self, _decision: Decision<'_>, n: usize) -> usize {
        let choice = self.choices.get(self.next).copied().unwrap_or(0) as usize;
        self.next += 1;
        choice.min(n - 1)
    }
}

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

/// A recorded schedule, perturbed: the choices it makes (non-zero) are
/// kept, and each one it leaves at 0 is drawn at random with probability
/// `p`. For `replay --rate`: how often does the bug recur around it?
pub struct PerturbChooser {
    replay: ReplayChooser,
    random: RandomChooser,
    coin: ChaCha8Rng,
    p: f64,
}

impl PerturbChooser {
    pub fn new(choices: Vec<u32>, seed: u64, p: f64, sleep_probability: f64) -> PerturbChooser {
        let mut coin = ChaCha8Rng::seed_from_u64(seed);
        coin.set_stream(1);
        PerturbChooser {
            replay: ReplayChooser::new(choices),
            random: RandomChooser::new(seed, sleep_probability),
            coin,
            p: p.clamp(0.0, 1.0),
        }
    }
}

impl Chooser for PerturbChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        let recorded = self.replay.choose(decision, n);
        if recorded == 0 && n > 1 && self.coin.random_bool(self.p) {
            self.random.choose(decision, n)
        } else {
            recorded
        }
    }
}

/// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi and
/// Nagarakatte, ASPLOS 2010): every task gets a random priority (at least
/// `depth`); at each step the highest-priority task that can step runs; at
/// `depth - 1` change points drawn uniformly from the first `steps` steps,
/// the running task drops to priority 1, 2, ... For a bug of depth `d` in a
/// run of `n` tasks and `k` steps, one run finds it with probability at
/// least 1/(n·k^(d-1)). Timers count as one more "task", except that a timer
/// due by the chosen task's time fires first (the interrupt). Allocation sleeps
/// are drawn as in [`RandomChooser`].
pub struct PctChooser {
    rng: ChaCha8Rng,
    sleep_probability: f64,
    depth: u32,
    /// The steps at which a priority change happens, with its new priority.
    change_points: Vec<(u64, u32)>,
    priorities: IndexMap<Option<TaskId>, u32>,
    step: u64,
}

impl PctChooser {
    pub fn new(seed: u64, depth: u32, steps: u64, sleep_probability: f64) -> PctChooser {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(0);
        let depth = depth.max(1);
        let mut change_points: Vec<(u64, u32)> =
            (1..depth).map(|i| (rng.random_range(1..=steps.max(1)), depth - i)).collect();
        change_points.sort();
        PctChooser { rng, sleep_probability, depth, change_points, priorities: IndexMap::new(), step: 0 }
    }

    fn priority(&mut self, who: Option<TaskId>) -> u32 {
        if let Some(&p) = self.priorities.get(&who) {
            return p;
        }
        // Distinct random priorities above every change-point priority.
        let p = loop {
            let candidate = self.depth + self.rng.random_range(0..1_000_000u32);
            if !self.priorities.values().any(|&q| q == candidate) {
                break candidate;
            }
        };
        self.priorities.insert(who, p);
        p
    }
}

impl Chooser for PctChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        match decision {
            Decision::Step { options, times } => {
                self.step += 1;
                let who = |o: &StepKind| match o {
                    StepKind::Task(t) => Some(*t),
                    StepKind::Timer => None,
                };
                let mut best = 0;
                let mut best_priority = 0;
                for (i, option) in options.iter().enumerate() {
                    let p = self.priority(who(option));
                    if p > best_priority {
                        best = i;
                        best_priority = p;
                    }
                }
                // A timer due by the chosen task's time fires first, as the
                // interrupt would: a high-priority task busy-waiting for
                // the wake-up must not hold time still.
                if let Some(timer) = options.iter().position(|o| *o == StepKind::Timer) {
                    if times[timer] <= times[best] {
                        best = timer;
                    }
                }
                while let Some(&(at, new_priority)) = self.change_points.first() {
                    if at > self.step {
                        break;
                    }
                    self.change_points.remove(0);
                    self.priorities.insert(who(&options[best]), new_priority);
                }
                best.min(n - 1)
            }
            Decision::Inject { ppm, .. } => usize::from(self.rng.random_bool(f64::from(ppm.min(1_000_000)) / 1e6)),
            Decision::MaySleep { .. } => draw_sleep(&mut self.rng, self.sleep_probability, n),
        }
    }
}

/// Timed mode: the option that happens first in simulated time goes next
/// (ties by option order, so a run is still a function of its seed); the
/// costs of the work decide the interleaving, as on a real machine.
/// Allocation sleeps and faults are drawn from the seed as in
/// [`RandomChooser`], and disk latencies get a jitter the same way.
pub struct TimedChooser {
    random: RandomChooser,
}

impl TimedChooser {
    pub fn new(seed: u64, sleep_probability: f64) -> TimedChooser {
        TimedChooser { random: RandomChooser::new(seed, sleep_probability) }
    }
}

impl Chooser for TimedChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        match decision {
            Decision::Step { times, .. } => {
                times.iter().enumerate().min_by_key(|(i, t)| (**t, *i)).map(|(i, _)| i).unwrap_or(0).min(n - 1)
            }
            other => self.random.choose(other, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_chooser_is_a_function_of_its_seed() {
        let draw = |seed| {
            let mut c = RandomChooser::new(seed, 0.5);
            (0..64)
                .map(|i| {
                    c.choose(
                        if i % 2 == 0 {
                            Decision::Step { options: &[], times: &[] }
                        } else {
                            Decision::MaySleep { point: "p" }
                        },
                        5,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!(draw(3).iter().all(|&c| c < 5));
    }

    #[test]
    fn sleep_probability_zero_never_sleeps() {
        let mut c = RandomChooser::new(9, 0.0);
        assert!((0..100).all(|_| c.choose(Decision::MaySleep { point: "p" }, 3) == 0));
        let mut c = RandomChooser::new(9, 1.0);
        let picks: Vec<usize> = (0..400).map(|_| c.choose(Decision::MaySleep { point: "p" }, 3)).collect();
        assert!(picks.iter().all(|&p| p == 1 || p == 2));
        assert!(picks.iter().filter(|&&p| p == 2).count() > 50, "long sleeps happen");
    }

    #[test]
    fn perturbing_keeps_the_recorded_choices_and_varies_the_rest() {
        let step = Decision::Step { options: &[], times: &[] };
        let draw = |seed, p| {
            let mut c = PerturbChooser::new(vec![2, 0, 0, 1], seed, p, 0.0);
            (0..40).map(|_| c.choose(step, 3)).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 0.0)[..5], [2, 0, 0, 1, 0]);
        assert!(draw(1, 0.0)[4..].iter().all(|&c| c == 0));
        let varied = draw(1, 1.0);
        assert_eq!((varied[0], varied[3]), (2, 1), "recorded choices stay");
        assert!(varied[4..].iter().any(|&c| c != 0), "{varied:?}");
        assert_eq!(draw(5, 0.5), draw(5, 0.5));
    }

    #[test]
    fn replay_clamps_and_runs_out_to_zero() {
        let mut c = ReplayChooser::new(vec![3, 9]);
        let step = Decision::Step { options: &[], times: &[] };
        assert_eq!(c.choose(step, 4), 3);
        assert_eq!(c.choose(step, 4), 3);
        assert_eq!(c.choose(step, 4), 0);
    }
}

#[cfg(test)]
mod pct_tests {
    use super::*;

    #[test]
    fn pct_runs_the_highest_priority_task_until_a_change_point() {
        let options = [StepKind::Task(TaskId(0)), StepKind::Task(TaskId(1)), StepKind::Timer];
        // The timer is not due before the tasks' time: priorities decide.
        let times = [0, 0, 1000];
        let mut c = PctChooser::new(3, 1, 100, 0.0);
        let first = c.choose(Decision::Step { options: &options, times: &times }, 3);
        // Depth 1: no change points; the same option wins every time.
        assert!((0..50).all(|_| c.choose(Decision::Step { options: &options, times: &times }, 3) == first));
        // Depth 3 over 10 steps: the preferred option changes at least once.
        let mut c = PctChooser::new(3, 3, 10, 0.0);
        let picks: Vec<usize> =
            (0..20).map(|_| c.choose(Decision::Step { options: &options, times: &times }, 3)).collect();
        assert!(picks.windows(2).any(|w| w[0] != w[1]), "{picks:?}");
    }

    #[test]
    fn pct_fires_a_due_timer_whatever_the_priorities() {
        let options = [StepKind::Task(TaskId(0)), StepKind::Timer];
        for seed in 0..20 {
            let mut c = PctChooser::new(seed, 1, 100, 0.0);
            assert_eq!(c.choose(Decision::Step { options: &options, times: &[500, 400] }, 2), 1, "seed {seed}");
        }
    }
}

#[cfg(test)]
mod semantic_tests {
    use super::*;

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
