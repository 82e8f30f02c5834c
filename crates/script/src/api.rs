//! The scenario API: what a scenario file can call.
//!
//! [`API`] lists every function with its parameters. Declarations
//! (`machine`, `process`, `shmget`, ..., and the set-up methods of a
//! process handle) run while the file loads and fill a [`RawSpec`].
//! System calls (`fork`, `read`, `swapoff`, ...) may only be made from a
//! process program: each one yields the program's coroutine with a
//! request that the driver turns into kernel routines, and the coroutine
//! resumes with the result.

use std::cell::RefCell;
use std::rc::Rc;

use kernel::PAGE_SIZE;
use mlua::{Function, Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use crate::spec::{mapped, ProcessSpec, RawMachine, RawSpec, SetupOp, SetupStep};

pub type SharedSpec = Rc<RefCell<RawSpec>>;

/// What kind of function of the API an [`ApiFunction`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKind {
    /// A global that declares the scenario while the file loads (or
    /// `param`, which works anywhere).
    Declaration,
    /// A global that only a process program may call.
    SystemCall,
    /// A method of a process handle (`p:map(...)`), a declaration.
    ProcessMethod,
}

/// One function of the scenario API and the arguments it takes: the
/// reference, the annotations and the argument check all read this table.
#[derive(Clone, Copy, Debug)]
pub struct ApiFunction {
    pub name: &'static str,
    pub kind: ApiKind,
    /// Its parameters, in order; an optional one ends in `?`.
    pub params: &'static [&'static str],
}

impl ApiFunction {
    /// How messages name it: `read`, `p:map()`.
    pub fn shown(&self) -> String {
        match self.kind {
            ApiKind::ProcessMethod => format!("p:{}()", self.name),
            _ => self.name.to_string(),
        }
    }

    /// The call as the reference writes it: `swap_out(addr [, pid])`,
    /// `p:map(start, pages)`.
    pub fn call(&self) -> String {
        let mut args = String::new();
        let mut optional = 0;
        for (i, param) in self.params.iter().enumerate() {
            let comma = if i == 0 { "" } else { ", " };
            match param.strip_suffix('?') {
                Some(name) if i == 0 => args += &format!("[{name}"),
                Some(name) => args += &format!(" [, {name}"),
                None => args += &format!("{comma}{param}"),
            }
            optional += usize::from(param.ends_with('?'));
        }
        args += &"]".repeat(optional);
        let prefix = if self.kind == ApiKind::ProcessMethod { "p:" } else { "" };
        format!("{prefix}{}({args})", self.name)
    }

    /// What it takes, in words: `no arguments`, `1 argument`, `at most 2 arguments`.
    fn takes(&self) -> String {
        let n = self.params.len();
        let at_most = if self.params.iter().any(|p| p.ends_with('?')) { "at most " } else { "" };
        match n {
            0 => "no arguments".to_string(),
            1 => format!("{at_most}1 argument"),
            n => format!("{at_most}{n} arguments"),
        }
    }
}

