//! Source-DPOR (Abdulla, Aronis, Jonsson and Sagonas, "Optimal dynamic
//! partial order reduction", POPL 2014, Algorithm 1: source sets and sleep
//! sets, without wakeup trees) over the footprints dfs records.
//!
//! A dfs with DPOR runs the schedule with no preemption first, like the
//! plain dfs, but it does not try every option of every decision: after
//! each run it looks for *races*, pairs of steps of different tasks whose
//! footprints conflict and that nothing in between orders, and only where
//! a race could go the other way does it add a task to the decision's
//! backtrack set (one task that can start the reversed order, unless the
//! set holds one already). Every option at an allocation or fault decision
//! is tried (data nondeterminism, not an order). The steps explored at a
//! decision sleep in the schedules that try its other options, as in the
//! plain dfs.
//!
//! Tasks are the processes of the algorithm, and the timer queue is one
//! more (its step fires the earliest timer). A task blocked at a decision
//! (spinning on a held lock, asleep, queued with no idle CPU) is no option
//! there. When a step i races with a later step j of a task that was no
//! option anywhere from i to j (i released what j takes, or j's task was
//! asleep), the race is reversed if one of its initials is an option at i,
//! and the search also looks past i, to the earlier steps that took what
//! i released (Flanagan and Godefroid treat a lock's release and the next
//! acquire so: never enabled together, so the two acquires race). This is
//! a superset of the backtrack points the theory asks for; the tests below
//! showed that stopping at the first such step loses final states.
//!
//! A run that ends cuts short the steps the other tasks would have taken
//! next (`DfsRun::cut_short`: tasks ready to run or spinning, the timer
//! queue), so no race with them is seen in it; and a run that stopped
//! early (a violation, the step budget) stopped at its last step, which
//! disabled every other step. The search treats that stop as a write every
//! step reads: the last step of a stopped run conflicts with every step,
//! and each cut-short task gets a step after the run's last that touches
//! everything. (Without this the search lost race 3's violations: the
//! timer that would have woken the faulting task, or the task itself, was
//! pending when the violation ended the run.) Where no initial of a
//! reversed race is an option at its decision (the task was asleep, or
//! queued with no idle CPU), every option there is added (Flanagan and
//! Godefroid's fallback).
//!
//! With a preemption bound (Coons, Musuvathi and McKinley, "Bounded
//! partial-order reduction", OOPSLA 2013), a backtrack point the bound
//! forbids would lose the reversed order, so each race also adds its task
//! where the running task got its CPU (or, if it is no option there, every
//! option there) and at every decision from the latest earlier one where
//! taking it costs no preemption (nothing ran, or a due timer was the
//! default) up to the race's own, and only a preemptive decision's default
//! step sleeps (as in the plain dfs). (With only the first of those and
//! the race's own, a random program lost a final state:
//! `dfs::tests::dpor_under_a_bound_switches_anywhere_between`.)
//! Without a bound, source-DPOR's theorem says every final state of the
//! full search is reached (given footprints that name every conflict).
//! With a bound that is no theorem: it is what `dfs::tests` (random
//! programs with locks, a trylock, a semaphore, `cond_resched`, I/O
//! sleeps, allocation decisions, one or two CPUs for two or three tasks,
//! and invariant checks that stop the run; bounds 0, 1, 2 and none) and
//! `script/tests/sleep_sets.rs` (the race scenarios) check.
//!
//! Status: sound on those checks, and offered by `explore --strategy dfs
//! --reduction dpor`, but it cuts next to nothing on the race scenarios.
//! Measured on race 1 under the patch at 2 preemptions (the `diagnose`
//! test of `script/tests/sleep_sets.rs`): 23 709 schedules, 960 distinct
//! outcomes (2 without the end time), 8 459 distinct traces over these
//! footprints, and 6 478 distinct pairs of (allocation sleeps taken, order
//! in which the tasks held the one CPU). Each such pair is a trace of its
//! own whatever the footprints of the kernel's objects, since the CPU's
//! clock orders every dispatch on it, so no search over this model can run
//! fewer than 6 478 schedules there; an optimal one would run 8 459. Of
//! the races that add a backtrack point, most are on the CPUs, the task
//! states and the big kernel lock (each alone, with every other access
//! left out, still gives 9 000 to 16 000 schedules). Those are the C's:
//! do_fork, sys_swapoff and do_exit run under the BKL (kernel/fork.c:613,
//! mm/swapfile.c:453, kernel/exit.c:414), which schedule() drops only when
//! its holder sleeps (kernel/sched.c:455), so every take of it conflicts
//! with every other. Without a bound the allocation decisions multiply
//! it (three options each, every one tried): race 5 under the patch is not
//! exhausted in a million schedules.

