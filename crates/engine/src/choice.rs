//! Where the nondeterminism goes: every choice a run makes is asked of one
//! [`Chooser`] and recorded, so a run is a pure function of its choices.

use indexmap::IndexMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::task::TaskId;

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
}

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

/// What a [`DfsChooser`] saw at one decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecisionRecord {
    /// How many options there were.
    pub n: u32,
    /// The rank taken: 0 is the default (the running task goes on, no
    /// sleep, no fault), 1.. the other options in index order.
    pub rank: u32,
    /// Whether taking another rank than 0 is a preemption (a step that
    /// takes the CPU from a task that could go on, or an allocation that
    /// sleeps): what the bound counts.
    pub preemptive: bool,
}

/// Where a [`DfsChooser`] writes the decisions of its run, for the search
/// that owns it to read after the run.
pub type DecisionLog = std::rc::Rc<std::cell::RefCell<Vec<DecisionRecord>>>;

/// The chooser of a bounded depth-first search (CHESS): it follows a
/// prefix of ranks, then takes the default everywhere (no preemption), and
/// records every decision, so that the search can pick the next prefix.
pub struct DfsChooser {
    prefix: Vec<u32>,
    next: usize,
    running: Option<TaskId>,
    records: DecisionLog,
}

impl DfsChooser {
    pub fn new(prefix: Vec<u32>, records: DecisionLog) -> DfsChooser {
        records.borrow_mut().clear();
        DfsChooser { prefix, next: 0, running: None, records }
    }
}

impl Chooser for DfsChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        // The default option, and whether leaving it preempts someone.
        let (default, preemptive) = match decision {
            Decision::Step { options, .. } => {
                match self.running.and_then(|t| options.iter().position(|o| *o == StepKind::Task(t))) {
                    Some(i) => (i, true),
                    None => (0, false),
                }
            }
            Decision::MaySleep { .. } => (0, true),
            Decision::Inject { .. } => (0, false),
        };
        let rank = self.prefix.get(self.next).copied().unwrap_or(0).min(n as u32 - 1);
        self.next += 1;
        // Rank 0 is the default; rank r is the r-th other option.
        let index = if rank == 0 {
            default
        } else {
            (0..n).filter(|&i| i != default).nth(rank as usize - 1).unwrap_or(default)
        };
        if let Decision::Step { options, .. } = decision {
            if let StepKind::Task(t) = options[index] {
                self.running = Some(t);
            }
        }
        self.records.borrow_mut().push(DecisionRecord { n: n as u32, rank, preemptive: preemptive && n > 1 });
        index
    }
}

/// Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi and
/// Nagarakatte, ASPLOS 2010): every task gets a random priority (at least
/// `depth`); at each step the highest-priority task that can step runs; at
/// `depth - 1` change points drawn uniformly from the first `steps` steps,
/// the running task drops to priority 1, 2, ... For a bug of depth `d` in a
/// run of `n` tasks and `k` steps, one run finds it with probability at
/// least 1/(n·k^(d-1)). Timers count as one more "task". Allocation sleeps
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
            Decision::Step { options, .. } => {
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
        let mut c = PctChooser::new(3, 1, 100, 0.0);
        let first = c.choose(Decision::Step { options: &options, times: &[0, 0, 0] }, 3);
        // Depth 1: no change points; the same option wins every time.
        assert!((0..50).all(|_| c.choose(Decision::Step { options: &options, times: &[0, 0, 0] }, 3) == first));
        // Depth 3 over 10 steps: the preferred option changes at least once.
        let mut c = PctChooser::new(3, 3, 10, 0.0);
        let picks: Vec<usize> =
            (0..20).map(|_| c.choose(Decision::Step { options: &options, times: &[0, 0, 0] }, 3)).collect();
        assert!(picks.windows(2).any(|w| w[0] != w[1]), "{picks:?}");
    }
}

#[cfg(test)]
mod dfs_tests {
    use super::*;

    #[test]
    fn dfs_keeps_the_running_task_by_default_and_counts_leaving_it_as_a_preemption() {
        let records = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let options = [StepKind::Task(TaskId(0)), StepKind::Task(TaskId(1)), StepKind::Timer];
        let step = Decision::Step { options: &options, times: &[0, 0, 0] };
        // Prefix: first decision takes option 1 (rank 1 from the default 0),
        // then the default: the task that ran (1) goes on.
        let mut c = DfsChooser::new(vec![1], std::rc::Rc::clone(&records));
        assert_eq!(c.choose(step, 3), 1);
        assert_eq!(c.choose(step, 3), 1);
        assert_eq!(c.choose(Decision::MaySleep { point: "p" }, 3), 0);
        let seen = records.borrow().clone();
        assert_eq!(
            seen,
            vec![
                // No task ran before: choosing is not a preemption.
                DecisionRecord { n: 3, rank: 1, preemptive: false },
                DecisionRecord { n: 3, rank: 0, preemptive: true },
                DecisionRecord { n: 3, rank: 0, preemptive: true },
            ]
        );
        // Rank 2 from the running task 1 skips the default: option 2.
        let mut c = DfsChooser::new(vec![1, 2], std::rc::Rc::clone(&records));
        assert_eq!(c.choose(step, 3), 1);
        assert_eq!(c.choose(step, 3), 2);
    }
}
