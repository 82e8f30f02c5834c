//! One run of a scenario: load and validate it, boot the machine, run the
//! set-up steps one at a time, then interleave the process programs under
//! the run's seed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use engine::{Outcome, PctChooser, RandomChooser, ReplayChooser, Sim, SimConfig, TimedChooser, Violation};
use kernel::memory::{user_access, Access};
use kernel::{invariants, swapfile, vmscan, Fixes, Kernel, Pid, Stats};

use crate::api;
use crate::driver::{self, Ctx};
use crate::memo::{Memo, MemoSlot, Programs};
use crate::sandbox::{
    compile_source, new_reusable_sandbox, scenario_error, SandboxLimits, SandboxReset, ScenarioError,
};
use crate::spec::{RawSpec, Scenario, SetupOp};

/// How the interleaved phase picks its choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// A seeded random walk.
    #[default]
    Random,
    /// Probabilistic concurrency testing with bug depth `depth`, for runs
    /// of about `steps` steps.
    Pct { depth: u32, steps: u64 },
    /// Timed mode: the option that happens first in simulated time runs
    /// next; for measuring what things cost.
    Timed,
}

/// How to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub strategy: Strategy,
    pub fixes: Fixes,
    pub seed: u64,
    /// Keep the event log (off for multi-seed searches).
    pub record_events: bool,
    pub limits: SandboxLimits,
    /// Replay these choices instead of drawing them from the seed (the
    /// seed still seeds the scenario's `math.random`).
    pub schedule: Option<Vec<u32>>,
    /// Count the named interleaving points reached.
    pub count_points: bool,
    /// Faults to inject instead of the scenario's own `machine{ faults }`.
    pub faults: Option<kernel::Faults>,
    /// Values for the scenario's `param(name)` (a point of its `sweep{}`);
    /// parameters not given take the first value of their list.
    pub params: Vec<(String, i64)>,
    /// A bounded depth-first search's next schedule (overrides `strategy`).
    pub dfs: Option<engine::DfsPlan>,
    /// Record the lock-class order graph (for explore's lockdep check).
    pub lock_order: bool,
    /// Record interleaved point pairs (for explore's coverage line).
    pub point_pairs: bool,
    /// With `schedule`: (p, seed): keep its non-zero choices and draw each
    /// of its zero choices at random with probability p, from a stream of
    /// its own seed (the scenario keeps its `seed`).
    pub perturb: Option<(f64, u64)>,
    /// Record the semantic label of every decision of the interleaved
    /// phase (`RunReport::semantic`, for schedule files).
    pub record_labels: bool,
    /// Replay these recorded events by their labels, with the recorded
    /// choice of each (0 past its end), writing how it went to the log
    /// (`engine::SemanticReplayChooser`; overrides `schedule` and
    /// `strategy`, and records labels).
    pub semantic: Option<(Vec<engine::SemanticEvent>, Vec<u32>, engine::SemanticLog)>,
    /// At most this many steps in the interleaved phase (below the
    /// scenario's own budget): a long scenario's start, for tests.
    pub max_steps: Option<u64>,
    /// Take the programs' steps from the runner's memo when it has them
    /// ([`crate::memo`]); off, every run runs its Lua (the same report).
    pub memo: bool,
    /// Fill in the report's lists of calls and tasks, its kernel log and
    /// the programs' prints. Off for a search that reads only what broke
    /// (outcome, bucket, culprit), the counts and times, the lock orders
    /// and the point pairs: those lists are left empty.
    pub details: bool,
}

