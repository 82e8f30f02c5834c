//! Runs a process program: a Lua coroutine whose system calls execute as
//! kernel routines, step by step. Lua resumes only when a call returns, so
//! Lua stays at system-call granularity and the kernel's steps are Rust.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use engine::Task;
use kernel::memory::{user_access, Access};
use kernel::{exit, fork, invariants, mmap, swapfile, vmscan, KResult, Kernel};
use mlua::{Function, Value};

use crate::memo::{Input, ProgramId, Programs, Reply, Resumed};
use crate::sandbox::ScenarioError;

/// The most system calls a run records (each one is kept for the latency
/// figures).
pub const MAX_CALLS: usize = 4_000_000;

/// The most kernel log lines a run keeps.
pub const MAX_KERNEL_LOG: usize = 1_000_000;

/// The longest `expect` message kept, in bytes.
const MAX_MESSAGE: usize = 4096;

/// What every running program shares.
pub(crate) struct Ctx {
    pub k: Rc<Kernel>,
    /// The programs' Lua side.
    pub programs: Programs,
    pub path: String,
    /// The first error raised by the scenario's own code while running.
    pub error: RefCell<Option<ScenarioError>>,
    /// Every system call and fault that completed, for latency figures
    /// (if `keep_calls`; `call_count` counts them either way).
    pub calls: RefCell<Vec<Call>>,
    pub keep_calls: bool,
    pub call_count: std::cell::Cell<usize>,
    /// The scenario's declared points (`point(name)`), by handle: the
    /// engine's watch of each and the wait queue its passes wake.
    pub points: Vec<(usize, engine::LockId)>,
}

/// One completed system call; a read or write that took a page fault is
/// named "fault".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub task: engine::TaskId,
    pub name: &'static str,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Ctx {
    fn fail(&self, t: &Task, error: ScenarioError) {
        self.error.borrow_mut().get_or_insert(error);
        t.sim().abort();
    }
}

/// A system call request, parsed from what the program yielded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Request {
    /// fork (false) or a CLONE_VM thread (true), and the child's program.
    Fork(bool, Option<ProgramId>),
    Exit,
    Access {
        addr: u64,
        write: bool,
    },
    Swapoff(usize),
    Swapon(usize),
    SwapOut {
        addr: u64,
        pid: Option<u32>,
    },
    Mmap {
        addr: u64,
        pages: u64,
    },
    Munmap {
        addr: u64,
        pages: u64,
    },
    /// `shmctl(seg, IPC_RMID)`.
    ShmctlRmid(usize),
    /// Direct reclaim: `try_to_free_pages`.
    TryToFreePages,
    /// `shm_swap` at priority 0.
    ShmSwap,
    Exec,
    Waitpid(u32),
    /// Wait in user space until the process has exited (not reaped).
    WaitExit(u32),
    /// Wait in user space until the declared point (by handle) has been
    /// passed this many times.
    WaitPoint {
        point: usize,
        times: u64,
    },
    Sleep(u64),
    Getpid,
    Expect(bool, String),
}

/// After a system call: resume the program with this reply, or stop.
enum Next {
    Resume(Reply),
    Exited,
}

/// The body of a process task: start `program` (None: exit at once).
pub(crate) fn start(ctx: Rc<Ctx>, program: Option<ProgramId>) -> kernel::fork::ChildStart {
    Box::new(move |t: Task| -> Pin<Box<dyn Future<Output = ()>>> { Box::pin(run_program(ctx, t, program)) })
}

/// The step runs scenario code, or makes Lua values: the Lua state (its
/// globals, its random stream, its instruction and memory budget) is one
/// object of the step's footprint.
fn touch_lua() {
    engine::footprint::touch(kernel::tracked::LUA, 0, true);
}