const fn declaration(name: &'static str, params: &'static [&'static str]) -> ApiFunction {
    ApiFunction { name, kind: ApiKind::Declaration, params }
}

const fn system_call(name: &'static str, params: &'static [&'static str]) -> ApiFunction {
    ApiFunction { name, kind: ApiKind::SystemCall, params }
}

const fn method(name: &'static str, params: &'static [&'static str]) -> ApiFunction {
    ApiFunction { name, kind: ApiKind::ProcessMethod, params }
}

/// Every function of the scenario API. `register` wraps each one in the
/// same argument check: a call with more arguments than it lists is an
/// error naming the first extra one and the call.
pub const API: &[ApiFunction] = &[
    declaration("machine", &["options"]),
    declaration("sweep", &["options"]),
    declaration("param", &["name"]),
    declaration("process", &["name", "program?"]),
    declaration("shmget", &["pages"]),
    declaration("point", &["name"]),
    system_call("fork", &["program?"]),
    system_call("thread", &["program"]),
    system_call("exit", &[]),
    system_call("exec", &[]),
    system_call("read", &["addr"]),
    system_call("write", &["addr"]),
    system_call("mmap", &["addr", "pages"]),
    system_call("munmap", &["addr", "pages"]),
    system_call("shmctl", &["seg", "cmd"]),
    system_call("swapoff", &["device"]),
    system_call("swapon", &["device"]),
    system_call("swap_out", &["addr", "pid?"]),
    system_call("try_to_free_pages", &[]),
    system_call("shm_swap", &[]),
    system_call("getpid", &[]),
    system_call("waitpid", &["pid"]),
    system_call("wait_exit", &["pid"]),
    system_call("wait_point", &["point", "times?"]),
    system_call("sleep", &["ms"]),
    system_call("expect", &["condition", "message?"]),
    method("map", &["start", "pages"]),
    method("shmat", &["seg", "start"]),
    method("write", &["addr"]),
    method("read", &["addr"]),
    method("swap_out", &["addr", "device?"]),
];

/// Every global the scenario API adds, for the reference docs and tests.
pub fn globals() -> Vec<&'static str> {
    API.iter().filter(|f| f.kind != ApiKind::ProcessMethod).map(|f| f.name).collect()
}

/// The methods of a process handle.
pub fn process_methods() -> Vec<&'static str> {
    API.iter().filter(|f| f.kind == ApiKind::ProcessMethod).map(|f| f.name).collect()
}

/// The system calls, written in Lua so that they can yield the program's
/// coroutine and so that argument errors point at the caller's line.
const PRELUDE: &str = r#"
local yield, isyieldable, mtype, type, error, tostring = coroutine.yield, coroutine.isyieldable, math.type, type, error, tostring
local format = string.format
local segment_id = __swapsim_segment_id
local point_id = __swapsim_point_id

local function syscall(name, ...)
  if not isyieldable() then
    error(format("%s() is a system call of a simulated process: call it inside a process program, "
      .. "e.g. process(\"p\", function() %s(...) end)", name, name), 3)
  end
  return yield(name, ...)
end

-- What a value is, for messages: the value itself for numbers and
-- strings, else its type.
local function shown(value)
  if value ~= value then return "NaN" end
  if type(value) == "number" then return tostring(value) end
  if type(value) == "string" then return format("the string %q", value) end
  return type(value)
end

local function check_integer(fname, what, value)
  if mtype(value) ~= "integer" or value < 0 then
    error(format("%s: expected %s, a non-negative integer; got %s", fname, what, shown(value)), 3)
  end
end

local function check_pages(fname, pages)
  if mtype(pages) ~= "integer" or pages < 1 or pages > 1048576 then
    error(format("%s: expected a number of pages between 1 and 1048576, got %s", fname, shown(pages)), 3)
  end
end

-- For the argument check that wraps every function of the API (register).
__swapsim_shown = shown

function fork(program)
  if program ~= nil and type(program) ~= "function" then
    error("fork: expected the child's program (a function) or nothing, got " .. shown(program), 2)
  end
  return syscall("fork", program)
end

function thread(program)
  if type(program) ~= "function" then
    error("thread: expected the thread's program (a function), got " .. shown(program), 2)
  end
  return syscall("thread", program)
end

function exit()
  return syscall("exit")
end

function exec()
  return syscall("exec")
end

function mmap(addr, pages)
  check_integer("mmap", "an address", addr)
  check_pages("mmap", pages)
  return syscall("mmap", addr, pages)
end

function munmap(addr, pages)
  check_integer("munmap", "an address", addr)
  check_pages("munmap", pages)
  return syscall("munmap", addr, pages)
end

function shmctl(seg, cmd)
  local id = segment_id(seg)
  if id == nil then
    error("shmctl: expected a segment from shmget() as its first argument, got " .. shown(seg), 2)
  end
  if cmd ~= "IPC_RMID" then
    error("shmctl: the command must be \"IPC_RMID\" (the only one modelled), got " .. shown(cmd), 2)
  end
  return syscall("shmctl", id)
end

function read(addr)
  check_integer("read", "an address", addr)
  return syscall("read", addr)
end

function write(addr)
  check_integer("write", "an address", addr)
  return syscall("write", addr)
end

function swapoff(device)
  check_integer("swapoff", "a swap device number (1 is the first)", device)
  return syscall("swapoff", device)
end

function swapon(device)
  check_integer("swapon", "a swap device number (1 is the first)", device)
  return syscall("swapon", device)
end

function swap_out(addr, pid)
  check_integer("swap_out", "an address", addr)
  if pid ~= nil then check_integer("swap_out", "a pid", pid) end
  return syscall("swap_out", addr, pid)
end

function try_to_free_pages()
  return syscall("try_to_free_pages")
end

function shm_swap()
  return syscall("shm_swap")
end

function getpid()
  return syscall("getpid")
end

function sleep(ms)
  -- ms ~= ms is NaN; a day is the longest sleep a scenario needs.
  if type(ms) ~= "number" or ms ~= ms or ms < 0 or ms > 86400000 then
    error("sleep: expected a number of milliseconds between 0 and 86400000 (a day), got " .. shown(ms), 2)
  end
  return syscall("sleep", ms)
end

function waitpid(pid)
  check_integer("waitpid", "a pid", pid)
  return syscall("waitpid", pid)
end

function wait_exit(pid)
  check_integer("wait_exit", "a pid", pid)
  return syscall("wait_exit", pid)
end

function wait_point(point, times)
  local id = point_id(point)
  if id == nil then
    error("wait_point: expected a point from point(name) as its first argument, got " .. shown(point), 2)
  end
  if times ~= nil and (mtype(times) ~= "integer" or times < 1) then
    error("wait_point: expected a number of passes, a positive integer; got " .. shown(times), 2)
  end
  return syscall("wait_point", id, times or 1)
end

function expect(condition, message)
  if message ~= nil and type(message) ~= "string" then
    error("expect: the message must be a string, got " .. shown(message), 2)
  end
  return syscall("expect", condition and true or false, message or "expectation failed")
end
"#;

/// Install the API in a sandboxed state. `coroutine` is hidden afterwards:
/// a program's own coroutines would swallow its system calls.
pub fn register(lua: &Lua, spec: SharedSpec) -> mlua::Result<()> {
    lua.set_app_data(spec);
    let globals = lua.globals();
    globals.set("machine", lua.create_function(machine)?)?;
    globals.set("process", lua.create_function(process)?)?;
    globals.set("shmget", lua.create_function(shmget)?)?;
    globals.set("sweep", lua.create_function(sweep)?)?;
    globals.set("param", lua.create_function(param)?)?;
    // For the prelude only: a segment handle's id, or nil.
    let segment_id = lua.create_function(|_, seg: Value| {
        Ok(match seg {
            Value::UserData(ud) => ud.borrow::<Segment>().ok().map(|s| s.0 as i64),
            _ => None,
        })
    })?;
    globals.set("__swapsim_segment_id", segment_id)?;
    let point_id = lua.create_function(|_, point: Value| {
        Ok(match point {
            Value::UserData(ud) => ud.borrow::<PointHandle>().ok().map(|p| p.0 as i64),
            _ => None,
        })
    })?;
    globals.set("__swapsim_point_id", point_id)?;
    globals.set("point", lua.create_function(point)?)?;
    lua.load(PRELUDE).set_name("=swapsim").exec()?;
    globals.set("__swapsim_segment_id", Value::Nil)?;
    globals.set("__swapsim_point_id", Value::Nil)?;
    // Every function of the API, globals and methods alike, goes through
    // the one argument check.
    let shown: Function = globals.get("__swapsim_shown")?;
    let methods = lua.create_table()?;
    for f in API {
        let (inner, self_arg) = match f.kind {
            ApiKind::ProcessMethod => (process_method(lua, f.name)?, 1),
            _ => (globals.get::<Function>(f.name)?, 0),
        };
        let wrapped: Function = lua.load(checked(f, self_arg)).set_name("=swapsim").call((shown.clone(), inner))?;
        match f.kind {
            ApiKind::ProcessMethod => methods.raw_set(f.name, wrapped)?,
            _ => globals.set(f.name, wrapped)?,
        }
    }
    // Any other key of a process handle is an error, as mlua's own are.
    let unknown = lua.load(r#"return { __index = function(_, key) error("attempt to get an unknown field '" .. tostring(key) .. "'", 2) end }"#)
        .set_name("=swapsim")
        .eval::<Table>()?;
    methods.set_metatable(Some(unknown))?;
    lua.set_named_registry_value(PROCESS_METHODS_KEY, methods)?;
    globals.set("__swapsim_shown", Value::Nil)?;
    globals.set("coroutine", Value::Nil)?;
    Ok(())
}

fn spec(lua: &Lua) -> SharedSpec {
    lua.app_data_ref::<SharedSpec>().expect("register() stores the spec").clone()
}

/// The line of the scenario that called the current Rust function: the
/// first frame up the stack that is not the API's own Lua (the argument
/// check wraps every function).
fn caller_line(lua: &Lua) -> usize {
    (1..8)
        .map_while(|level| {
            lua.inspect_stack(level, |debug| {
                let internal = debug.source().source.as_deref().is_some_and(|s| s == "=swapsim" || s == "=[C]");
                (internal, debug.current_line())
            })
        })
        .find_map(|(internal, line)| line.filter(|_| !internal))
        .unwrap_or(0)
}

fn declaring(lua: &Lua, what: &str) -> mlua::Result<SharedSpec> {
    let spec = spec(lua);
    if spec.borrow().running {
        return Err(mlua::Error::runtime(format!(
            "{what} declares the scenario and only works while the file loads, not inside a process program"
        )));
    }
    Ok(spec)
}

/// A table key as the scenario wrote it: `name`, or `[1]` for a
/// positional entry; `what` is the declaration whose table it is.
fn key_name(key: &Value, what: &str) -> String {
    match key {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(n) => format!("[{n}] (a positional entry; {what} takes named fields)"),
        Value::Number(x) => format!("[{}]", lua_float(*x)),
        Value::Boolean(b) => format!("[{b}]"),
        other => format!("{} key", crate::sandbox::with_article(other.type_name())),
    }
}

/// A float as Lua's `tostring` writes it (`"%.14g"`, then `.0` when that
/// looks like an integer): `2.0`, `0.5`, `1e+20`, `inf`; NaN as `NaN`, as
/// the prelude's `shown` does.
pub fn lua_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_string();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // %.14g: 14 significant digits; the exponent after rounding picks the style.
    let sci = format!("{x:.13e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let trim = |digits: &str| -> String {
        if digits.contains('.') {
            digits.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            digits.to_string()
        }
    };
    let text = if !(-4..14).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (13 - exp) as usize;
        trim(&format!("{x:.decimals$}"))
    };
    if text.bytes().all(|b| b == b'-' || b.is_ascii_digit()) {
        text + ".0"
    } else {
        text
    }
}