use std::rc::Rc;

use super::dfs::{rank_index, DfsRun, Sleeper};
use super::StepKind;
use crate::footprint::Footprint;
use crate::task::TaskId;

/// Per decision of a schedule, the steps asleep from there on.
pub type Asleep = Vec<Vec<Rc<Sleeper>>>;

/// What the search keeps of one decision of a run.
#[derive(Clone, Debug)]
pub struct DporDecision {
    /// The options of a step decision (empty for an allocation or fault
    /// decision).
    pub kinds: Vec<StepKind>,
    /// The index of the default option.
    pub default: u32,
    /// The steps asleep at the decision.
    pub sleeping: Vec<StepKind>,
    /// The task that ran last before the decision.
    pub running: Option<TaskId>,
}

/// Per (space, key, how) of a conflict: races, and races that added a
/// backtrack point ([`DporTree::blame`]).
pub type Blame = std::collections::BTreeMap<(u32, u64, &'static str), [u64; 2]>;

/// One step of a run: its decision and what it touched.
#[derive(Clone, Debug)]
pub struct DporStep {
    pub decision: u32,
    pub step: Rc<Sleeper>,
    /// Whether it may sleep (a task's step with no decision inside).
    pub sleepable: bool,
}

/// A step whose races are looked for: a step of the run, or the step a
/// task cut short by the run's end would have taken next (`footprint`
/// None: it might touch anything).
struct Racer<'a> {
    index: usize,
    proc: usize,
    pos: u32,
    kind: StepKind,
    footprint: Option<&'a Footprint>,
}

/// A decision on the current path of the search.
#[derive(Clone, Debug)]
struct Node {
    kinds: Vec<StepKind>,
    default: u32,
    preemptive: bool,
    /// Preemptions before this decision.
    used: u32,
    running: Option<TaskId>,
    taken: u32,
    /// Options to explore here (indices), the taken ones included.
    backtrack: Vec<u32>,
    done: Vec<u32>,
    sleeping: Vec<StepKind>,
    /// Steps explored here that sleep in the later schedules.
    slept: Vec<Rc<Sleeper>>,
}

impl Node {
    fn cost(&self, index: u32) -> u32 {
        u32::from(self.preemptive && index != self.default)
    }

    fn index_of(&self, kind: StepKind) -> Option<u32> {
        self.kinds.iter().position(|&k| k == kind).map(|i| i as u32)
    }

    fn rank(&self) -> u32 {
        match self.taken {
            t if t == self.default => 0,
            t if t < self.default => t + 1,
            t => t,
        }
    }
}

/// The search tree of a dfs with DPOR: the decisions of the current path
/// with their backtrack, done and sleep sets.
#[derive(Clone, Debug)]
pub struct DporTree {
    nodes: Vec<Node>,
    bound: u32,
    /// Races found, backtrack points added (for reports and tests).
    pub races: u64,
    pub added: u64,
    pub data_branches: u64,
    pub step_branches: u64,
    /// For diagnostics (off unless set): the pairs of accesses that made
    /// the reversed races' steps conflict, by (space, key, how) (see
    /// [`Footprint::conflicts_on`]): how many races, and how many of them
    /// added a backtrack point.
    pub blame: Option<Blame>,
}

impl DporTree {
    /// A search within `bound` preemptions (u32::MAX: no bound).
    pub fn new(bound: u32) -> DporTree {
        DporTree { nodes: Vec::new(), bound, races: 0, added: 0, data_branches: 0, step_branches: 0, blame: None }
    }

    pub fn bound(&self) -> u32 {
        self.bound
    }