/// A program's life: its steps in Lua (or from the memo, [`crate::memo`]),
/// each up to its next system call, and the calls between them.
async fn run_program(ctx: Rc<Ctx>, t: Task, program: Option<ProgramId>) {
    touch_lua();
    if let Some(program) = program {
        let mut input = Input::Start;
        loop {
            touch_lua();
            let request = match ctx.programs.step(program, input) {
                Resumed::Call(request) => request,
                Resumed::Returned => break, // the program returned: exit()
                Resumed::Failed(error) => return ctx.fail(&t, error),
            };
            let next = match request {
                Request::WaitExit(_) | Request::WaitPoint { .. } => wait(&ctx, &t, request).await,
                request => syscall(&ctx, &t, request).await,
            };
            match next {
                Ok(Next::Resume(reply)) => input = Input::Resume(reply),
                Ok(Next::Exited) | Err(_) => return,
            }
        }
    }
    let _ = syscall(&ctx, &t, Request::Exit).await;
}

impl Request {
    fn name(&self) -> &'static str {
        match self {
            Request::Fork(false, _) => "fork",
            Request::Fork(true, _) => "thread",
            Request::Exit => "exit",
            Request::Access { write: false, .. } => "read",
            Request::Access { write: true, .. } => "write",
            Request::Swapoff(_) => "swapoff",
            Request::Swapon(_) => "swapon",
            Request::SwapOut { .. } => "swap_out",
            Request::Mmap { .. } => "mmap",
            Request::Munmap { .. } => "munmap",
            Request::ShmctlRmid(_) => "shmctl",
            Request::TryToFreePages => "try_to_free_pages",
            Request::ShmSwap => "shm_swap",
            Request::Exec => "exec",
            Request::Waitpid(_) => "waitpid",
            Request::WaitExit(_) => "wait_exit",
            Request::WaitPoint { .. } => "wait_point",
            Request::Sleep(_) => "sleep",
            Request::Getpid => "getpid",
            Request::Expect(..) => "expect",
        }
    }
}

/// What a program's system call yields: the call's name and its arguments.
pub(crate) type Yielded = (Value, Value, Value);

/// The request a program yielded; a forked child's program gets its id
/// from `new_program`.
pub(crate) fn parse_request(
    (name, first, second): Yielded,
    new_program: &mut dyn FnMut(Function) -> ProgramId,
) -> Result<Request, String> {
    let mut values = [name, first, second].into_iter();
    // The name as one of ours, compared as bytes (no String per call).
    const NAMES: &[&str] = &[
        "fork",
        "thread",
        "exit",
        "read",
        "write",
        "swapoff",
        "swapon",
        "swap_out",
        "mmap",
        "munmap",
        "exec",
        "waitpid",
        "sleep",
        "getpid",
        "expect",
        "shmctl",
        "try_to_free_pages",
        "shm_swap",
        "wait_exit",
        "wait_point",
    ];
    let name: &'static str = match values.next() {
        Some(Value::String(s)) => {
            let bytes = s.as_bytes();
            match NAMES.iter().find(|n| n.as_bytes() == &*bytes) {
                Some(name) => name,
                None => return Err(format!("unknown system call {:?}", s.to_string_lossy())),
            }
        }
        _ => return Err("a process program yielded something that is not a system call".into()),
    };
    let mut arg = || values.next().unwrap_or(Value::Nil);
    let integer = |v: Value| match v {
        Value::Integer(n) if n >= 0 => Ok(n as u64),
        _ => Err(format!("{name}: bad argument")),
    };
    Ok(match name {
        "fork" | "thread" => Request::Fork(
            name == "thread",
            match arg() {
                Value::Function(f) => Some(new_program(f)),
                _ => None,
            },
        ),
        "exit" => Request::Exit,
        "read" => Request::Access { addr: integer(arg())?, write: false },
        "write" => Request::Access { addr: integer(arg())?, write: true },
        // Users number devices from 1; the kernel's swap_info from 0.
        "swapoff" => Request::Swapoff((integer(arg())? as usize).wrapping_sub(1)),
        "swapon" => Request::Swapon((integer(arg())? as usize).wrapping_sub(1)),
        "swap_out" => {
            let addr = integer(arg())?;
            let pid = match arg() {
                Value::Nil => None,
                v => Some(integer(v)? as u32),
            };
            Request::SwapOut { addr, pid }
        }
        "mmap" => Request::Mmap { addr: integer(arg())?, pages: integer(arg())? },
        "munmap" => Request::Munmap { addr: integer(arg())?, pages: integer(arg())? },
        "shmctl" => Request::ShmctlRmid(integer(arg())? as usize),
        "exec" => Request::Exec,
        "try_to_free_pages" => Request::TryToFreePages,
        "shm_swap" => Request::ShmSwap,
        "waitpid" => Request::Waitpid(integer(arg())? as u32),
        "wait_exit" => Request::WaitExit(integer(arg())? as u32),
        "wait_point" => Request::WaitPoint { point: integer(arg())? as usize, times: integer(arg())? },
        "sleep" => Request::Sleep(match arg() {
            Value::Integer(ms) if ms >= 0 => ms as u64 * 1_000_000,
            Value::Number(ms) if ms >= 0.0 => (ms * 1e6) as u64,
            _ => return Err("sleep: bad argument".into()),
        }),
        "getpid" => Request::Getpid,
        "expect" => {
            let ok = matches!(arg(), Value::Boolean(true));
            let message = match arg() {
                Value::String(s) => {
                    let mut text = crate::sandbox::escape_controls(&s.to_string_lossy()).into_owned();
                    if text.len() > MAX_MESSAGE {
                        let cut = (0..=MAX_MESSAGE).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                        text.truncate(cut);
                        text.push_str("...");
                    }
                    text
                }
                _ => "expectation failed".to_string(),
            };
            Request::Expect(ok, message)
        }
        other => unreachable!("{other} is in NAMES"),
    })
}