/// A Lua value for messages: numbers and strings as written, else the type.
fn shown(value: &Value) -> String {
    match value {
        Value::Integer(n) => n.to_string(),
        Value::Number(x) => lua_float(*x),
        Value::String(s) => format!("the string {:?}", s.to_string_lossy()),
        other => other.type_name().to_string(),
    }
}

/// A Lua number, and how messages show it.
fn raw_number(value: &Value) -> crate::spec::RawNumber {
    match value {
        Value::Integer(n) => crate::spec::RawNumber { value: *n as f64, integer: Some(*n) },
        Value::Number(x) => crate::spec::RawNumber { value: *x, integer: None },
        _ => crate::spec::RawNumber { value: f64::NAN, integer: None },
    }
}

const MACHINE_FIELDS: &[&str] =
    &["cpus", "memory_pages", "swap_devices", "alloc_sleep", "step_budget", "kswapd", "max_threads", "costs", "faults"];
const FAULT_FIELDS: &[&str] = &["alloc_fail", "alloc_fail_nth", "io_delay", "read_error"];

/// `machine { cpus = 1, memory_pages = 1024, swap_devices = {64}, alloc_sleep = 0.2, step_budget = 1000000 }`
fn machine(lua: &Lua, fields: Table) -> mlua::Result<()> {
    let spec = declaring(lua, "machine{}")?;
    let line = caller_line(lua);
    if let Some((_, first)) = &spec.borrow().machine {
        return Err(mlua::Error::runtime(format!("machine{{}} is given twice (first on line {first})")));
    }
    // The known fields' values, kept from the one pass over the table that
    // looks for unknown ones. Without a metatable `get` is a raw read, so
    // the pass sees exactly what `get` would; with one, `get` reads.
    let direct = !fields.has_metatable();
    let mut found: [Value; MACHINE_FIELDS.len()] = std::array::from_fn(|_| Value::Nil);
    let mut unknown: Vec<String> = Vec::new();
    // `for_each` walks the table in one protected call (`pairs` makes one
    // per entry), in the same order.
    fields.for_each::<Value, Value>(|key, value| {
        if let Value::String(s) = &key {
            let bytes = s.as_bytes();
            if let Some(i) = MACHINE_FIELDS.iter().position(|f| f.as_bytes() == &*bytes) {
                found[i] = value;
                return Ok(());
            }
        }
        let name = key_name(&key, "machine");
        if !MACHINE_FIELDS.contains(&name.as_str()) {
            unknown.push(name);
        }
        Ok(())
    })?;
    unknown.sort();
    if let Some(name) = unknown.first() {
        return Err(mlua::Error::runtime(format!(
            "machine: unknown field '{name}' (the fields are {})",
            MACHINE_FIELDS.join(", ")
        )));
    }
    let field = |name: &str| -> mlua::Result<Value> {
        match MACHINE_FIELDS.iter().position(|f| *f == name) {
            Some(i) if direct => Ok(found[i].clone()),
            _ => fields.get::<Value>(name),
        }
    };
    let integer = |name: &str| -> mlua::Result<Option<i64>> {
        match field(name)? {
            Value::Nil => Ok(None),
            Value::Integer(n) => Ok(Some(n)),
            other => Err(mlua::Error::runtime(format!("machine: {name} must be an integer, got {}", shown(&other)))),
        }
    };
    let alloc_sleep = match field("alloc_sleep")? {
        Value::Nil => None,
        value @ (Value::Integer(_) | Value::Number(_)) => Some(raw_number(&value)),
        other => {
            return Err(mlua::Error::runtime(format!("machine: alloc_sleep must be a number, got {}", shown(&other))))
        }
    };
    let swap_devices = match field("swap_devices")? {
        Value::Nil => None,
        Value::Table(list) => {
            // Every key must be 1..n: `{64, nil, 3}` has a hole, and a
            // named key is not a device.
            let mut entries: Vec<(i64, Value)> = Vec::new();
            list.for_each::<Value, Value>(|key, value| match (key, value) {
                (Value::Integer(i), value) if i >= 1 => {
                    entries.push((i, value));
                    Ok(())
                }
                (key, _) => Err(mlua::Error::runtime(format!(
                    "machine: swap_devices must be a list of sizes in pages, e.g. {{64, 64}}, got a table with the \
                     key {}",
                    match key {
                        Value::Integer(n) => format!("[{n}]"),
                        other => key_name(&other, "machine"),
                    }
                ))),
            })?;
            entries.sort_by_key(|&(i, _)| i);
            let mut sizes = Vec::new();
            for (i, value) in entries {
                let expected = sizes.len() as i64 + 1;
                if i != expected {
                    return Err(mlua::Error::runtime(format!(
                        "machine: swap_devices has a hole: entry {expected} is nil (every device needs its size, e.g. {{64, 64}})"
                    )));
                }
                match value {
                    Value::Integer(n) => sizes.push(n),
                    other => {
                        return Err(mlua::Error::runtime(format!(
                            "machine: swap_devices lists sizes in pages (integers); entry {i} is {}",
                            shown(&other)
                        )))
                    }
                }
            }
            Some(sizes)
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "machine: swap_devices must be a list of sizes in pages, e.g. {{64, 64}}, got {}",
                shown(&other)
            )))
        }
    };
    let kswapd = match field("kswapd")? {
        Value::Nil => None,
        Value::Boolean(on) => Some(on),
        other => {
            return Err(mlua::Error::runtime(format!("machine: kswapd must be true or false, got {}", shown(&other))))
        }
    };
    let faults = match field("faults")? {
        Value::Nil => None,
        Value::Table(t) => Some(parse_faults(t)?),
        other => {
            return Err(mlua::Error::runtime(format!(
                "machine: faults must be a table like {{ alloc_fail = 0.01 }}, got {}",
                shown(&other)
            )))
        }
    };
    let mut costs = Vec::new();
    match field("costs")? {
        Value::Nil => {}
        Value::Table(t) => {
            for pair in t.pairs::<Value, Value>() {
                let (key, value) = pair?;
                let name = key_name(&key, "machine");
                match value {
                    Value::Integer(n) => costs.push((name, n)),
                    other => {
                        return Err(mlua::Error::runtime(format!(
                            "machine: costs.{name} is a time in ns (an integer), got {}",
                            shown(&other)
                        )))
                    }
                }
            }
        }
        other => {
            return Err(mlua::Error::runtime(format!(
                "machine: costs must be a table like {{ disk_read = 8000000 }}, got {}",
                shown(&other)
            )))
        }
    }
    // By name, so that the first bad cost reported does not depend on
    // Lua's table order.
    costs.sort();
    let raw = RawMachine {
        costs,
        max_threads: integer("max_threads")?,
        faults,
        kswapd,
        cpus: integer("cpus")?,
        memory_pages: integer("memory_pages")?,
        swap_devices,
        alloc_sleep,
        step_budget: integer("step_budget")?,
    };
    spec.borrow_mut().machine = Some((raw, line));
    Ok(())
}