    /// Take in the run that followed a prefix of `prefix_len` decisions,
    /// and return the next schedule (its ranks and its sleepers per
    /// decision), or None when the search is complete.
    pub(crate) fn next(&mut self, prefix_len: usize, run: &DfsRun, bound: u32) -> Option<(Vec<u32>, Asleep)> {
        assert_eq!(bound, self.bound, "a DPOR search keeps its bound");
        self.merge(run);
        self.analyse(prefix_len.saturating_sub(1), run);
        let d = (0..self.nodes.len()).rev().find_map(|d| {
            let node = &self.nodes[d];
            node.backtrack
                .iter()
                .copied()
                .filter(|c| !node.done.contains(c))
                .filter(|&c| node.kinds.is_empty() || !node.sleeping.contains(&node.kinds[c as usize]))
                .filter(|&c| node.used + node.cost(c) <= self.bound)
                .min_by_key(|&c| (node.cost(c), c))
                .map(|c| (d, c))
        });
        let (d, c) = d?;
        if self.nodes[d].kinds.is_empty() {
            self.data_branches += 1;
        } else {
            self.step_branches += 1;
        }
        self.nodes.truncate(d + 1);
        let node = &mut self.nodes[d];
        if let Some(step) = run.sleepers.get(d).cloned().flatten() {
            node.slept.push(step);
        }
        node.done.push(c);
        node.taken = c;
        let prefix = self.nodes.iter().map(Node::rank).collect();
        let asleep = self.nodes.iter().map(|n| n.slept.clone()).collect();
        Some((prefix, asleep))
    }

    /// The run's decisions past the current path become nodes.
    fn merge(&mut self, run: &DfsRun) {
        let mut used = 0;
        for (d, (record, info)) in run.records.iter().zip(&run.dpor).enumerate() {
            if d >= self.nodes.len() {
                let taken = rank_index(record.rank, info.default as usize, record.n as usize) as u32;
                let backtrack = if info.kinds.is_empty() { (0..record.n).collect() } else { vec![taken] };
                self.nodes.push(Node {
                    kinds: info.kinds.clone(),
                    default: info.default,
                    preemptive: record.preemptive,
                    used,
                    running: info.running,
                    taken,
                    backtrack,
                    done: vec![taken],
                    sleeping: info.sleeping.clone(),
                    slept: Vec::new(),
                });
            }
            used += u32::from(record.preemptive && record.rank > 0);
        }
    }

    /// Source-DPOR's race analysis of the run's steps from decision
    /// `branch` on (the steps before it, and their races, are the previous
    /// run's).
    fn analyse(&mut self, branch: usize, run: &DfsRun) {
        let steps = &run.steps;
        let m = steps.len();
        if m == 0 {
            return;
        }
        let slot = |k: StepKind| match k {
            StepKind::Timer => 0usize,
            StepKind::Task(t) => t.0 as usize + 1,
        };
        // Every task that stepped, was an option or was cut short.
        let options = self.nodes.iter().flat_map(|n| n.kinds.iter().copied());
        let kinds = steps.iter().map(|s| s.step.kind).chain(options).chain(run.cut_short.iter().copied());
        let procs = kinds.map(slot).max().unwrap_or(0) + 1;
        let proc_of: Vec<usize> = steps.iter().map(|s| slot(s.step.kind)).collect();
        // Per process, its steps in order; pos is 1-based.
        let mut of_proc: Vec<Vec<usize>> = vec![Vec::new(); procs];
        let mut pos = vec![0u32; m];
        for (e, &p) in proc_of.iter().enumerate() {
            of_proc[p].push(e);
            pos[e] = of_proc[p].len() as u32;
        }
        // A run that stopped early (a violation) stopped at its last step:
        // that step disabled every other, as a write every step reads, so
        // it conflicts with every step.
        let stops = |e: usize| run.stopped && e == m - 1;
        // Vector clocks: clock[e*procs + p] = the last step of p that
        // happens before e (e itself for its own process).
        let mut clock = vec![0u32; m * procs];
        let mut last_of = vec![usize::MAX; procs];
        for e in 0..m {
            let p = proc_of[e];
            let (before, rest) = clock.split_at_mut(e * procs);
            let vc = &mut rest[..procs];
            if last_of[p] != usize::MAX {
                vc.copy_from_slice(&before[last_of[p] * procs..last_of[p] * procs + procs]);
            }
            vc[p] = pos[e];
            for i in (0..e).rev() {
                let pi = proc_of[i];
                if vc[pi] >= pos[i] || !(stops(e) || steps[i].step.footprint.conflicts(&steps[e].step.footprint)) {
                    continue;
                }
                for (x, y) in vc.iter_mut().zip(&before[i * procs..i * procs + procs]) {
                    *x = (*x).max(*y);
                }
            }
            last_of[p] = e;
        }
        let first_new = steps.iter().position(|s| s.decision as usize >= branch).unwrap_or(m);
        let mut covered = vec![0u32; procs];
        for j in first_new..m {
            let step = &steps[j].step;
            let j =
                Racer { index: j, proc: proc_of[j], pos: pos[j], kind: step.kind, footprint: Some(&step.footprint) };
            self.race_back(&j, steps[j.index].decision as usize, &proc_of, &of_proc, &pos, &clock, &mut covered, steps);
        }
        if run.pruned {
            return;
        }
        // The run's end (every task done, or a violation stopped it) cut
        // short the tasks that could still step (`DfsRun::cut_short`):
        // their next steps never ran, so no race with them was seen. The
        // end disables them all, as a write that every step reads; what
        // each would have touched is unknown, so each stands for a step
        // that touches everything, after the run's last: it races with the
        // latest step of each other task that it does not follow.
        let ends = self.nodes.len();
        let mut virtual_clock = clock.clone();
        let everything: Vec<u32> = (0..procs).map(|p| of_proc[p].len() as u32).collect();
        virtual_clock.extend_from_slice(&everything);
        for &kind in &run.cut_short {
            let q = slot(kind);
            let mut proc_of = proc_of.clone();
            let mut of_proc = of_proc.clone();
            let mut pos = pos.clone();
            proc_of.push(q);
            of_proc[q].push(m);
            pos.push(of_proc[q].len() as u32);
            virtual_clock[m * procs + q] = pos[m];
            let j = Racer { index: m, proc: q, pos: pos[m], kind, footprint: None };
            self.race_back(&j, ends, &proc_of, &of_proc, &pos, &virtual_clock, &mut covered, steps);
            virtual_clock[m * procs + q] = everything[q];
        }
    }

