//! The program memo: what the scenario's Lua does, recorded once and
//! handed back without running Lua again.
//!
//! Everything a run's Lua side does is a function of what it is given:
//! the chunk runs in a fresh environment of a freshly reset sandbox, and
//! from then on the programs only ever see the values their system calls
//! return. Lua runs one program at a time, at the moments the scheduler
//! picks, so the whole Lua state after any number of program steps is
//! decided by the sequence of those steps: which program was started or
//! resumed, and with what reply. The memo is a trie over such sequences.
//! Each node is one step, with what it gave back (the next system call,
//! the program's return, or its error) and what it printed; a run walks
//! the trie while it finds its next step there and runs no Lua at all.
//!
//! At the first step the trie does not hold, the run goes live: it loads
//! the scenario again (a fresh environment, the sandbox reset to the
//! run's seed) and replays the path it walked (the same steps with the
//! same replies, checked against what the trie says they gave), then goes
//! on in Lua, adding its steps to the trie. So a run gives the same
//! report whether its steps came from the trie or from Lua, and no run
//! sees what an earlier one did to the Lua state (`tests/memo.rs`).
//!
//! The seed is the one input that is not a reply: `math.random` draws
//! from the run's seed. A scenario that draws (or reseeds), in its chunk
//! or in a program, turns the memo off for good, and from then on every
//! run loads and runs its Lua as without the memo.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mlua::{Function, MultiValue, Value};

use crate::driver::Request;
use crate::run::Loader;
use crate::sandbox::{scenario_error, PrintLog, ScenarioError};
use crate::spec::Scenario;

/// A program of the run: the processes' programs in the order of the
/// scenario's processes, then every forked child's in the order its fork
/// was made.
pub(crate) type ProgramId = u32;

/// What a system call returns to its program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Nothing,
    Int(i64),
    Bool(bool),
}

impl From<bool> for Reply {
    fn from(value: bool) -> Reply {
        Reply::Bool(value)
    }
}

macro_rules! integer_replies {
    ($($t:ty),*) => {$(
        impl From<$t> for Reply {
            fn from(value: $t) -> Reply {
                Reply::Int(value as i64)
            }
        }
    )*};
}
integer_replies!(i32, i64, u32);

impl Reply {
    fn to_lua(self) -> MultiValue {
        match self {
            Reply::Nothing => MultiValue::new(),
            Reply::Int(n) => MultiValue::from_vec(vec![Value::Integer(n)]),
            Reply::Bool(b) => MultiValue::from_vec(vec![Value::Boolean(b)]),
        }
    }
}

/// One step of a program: its start (up to its first system call), or its
/// resumption with a call's reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Input {
    Start,
    Resume(Reply),
}

/// What a step gave back.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Resumed {
    /// The program made this system call.
    Call(Request),
    /// The program returned (it exits).
    Returned,
    /// The scenario's code failed.
    Failed(ScenarioError),
}

/// The most steps a memo keeps (some 30 MB); past them runs that leave
/// the trie run their Lua without adding to it.
const MAX_NODES: usize = 1 << 18;

/// The trie of one scenario with one set of parameters.
pub(crate) struct Memo {
    /// The scenario its chunk declares (the same for every seed: the chunk
    /// drew no random numbers).
    pub scenario: Rc<Scenario>,
    /// What the chunk printed.
    pub load_prints: Vec<String>,
    /// Node 0 is the state right after the chunk ran.
    nodes: Vec<Node>,
}

struct Node {
    parent: u32,
    program: ProgramId,
    input: Input,
    resumed: Resumed,
    printed: Vec<String>,
    children: Vec<u32>,
}

impl Memo {
    pub fn new(scenario: Scenario, load_prints: Vec<String>) -> Memo {
        let root = Node {
            parent: 0,
            program: 0,
            input: Input::Start,
            resumed: Resumed::Returned,
            printed: Vec::new(),
            children: Vec::new(),
        };
        Memo { scenario: Rc::new(scenario), load_prints, nodes: vec![root] }
    }