fn reply(value: impl Into<Reply>) -> Reply {
    value.into()
}

/// `wait_exit` and `wait_point`: the program blocks in user space, holding
/// nothing and outside the kernel, on a wait queue until the condition
/// holds (checked before each sleep, so no wake-up is lost). Not a C
/// path: a scenario's way to order its tasks, like a pipe between them.
async fn wait(ctx: &Rc<Ctx>, t: &Task, request: Request) -> KResult<Next> {
    let k = &ctx.k;
    let value = match request {
        Request::WaitExit(pid) => {
            let Some(queue) = k.w().procs.get(&pid).map(|p| p.exit_wait) else {
                return Ok(Next::Resume(reply(-10)));
            };
            t.wait_event(queue, "scenario:wait_exit", || k.w().procs.get(&pid).is_none_or(|p| p.exited)).await;
            i64::from(pid)
        }
        Request::WaitPoint { point, times } => {
            let (watch, queue) = ctx.points[point];
            let sim = t.sim();
            t.wait_event(queue, "scenario:wait_point", || sim.point_passes(watch) >= times).await;
            sim.point_passes(watch) as i64
        }
        _ => unreachable!("only waits come here"),
    };
    touch_lua();
    Ok(Next::Resume(reply(value)))
}

/// Enter the kernel, run the request's routines, leave it: check the
/// quiescent invariants when no task is left inside, and return to user
/// space (a preemption point).
async fn syscall(ctx: &Rc<Ctx>, t: &Task, request: Request) -> KResult<Next> {
    let k = &ctx.k;
    k.enter_kernel();
    let mut name = request.name();
    let started = t.now();
    let faults_before = k.w().stats.faults;
    let next = match request {
        Request::Exit => {
            exit::do_exit(k, t).await?;
            Next::Exited
        }
        Request::Fork(clone_vm, program) => {
            let pid = fork::do_fork(k, t, clone_vm, start(Rc::clone(ctx), program)).await?;
            Next::Resume(reply(pid))
        }
        Request::Access { addr, write } => match user_access(k, t, addr, write).await? {
            Access::Done => Next::Resume(Reply::Nothing),
            access @ (Access::Segv | Access::Killed(_)) => {
                let pid = k.current(t);
                let why = if write { "write" } else { "read" };
                let message = match access {
                    Access::Killed(failure) => format!(
                        "pid {pid} killed: its {why} fault at {addr:#x} failed: {failure} (handle_mm_fault returned -1)"
                    ),
                    _ => format!("pid {pid}: segmentation fault: {why} at {addr:#x}, which no VMA maps"),
                };
                k.printk(t, "do_page_fault:signal", message);
                exit::do_exit(k, t).await?;
                Next::Exited
            }
        },
        Request::Swapoff(type_) => {
            let ret = swapfile::sys_swapoff(k, t, type_).await?;
            if ret == 0 {
                if let Some((invariant, message)) = invariants::check_swapoff_complete(k, type_, false) {
                    t.violation(invariant, message);
                }
            }
            Next::Resume(reply(ret))
        }
        Request::Swapon(type_) => {
            let ret = swapfile::sys_swapon(k, t, type_).await?;
            Next::Resume(reply(ret))
        }
        Request::SwapOut { addr, pid } => {
            let victim = pid.unwrap_or_else(|| k.current(t));
            let done = vmscan::swap_out_pte(k, t, victim, addr).await? != vmscan::SwapOut::Failed;
            Next::Resume(reply(done))
        }
        Request::Mmap { addr, pages } => Next::Resume(reply(mmap::sys_mmap(k, t, addr, pages).await?)),
        Request::Munmap { addr, pages } => Next::Resume(reply(mmap::sys_munmap(k, t, addr, pages).await?)),
        Request::ShmctlRmid(seg) => Next::Resume(reply(kernel::shm::sys_shmctl_rmid(k, t, seg).await?)),
        Request::TryToFreePages => {
            // try_to_free_pages (mm/vmscan.c:535-545) as __alloc_pages'
            // direct reclaim calls it with GFP_KERNEL (__GFP_WAIT): with
            // PF_MEMALLOC set, do_try_to_free_pages in the caller's context
            // (no BKL: a system call, or a fault's do_anonymous_page).
            k.w().pf_memalloc.push(t.id());
            let freed = vmscan::do_try_to_free_pages(k, t).await;
            k.w().pf_memalloc.retain(|&id| id != t.id());
            Next::Resume(reply(freed?))
        }
        Request::ShmSwap => {
            // shm_swap (ipc/shm.c:1471-1522) at priority 0, the last pass
            // of do_try_to_free_pages: one shm page out, if any can go.
            Next::Resume(reply(kernel::shm::shm_swap(k, t, 0, None).await?))
        }
        Request::Sleep(ns) => {
            // sys_nanosleep (kernel/timer.c): a timed sleep.
            t.sleep_io("sys_nanosleep:schedule_timeout", ns).await;
            Next::Resume(Reply::Nothing)
        }
        Request::Waitpid(pid) => Next::Resume(reply(exit::sys_wait4(k, t, pid).await?)),
        Request::Exec => {
            mmap::exec_mmap(k, t).await?;
            Next::Resume(Reply::Nothing)
        }
        Request::Getpid => Next::Resume(reply(k.current(t))),
        Request::WaitExit(_) | Request::WaitPoint { .. } => unreachable!("a wait enters no kernel: see wait()"),
        Request::Expect(ok, message) => {
            if !ok {
                t.violation("scenario-expectation", message);
            }
            Next::Resume(Reply::Nothing)
        }
    };
    touch_lua();
    if matches!(name, "read" | "write") && k.w().stats.faults > faults_before {
        name = "fault";
    }
    if ctx.keep_calls {
        ctx.calls.borrow_mut().push(Call { task: t.id(), name, start_ns: started, end_ns: t.now() });
    }
    ctx.call_count.set(ctx.call_count.get() + 1);
    // What a run keeps in Rust memory grows with its calls, outside the
    // Lua state's limit: bound it (the same bound whether it keeps them).
    let (calls, printk) = (ctx.call_count.get(), k.w().printk.len());
    if calls > MAX_CALLS || printk > MAX_KERNEL_LOG {
        let what = if calls > MAX_CALLS {
            format!("made more than {MAX_CALLS} system calls")
        } else {
            format!("wrote more than {MAX_KERNEL_LOG} kernel log lines")
        };
        let message = format!("the run {what}, the most a run records (a loop of system calls?)");
        ctx.fail(t, ScenarioError { location: Some(ctx.path.clone()), message });
        return Err(kernel::Oops);
    }
    if k.leave_kernel() {
        if let Some((invariant, message)) = invariants::check_quiescent(k) {
            t.violation(invariant, message);
        }
    }
    if let Next::Resume(_) = next {
        t.return_to_user("ret_from_sys_call").await;
    }
    Ok(next)
}