    /// Source-DPOR's race detection for step `j` (at decision `at_j`):
    /// every earlier step of another task that conflicts with it and that
    /// nothing orders before it gets the reversed order as a backtrack
    /// point.
    #[allow(clippy::too_many_arguments)]
    fn race_back(
        &mut self,
        j: &Racer<'_>,
        at_j: usize,
        proc_of: &[usize],
        of_proc: &[Vec<usize>],
        pos: &[u32],
        clock: &[u32],
        covered: &mut [u32],
        steps: &[DporStep],
    ) {
        let procs = covered.len();
        let vc = |e: usize| &clock[e * procs..e * procs + procs];
        let q = j.proc;
        // The last decision before j's at which j's task was an option.
        let enabled = (0..at_j).rev().find(|&d| self.nodes[d].kinds.contains(&j.kind));
        covered.fill(0);
        if j.pos > 1 {
            covered.copy_from_slice(vc(of_proc[q][j.pos as usize - 2]));
        }
        covered[q] = j.pos;
        for i in (0..j.index).rev() {
            let pi = proc_of[i];
            if covered[pi] >= pos[i] || !j.footprint.is_none_or(|f| steps[i].step.footprint.conflicts(f)) {
                continue;
            }
            let at = steps[i].decision as usize;
            let before = self.added;
            let initials = self.initials(i, j, proc_of, of_proc, pos, clock, procs, steps);
            let reversible = initials.iter().any(|&k| self.nodes[at].index_of(k).is_some());
            if !reversible {
                // No initial of the reversed order can go first at i (j's
                // task was asleep, or had no CPU): every option there might
                // lead to it (Flanagan and Godefroid's fallback).
                self.add_all(at);
            }
            self.reverse(i, at, &initials, steps);
            if let Some(blame) = self.blame.as_mut() {
                let why = match j.footprint {
                    Some(f) => steps[i].step.footprint.conflicts_on(f),
                    None => vec![(0, 0, "cut short")],
                };
                for w in why {
                    let counts = blame.entry(w).or_default();
                    counts[0] += 1;
                    counts[1] += u64::from(self.added > before);
                }
            }
            // If j's task was an option at or after step i's decision, the
            // race with i covers the steps i follows; if not (i released
            // what j takes, a lock or a CPU, or j's task was asleep), look
            // past i too, to the step that took what i released.
            if enabled.is_some_and(|d| d >= at) {
                for (x, y) in covered.iter_mut().zip(vc(i)) {
                    *x = (*x).max(*y);
                }
            }
        }
    }

