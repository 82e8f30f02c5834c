//! Bounded depth-first search (CHESS) with sleep sets: the chooser of one
//! schedule, and how the search picks the next one.

use super::{Chooser, Decision, StepKind, PRUNE};
use crate::footprint::Footprint;
use crate::task::TaskId;
use std::rc::Rc;

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

/// A step a dfs may put to sleep (Godefroid's sleep sets): the task's step
/// taken at a decision, with its footprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sleeper {
    pub kind: StepKind,
    pub footprint: Footprint,
}

/// Where a [`DfsChooser`] writes its run, for the search that owns it to
/// read after the run.
#[derive(Clone, Debug, Default)]
pub struct DfsRun {
    /// Every decision, in order.
    pub records: Vec<DecisionRecord>,
    /// Per decision: the step taken there, if a later sibling schedule may
    /// put it to sleep (see [`DfsChooser`]).
    pub sleepers: Vec<Option<Rc<Sleeper>>>,
    /// The run stopped early: the step it was to take is asleep, so every
    /// schedule going on from there is equivalent to one explored before.
    pub pruned: bool,
}

pub type DecisionLog = std::rc::Rc<std::cell::RefCell<DfsRun>>;

/// The chooser of a bounded depth-first search (CHESS): it follows a
/// prefix of ranks, then takes the default everywhere (no preemption), and
/// records every decision, so that the search can pick the next prefix.
///
/// With sleep sets (`asleep` given, and footprints recorded by the run), a
/// step that was explored from an earlier state and that commutes with
/// every step taken since is asleep: a schedule that takes it now only
/// reorders independent steps of one explored before, so the run stops
/// there ([`PRUNE`]). Only the default step of a preemptive decision (the
/// running task going on) is ever put to sleep, and only a step that made
/// no allocation or fault decision of its own: moving such a step earlier,
/// to where it was the default, never adds a preemption, so the
/// preemption-bounded search stays exhaustive within its bound (a sleep
/// set over every explored option would not be: Coons, Musuvathi and
/// McKinley, "Bounded partial-order reduction", OOPSLA 2013).
pub struct DfsChooser {
    prefix: Vec<u32>,
    /// Per decision of the prefix: the step explored at it before, which
    /// sleeps from there on.
    asleep: Vec<Option<Rc<Sleeper>>>,
    sleep_sets: bool,
    next: usize,
    running: Option<TaskId>,
    log: DecisionLog,
    /// The sleep set now.
    sleep: Vec<Rc<Sleeper>>,
    /// The last step decision: its index, what it took, and whether it
    /// may be put to sleep (so far: no allocation or fault decision yet).
    pending: Option<(usize, StepKind, bool)>,
}

impl DfsChooser {
    /// A plain bounded dfs run (no sleep sets).
    pub fn new(prefix: Vec<u32>, log: DecisionLog) -> DfsChooser {
        DfsChooser::with_sleep_sets(prefix, Vec::new(), false, log)
    }

    /// With `sleep_sets`, the run must record footprints
    /// (`SimConfig::record_footprints`).
    pub fn with_sleep_sets(
        prefix: Vec<u32>,
        asleep: Vec<Option<Rc<Sleeper>>>,
        sleep_sets: bool,
        log: DecisionLog,
    ) -> DfsChooser {
        // Room for the prefix and a tail as long again (runs of one search
        // are about as long as each other).
        let room = 2 * prefix.len() + 16;
        *log.borrow_mut() =
            DfsRun { records: Vec::with_capacity(room), sleepers: Vec::with_capacity(room), pruned: false };
        DfsChooser { prefix, asleep, sleep_sets, next: 0, running: None, log, sleep: Vec::new(), pending: None }
    }
}

