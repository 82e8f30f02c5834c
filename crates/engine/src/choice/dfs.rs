//! Bounded depth-first search (CHESS) with sleep sets: the chooser of one
//! schedule, and how the search picks the next one.

use super::dpor::{DporDecision, DporStep, DporTree};
use super::{Chooser, Decision, StepKind, PRUNE};
use crate::footprint::Footprint;
use crate::task::TaskId;
use std::cell::RefCell;
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
    /// With DPOR: per decision, what the search needs to analyse the run.
    pub dpor: Vec<DporDecision>,
    /// With DPOR: every step, in order.
    pub steps: Vec<DporStep>,
    /// With DPOR: what could still step when the run ended.
    pub cut_short: Vec<StepKind>,
    /// With DPOR: the run stopped before its tasks were done (its last
    /// step stopped it).
    pub stopped: bool,
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
    /// Per decision of the prefix: the steps explored at it before, which
    /// sleep from there on.
    asleep: Vec<Vec<Rc<Sleeper>>>,
    sleep_sets: bool,
    /// With DPOR ([`super::dpor`]): the preemption bound, for the choice
    /// past the prefix when the default step is asleep; u32::MAX for none.
    dpor: Option<u32>,
    /// Preemptions so far.
    used: u32,
    next: usize,
    running: Option<TaskId>,
    log: DecisionLog,
    /// The sleep set now.
    sleep: Vec<Rc<Sleeper>>,
    /// The last step decision: its index, what it took, and whether it
    /// may be put to sleep (so far: no allocation or fault decision yet).
    pending: Option<(usize, StepKind, bool)>,
    /// The decision of the last step taken.
    last_step: Option<usize>,
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
        asleep: Vec<Vec<Rc<Sleeper>>>,
        sleep_sets: bool,
        log: DecisionLog,
    ) -> DfsChooser {
        // Room for the prefix and a tail as long again (runs of one search
        // are about as long as each other).
        let room = 2 * prefix.len() + 16;
        *log.borrow_mut() =
            DfsRun { records: Vec::with_capacity(room), sleepers: Vec::with_capacity(room), ..DfsRun::default() };
        DfsChooser {
            prefix,
            asleep,
            sleep_sets,
            dpor: None,
            used: 0,
            next: 0,
            running: None,
            log,
            sleep: Vec::new(),
            pending: None,
            last_step: None,
        }
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
        let preemptive = preemptive && n > 1;
        if self.sleep_sets {
            if let Some(explored) = self.asleep.get(at) {
                self.sleep.extend(explored.iter().cloned());
            }
        }
        let mut rank = self.prefix.get(at).copied().unwrap_or(0).min(n as u32 - 1);
        if let (Some(bound), Decision::Step { options, .. }) = (self.dpor, decision) {
            // Past the prefix DPOR takes the default, or, when the default
            // step is asleep, the first awake option the bound allows.
            if at >= self.prefix.len() && self.sleep.iter().any(|s| s.kind == options[default]) {
                let cost = u32::from(preemptive);
                let awake = (1..n as u32).find(|&r| {
                    let i = rank_index(r, default, n);
                    self.used + cost <= bound && !self.sleep.iter().any(|s| s.kind == options[i])
                });
                rank = awake.unwrap_or(0);
            }
        }
        self.next += 1;
        let index = rank_index(rank, default, n);
        self.used += u32::from(preemptive && rank > 0);
        let mut log = self.log.borrow_mut();
        log.records.push(DecisionRecord { n: n as u32, rank, preemptive });
        log.sleepers.push(None);
        if self.dpor.is_some() {
            let (kinds, sleeping) = match decision {
                Decision::Step { options, .. } => (options.to_vec(), self.sleep.iter().map(|s| s.kind).collect()),
                _ => (Vec::new(), Vec::new()),
            };
            log.dpor.push(DporDecision { kinds, default: default as u32, sleeping, running: self.running });
        }
        match decision {
            Decision::Step { options, .. } => {
                let kind = options[index];
                if self.sleep_sets && self.sleep.iter().any(|s| s.kind == kind) {
                    log.pruned = true;
                    return PRUNE;
                }
                if let StepKind::Task(t) = kind {
                    self.running = Some(t);
                }
                // Under a bound only a preemptive decision's default
                // sleeps (see above); without one, DPOR puts every step it
                // explored to sleep, a timer's too: which timer fires next
                // changes only by a step that sets or fires one, and each
                // of those conflicts with the firing.
                let sleepable =
                    (matches!(kind, StepKind::Task(_)) && rank == 0 && preemptive) || self.dpor == Some(u32::MAX);
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

    fn ended(&mut self, cut_short: &[StepKind], stopped: bool) {
        let mut log = self.log.borrow_mut();
        if stopped && !log.pruned {
            // The last step stopped the run: it disabled every other step,
            // as a write every step reads, so it commutes with none (a
            // schedule that runs another step first does not stop there).
            if let Some(at) = self.last_step {
                if let Some(sleeper) = log.sleepers[at].as_mut() {
                    *sleeper = Rc::new(Sleeper { kind: sleeper.kind, footprint: Footprint::everything() });
                }
            }
            if let Some(step) = log.steps.last_mut() {
                step.step = Rc::new(Sleeper { kind: step.step.kind, footprint: Footprint::everything() });
            }
        }
        if self.dpor.is_some() {
            log.cut_short = cut_short.to_vec();
            // A run the search cut short was stopped by the search, not by
            // its last step.
            log.stopped = stopped && !log.pruned;
        }
    }

    fn stepped(&mut self, footprint: Footprint) {
        // A sleeping step wakes when a step it does not commute with runs.
        self.sleep.retain(|s| !s.footprint.conflicts(&footprint));
        let Some((at, kind, sleepable)) = self.pending.take() else { return };
        self.last_step = Some(at);
        let mut log = self.log.borrow_mut();
        if self.dpor.is_some() {
            let step = Rc::new(Sleeper { kind, footprint });
            if sleepable {
                log.sleepers[at] = Some(Rc::clone(&step));
            }
            log.steps.push(DporStep { decision: at as u32, step, sleepable });
        } else if sleepable {
            log.sleepers[at] = Some(Rc::new(Sleeper { kind, footprint }));
        }
    }
}

/// The option of rank `rank` (0: the default; r: the r-th other option).
pub(crate) fn rank_index(rank: u32, default: usize, n: usize) -> usize {
    if rank == 0 {
        default
    } else {
        (0..n).filter(|&i| i != default).nth(rank as usize - 1).unwrap_or(default)
    }
}

/// One schedule of a bounded depth-first search: the ranks to follow, with
/// sleep sets the step explored before at each decision, and where the
/// run is recorded.
#[derive(Clone, Debug, Default)]
pub struct DfsPlan {
    pub prefix: Vec<u32>,
    pub asleep: Vec<Vec<Rc<Sleeper>>>,
    pub sleep_sets: bool,
    pub log: DecisionLog,
    /// With DPOR ([`DfsPlan::dpor`]): the search tree the schedules share.
    pub dpor: Option<Rc<RefCell<DporTree>>>,
    /// Explore only shard K of N (K from 0): see [`DfsPlan::sharded`].
    pub shard: Option<(u32, u32)>,
    /// The top subtree this schedule is in (numbered in search order), and
    /// how many the search has entered so far.
    pub subtree: u64,
    pub subtrees: u64,
}

/// A dfs splits into shards by the ranks of its first `SHARD_SPLIT`
/// decisions that have a choice: each such prefix is a subtree of its own.
pub const SHARD_SPLIT: usize = 6;

impl DfsPlan {
    /// The first schedule of a search with source-DPOR and sleep sets
    /// ([`super::dpor`]) instead of every rank of every decision.
    /// `bound` is the search's preemption bound (u32::MAX: none), the one
    /// [`DfsPlan::next`] is given.
    pub fn dpor(bound: u32) -> DfsPlan {
        DfsPlan { sleep_sets: true, dpor: Some(Rc::new(RefCell::new(DporTree::new(bound)))), ..Default::default() }
    }

    /// The first schedule of shard `index` (from 0) of `count` of a plain or
    /// sleep-set dfs: the search's subtrees by schedule prefix (the ranks of
    /// the first [`SHARD_SPLIT`] decisions with a choice) go to the shards
    /// in turn. A shard runs the first schedule of every subtree to find
    /// the next ones, but explores and counts only its own ([`DfsPlan::owned`]),
    /// so the shards together run each schedule of the whole search once.
    pub fn sharded(sleep_sets: bool, index: u32, count: u32) -> DfsPlan {
        DfsPlan { sleep_sets, shard: Some((index, count)), subtrees: 1, ..Default::default() }
    }

    /// Whether this schedule belongs to the shard (always, unsharded).
    pub fn owned(&self) -> bool {
        self.shard.is_none_or(|(index, count)| self.subtree % u64::from(count) == u64::from(index))
    }

    /// The chooser that runs this schedule (with sleep sets, the run must
    /// record footprints: `SimConfig::record_footprints`).
    pub fn chooser(&self) -> DfsChooser {
        let mut c =
            DfsChooser::with_sleep_sets(self.prefix.clone(), self.asleep.clone(), self.sleep_sets, self.log.clone());
        c.dpor = self.dpor.as_ref().map(|tree| tree.borrow().bound());
        c
    }

    /// The schedule after this one, given how this one went (`run`): the
    /// deepest decision with an untried rank within the preemption bound
    /// takes that rank. With sleep sets, the step a decision took at rank
    /// 0 sleeps in the schedules that try its other ranks. None: the
    /// search is complete.
    pub fn next(&self, run: &DfsRun, bound: u32) -> Option<DfsPlan> {
        if let Some(tree) = &self.dpor {
            assert!(self.shard.is_none(), "a DPOR search does not split into shards");
            let (prefix, asleep) = tree.borrow_mut().next(self.prefix.len(), run, bound)?;
            let (sleep_sets, log, dpor, shard) = (true, self.log.clone(), self.dpor.clone(), None);
            return Some(DfsPlan { prefix, asleep, sleep_sets, log, dpor, shard, subtree: 0, subtrees: 0 });
        }
        let records = &run.records;
        let mut used: Vec<u32> = Vec::with_capacity(records.len());
        let mut preemptions = 0;
        // The decisions before `top` hold the first SHARD_SPLIT choices.
        let mut top = records.len();
        let mut choices = 0;
        for (i, r) in records.iter().enumerate() {
            used.push(preemptions);
            preemptions += u32::from(r.preemptive && r.rank > 0);
            if r.n > 1 {
                choices += 1;
                if choices == SHARD_SPLIT && top == records.len() {
                    top = i + 1;
                }
            }
        }
        // A subtree of another shard: only its first schedule runs here.
        let end = if self.owned() { records.len() } else { top };
        let i = (0..end).rev().find(|&i| {
            let r = records[i];
            r.rank + 1 < r.n && used[i] + u32::from(r.preemptive) <= bound
        })?;
        let (subtree, subtrees) = match self.shard {
            Some(_) if i < top => (self.subtrees, self.subtrees + 1),
            _ => (self.subtree, self.subtrees),
        };
        let mut prefix: Vec<u32> = records[..i].iter().map(|r| r.rank).collect();
        prefix.push(records[i].rank + 1);
        let mut asleep: Vec<Vec<Rc<Sleeper>>> = self.asleep.iter().take(i).cloned().collect();
        asleep.resize(i, Vec::new());
        let mut here = self.asleep.get(i).cloned().unwrap_or_default();
        if records[i].rank == 0 {
            here.extend(run.sleepers[i].clone());
        }
        asleep.push(here);
        let (sleep_sets, log, shard) = (self.sleep_sets, self.log.clone(), self.shard);
        Some(DfsPlan { prefix, asleep, sleep_sets, log, dpor: None, shard, subtree, subtrees })
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
        /// An invariant check: the run stops with a violation if the cell
        /// holds an odd value (the other tasks' next steps never run).
        Check(usize),
        /// `TryLockPage` on the page lock: if taken, write the cell and
        /// unlock; if not (another task holds it), only note the failure:
        /// a failed try reads the lock, and must not commute with the
        /// holder's take or release.
        TryLock(usize),
        /// `cond_resched`: the tasks that could step go first.
        Resched,
    }

    /// `checks`: some steps are invariant checks that can end the run early.
    fn program(rng: &mut impl rand::Rng, tasks: usize, checks: bool) -> Vec<Vec<Op>> {
        (0..tasks)
            .map(|_| {
                let mut ops = Vec::new();
                for _ in 0..rng.random_range(2..=3) {
                    let cell = rng.random_range(0..3);
                    let op = match rng.random_range(0..if checks { 13 } else { 12 }) {
                        12 => Op::Check(cell),
                        10 => Op::TryLock(cell),
                        11 => Op::Resched,
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
    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Full,
        SleepSets,
        Dpor,
    }

    fn reachable(prog: &[Vec<Op>], cpus: usize, bound: u32, mode: Mode) -> Option<(BTreeSet<String>, u64)> {
        reachable_in(prog, cpus, bound, mode, None).map(|(seen, complete, _)| (seen, complete))
    }

    /// The same in one shard (K, N): also the schedules cut short.
    fn reachable_in(
        prog: &[Vec<Op>],
        cpus: usize,
        bound: u32,
        mode: Mode,
        shard: Option<(u32, u32)>,
    ) -> Option<(BTreeSet<String>, u64, u64)> {
        const CAP: u64 = 3_000;
        let mut seen = BTreeSet::new();
        let (mut complete, mut pruned) = (0, 0);
        let mut plan = match (mode, shard) {
            (Mode::Full, None) => DfsPlan::default(),
            (Mode::SleepSets, None) => DfsPlan { sleep_sets: true, ..Default::default() },
            (Mode::Dpor, _) => DfsPlan::dpor(bound),
            (_, Some((k, n))) => DfsPlan::sharded(mode == Mode::SleepSets, k, n),
        };
        for _ in 0..CAP {
            let cfg =
                SimConfig { cpus, record_events: false, record_footprints: plan.sleep_sets, ..Default::default() };
            let sim = Sim::new(cfg, Box::new(plan.chooser()));
            let cells = Rc::new(RefCell::new(vec![0u64; 3]));
            let locals = Rc::new(RefCell::new(vec![0u64; prog.len()]));
            let locks = [0, 1].map(|_| sim.new_lock(LockKind::Spin, "l", "l".into()));
            let sem = sim.new_lock(LockKind::Semaphore, "s", "s".into());
            let page = sim.new_lock(LockKind::PageBit, "p", "p".into());
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
                            Op::TryLock(c) => {
                                if t.try_lock_page(page, "trylock") {
                                    footprint::touch(footprint::FIRST_USER_SPACE, c as u64, true);
                                    cells.borrow_mut()[c] = h.wrapping_mul(5) + i as u64 + 1;
                                    t.point("locked").await;
                                    t.unlock_page(page, "unlock");
                                } else {
                                    h = h.wrapping_mul(3) + 1;
                                }
                            }
                            Op::Resched => t.cond_resched("resched").await,
                            Op::Check(c) => {
                                footprint::touch(footprint::FIRST_USER_SPACE, c as u64, false);
                                if cells.borrow()[c] % 2 == 1 {
                                    t.violation("check", format!("cell {c} is odd"));
                                }
                            }
                        }
                        locals.borrow_mut()[i] = h.wrapping_add(1);
                    }
                });
            }
            let outcome = sim.run();
            sim.shutdown();
            let run = std::mem::take(&mut *plan.log.borrow_mut());
            if run.pruned {
                pruned += u64::from(plan.owned());
            } else if plan.owned() {
                complete += 1;
                seen.insert(format!("{outcome:?} at {} {:?} {:?}", sim.now(), cells.borrow(), locals.borrow()));
            }
            match plan.next(&run, bound) {
                Some(next) => plan = next,
                None => return Some((seen, complete, pruned)),
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
            let prog = program(&mut rng, 2 + case % 2, case % 4 >= 2);
            let cpus = 1 + case % 2;
            for bound in [1, 2] {
                // Searches too long for a unit test are skipped (both would be cut).
                let Some((full, n_full)) = reachable(&prog, cpus, bound, Mode::Full) else { continue };
                let (reduced, n_reduced) =
                    reachable(&prog, cpus, bound, Mode::SleepSets).expect("no longer than the full search");
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

    /// Source-DPOR is sound: it reaches every outcome and final state the
    /// full search reaches, with no bound (the algorithm's theorem) and
    /// within preemption bounds 1 and 2 (where it is only this test), for
    /// many random programs; and it runs far fewer schedules.
    #[test]
    fn dpor_reaches_every_final_state_of_the_full_search() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2017);
        let (mut full_runs, mut dpor_runs, mut compared) = (0, 0, 0);
        for case in 0..150 {
            // Half the programs check an invariant that can stop the run
            // early, cutting the other tasks short.
            let prog = program(&mut rng, 2 + case % 2, case % 4 >= 2);
            let cpus = 1 + case % 2;
            for bound in [0, 1, 2, u32::MAX] {
                let Some((full, n_full)) = reachable(&prog, cpus, bound, Mode::Full) else { continue };
                let (reduced, n_dpor) =
                    reachable(&prog, cpus, bound, Mode::Dpor).expect("no longer than the full search");
                assert_eq!(full, reduced, "case {case}, {cpus} CPUs, bound {bound}: {prog:?}");
                full_runs += n_full;
                dpor_runs += n_dpor;
                compared += 1;
            }
        }
        assert!(compared >= 300, "only {compared} searches compared");
        eprintln!("{compared} searches: {full_runs} schedules without reduction, {dpor_runs} with DPOR");
        // (cond_resched and trylocks in the programs conflict with much.)
        assert!(dpor_runs < full_runs * 7 / 10, "DPOR cut little: {dpor_runs} of {full_runs}");
    }

    /// Under a preemption bound, adding a race's reversal only where the
    /// running task got its CPU, at the latest decision before where it
    /// costs no preemption and at the race's own lost this final state
    /// (task 2 reads cell 1 between task 1's two writes of it, on the
    /// second CPU, at 2 preemptions; `dpor_reaches_every_final_state_of_the_full_search`
    /// found it): the reversal goes in at every decision between.
    #[test]
    fn dpor_under_a_bound_switches_anywhere_between() {
        use Op::*;
        let prog = vec![
            vec![Lock(1), Write(1), Unlock(1), Lock(1), Write(0), Unlock(1), Write(2)],
            vec![Lock(1), Write(1), Unlock(1), Write(2), Lock(0), Write(1), Unlock(0)],
            vec![Read(1), Lock(1), Write(2), Unlock(1), Read(0)],
        ];
        let (full, _) = reachable(&prog, 2, 2, Mode::Full).expect("a small search");
        let (dpor, _) = reachable(&prog, 2, 2, Mode::Dpor).expect("a small search");
        let lost: Vec<_> = full.difference(&dpor).collect();
        assert!(lost.is_empty(), "DPOR lost {lost:?}");
    }

    /// Shards split a dfs: together they run every schedule of the whole
    /// search once (the same counts, schedules cut short included) and
    /// reach the same final states, with and without sleep sets.
    #[test]
    fn shards_together_run_the_whole_search() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(31);
        let mut compared = 0;
        for case in 0..40 {
            let prog = program(&mut rng, 2 + case % 2, false);
            let cpus = 1 + case % 2;
            for mode in [Mode::Full, Mode::SleepSets] {
                let Some(whole) = reachable_in(&prog, cpus, 2, mode, None) else { continue };
                for count in [2, 3] {
                    let (mut seen, mut complete, mut pruned) = (BTreeSet::new(), 0, 0);
                    let mut owners = 0;
                    for index in 0..count {
                        let (s, c, p) =
                            reachable_in(&prog, cpus, 2, mode, Some((index, count))).expect("a shard is smaller");
                        owners += u32::from(c + p > 0);
                        seen.extend(s);
                        complete += c;
                        pruned += p;
                    }
                    assert_eq!((seen, complete, pruned), whole.clone(), "case {case}, {count} shards: {prog:?}");
                    assert!(owners > 1 || whole.1 + whole.2 < 4, "case {case}: one shard ran everything");
                    compared += 1;
                }
            }
        }
        assert!(compared >= 100, "only {compared} splits compared");
    }
}