impl RunOptions {
    /// A random run of `seed` with the event log kept.
    pub fn new(fixes: Fixes, seed: u64) -> RunOptions {
        RunOptions {
            strategy: Strategy::Random,
            fixes,
            seed,
            record_events: true,
            limits: SandboxLimits::default(),
            schedule: None,
            count_points: false,
            faults: None,
            params: Vec::new(),
            dfs: None,
            lock_order: false,
            point_pairs: false,
            perturb: None,
            record_labels: false,
            semantic: None,
            max_steps: None,
            memo: true,
            details: true,
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub outcome: Outcome,
    /// Steps of the interleaved phase.
    pub steps: u64,
    /// Simulated time at the end by the cost model (the latest CPU clock,
    /// stalls left out), in ns.
    pub time_ns: u64,
    /// The end of the run's one timeline, in ns: `time_ns` plus the stalls
    /// the schedule put on the busiest path (see docs/timing.md).
    pub timeline_ns: u64,
    /// Every stall of the run, summed, in ns.
    pub stalled_ns: u64,
    pub stats: Stats,
    /// Kernel messages, in order.
    pub printk: Vec<String>,
    /// What the scenario printed.
    pub prints: Vec<String>,
    /// The event log of the interleaved phase, one line per event (its
    /// tail, when the run was longer than the engine's event limit).
    pub events: Vec<EventLine>,
    /// Events dropped from the front of the log.
    pub events_dropped: u64,
    /// The choices the run made (its schedule).
    pub choices: Vec<u32>,
    /// With `RunOptions::record_labels` (or `semantic`): the semantic event
    /// of each decision of the interleaved phase, one per choice.
    pub semantic: Vec<engine::SemanticEvent>,
    /// With labels: every task's (key, name), in creation order.
    pub task_keys: Vec<(String, String)>,
    /// The task that detected the violation, if any.
    pub culprit: Option<String>,
    /// A violation's bucket: the race signature it matches, or
    /// `unclassified: <key>` (`kernel::signatures`).
    pub bucket: Option<kernel::signatures::Bucket>,
    /// Task names, in creation order.
    pub tasks: Vec<String>,
    /// The tasks of the interleaved phase (the processes, their children,
    /// kswapd), in creation order.
    pub run_tasks: Vec<String>,
    /// Named interleaving points reached in the interleaved phase, with
    /// counts (when asked for).
    pub points: Vec<(&'static str, u64)>,
    /// With `RunOptions::lock_order`: (class held, class taken, where the
    /// held one was taken, where the other was), in the order first seen.
    pub lock_order: Vec<(&'static str, &'static str, &'static str, &'static str)>,
    /// With `RunOptions::point_pairs`: named points of two tasks that
    /// followed each other (A, then B by another task).
    pub point_pairs: Vec<(&'static str, &'static str)>,
    /// Every system call the programs made, with its simulated start and
    /// end (reads and writes include the page faults they took).
    pub calls: Vec<CallRecord>,
}

/// One completed system call of a process program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub task: String,
    /// "fork", "exit", "read", "write", "swapoff", ...
    pub name: &'static str,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// One event of the log, rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLine {
    /// The whole line: step, time, CPU, task, event, lock, point.
    pub text: String,
    /// Part of the story of the interleaving (see `Sim::is_key_event`).
    pub key: bool,
    pub step: u64,
    /// The task's name ("-" for an interrupt).
    pub task: String,
    /// The event in a few words: "acquired mm#1.mmap_sem", "note: ...".
    pub what: String,
    pub point: &'static str,
    /// Time in ns on the run's one timeline (never decreasing in the log).
    pub time: u64,
    /// The cost model's time of the event (the timeline without the stalls
    /// before it): lock statistics take differences of these.
    pub cost: u64,
    /// A read-side rwlock operation.
    pub read: bool,
    /// A lock request that never waits (TryLockPage).
    pub trylock: bool,
    /// The CPU (None for an interrupt or a task off CPU).
    pub cpu: Option<usize>,
    /// The event itself.
    pub kind: engine::EventKind,
    /// The lock's instance and class names, for lock events.
    pub lock: Option<(String, &'static str)>,
}

/// A scenario loaded into a sandbox that many runs reuse. Creating a Lua
/// state with its libraries costs far more than a run of a small scenario,
/// so a runner builds it once; every run gets fresh globals (the chunk runs
/// in a new environment table), a fresh spec, the budget and `math.random`
/// stream reset to the run's seed, and read-only standard libraries, so
/// that no run can leave state behind for the next. What the programs do
/// is memoised ([`crate::memo`]): a run whose Lua steps were all seen
/// before runs no Lua.
pub struct Runner {
    loader: Rc<Loader>,
    /// The set-ups of earlier runs (see [`SetupKey`]), oldest first.
    setups: RefCell<Vec<Setup>>,
    /// Runs that started from a kept set-up: copied into the last run's
    /// simulator and kernel, and into new ones.
    set_up_copies: std::cell::Cell<(u64, u64)>,
    /// What the wall-clock watchdog sees of this runner's runs.
    watch: std::sync::Arc<crate::watchdog::Watch>,
}

/// The sandbox and the scenario's chunk: what loads the scenario for a run.
pub(crate) struct Loader {
    path: String,
    source: String,
    lua: mlua::Lua,
    prints: crate::sandbox::PrintLog,
    reset: SandboxReset,
    /// The scenario compiled once; each run points its `_ENV` at a fresh
    /// environment and calls it (parsing it per run cost ~8% of a race-1 run).
    chunk: std::cell::OnceCell<mlua::Function>,
    /// The metatable of every run's environment (`__index` = the sandbox's
    /// globals, protected): the same for every run and out of the
    /// scenario's reach (`getmetatable` gives `false`, `setmetatable`
    /// refuses), so one is made for all runs.
    env_meta: mlua::Table,
    /// The metatables of the read-only library proxies (a run gets fresh
    /// proxies, see [`fresh_environment`]).
    libraries: Vec<mlua::Table>,
    /// The program memo of each set of parameters, oldest first.
    memos: RefCell<Vec<(Params, MemoSlot)>>,
    /// Program steps taken from a memo, and run in Lua (replays included).
    steps: Cell<(u64, u64)>,
}

/// A run's values for the scenario's `param(name)`s.
type Params = Vec<(String, i64)>;

/// How many parameter sets' memos a runner keeps.
const MAX_MEMOS: usize = 8;

impl Loader {
    /// Load and validate the scenario for one run with `seed`.
    pub(crate) fn load(&self, seed: u64, params: &[(String, i64)]) -> Result<Scenario, ScenarioError> {
        self.reset.reset(&self.lua, seed);
        let spec: api::SharedSpec = Rc::new(RefCell::new(RawSpec { params: params.to_vec(), ..RawSpec::default() }));
        self.lua.set_app_data(Rc::clone(&spec));
        let env = fresh_environment(&self.lua, &self.env_meta, &self.libraries)
            .map_err(|e| scenario_error(&e, &self.path))?;
        let chunk = match self.chunk.get() {
            Some(chunk) => chunk,
            None => {
                let chunk = compile_source(&self.lua, &self.path, &self.source)?;
                self.chunk.get_or_init(|| chunk)
            }
        };
        // The chunk takes its `_ENV` as an argument: every function it creates
        // in this run closes over the new environment, so runs start from
        // clean globals.
        chunk.call::<()>(env).map_err(|e| scenario_error(&e, &self.path))?;
        let scenario = spec.borrow().validate(&self.path)?;
        spec.borrow_mut().running = true;
        Ok(scenario)
    }

    /// Count a program step, from the memo or run in Lua.
    pub(crate) fn count_step(&self, from_memo: bool) {
        let (memo, lua) = self.steps.get();
        self.steps.set(if from_memo { (memo + 1, lua) } else { (memo, lua + 1) });
    }

    pub(crate) fn lua(&self) -> &mlua::Lua {
        &self.lua
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn prints(&self) -> crate::sandbox::PrintLog {
        Rc::clone(&self.prints)
    }

    /// Whether the scenario drew from `math.random` since the last load.
    pub(crate) fn drew(&self) -> bool {
        self.reset.drew()
    }

    /// The scenario draws random numbers: no memo for `params` from now on.
    pub(crate) fn turn_memo_off(&self, params: &[(String, i64)]) {
        let mut memos = self.memos.borrow_mut();
        if let Some(slot) = memos.iter_mut().find(|(p, _)| p == params) {
            slot.1 = MemoSlot::Off;
        }
    }

    /// The run's Lua side: from the memo of `params` when it has one (no
    /// Lua runs until a step is missing), else the chunk run now, with a
    /// new memo if the chunk drew no random numbers.
    fn programs(
        self: &Rc<Self>,
        seed: u64,
        params: &[(String, i64)],
        use_memo: bool,
    ) -> Result<(Rc<Scenario>, Programs), ScenarioError> {
        let slot = self.memos.borrow().iter().find(|(p, _)| p == params).map(|(_, slot)| match slot {
            MemoSlot::On(memo) => Some(Rc::clone(memo)),
            MemoSlot::Off => None,
        });
        if let (true, Some(Some(memo))) = (use_memo, &slot) {
            // What the chunk would do: print what it printed. (No Lua runs
            // unless the run misses the memo, and then `load` resets the
            // sandbox for the seed and runs the chunk again.)
            self.reset.forget_prints();
            let scenario = Rc::clone(&memo.borrow().scenario);
            let mut prints = self.prints.borrow_mut();
            for line in &memo.borrow().load_prints {
                prints.push_recorded(line.clone());
            }
            drop(prints);
            return Ok((scenario, Programs::walking(Rc::clone(self), seed, params, Some(Rc::clone(memo)))));
        }
        let scenario = self.load(seed, params)?;
        let memo = match slot {
            _ if !use_memo => None,
            Some(Some(memo)) => Some(memo),
            Some(None) => None,
            None => {
                let slot = if self.reset.drew() {
                    MemoSlot::Off
                } else {
                    let load_prints = self.prints.borrow().lines.clone();
                    MemoSlot::On(Rc::new(RefCell::new(Memo::new(scenario.clone(), load_prints))))
                };
                let memo = match &slot {
                    MemoSlot::On(memo) => Some(Rc::clone(memo)),
                    MemoSlot::Off => None,
                };
                let mut memos = self.memos.borrow_mut();
                if memos.len() >= MAX_MEMOS {
                    memos.remove(0);
                }
                memos.push((params.to_vec(), slot));
                memo
            }
        };
        // A memo's trie starts right after the chunk: a run that ran it
        // walks the trie live from its root.
        let programs = Programs::live(Rc::clone(self), seed, params, &scenario, memo);
        Ok((Rc::new(scenario), programs))
    }
}

/// A run under the watchdog's eye, until dropped.
struct Watched<'a>(&'a crate::watchdog::Watch);

impl<'a> Watched<'a> {
    fn new(watch: &'a crate::watchdog::Watch, seed: u64) -> Watched<'a> {
        watch.start(seed);
        Watched(watch)
    }
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl Runner {
    pub fn new(path: &str, source: &str, limits: SandboxLimits) -> Result<Runner, ScenarioError> {
        let (lua, prints, reset) = new_reusable_sandbox(0, limits)?;
        api::register(&lua, Rc::new(RefCell::new(RawSpec::default()))).map_err(|e| scenario_error(&e, path))?;
        let libraries = protect_libraries(&lua).map_err(|e| scenario_error(&e, path))?;
        let env_meta = environment_metatable(&lua).map_err(|e| scenario_error(&e, path))?;
        let loader = Loader {
            path: path.to_string(),
            source: source.to_string(),
            lua,
            prints,
            reset,
            chunk: Default::default(),
            env_meta,
            libraries,
            memos: RefCell::new(Vec::new()),
            steps: Cell::new((0, 0)),
        };
        Ok(Runner {
            loader: Rc::new(loader),
            set_up_copies: Default::default(),
            setups: RefCell::new(Vec::new()),
            watch: crate::watchdog::watch(path, limits.max_seconds),
        })
    }

    /// How many program steps this runner's runs took from its memo, and
    /// how many they ran in Lua (the replays after a miss included).
    pub fn program_steps(&self) -> (u64, u64) {
        self.loader.steps.get()
    }

    /// How many runs started from a kept set-up copied into the last run's
    /// simulator and kernel, and how many into new ones.
    pub fn set_up_copies(&self) -> (u64, u64) {
        self.set_up_copies.get()
    }

    /// Load the scenario and validate it, without running anything.
    pub fn check(&self) -> Result<Scenario, ScenarioError> {
        let _watched = Watched::new(&self.watch, 1);
        self.loader.load(1, &[])
    }

    /// One run.
    pub fn run(&self, options: &RunOptions) -> Result<RunReport, ScenarioError> {
        let _watched = Watched::new(&self.watch, options.seed);
        let (mut scenario, programs) = self.loader.programs(options.seed, &options.params, options.memo)?;
        if let Some(faults) = options.faults {
            Rc::make_mut(&mut scenario).machine.faults = faults;
        }
        let config = SimConfig {
            costs: scenario.engine_costs,
            cpus: scenario.machine.cpus,
            step_budget: scenario.step_budget,
            record_events: options.record_events,
            record_choices: options.schedule.is_some() || options.record_events || config_labels(options),
            record_labels: config_labels(options),
            count_points: options.count_points,
            lock_order: options.lock_order,
            point_pairs: options.point_pairs,
            record_footprints: options.dfs.as_ref().is_some_and(|plan| plan.sleep_sets),
            ..SimConfig::default()
        };
        // Boot and set-up are deterministic (always the first option, no
        // allocation sleeps), so a run whose set-up is the same as an
        // earlier run's starts from a copy of the state that one left.
        let setup = self.setups.borrow().iter().position(|s| s.key.matches(&scenario, options.fixes, &config));
        let cached = setup.map(|i| {
            let setups = self.setups.borrow();
            let s = &setups[i];
            let chooser = Box::new(ReplayChooser::new(Vec::new()));
            let (sim, k) = match s.spare.take() {
                // The last run's simulator and kernel, copied into: their
                // buffers already have the room a run of this set-up needs.
                Some((sim, k)) => {
                    sim.reset_to(&s.sim, chooser);
                    k.reset_to(&s.kernel);
                    let (into_last, into_new) = self.set_up_copies.get();
                    self.set_up_copies.set((into_last + 1, into_new));
                    (sim, k)
                }
                None => {
                    let (into_last, into_new) = self.set_up_copies.get();
                    self.set_up_copies.set((into_last, into_new + 1));
                    let sim = Sim::from_snapshot(&s.sim, chooser);
                    let k = s.kernel.copy_onto(Rc::clone(&sim));
                    (sim, k)
                }
            };
            (sim, k, s.pids.clone())
        });
        let (sim, k, pids) = match cached {
            Some(state) => state,
            None => {
                let key = SetupKey::new(&scenario, options.fixes, &config);
                let sim = Sim::new(config, Box::new(ReplayChooser::new(Vec::new())));
                let k = Kernel::new(Rc::clone(&sim), &scenario.machine, options.fixes);
                let pids = match set_up(&sim, &k, &scenario, &self.loader.path) {
                    Ok(pids) => pids,
                    Err(e) => {
                        sim.shutdown();
                        return Err(e);
                    }
                };
                if let Some(snapshot) = sim.snapshot() {
                    // The kept kernel lives on a simulator of its own that
                    // never runs: runs copy both.
                    let idle = Sim::from_snapshot(&snapshot, Box::new(ReplayChooser::new(Vec::new())));
                    let kernel = k.copy_onto(idle);
                    let mut setups = self.setups.borrow_mut();
                    if setups.len() >= MAX_SETUPS {
                        setups.remove(0);
                    }
                    setups.push(Setup { key, sim: snapshot, kernel, pids: pids.clone(), spare: RefCell::new(None) });
                }
                (sim, k, pids)
            }
        };
        let result = interleave(&sim, &k, &pids, programs, &scenario, &self.loader.path, options);
        sim.shutdown();
        // Keep them for the next run of the set-up if nothing else holds
        // them (the kernel holds the simulator).
        if let Some(i) = setup {
            if Rc::strong_count(&k) == 1 && Rc::strong_count(&sim) == 2 {
                self.setups.borrow()[i].spare.replace(Some((sim, k)));
            }
        }
        result
    }
}

/// How many set-ups a runner keeps (a sweep alternates a few kernels).
const MAX_SETUPS: usize = 8;

/// A set-up's result, kept for later runs with the same [`SetupKey`].
struct Setup {
    key: SetupKey,
    sim: engine::SimSnapshot,
    kernel: Rc<Kernel>,
    pids: Vec<Pid>,
    /// The simulator and kernel of the last run from it, to copy the next
    /// run's state into.
    spare: RefCell<Option<(Rc<Sim>, Rc<Kernel>)>>,
}

/// Everything boot and set-up depend on: the machine (with the run's
/// faults), the fixes, the simulator's configuration, and the segments,
/// processes (names, mappings, attaches) and set-up steps of the scenario.
/// The scenario's programs and its Lua state play no part in them.
#[derive(PartialEq)]
struct SetupKey {
    machine: kernel::Machine,
    fixes: Fixes,
    config: SimConfig,
    segments: Vec<u64>,
    processes: Vec<ProcessLayout>,
    setup: Vec<crate::spec::SetupStep>,
}

/// A process as set-up sees it: its name, mappings, attaches and line.
type ProcessLayout = (String, Vec<(u64, u64)>, Vec<(usize, u64)>, usize);

impl SetupKey {
    fn new(scenario: &Scenario, fixes: Fixes, config: &SimConfig) -> SetupKey {
        SetupKey {
            machine: scenario.machine.clone(),
            fixes,
            config: config.clone(),
            segments: scenario.segments.clone(),
            processes: scenario
                .processes
                .iter()
                .map(|p| (p.name.clone(), p.maps.clone(), p.attaches.clone(), p.line))
                .collect(),
            setup: scenario.setup.clone(),
        }
    }

    /// Whether a run of `scenario` has this set-up: `SetupKey::new(..) ==
    /// self` without building the key (every run asks).
    fn matches(&self, scenario: &Scenario, fixes: Fixes, config: &SimConfig) -> bool {
        let same_process = |(name, maps, attaches, line): &ProcessLayout, p: &crate::spec::ProcessSpec| {
            *name == p.name && *maps == p.maps && *attaches == p.attaches && *line == p.line
        };
        self.machine == scenario.machine
            && self.fixes == fixes
            && self.config == *config
            && self.segments == scenario.segments
            && self.processes.len() == scenario.processes.len()
            && self.processes.iter().zip(&scenario.processes).all(|(a, b)| same_process(a, b))
            && self.setup == scenario.setup
    }
}

/// A new global environment: writes stay in it, reads fall back to the
/// sandbox's globals; the libraries are fresh proxies of their own.
fn fresh_environment(lua: &mlua::Lua, meta: &mlua::Table, libraries: &[mlua::Table]) -> mlua::Result<mlua::Table> {
    let env = lua.create_table()?;
    env.set_metatable(Some(meta.clone()))?;
    env.raw_set("_G", env.clone())?;
    for (name, lib_meta) in LIBRARIES.iter().zip(libraries) {
        env.raw_set(*name, proxy(lua, lib_meta)?)?;
    }
    Ok(env)
}

/// The metatable of a run's environment: reads fall back to the sandbox's
/// globals; the metatable itself is hidden and cannot be replaced.
fn environment_metatable(lua: &mlua::Lua) -> mlua::Result<mlua::Table> {
    let meta = lua.create_table()?;
    meta.raw_set("__index", lua.globals())?;
    meta.raw_set("__metatable", false)?;
    Ok(meta)
}

/// Make the standard library tables read-only (a proxy each), so that a
/// run cannot change `string`, `table`, `math` or `utf8` for the next run;
/// returns the proxies' metatables, in the order of [`LIBRARIES`].
fn protect_libraries(lua: &mlua::Lua) -> mlua::Result<Vec<mlua::Table>> {
    let protect: mlua::Function = lua
        .load(
            r#"
            local setmetatable, error, pairs = setmetatable, error, pairs
            -- Strings share one metatable whose __index is the string
            -- library itself: hide it from getmetatable.
            getmetatable("").__metatable = false
            -- The proxy's metatable, one per library. __pairs hands out an
            -- iterator that closes over the library, never the library
            -- (pairs(lib) would return it as the iteration's state).
            return function(name, lib)
              return {
                __index = lib,
                __newindex = function() error(name .. " is read-only in scenarios", 2) end,
                __pairs = function(proxy)
                  local iter, state = pairs(lib)
                  return function() return iter(state) end, proxy, nil
                end,
                __metatable = false,
              }
            end
            "#,
        )
        .set_name("=swapsim")
        .eval()?;
    let globals = lua.globals();
    let mut metas = Vec::new();
    for name in LIBRARIES {
        let lib: mlua::Value = globals.raw_get(name)?;
        let meta: mlua::Table = protect.call((name, lib))?;
        globals.raw_set(name, proxy(lua, &meta)?)?;
        metas.push(meta);
    }
    // The globals table itself is only ever read through a run's
    // environment; writes land in the environment.
    Ok(metas)
}

/// The libraries a run sees through read-only proxies.
const LIBRARIES: [&str; 4] = ["string", "table", "math", "utf8"];

/// A read-only proxy with the library metatable `meta`. Each run gets its
/// own: `rawset` writes into the proxy itself, past `__newindex`, so a
/// shared one would carry such a write into the next run.
fn proxy(lua: &mlua::Lua, meta: &mlua::Table) -> mlua::Result<mlua::Table> {
    let proxy = lua.create_table()?;
    proxy.set_metatable(Some(meta.clone()))?;
    Ok(proxy)
}

/// Load `source` and validate it, without running anything.
pub fn load(path: &str, source: &str, limits: SandboxLimits) -> Result<Scenario, ScenarioError> {
    Runner::new(path, source, limits)?.check()
}

/// Run the scenario once (a runner used once; reuse a [`Runner`] for many).
/// No later run could use a memo: none is kept.
pub fn run(path: &str, source: &str, options: &RunOptions) -> Result<RunReport, ScenarioError> {
    Runner::new(path, source, options.limits)?.run(&RunOptions { memo: false, ..options.clone() })
}

/// Boot and set-up: the shm segments, the processes (pids 1, 2, ... in
/// order), swapon of every device, and the set-up steps. Deterministic
/// (always the first option, no allocation sleeps): everything in
/// [`SetupKey`] decides it. Returns the processes' pids.
fn set_up(sim: &Rc<Sim>, k: &Rc<Kernel>, scenario: &Scenario, path: &str) -> Result<Vec<Pid>, ScenarioError> {
    let at = |line: usize, message: String| ScenarioError { location: Some(format!("{path}:{line}")), message };

    // Shm segments, then the processes with their mappings and attaches
    // (pids 1, 2, ... in order).
    for &pages in &scenario.segments {
        k.shmget(pages as usize);
    }
    let mut pids: Vec<Pid> = Vec::new();
    for process in &scenario.processes {
        let pid = k.create_process(&process.name);
        for &(start, pages) in &process.maps {
            k.map_anonymous(pid, start, pages).map_err(|m| at(process.line, m))?;
        }
        for &(seg, start) in &process.attaches {
            k.shmat(pid, seg, start).map_err(|m| at(process.line, m))?;
        }
        pids.push(pid);
    }

    // Boot: swapon every device.
    for type_ in 0..scenario.machine.swap_devices.len() {
        let kk = Rc::clone(k);
        sim.spawn("boot", move |t| async move {
            let _ = swapfile::sys_swapon(&kk, &t, type_).await;
        });
    }
    let outcome = sim.run();
    if outcome != Outcome::Finished {
        return Err(ScenarioError {
            location: Some(path.to_string()),
            message: format!("boot (swapon of every device) did not finish: {}", describe(&outcome)),
        });
    }

    // Set-up steps, one task each, run to completion in order.
    for step in &scenario.setup {
        let process = &scenario.processes[step.process];
        let pid = pids[step.process];
        let failure: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
        let (kk, failed) = (Rc::clone(k), Rc::clone(&failure));
        let op = step.op;
        let task = sim.spawn(format!("setup:{}", process.name), move |t| async move {
            let problem = match op {
                SetupOp::Write(addr) | SetupOp::Read(addr) => {
                    let write = matches!(op, SetupOp::Write(_));
                    match user_access(&kk, &t, addr, write).await {
                        Ok(Access::Done) => None,
                        Ok(Access::Killed(failure)) => {
                            Some(format!("the access at {addr:#x} failed: {failure} (handle_mm_fault returned -1)"))
                        }
                        Ok(Access::Segv) => Some(format!("the access at {addr:#x} failed: no VMA maps it")),
                        Err(_) => None,
                    }
                }
                SetupOp::SwapOut(addr, None) => match vmscan::page_out(&kk, &t, addr).await {
                    Ok(Ok(_)) => None,
                    Ok(Err(message)) => Some(message),
                    Err(_) => None,
                },
                SetupOp::SwapOut(addr, Some(device)) => page_out_to(&kk, &t, addr, device - 1).await,
            };
            *failed.borrow_mut() = problem;
        });
        k.bind(task, pid);
        let outcome = sim.run();
        if let Some(message) = failure.borrow_mut().take() {
            return Err(at(step.line, format!("set-up step failed: {message}")));
        }
        if outcome != Outcome::Finished {
            return Err(at(step.line, format!("set-up step did not finish: {}", describe(&outcome))));
        }
    }
    if let Some((invariant, message)) = invariants::check_quiescent(k) {
        return Err(ScenarioError {
            location: Some(path.to_string()),
            message: format!("the state after set-up breaks {invariant}: {message}"),
        });
    }
    Ok(pids)
}

/// The set-up step `p:swap_out(addr, device)`: `page_out` with
/// `get_swap_page` starting its walk of the swap list at device `type_`
/// (`swap_list.next`, put back afterwards), so a free slot there is the
/// one taken. A set-up device, not a kernel path: the scenario says where
/// the page went, as if the devices' priorities had put it there. Returns
/// why the step failed, if it did.
async fn page_out_to(k: &Kernel, t: &engine::Task, addr: u64, type_: usize) -> Option<String> {
    let (next, full) = {
        let w = k.w();
        let si = &w.swap_info[type_];
        (*w.swap_list_next, si.inuse_pages + 1 >= si.max)
    };
    *k.w().swap_list_next = type_ as i32;
    let result = vmscan::page_out(k, t, addr).await;
    *k.w().swap_list_next = next;
    match result {
        Ok(Ok(entry)) if entry.type_ == type_ => None,
        Ok(Ok(entry)) => Some(format!(
            "the page at {addr:#x} went out to {entry}, not to device {}: {}",
            type_ + 1,
            if full {
                format!("device {} is full", type_ + 1)
            } else {
                "it goes back to the slot it had (it was in the swap cache, or read in from that slot)".to_string()
            }
        )),
        Ok(Err(message)) => Some(message),
        Err(_) => None,
    }
}

/// The interleaved phase, from the state [`set_up`] left, and the report.
#[allow(clippy::too_many_arguments)]
fn interleave(
    sim: &Rc<Sim>,
    k: &Rc<Kernel>,
    pids: &[Pid],
    programs: Programs,
    scenario: &Scenario,
    path: &str,
    options: &RunOptions,
) -> Result<RunReport, ScenarioError> {
    let prints = programs.prints();
    k.w().stats = Stats::default();
    *k.w().faults_armed = true;
    let first_run_task = sim.task_count();
    match (&options.schedule, options.strategy) {
        _ if options.semantic.is_some() => {
            let (events, values, log) = options.semantic.clone().expect("checked");
            sim.set_chooser(Box::new(engine::SemanticReplayChooser::new(events, values, log)))
        }
        _ if options.dfs.is_some() => {
            let plan = options.dfs.as_ref().expect("checked");
            sim.set_chooser(Box::new(plan.chooser()))
        }
        (Some(choices), _) if options.perturb.is_some() => {
            let (p, seed) = options.perturb.unwrap_or_default();
            sim.set_chooser(Box::new(engine::PerturbChooser::new(choices.clone(), seed, p, scenario.alloc_sleep)))
        }
        (Some(choices), _) => sim.set_chooser(Box::new(ReplayChooser::new(choices.clone()))),
        (None, Strategy::Random) => sim.set_chooser(Box::new(RandomChooser::new(options.seed, scenario.alloc_sleep))),
        (None, Strategy::Timed) => sim.set_chooser(Box::new(TimedChooser::new(options.seed, scenario.alloc_sleep))),
        (None, Strategy::Pct { depth, steps }) => {
            sim.set_chooser(Box::new(PctChooser::new(options.seed, depth, steps, scenario.alloc_sleep)))
        }
    }
    if options.record_events {
        // The trace's counter tracks. (2.3.99's nr_async_pages throttle is
        // not modelled, so it has none.)
        let kk = Rc::clone(k);
        sim.set_sampler(Box::new(move |values| {
            let w = kk.w();
            let in_use: u32 = w.swap_info.iter().map(|si| si.inuse_pages).sum();
            values.push(("free pages", i64::from(*w.free_pages)));
            values.push(("swap slots in use", i64::from(in_use)));
        }));
    }
    if let Some(max) = options.max_steps {
        sim.limit_steps(max);
    }
    // The points the programs may wait for: counted from here on.
    let points = scenario
        .points
        .iter()
        .map(|&point| {
            let name = engine::LockName::Owned(format!("point {point}"));
            let queue = sim.new_lock(engine::LockKind::WaitQueue, "point_wait", name);
            (sim.watch_point(point, queue), queue)
        })
        .collect();
    let ctx = Rc::new(Ctx {
        k: Rc::clone(k),
        programs,
        path: path.to_string(),
        error: RefCell::new(None),
        calls: RefCell::new(Vec::new()),
        keep_calls: options.details,
        call_count: Cell::new(0),
        points,
    });
    // The processes' programs are programs 0, 1, ... (`memo::ProgramId`).
    let mut program = 0;
    for (process, &pid) in scenario.processes.iter().zip(pids) {
        if process.program.is_none() {
            continue;
        }
        let task = sim.spawn(process.name.clone(), driver::start(Rc::clone(&ctx), Some(program)));
        k.bind(task, pid);
        program += 1;
    }
    if scenario.kswapd {
        let pid = k.create_kernel_thread("kswapd");
        let kk = Rc::clone(k);
        let task = sim.spawn("kswapd", move |t| async move {
            let _ = vmscan::kswapd(&kk, &t).await;
        });
        k.bind(task, pid);
        sim.set_daemon(task);
    }
    let mut outcome = sim.run();
    if let Some(error) = ctx.error.borrow_mut().take() {
        return Err(error);
    }
    if outcome == Outcome::Finished {
        if let Some((invariant, message)) = invariants::check_quiescent(k) {
            outcome = Outcome::Violation(Violation { invariant, message, step: sim.steps(), task: None });
        }
    }
    let bucket = match &outcome {
        Outcome::Violation(v) => Some(kernel::signatures::classify(k, v)),
        _ => None,
    };
    let culprit = match &outcome {
        Outcome::Violation(Violation { task: Some(t), .. }) => Some(sim.task_name(*t)),
        _ => None,
    };
    let events =
        if options.record_events { sim.events().iter().map(|e| event_line(sim, e)).collect() } else { Vec::new() };
    let details = options.details;
    let task_names = |from: usize| -> Vec<String> {
        if details {
            (from..sim.task_count()).map(|i| sim.task_name(engine::TaskId(i as u32))).collect()
        } else {
            Vec::new()
        }
    };
    let calls: Vec<CallRecord> = ctx
        .calls
        .borrow()
        .iter()
        .map(|c| CallRecord { task: sim.task_name(c.task), name: c.name, start_ns: c.start_ns, end_ns: c.end_ns })
        .collect();
    let printed = if details { prints.borrow().lines.clone() } else { Vec::new() };
    let w = k.w();
    Ok(RunReport {
        outcome,
        steps: sim.steps(),
        time_ns: sim.now(),
        timeline_ns: sim.timeline(),
        stalled_ns: sim.stalled(),
        stats: w.stats,
        printk: if details { w.printk.clone() } else { Vec::new() },
        prints: printed,
        events,
        events_dropped: sim.events_dropped(),
        choices: sim.choices(),
        semantic: sim.semantic_events(),
        task_keys: if config_labels(options) {
            (0..sim.task_count())
                .map(|i| (sim.task_key(engine::TaskId(i as u32)), sim.task_name(engine::TaskId(i as u32))))
                .collect()
        } else {
            Vec::new()
        },
        culprit,
        bucket,
        tasks: task_names(0),
        points: sim.point_counts(),
        lock_order: sim.lock_order(),
        point_pairs: sim.point_pairs(),
        calls,
        run_tasks: task_names(first_run_task),
    })
}

fn config_labels(options: &RunOptions) -> bool {
    options.record_labels || options.semantic.is_some()
}

fn event_line(sim: &Sim, e: &engine::Event) -> EventLine {
    use engine::EventKind;
    let lock_info = sim.event_lock(e);
    let lock = lock_info.as_ref().map(|(name, _)| format!(" {name}")).unwrap_or_default();
    let what = match &e.kind {
        EventKind::Point => "at".to_string(),
        EventKind::Dispatch => "runs".to_string(),
        EventKind::Preempt => "back to user".to_string(),
        EventKind::Attempt => format!("tries{lock}"),
        EventKind::Contended => format!("waits for{lock}"),
        EventKind::Acquired => format!("takes{lock}"),
        EventKind::Released => format!("releases{lock}"),
        EventKind::BklDropped => "drops the BKL (sleeps)".to_string(),
        EventKind::Sleep(on) => on.clone(),
        EventKind::Wake => "woken".to_string(),
        EventKind::Note(text) => text.clone(),
        EventKind::Exit => "exits".to_string(),
        EventKind::Counter { name, value } => format!("{name} = {value}"),
        EventKind::Stall { from, cause } => {
            format!("stalls {} ({})", engine::format_ns(e.time.saturating_sub(*from)), cause.name())
        }
    };
    EventLine {
        text: sim.render_event(e),
        key: sim.is_key_event(e),
        step: e.step,
        task: e.task.map(|t| sim.task_name(t)).unwrap_or_else(|| "-".to_string()),
        what,
        point: e.point,
        time: e.time,
        cost: e.cost,
        read: e.read,
        trylock: e.trylock,
        cpu: e.cpu,
        kind: e.kind.clone(),
        lock: lock_info,
    }
}

/// An outcome in words.
pub fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Finished => "finished: every invariant held".to_string(),
        Outcome::Violation(v) => format!("VIOLATION of {} at step {}: {}", v.invariant, v.step, v.message),
        Outcome::Deadlock(waiters) => format!("DEADLOCK: {}", waiters.join("; ")),
        Outcome::StepLimit(n) => format!(
            "STEP LIMIT: the run took more than {n} steps (a livelock? raise the limit with machine{{ step_budget = N }})"
        ),
        Outcome::Aborted => "aborted".to_string(),
    }
}