/// `faults = { alloc_fail = 0.01, alloc_fail_nth = 100, io_delay = 0.1 }`.
fn parse_faults(t: Table) -> mlua::Result<crate::spec::RawFaults> {
    let mut unknown: Vec<String> = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let name = key_name(&key, "machine");
        if !FAULT_FIELDS.contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    unknown.sort();
    if let Some(name) = unknown.first() {
        return Err(mlua::Error::runtime(format!(
            "machine: unknown fault '{name}' (the faults are {})",
            FAULT_FIELDS.join(", ")
        )));
    }
    let number = |name: &str| -> mlua::Result<Option<crate::spec::RawNumber>> {
        match t.get::<Value>(name)? {
            Value::Nil => Ok(None),
            value @ (Value::Integer(_) | Value::Number(_)) => Ok(Some(raw_number(&value))),
            other => {
                Err(mlua::Error::runtime(format!("machine: faults.{name} must be a number, got {}", shown(&other))))
            }
        }
    };
    let nth = match t.get::<Value>("alloc_fail_nth")? {
        Value::Nil => None,
        Value::Integer(n) => Some(n),
        other => {
            return Err(mlua::Error::runtime(format!(
                "machine: faults.alloc_fail_nth must be an integer, got {}",
                shown(&other)
            )))
        }
    };
    Ok(crate::spec::RawFaults {
        alloc_fail: number("alloc_fail")?,
        alloc_fail_nth: nth,
        io_delay: number("io_delay")?,
        read_error: number("read_error")?,
    })
}