impl Chooser for DfsChooser {
    fn choose(&mut self, decision: Decision<'_>, n: usize) -> usize {
        // The default option, and whether leaving it preempts someone.
        let (default, preemptive) = match decision {
            Decision::Step { options, times } => {
                match self.running.and_then(|t| options.iter().position(|o| *o == StepKind::Task(t))) {
                    // A timer that is due by the running task's time fires
                    // first, as the interrupt would: never firing it is not a
                    // schedule without preemptions but an infinite delay.
                    Some(i) => match options.iter().position(|o| *o == StepKind::Timer) {
                        Some(timer) if times[timer] <= times[i] => (timer, false),
                        _ => (i, true),
                    },
                    None => (0, false),
                }
            }
            Decision::MaySleep { .. } => (0, true),
            Decision::Inject { .. } => (0, false),
        };
        let at = self.next;
        let rank = self.prefix.get(at).copied().unwrap_or(0).min(n as u32 - 1);
        self.next += 1;
        // Rank 0 is the default; rank r is the r-th other option.
        let index = if rank == 0 {
            default
        } else {
            (0..n).filter(|&i| i != default).nth(rank as usize - 1).unwrap_or(default)
        };
        let preemptive = preemptive && n > 1;
        let mut log = self.log.borrow_mut();
        log.records.push(DecisionRecord { n: n as u32, rank, preemptive });
        log.sleepers.push(None);
        match decision {
            Decision::Step { options, .. } => {
                let kind = options[index];
                if self.sleep_sets {
                    if let Some(Some(explored)) = self.asleep.get(at) {
                        self.sleep.push(Rc::clone(explored));
                    }
                    if self.sleep.iter().any(|s| s.kind == kind) {
                        log.pruned = true;
                        return PRUNE;
                    }
                }
                if let StepKind::Task(t) = kind {
                    self.running = Some(t);
                }
                let sleepable = rank == 0 && preemptive && matches!(kind, StepKind::Task(_));
                self.pending = Some((at, kind, sleepable));
            }
            // A decision inside the step: the step is not the same step
            // under another choice, so it never sleeps.
            Decision::MaySleep { .. } | Decision::Inject { .. } => {
                if let Some(pending) = self.pending.as_mut() {
                    pending.2 = false;
                }
            }
        }
        index
    }

    fn stepped(&mut self, footprint: Footprint) {
        // A sleeping step wakes when a step it does not commute with runs.
        self.sleep.retain(|s| !s.footprint.conflicts(&footprint));
        if let Some((at, kind, true)) = self.pending.take() {
            self.log.borrow_mut().sleepers[at] = Some(Rc::new(Sleeper { kind, footprint }));
        }
    }
}

/// One schedule of a bounded depth-first search: the ranks to follow, with
/// sleep sets the step explored before at each decision, and where the
/// run is recorded.
#[derive(Clone, Debug, Default)]
pub struct DfsPlan {
    pub prefix: Vec<u32>,
    pub asleep: Vec<Option<Rc<Sleeper>>>,
    pub sleep_sets: bool,
    pub log: DecisionLog,
}

impl DfsPlan {
    /// The chooser that runs this schedule (with sleep sets, the run must
    /// record footprints: `SimConfig::record_footprints`).
    pub fn chooser(&self) -> DfsChooser {
        DfsChooser::with_sleep_sets(self.prefix.clone(), self.asleep.clone(), self.sleep_sets, self.log.clone())
    }