    /// Reverse the race of step `i` (at decision `at`) with a later step
    /// whose reversed order one of `initials` starts.
    fn reverse(&mut self, i: usize, at: usize, initials: &[StepKind], steps: &[DporStep]) {
        self.races += 1;
        self.add(at, initials);
        if self.bound != u32::MAX {
            if let Some((start, _)) = self.run_start(i, steps) {
                if !self.add(start, initials) {
                    // None of the initials can go first there (the race's
                    // task was asleep, a timer had to wake it first): every
                    // option there might (Flanagan and Godefroid's fallback).
                    self.add_all(start);
                }
            }
            // And at every decision from the latest one before where one
            // of them costs no preemption: with only that one and the race's
            // own, the random programs of `dfs::tests` lost final states
            // (`dpor_under_a_bound_switches_anywhere_between`).
            let free = self.free_before(at, initials).unwrap_or(0);
            for d in free..at {
                self.add(d, initials);
            }
        }
    }

    /// Add every option the bound allows at decision `at`.
    fn add_all(&mut self, at: usize) {
        let bound = self.bound;
        let node = &mut self.nodes[at];
        for c in 0..node.kinds.len() as u32 {
            if node.used + node.cost(c) <= bound && !node.backtrack.contains(&c) {
                node.backtrack.push(c);
                self.added += 1;
            }
        }
    }

    /// Add one of `initials` that is an option at decision `at` to its
    /// backtrack set, unless the set holds one already: the cheapest.
    /// Returns false if none of them is an option the bound allows there.
    fn add(&mut self, at: usize, initials: &[StepKind]) -> bool {
        let bound = self.bound;
        let node = &mut self.nodes[at];
        // Only options the bound allows here count.
        let options: Vec<u32> =
            initials.iter().filter_map(|&k| node.index_of(k)).filter(|&c| node.used + node.cost(c) <= bound).collect();
        if options.is_empty() {
            return false;
        }
        if options.iter().any(|c| node.backtrack.contains(c)) {
            return true;
        }
        let best = options.into_iter().min_by_key(|&c| (node.cost(c), c)).expect("not empty");
        node.backtrack.push(best);
        self.added += 1;
        true
    }

    /// The latest step decision before `at` at which one of `initials`
    /// is an option that costs no preemption (nothing was running, or a
    /// due timer was the default).
    fn free_before(&self, at: usize, initials: &[StepKind]) -> Option<usize> {
        (0..at).rev().find(|&d| {
            let node = &self.nodes[d];
            initials.iter().any(|&k| node.index_of(k).is_some_and(|c| node.cost(c) == 0))
        })
    }

    /// The decision at which the task running before step `i` got its CPU
    /// (its first step of the stretch that ends just before `i`).
    fn run_start(&self, i: usize, steps: &[DporStep]) -> Option<(usize, usize)> {
        let at = steps[i].decision as usize;
        let running = StepKind::Task(self.nodes[at].running?);
        let mut start = None;
        for k in (0..i).rev() {
            match steps[k].step.kind {
                StepKind::Timer => continue,
                kind if kind == running => start = Some((steps[k].decision as usize, k)),
                _ => break,
            }
        }
        start.filter(|&(s, _)| s != at)
    }

    /// The initials of v = notdep(e_i).e_j at the state before step i: the
    /// tasks whose first step in v depends on no earlier step of v.
    #[allow(clippy::too_many_arguments)]
    fn initials(
        &self,
        i: usize,
        j: &Racer<'_>,
        proc_of: &[usize],
        of_proc: &[Vec<usize>],
        pos: &[u32],
        clock: &[u32],
        procs: usize,
        steps: &[DporStep],
    ) -> Vec<StepKind> {
        let pi = proc_of[i];
        let vc = |e: usize| &clock[e * procs..e * procs + procs];
        // Each process's first step in v.
        let mut firsts: Vec<(usize, usize)> = Vec::new();
        for (p, evs) in of_proc.iter().enumerate() {
            let at = evs.partition_point(|&e| e <= i);
            match evs.get(at) {
                Some(&f) if f < j.index && vc(f)[pi] < pos[i] => firsts.push((p, f)),
                Some(&f) if f >= j.index && p == j.proc => firsts.push((p, j.index)),
                _ => {}
            }
        }
        firsts
            .iter()
            .filter(|&&(p, f)| firsts.iter().all(|&(r, g)| r == p || vc(f)[r] < pos[g]))
            .map(|&(_, f)| if f == j.index { j.kind } else { steps[f].step.kind })
            .collect()
    }
}