/// `process(name [, program])`: a process with its own empty address
/// space; its program runs interleaved with the others.
fn process(lua: &Lua, (name, program): (Value, Value)) -> mlua::Result<Process> {
    let spec = declaring(lua, "process()")?;
    let name = match name {
        Value::String(s) => s.to_string_lossy(),
        other => {
            return Err(mlua::Error::runtime(format!(
                "process: expected a name (a string) as its first argument, got {}",
                shown(&other)
            )))
        }
    };
    let program = match program {
        Value::Nil => None,
        Value::Function(f) => Some(f),
        other => {
            return Err(mlua::Error::runtime(format!(
                "process: expected the program (a function) or nothing as its second argument, got {}",
                shown(&other)
            )))
        }
    };
    // '/' would make the name look like a child's key (`parent/1`).
    if name.is_empty() || name.len() > 32 || !name.chars().all(|c| c.is_ascii_graphic() && c != '/') {
        return Err(mlua::Error::runtime(format!(
            "process: the name must be 1 to 32 printable characters without spaces or '/' (a child's key is NAME/N), got {name:?}"
        )));
    }
    let line = caller_line(lua);
    let mut spec = spec.borrow_mut();
    if !spec.process_names.insert(name.clone()) {
        return Err(mlua::Error::runtime(format!("process: a process named {name:?} already exists")));
    }
    spec.processes.push(ProcessSpec { name, maps: Vec::new(), attaches: Vec::new(), program, line });
    Ok(Process(spec.processes.len() - 1))
}

/// The kernel variants' names, for messages: "pre4, patched, 2.4.10, 5.1".
fn kernel_names() -> String {
    kernel::Variant::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", ")
}