    /// The schedule after this one, given how this one went (`run`): the
    /// deepest decision with an untried rank within the preemption bound
    /// takes that rank. With sleep sets, the step a decision took at rank
    /// 0 sleeps in the schedules that try its other ranks. None: the
    /// search is complete.
    pub fn next(&self, run: &DfsRun, bound: u32) -> Option<DfsPlan> {
        let records = &run.records;
        let mut used: Vec<u32> = Vec::with_capacity(records.len());
        let mut preemptions = 0;
        for r in records {
            used.push(preemptions);
            preemptions += u32::from(r.preemptive && r.rank > 0);
        }
        let i = (0..records.len()).rev().find(|&i| {
            let r = records[i];
            r.rank + 1 < r.n && used[i] + u32::from(r.preemptive) <= bound
        })?;
        let mut prefix: Vec<u32> = records[..i].iter().map(|r| r.rank).collect();
        prefix.push(records[i].rank + 1);
        let mut asleep: Vec<Option<Rc<Sleeper>>> = self.asleep.iter().take(i).cloned().collect();
        asleep.resize(i, None);
        asleep.push(if records[i].rank == 0 { run.sleepers[i].clone() } else { self.asleep.get(i).cloned().flatten() });
        Some(DfsPlan { prefix, asleep, sleep_sets: self.sleep_sets, log: self.log.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{footprint, LockKind, Sim, SimConfig};
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::rc::Rc;

    #[test]
    fn dfs_keeps_the_running_task_by_default_and_counts_leaving_it_as_a_preemption() {
        let records: DecisionLog = Default::default();
        let options = [StepKind::Task(TaskId(0)), StepKind::Task(TaskId(1)), StepKind::Timer];
        // The timer is not due yet: it is never the default here.
        let step = Decision::Step { options: &options, times: &[0, 0, 100] };
        // Prefix: first decision takes option 1 (rank 1 from the default 0),
        // then the default: the task that ran (1) goes on.
        let mut c = DfsChooser::new(vec![1], std::rc::Rc::clone(&records));
        assert_eq!(c.choose(step, 3), 1);
        assert_eq!(c.choose(step, 3), 1);
        assert_eq!(c.choose(Decision::MaySleep { point: "p" }, 3), 0);
        let seen = records.borrow().records.clone();
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

    #[test]
    fn dfs_fires_a_due_timer_by_default_without_counting_a_preemption() {
        let records: DecisionLog = Default::default();
        let options = [StepKind::Task(TaskId(0)), StepKind::Timer];
        let mut c = DfsChooser::new(vec![], std::rc::Rc::clone(&records));
        // Task 0 runs first (no one ran before).
        assert_eq!(c.choose(Decision::Step { options: &options, times: &[10, 50] }, 2), 0);
        // Not due yet: task 0 goes on.
        assert_eq!(c.choose(Decision::Step { options: &options, times: &[20, 50] }, 2), 0);
        // Due by task 0's time: the timer fires, and that is no preemption.
        assert_eq!(c.choose(Decision::Step { options: &options, times: &[60, 50] }, 2), 1);
        assert_eq!(records.borrow().records.last(), Some(&DecisionRecord { n: 2, rank: 0, preemptive: false }));
        // Then task 0 is still the one running.
        assert_eq!(c.choose(Decision::Step { options: &options, times: &[60, 90] }, 2), 0);
    }

    /// A small random program: each task a list of steps over shared
    /// cells, spinlocks, a semaphore, I/O sleeps and allocation decisions.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        Read(usize),
        Write(usize),
        Lock(usize),
        Unlock(usize),
        Down,
        Up,
        Io(u64),
        MaySleep,
    }

    fn program(rng: &mut impl rand::Rng, tasks: usize) -> Vec<Vec<Op>> {
        (0..tasks)
            .map(|_| {
                let mut ops = Vec::new();
                for _ in 0..rng.random_range(2..=3) {
                    let cell = rng.random_range(0..3);
                    let op = match rng.random_range(0..10) {
                        0..=2 => Op::Read(cell),
                        3..=5 => Op::Write(cell),
                        6 => Op::Io(rng.random_range(1..4) * 150),
                        7 => Op::MaySleep,
                        _ => Op::Lock(rng.random_range(0..2)),
                    };
                    match op {
                        // A critical section around one access.
                        Op::Lock(l) => ops.extend([Op::Lock(l), Op::Write(cell), Op::Unlock(l)]),
                        Op::Io(_) if rng.random_bool(0.3) => ops.extend([Op::Down, op, Op::Up]),
                        _ => ops.push(op),
                    }
                }
                ops
            })
            .collect()
    }

    /// Every (outcome, final state) a dfs within `bound` reaches, and how
    /// many schedules it ran to the end; None past `CAP` runs.
    fn reachable(prog: &[Vec<Op>], cpus: usize, bound: u32, sleep_sets: bool) -> Option<(BTreeSet<String>, u64)> {
        const CAP: u64 = 3_000;
        let mut seen = BTreeSet::new();
        let mut complete = 0;
        let mut plan = DfsPlan { sleep_sets, ..Default::default() };
        for _ in 0..CAP {
            let cfg = SimConfig { cpus, record_events: false, record_footprints: sleep_sets, ..Default::default() };
            let sim = Sim::new(cfg, Box::new(plan.chooser()));
            let cells = Rc::new(RefCell::new(vec![0u64; 3]));
            let locals = Rc::new(RefCell::new(vec![0u64; prog.len()]));
            let locks = [0, 1].map(|_| sim.new_lock(LockKind::Spin, "l", "l".into()));
            let sem = sim.new_lock(LockKind::Semaphore, "s", "s".into());
            for (i, ops) in prog.iter().enumerate() {
                let (ops, cells, locals) = (ops.clone(), Rc::clone(&cells), Rc::clone(&locals));
                sim.spawn(format!("t{i}"), move |t| async move {
                    for op in ops {
                        t.point("op").await;
                        let mut h = locals.borrow()[i];
                        match op {
                            Op::Read(c) => {
                                footprint::touch(footprint::FIRST_USER_SPACE, c as u64, false);
                                // The task's own clock too: timing is state.
                                h = h.wrapping_mul(31).wrapping_add(cells.borrow()[c] + 1) ^ t.now();
                            }
                            Op::Write(c) => {
                                footprint::touch(footprint::FIRST_USER_SPACE, c as u64, true);
                                cells.borrow_mut()[c] = h.wrapping_mul(7) + i as u64 + 1;
                            }
                            Op::Lock(l) => t.spin_lock(locks[l], "lock").await,
                            Op::Unlock(l) => t.spin_unlock(locks[l], "unlock"),
                            Op::Down => t.down(sem, "down").await,
                            Op::Up => t.up(sem, "up"),
                            Op::Io(ns) => t.sleep_io("io", ns).await,
                            Op::MaySleep => t.may_sleep("alloc", 200).await,
                        }
                        locals.borrow_mut()[i] = h.wrapping_add(1);
                    }
                });
            }
            let outcome = sim.run();
            sim.shutdown();
            let run = std::mem::take(&mut *plan.log.borrow_mut());
            if !run.pruned {
                complete += 1;
                seen.insert(format!("{outcome:?} at {} {:?} {:?}", sim.now(), cells.borrow(), locals.borrow()));
            }
            match plan.next(&run, bound) {
                Some(next) => plan = next,
                None => return Some((seen, complete)),
            }
        }
        None
    }

    /// The reduction is sound, within the preemption bound too: a search
    /// with sleep sets reaches every outcome and final state the full
    /// bounded search reaches, for many random programs.
    #[test]
    fn sleep_sets_reach_every_final_state_of_the_full_bounded_search() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2000);
        let (mut full_runs, mut reduced_runs, mut compared) = (0, 0, 0);
        for case in 0..150 {
            let prog = program(&mut rng, 2 + case % 2);
            let cpus = 1 + case % 2;
            for bound in [1, 2] {
                // Searches too long for a unit test are skipped (both would be cut).
                let Some((full, n_full)) = reachable(&prog, cpus, bound, false) else { continue };
                let (reduced, n_reduced) = reachable(&prog, cpus, bound, true).expect("no longer than the full search");
                assert_eq!(full, reduced, "case {case}, {cpus} CPUs, bound {bound}: {prog:?}");
                assert!(n_reduced <= n_full);
                full_runs += n_full;
                reduced_runs += n_reduced;
                compared += 1;
            }
        }
        assert!(compared >= 200, "only {compared} searches compared");
        eprintln!("{compared} searches: {full_runs} schedules without sleep sets, {reduced_runs} with");
        assert!(reduced_runs < full_runs * 9 / 10, "sleep sets cut little: {reduced_runs} of {full_runs}");
    }
}