    fn child(&self, node: u32, program: ProgramId, input: Input) -> Option<u32> {
        self.nodes[node as usize].children.iter().copied().find(|&c| {
            let n = &self.nodes[c as usize];
            n.program == program && n.input == input
        })
    }

    /// The steps from the root to `node`, in order.
    fn path(&self, mut node: u32) -> Vec<u32> {
        let mut path = Vec::new();
        while node != 0 {
            path.push(node);
            node = self.nodes[node as usize].parent;
        }
        path.reverse();
        path
    }

    fn add(&mut self, parent: u32, program: ProgramId, input: Input, resumed: Resumed, printed: Vec<String>) -> u32 {
        let id = self.nodes.len() as u32;
        self.nodes.push(Node { parent, program, input, resumed, printed, children: Vec::new() });
        self.nodes[parent as usize].children.push(id);
        id
    }
}

/// A runner's memo for one set of parameters.
pub(crate) enum MemoSlot {
    On(Rc<RefCell<Memo>>),
    /// The scenario draws random numbers: no memo.
    Off,
}

/// The Lua side of one run: its programs, stepped from the memo or in Lua.
pub(crate) struct Programs {
    loader: Rc<Loader>,
    seed: u64,
    params: Vec<(String, i64)>,
    prints: PrintLog,
    /// The memo the run walks and adds to, while it is on.
    memo: RefCell<Option<Rc<RefCell<Memo>>>>,
    /// Where the run is in the memo.
    node: Cell<u32>,
    /// The programs in Lua, once the run has gone live.
    live: RefCell<Option<Live>>,
}

/// The programs as Lua functions and coroutines, by [`ProgramId`].
struct Live {
    functions: Vec<Function>,
    threads: Vec<Option<mlua::Thread>>,
}

impl Live {
    fn new(scenario: &Scenario) -> Live {
        let functions: Vec<Function> = scenario.processes.iter().filter_map(|p| p.program.clone()).collect();
        Live { threads: vec![None; functions.len()], functions }
    }
}

impl Programs {
    /// A run whose chunk just ran (`scenario` is what it declared): live
    /// from the start, recording into `memo` if there is one.
    pub fn live(
        loader: Rc<Loader>,
        seed: u64,
        params: &[(String, i64)],
        scenario: &Scenario,
        memo: Option<Rc<RefCell<Memo>>>,
    ) -> Programs {
        let programs = Programs::walking(loader, seed, params, memo);
        *programs.live.borrow_mut() = Some(Live::new(scenario));
        programs
    }

    /// A run that starts in the memo (its chunk has not run).
    pub fn walking(
        loader: Rc<Loader>,
        seed: u64,
        params: &[(String, i64)],
        memo: Option<Rc<RefCell<Memo>>>,
    ) -> Programs {
        let prints = loader.prints();
        Programs {
            loader,
            seed,
            params: params.to_vec(),
            prints,
            memo: RefCell::new(memo),
            node: Cell::new(0),
            live: RefCell::new(None),
        }
    }

    /// What the run printed.
    pub fn prints(&self) -> PrintLog {
        Rc::clone(&self.prints)
    }

    /// Run one step of `program`: from the memo when it holds it, else in
    /// Lua (going live first if the run was still in the memo).
    pub fn step(&self, program: ProgramId, input: Input) -> Resumed {
        if self.live.borrow().is_none() {
            if let Some(resumed) = self.recorded(program, input) {
                return resumed;
            }
            if let Err(error) = self.go_live() {
                return Resumed::Failed(error);
            }
        }
        let printed_before = self.prints.borrow().lines.len();
        let resumed = {
            let mut live = self.live.borrow_mut();
            self.run_step(live.as_mut().expect("live"), program, input)
        };
        self.record(program, input, &resumed, printed_before);
        resumed
    }