/// `sweep{ params = { processes = {1, 2, 4} }, kernels = {"pre4", "patched"}, seeds = 3 }`:
/// the parameter grid `swapsim sweep` runs.
fn sweep(lua: &Lua, fields: Table) -> mlua::Result<()> {
    let spec = declaring(lua, "sweep{}")?;
    let line = caller_line(lua);
    if let Some((_, first)) = &spec.borrow().sweep {
        return Err(mlua::Error::runtime(format!("sweep{{}} is given twice (first on line {first})")));
    }
    let mut unknown: Vec<String> = Vec::new();
    for pair in fields.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let name = key_name(&key, "sweep");
        if !["params", "kernels", "seeds"].contains(&name.as_str()) {
            unknown.push(name);
        }
    }
    unknown.sort();
    if let Some(name) = unknown.first() {
        return Err(mlua::Error::runtime(format!(
            "sweep: unknown field '{name}' (the fields are params, kernels, seeds)"
        )));
    }
    let Value::Table(params_table) = fields.get::<Value>("params")? else {
        return Err(mlua::Error::runtime(
            "sweep: params must be a table of value lists, e.g. params = { processes = {1, 2, 4} }",
        ));
    };
    // Checked in name order, so that the first problem reported does not
    // depend on Lua's table order.
    let mut entries: Vec<(String, Value)> = Vec::new();
    for pair in params_table.pairs::<Value, Value>() {
        let (key, values) = pair?;
        let Value::String(name) = key else {
            return Err(mlua::Error::runtime("sweep: params are named, e.g. params = { processes = {1, 2, 4} }"));
        };
        entries.push((name.to_string_lossy(), values));
    }
    if entries.is_empty() {
        return Err(mlua::Error::runtime(
            "sweep: params declares no parameter; give at least one, e.g. params = { processes = {1, 2, 4} }",
        ));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut params: Vec<(String, Vec<i64>)> = Vec::new();
    for (name, values) in entries {
        let Value::Table(list) = values else {
            return Err(mlua::Error::runtime(format!("sweep: params.{name} must be a list of integers")));
        };
        let mut ints = Vec::new();
        for v in list.sequence_values::<Value>() {
            match v? {
                Value::Integer(n) => ints.push(n),
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "sweep: params.{name} lists integers, got {}",
                        shown(&other)
                    )))
                }
            }
        }
        if ints.is_empty() {
            return Err(mlua::Error::runtime(format!("sweep: params.{name} has no values")));
        }
        params.push((name, ints));
    }
    let kernels: Vec<String> = match fields.get::<Value>("kernels")? {
        Value::Nil => vec!["pre4".to_string(), "patched".to_string()],
        Value::Table(list) => {
            let mut names: Vec<String> = Vec::new();
            for v in list.sequence_values::<Value>() {
                match v? {
                    Value::String(s) if kernel::Variant::from_name(&s.to_string_lossy()).is_some() => {
                        let name = s.to_string_lossy();
                        if names.contains(&name) {
                            return Err(mlua::Error::runtime(format!(
                                "sweep: kernels lists {name:?} twice (each kernel runs every point once)"
                            )));
                        }
                        names.push(name)
                    }
                    other => {
                        return Err(mlua::Error::runtime(format!(
                            "sweep: kernels lists kernel names ({}), got {}",
                            kernel_names(),
                            shown(&other)
                        )))
                    }
                }
            }
            if names.is_empty() {
                return Err(mlua::Error::runtime(format!(
                    "sweep: kernels lists no kernel (a sweep of no runs); give at least one of {}, or leave kernels \
                     out for pre4 and patched",
                    kernel_names()
                )));
            }
            names
        }
        other => return Err(mlua::Error::runtime(format!("sweep: kernels must be a list, got {}", shown(&other)))),
    };
    let seeds = match fields.get::<Value>("seeds")? {
        Value::Nil => 3,
        Value::Integer(n) if (1..=1000).contains(&n) => n as u64,
        other => {
            return Err(mlua::Error::runtime(format!("sweep: seeds is between 1 and 1000, got {}", shown(&other))))
        }
    };
    spec.borrow_mut().sweep = Some((crate::spec::Sweep { params, kernels, seeds }, line));
    Ok(())
}

/// `param(name)`: the value of a sweep parameter at this run's point (the
/// first of its list outside `swapsim sweep`).
fn param(lua: &Lua, name: String) -> mlua::Result<i64> {
    let spec = spec(lua);
    let spec = spec.borrow();
    if let Some((_, v)) = spec.params.iter().find(|(n, _)| *n == name) {
        return Ok(*v);
    }
    match &spec.sweep {
        Some((sweep, _)) => match sweep.params.iter().find(|(n, _)| *n == name) {
            Some((_, values)) => Ok(values[0]),
            None => {
                let names: Vec<&str> = sweep.params.iter().map(|(n, _)| n.as_str()).collect();
                Err(mlua::Error::runtime(format!("param: no parameter {name:?} (the sweep has {})", names.join(", "))))
            }
        },
        None => Err(mlua::Error::runtime(format!("param: no sweep{{}} declares {name:?}: declare the grid first"))),
    }
}

/// `shmget(pages)`: a SysV shm segment of `pages` pages, to attach with
/// `p:shmat(seg, start)`.
fn shmget(lua: &Lua, pages: Value) -> mlua::Result<Segment> {
    let spec = declaring(lua, "shmget()")?;
    let pages = match pages {
        Value::Integer(n) if (1..=1 << 16).contains(&n) => n,
        other => {
            return Err(mlua::Error::runtime(format!(
                "shmget: expected a number of pages between 1 and 65536, got {}",
                shown(&other)
            )))
        }
    };
    let line = caller_line(lua);
    let mut spec = spec.borrow_mut();
    spec.segments.push(pages as u64);
    spec.segment_lines.push(line);
    Ok(Segment(spec.segments.len() - 1))
}

/// `point(name)`: a named point of the model, for `wait_point`. Its
/// passes are counted from the start of the interleaved run.
fn point(lua: &Lua, name: Value) -> mlua::Result<PointHandle> {
    let spec = declaring(lua, "point()")?;
    let Value::String(name) = name else {
        return Err(mlua::Error::runtime(format!(
            "point: expected the name of a named point (a string, \"function:where\"), got {}",
            shown(&name)
        )));
    };
    let name = name.to_string_lossy();
    let Some(&known) = crate::points::MODEL_POINTS.iter().find(|p| **p == name) else {
        let function = name.split_once(':').map_or(name.as_str(), |(f, _)| f);
        let same: Vec<&str> = crate::points::MODEL_POINTS
            .iter()
            .copied()
            .filter(|p| p.split_once(':').is_some_and(|(f, _)| f == function))
            .collect();
        let hint = if same.is_empty() {
            "no point of the model is in a function of that name".to_string()
        } else {
            format!("the points of {function} are {}", same.join(", "))
        };
        return Err(mlua::Error::runtime(format!(
            "point: the model has no named point {name:?} ({hint}; docs/fidelity.md lists every point, and swapsim run \
             FILE --list-points those a run reaches)"
        )));
    };
    let mut spec = spec.borrow_mut();
    let id = match spec.points.iter().position(|p| *p == known) {
        Some(id) => id,
        None => {
            spec.points.push(known);
            spec.points.len() - 1
        }
    };
    Ok(PointHandle(id, known))
}

/// A named point's handle, from `point(name)`.
#[derive(Clone, Copy)]
pub struct PointHandle(pub usize, pub &'static str);

impl UserData for PointHandle {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, this| Ok(this.1));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| Ok(format!("point {}", this.1)));
        methods
            .add_meta_method(mlua::MetaMethod::NewIndex, |_, _, (_key, _value): (Value, Value)| -> mlua::Result<()> {
                Err(read_only("point", "pt.name"))
            });
    }
}

/// A shm segment handle.
#[derive(Clone, Copy)]
pub struct Segment(pub usize);

/// The error for writing to a handle's field.
fn read_only(kind: &str, fields: &str) -> mlua::Error {
    mlua::Error::runtime(format!("a {kind} handle is read-only: {fields} can be read, not set"))
}

impl UserData for Segment {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("id", |_, this| Ok(this.0 as i64));
        fields.add_field_method_get("pages", |lua, this| Ok(spec(lua).borrow().segments[this.0] as i64));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |lua, this, ()| {
            Ok(format!("shm segment {} ({} pages)", this.0, spec(lua).borrow().segments[this.0]))
        });
        methods.add_meta_method(
            mlua::MetaMethod::NewIndex,
            |_, _, (_key, _value): (Value, Value)| -> mlua::Result<()> {
                Err(read_only("segment", "seg.id and seg.pages"))
            },
        );
    }
}

/// A process handle: `local p = process("p", ...)`. Pids follow the order
/// of declaration, from 1.
pub struct Process(pub usize);

impl Process {
    fn setup(&self, lua: &Lua, what: &str, op: SetupOp) -> mlua::Result<()> {
        let spec = declaring(lua, what)?;
        let line = caller_line(lua);
        let mut spec = spec.borrow_mut();
        let addr = match op {
            SetupOp::Write(a) | SetupOp::Read(a) | SetupOp::SwapOut(a, _) => a,
        };
        let process = &spec.processes[self.0];
        if !mapped(&process.ranges(&spec.segments), addr) {
            return Err(mlua::Error::runtime(format!(
                "{what}: address {addr:#x} is not mapped in process {:?} (map it first with p:map(start, pages))",
                process.name
            )));
        }
        spec.setup.push(SetupStep { process: self.0, op, line });
        Ok(())
    }
}

/// The process a method was called on; `p.map(...)` (a dot, not a colon)
/// passes something else.
fn this_process(this: &Value, method: &str, args: &str) -> mlua::Result<usize> {
    match this {
        Value::UserData(ud) => match ud.borrow::<Process>() {
            Ok(p) => Ok(p.0),
            Err(_) => Err(mlua::Error::runtime(format!("p:{method}: call it on a process handle: p:{method}({args})"))),
        },
        _ => Err(mlua::Error::runtime(format!(
            "p:{method}: call it with a colon, p:{method}({args}), not p.{method}({args})"
        ))),
    }
}

/// An address argument: a non-negative integer.
fn address(what: &str, value: &Value) -> mlua::Result<u64> {
    match value {
        Value::Integer(n) if *n >= 0 => Ok(*n as u64),
        other => Err(mlua::Error::runtime(format!(
            "{what}: expected an address, a non-negative integer; got {}",
            shown(other)
        ))),
    }
}

/// The argument check of `f`, as Lua source: a chunk that takes `shown`
/// and the function itself and returns the function wrapped. More
/// arguments than `f` takes is an error at the caller's line, naming the
/// first extra one and the call; `self_arg` is 1 for a method, whose
/// handle is not counted. The inner function is called through a local of
/// its own name, so that Lua's messages about its arguments name it.
fn checked(f: &ApiFunction, self_arg: usize) -> String {
    let max = f.params.len();
    let message = format!("{}: takes {}, {}; got %d (argument #{} is %s)", f.shown(), f.takes(), f.call(), max + 1);
    format!(
        "local shown, {name} = ...\n\
         local select, error, format = select, error, string.format\n\
         return function(...)\n\
           local n = select('#', ...)\n\
           if n > {limit} then\n\
             error(format({message:?}, n - {self_arg}, shown((select({extra}, ...)))), 2)\n\
           end\n\
           return {name}(...)\n\
         end\n",
        name = f.name,
        limit = max + self_arg,
        extra = max + self_arg + 1,
    )
}

/// Where `register` keeps the process handle's methods (the handle's `__index`).
const PROCESS_METHODS_KEY: &str = "swapsim.process_methods";