    /// The step as the memo recorded it, if it did; the run moves on to it.
    fn recorded(&self, program: ProgramId, input: Input) -> Option<Resumed> {
        let memo = self.memo.borrow();
        let memo = memo.as_ref()?.borrow();
        let child = memo.child(self.node.get(), program, input)?;
        self.node.set(child);
        self.loader.count_step(true);
        let node = &memo.nodes[child as usize];
        let mut prints = self.prints.borrow_mut();
        for line in &node.printed {
            prints.push_recorded(line.clone());
        }
        Some(node.resumed.clone())
    }

    /// Add the live step just run to the memo, or turn the memo off if the
    /// step used the random stream.
    fn record(&self, program: ProgramId, input: Input, resumed: &Resumed, printed_before: usize) {
        let mut slot = self.memo.borrow_mut();
        let Some(memo) = slot.as_ref() else { return };
        if self.loader.drew() {
            self.loader.turn_memo_off(&self.params);
            *slot = None;
            return;
        }
        let mut memo = memo.borrow_mut();
        if memo.nodes.len() >= MAX_NODES {
            drop(memo);
            *slot = None;
            return;
        }
        let printed = self.prints.borrow().lines[printed_before..].to_vec();
        let node = memo.add(self.node.get(), program, input, resumed.clone(), printed);
        self.node.set(node);
    }

    /// Leave the memo: run the chunk again and replay the steps walked so
    /// far in Lua, each checked against what the memo says it gave.
    fn go_live(&self) -> Result<(), ScenarioError> {
        let scenario = self.loader.load(self.seed, &self.params)?;
        let mut live = Live::new(&scenario);
        let memo = self.memo.borrow().clone().expect("a run in the memo has one");
        let memo = memo.borrow();
        for node in memo.path(self.node.get()) {
            let node = &memo.nodes[node as usize];
            let resumed = self.run_step(&mut live, node.program, node.input);
            if resumed != node.resumed {
                return Err(ScenarioError {
                    location: Some(self.loader.path().to_string()),
                    message: "the scenario's Lua code did something else the second time for the same system-call \
                              results (it depends on something besides them)"
                        .to_string(),
                });
            }
        }
        *self.live.borrow_mut() = Some(live);
        Ok(())
    }

    /// One step in Lua.
    fn run_step(&self, live: &mut Live, program: ProgramId, input: Input) -> Resumed {
        self.loader.count_step(false);
        let lua = self.loader.lua();
        let path = self.loader.path();
        let p = program as usize;
        let reply = match input {
            Input::Start => {
                let function = live.functions[p].clone();
                let line = function.info().line_defined;
                let thread = match lua.create_thread(function) {
                    Ok(thread) => thread,
                    Err(e) => return Resumed::Failed(scenario_error(&e, path)),
                };
                // The program's first instructions are paid for before it starts.
                if let Err(e) = crate::sandbox::start_program(lua, &thread) {
                    let mut error = scenario_error(&e, path);
                    if let Some(line) = line {
                        error.location = Some(format!("{path}:{line}"));
                    }
                    return Resumed::Failed(error);
                }
                live.threads[p] = Some(thread);
                MultiValue::new()
            }
            Input::Resume(reply) => reply.to_lua(),
        };
        let thread = live.threads[p].as_ref().expect("a started program");
        // A call yields its name and at most two arguments: read as a
        // tuple (missing values are nil), straight off the Lua stack.
        let yielded: crate::driver::Yielded = match thread.resume(reply) {
            Ok(values) => values,
            Err(e) => return Resumed::Failed(scenario_error(&e, path)),
        };
        if thread.status() != mlua::thread::ThreadStatus::Resumable {
            return Resumed::Returned;
        }
        let mut new_program = |function: Function| {
            live.functions.push(function);
            live.threads.push(None);
            (live.functions.len() - 1) as ProgramId
        };
        match crate::driver::parse_request(yielded, &mut new_program) {
            Ok(request) => Resumed::Call(request),
            Err(message) => Resumed::Failed(ScenarioError { location: Some(path.to_string()), message }),
        }
    }
}