/// The set-up method `name` of a process handle, before the argument check.
fn process_method(lua: &Lua, name: &str) -> mlua::Result<Function> {
    match name {
        "map" => lua.create_function(|lua, (this, start, pages): (Value, Value, Value)| {
            let this = this_process(&this, "map", "start, pages")?;
            let spec = declaring(lua, "p:map()")?;
            let start = address("p:map()", &start)?;
            if !start.is_multiple_of(PAGE_SIZE) {
                return Err(mlua::Error::runtime(format!(
                    "p:map(): start {start:#x} is not page aligned (4096 bytes)"
                )));
            }
            let pages = match pages {
                Value::Integer(n) if (1..=1 << 20).contains(&n) => n as u64,
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "p:map(): expected a number of pages between 1 and 1048576, got {}",
                        shown(&other)
                    )))
                }
            };
            let end = start + pages * PAGE_SIZE;
            let mut spec = spec.borrow_mut();
            let ranges = spec.processes[this].ranges(&spec.segments);
            if ranges.iter().any(|&(s, p)| s < end && start < s + p * PAGE_SIZE) {
                return Err(mlua::Error::runtime(format!("p:map(): {start:#x}..{end:#x} overlaps an earlier mapping")));
            }
            spec.processes[this].maps.push((start, pages));
            Ok(())
        }),
        "shmat" => lua.create_function(|lua, (this, segment, start): (Value, Value, Value)| {
            let this = this_process(&this, "shmat", "seg, start")?;
            let spec = declaring(lua, "p:shmat()")?;
            let segment = match &segment {
                Value::UserData(ud) => ud.borrow::<Segment>().map(|s| s.0).ok(),
                _ => None,
            };
            let Some(segment) = segment else {
                return Err(mlua::Error::runtime("p:shmat(): expected a segment from shmget() as its first argument"));
            };
            let start = address("p:shmat()", &start)?;
            if !start.is_multiple_of(PAGE_SIZE) {
                return Err(mlua::Error::runtime(format!(
                    "p:shmat(): start {start:#x} is not page aligned (4096 bytes)"
                )));
            }
            let mut spec = spec.borrow_mut();
            let end = start + spec.segments[segment] * PAGE_SIZE;
            let ranges = spec.processes[this].ranges(&spec.segments);
            if ranges.iter().any(|&(s, p)| s < end && start < s + p * PAGE_SIZE) {
                return Err(mlua::Error::runtime(format!(
                    "p:shmat(): {start:#x}..{end:#x} overlaps an earlier mapping"
                )));
            }
            spec.processes[this].attaches.push((segment, start));
            Ok(())
        }),
        "write" => lua.create_function(|lua, (this, addr): (Value, Value)| {
            let this = this_process(&this, "write", "addr")?;
            Process(this).setup(lua, "p:write()", SetupOp::Write(address("p:write()", &addr)?))
        }),
        "read" => lua.create_function(|lua, (this, addr): (Value, Value)| {
            let this = this_process(&this, "read", "addr")?;
            Process(this).setup(lua, "p:read()", SetupOp::Read(address("p:read()", &addr)?))
        }),
        "swap_out" => lua.create_function(|lua, (this, addr, device): (Value, Value, Value)| {
            let this = this_process(&this, "swap_out", "addr [, device]")?;
            let addr = address("p:swap_out()", &addr)?;
            let device = match device {
                Value::Nil => None,
                Value::Integer(n) if n >= 1 => Some(n as usize),
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "p:swap_out(): expected a swap device number (1 is the first), a positive integer; got {}",
                        shown(&other)
                    )))
                }
            };
            Process(this).setup(lua, "p:swap_out()", SetupOp::SwapOut(addr, device))
        }),
        other => unreachable!("{other} is not a process method"),
    }
}

impl UserData for Process {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("pid", |_, this| Ok(this.0 as i64 + 1));
        fields.add_field_method_get("name", |lua, this| Ok(spec(lua).borrow().processes[this.0].name.clone()));
        // The methods, each wrapped in the API's argument check by `register`.
        fields
            .add_meta_field_with(mlua::MetaMethod::Index, |lua| lua.named_registry_value::<Table>(PROCESS_METHODS_KEY));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |lua, this, ()| {
            Ok(format!("process {} ({})", this.0 + 1, spec(lua).borrow().processes[this.0].name))
        });
        methods.add_meta_method(
            mlua::MetaMethod::NewIndex,
            |_, _, (_key, _value): (Value, Value)| -> mlua::Result<()> {
                Err(read_only("process", "p.pid and p.name"))
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::lua_float;

    /// `lua_float` writes floats exactly as Lua's `tostring` does.
    #[test]
    fn floats_show_as_lua_shows_them() {
        let lua = mlua::Lua::new();
        let tostring: mlua::Function = lua.globals().get("tostring").expect("tostring exists");
        let values = [
            0.0,
            -0.0,
            2.0,
            4096.0,
            0.5,
            1.5,
            -1.0,
            0.1,
            1.0 / 3.0,
            1e14,
            1e15,
            123456789012345.0,
            1e20,
            1e-4,
            1e-5,
            2.5e-7,
            99999999999999.9,
            1e100,
            -1e-300,
            5e-324,
            f64::MAX,
            65536.0,
            0.30000000000000004,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for x in values {
            let lua_text: String = tostring.call(x).expect("tostring works");
            assert_eq!(lua_float(x), lua_text, "{x:e}");
        }
        assert_eq!(lua_float(f64::NAN), "NaN");
    }
}
