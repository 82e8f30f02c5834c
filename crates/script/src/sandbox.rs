//! The Lua sandbox that scenario files run in.
//!
//! Scenario files are shared between users, so they are untrusted code, and the simulator's
//! promise is that one seed gives one run. The sandbox built by [`new_sandbox`] guarantees:
//!
//! * **No escape.** Only the `base`, `coroutine`, `table`, `string`, `math` and `utf8` libraries
//!   are loaded (no `io`, `os`, `package`, `debug`). `dofile`, `loadfile`, `require`, `load`,
//!   `collectgarbage` and `string.dump` are removed. `load` is removed rather than restricted:
//!   scenarios have no need to compile code at run time, and a missing function is easier to
//!   reason about than a restricted one.
//! * **Determinism.** Lua 5.4 seeds its string hash per process, so the built-in `pairs` visits
//!   keys in a different order from one run to the next. `pairs` is replaced by one that visits
//!   integer keys ascending, then float keys ascending, then string keys in byte order, then
//!   `false`, `true` (other key types are an error; `__pairs` is honoured). `math.random` and
//!   `math.randomseed` draw from a ChaCha8 stream keyed by the run's seed (stream 1; the scheduler
//!   uses stream 0). `table.sort` is replaced by a stable merge sort, because Lua's quicksort
//!   picks pivots from the wall clock on large unbalanced inputs, which reorders equal elements.
//!   `tostring` (and so `print`, and `string.format("%s", t)`) shows `table: #3` instead of a
//!   memory address, numbered afresh in every run; `string.format("%p")` is refused. Nothing
//!   reads the clock. Known gap: `next` still follows the raw (hash) order.
//! * **Bounded resources.** A memory limit, and an instruction budget paid by one hook shared
//!   by every thread of the state, before the instructions run (see [`Budget`]). `pcall`,
//!   `xpcall` and `coroutine.resume` re-raise the limit error once the budget is spent, so a
//!   scenario cannot catch it and carry on. Finalizers (`__gc`), which Lua runs with hooks off,
//!   cannot be installed. The C library loops a scenario can make unbounded are written in Lua
//!   (`table.insert`, `table.remove`, `table.move`) or bounded (`string.rep`); what is left (a
//!   backtracking `string.find` pattern) is the wall-clock watchdog's ([`crate::watchdog`]).
//! * **Readable errors.** [`scenario_error`] turns any `mlua::Error` into one paragraph,
//!   `path:line: what is wrong`, without Rust or mlua internals.
//! * **Captured output.** `print` appends a line to the [`PrintLog`] instead of writing to stdout
//!   (at most [`MAX_PRINT_BYTES`] a run, control characters escaped).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use mlua::chunk::ChunkMode;
use mlua::{Error as LuaError, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Resource limits for running untrusted scenario code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Lua VM instructions, summed over every thread (coroutine) of the state. Paid for in
    /// intervals of 10,000 before they run (a program's first interval is 1,000), so a run
    /// never executes more than this.
    pub max_instructions: u64,
    /// Bytes allocated by the Lua state.
    pub max_memory_bytes: usize,
    /// Wall-clock seconds one run may take before the watchdog ends the process (exit 2).
    pub max_seconds: u64,
}

impl SandboxLimits {
    /// The limits built in: 200 M instructions, 256 MiB, 600 s.
    pub const BUILT_IN: SandboxLimits =
        SandboxLimits { max_instructions: 200_000_000, max_memory_bytes: 256 << 20, max_seconds: 600 };
    /// The largest values the command line accepts: 10^12 instructions, 64 GiB, a day.
    pub const MAX: SandboxLimits =
        SandboxLimits { max_instructions: 1_000_000_000_000, max_memory_bytes: 64 << 30, max_seconds: 86_400 };
}

static DEFAULT_LIMITS: std::sync::OnceLock<SandboxLimits> = std::sync::OnceLock::new();

/// Make `limits` the default of every sandbox this process builds (the
/// command line's `--lua-instructions`, `--lua-memory-mb` and
/// `--watchdog-seconds`, for every run of a command). Only the first call
/// counts.
pub fn set_default_limits(limits: SandboxLimits) {
    let _ = DEFAULT_LIMITS.set(limits);
}

impl Default for SandboxLimits {
    fn default() -> Self {
        DEFAULT_LIMITS.get().copied().unwrap_or(SandboxLimits::BUILT_IN)
    }
}

/// A bad scenario: where (file:line when known) and what is wrong, one paragraph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// `path:line`, or just `path` when no line is known.
    pub location: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// Output captured from the scenario's print(): lines in order.
pub type PrintLog = Rc<RefCell<Printed>>;

/// What a run printed, and its size (bounded by [`MAX_PRINT_BYTES`]).
#[derive(Clone, Debug, Default)]
pub struct Printed {
    pub lines: Vec<String>,
    bytes: usize,
}

/// The hook runs every this many instructions (per thread).
const HOOK_STRIDE: u32 = 10_000;

/// A program's first hook interval: shorter than [`HOOK_STRIDE`], since it
/// is paid for when the program starts (see [`start_program`]).
const FIRST_STRIDE: u32 = 1_000;

/// Globals a scenario might reach for that the sandbox does not provide.
const REMOVED_GLOBALS: [&str; 9] =
    ["os", "io", "package", "debug", "require", "dofile", "loadfile", "load", "collectgarbage"];

const SANDBOX_HINT: &str = " (scenarios run sandboxed: os, io, package, debug, string.dump and file/module \
     loading are not available)";

/// Chunk name of the sandbox's own Lua helpers. It starts with `[` like `[C]`, which is how
/// [`scenario_error`] recognises frames that are not the user's code.
const HELPER_CHUNK_NAME: &str = "=[sandbox]";

/// Lua helpers that are simpler (and yield-friendly) in Lua than in Rust. The chunk receives the
/// Rust `limit_check` function and returns the iterator used by the deterministic `pairs`.
const HELPERS_LUA: &str = r##"
local limit_check = ...
local rawget, type, error = rawget, type, error
local raw_pcall, raw_xpcall, raw_resume = pcall, xpcall, coroutine.resume

-- Iterator for `pairs`: the state holds the sorted keys at 1..n, the table at .t and the
-- position at .i. Keys removed during the traversal are skipped, as `next` would.
local function sorted_next(st)
  local t, i = st.t, st.i
  while true do
    i = i + 1
    local k = st[i]
    if k == nil then
      st.i = i
      return nil
    end
    local v = rawget(t, k)
    if v ~= nil then
      st.i = i
      return k, v
    end
  end
end

-- Once the instruction budget is spent, a caught error must not let the scenario continue.
local function rethrow_limit(ok, ...)
  if not ok then limit_check() end
  return ok, ...
end

pcall = function(f, ...) return rethrow_limit(raw_pcall(f, ...)) end
xpcall = function(f, msgh, ...) return rethrow_limit(raw_xpcall(f, msgh, ...)) end
coroutine.resume = function(co, ...) return rethrow_limit(raw_resume(co, ...)) end

-- A finalizer runs with the instruction hook off (Lua calls __gc outside
-- the count), also when the state closes: none may be installed. Lua marks
-- an object for finalization only in setmetatable, when the metatable
-- already has __gc, so refusing it there closes the door.
local raw_setmetatable, rawget_mt = setmetatable, rawget
setmetatable = function(t, mt)
  if type(mt) == "table" and rawget_mt(mt, "__gc") ~= nil then
    error("setmetatable: __gc finalizers are not available in scenarios (they would run outside the "
      .. "instruction limit)", 2)
  end
  return raw_setmetatable(t, mt)
end

local mtype, tointeger, tonumber, select = math.type, math.tointeger, tonumber, select
local maxinteger = math.maxinteger

-- Lua's luaL_checkinteger, with Lua's messages.
local function checkint(v, arg, fname)
  if mtype(v) == "integer" then return v end
  local n = v
  if type(v) == "string" then n = tonumber(v) end
  if type(n) ~= "number" then
    local got = v == nil and "no value" or type(v)
    error("bad argument #" .. arg .. " to '" .. fname .. "' (number expected, got " .. got .. ")", 3)
  end
  local i = tointeger(n)
  if i == nil then
    error("bad argument #" .. arg .. " to '" .. fname .. "' (number has no integer representation)", 3)
  end
  return i
end

local function checktab(t, arg, fname)
  if type(t) ~= "table" then
    local got = t == nil and "no value" or type(t)
    error("bad argument #" .. arg .. " to '" .. fname .. "' (table expected, got " .. got .. ")", 3)
  end
end

-- table.insert, table.remove and table.move loop in C over a range a
-- scenario chooses (through __len, or the arguments) without counting a
-- single instruction; written in Lua (as in ltablib.c) every step counts.
table.insert = function(t, ...)
  checktab(t, 1, "insert")
  local n = select("#", ...)
  local e = #t + 1
  if n == 1 then
    t[e] = ...
    return
  elseif n ~= 2 then
    error("wrong number of arguments to 'insert'", 2)
  end
  local pos, v = ...
  pos = checkint(pos, 2, "insert")
  if pos < 1 or pos > e then error("bad argument #2 to 'insert' (position out of bounds)", 2) end
  for i = e, pos + 1, -1 do t[i] = t[i - 1] end
  t[pos] = v
end

table.remove = function(t, ...)
  checktab(t, 1, "remove")
  local size = #t
  local pos = size
  if select("#", ...) > 0 and (...) ~= nil then
    pos = checkint((...), 2, "remove")
    if pos ~= size and (pos < 1 or pos > size + 1) then
      error("bad argument #2 to 'remove' (position out of bounds)", 2)
    end
  end
  local v = t[pos]
  while pos < size do
    t[pos] = t[pos + 1]
    pos = pos + 1
  end
  t[pos] = nil
  return v
end

table.move = function(a1, f, e, t, a2)
  f = checkint(f, 2, "move")
  e = checkint(e, 3, "move")
  t = checkint(t, 4, "move")
  checktab(a1, 1, "move")
  if a2 == nil then a2 = a1 else checktab(a2, 5, "move") end
  if e >= f then
    if not (f > 0 or e < maxinteger + f) then error("bad argument #3 to 'move' (too many elements to move)", 2) end
    local n = e - f + 1
    if t > maxinteger - n + 1 then error("bad argument #4 to 'move' (destination wrap around)", 2) end
    if t > e or t <= f or a1 ~= a2 then
      for i = 0, n - 1 do a2[t + i] = a1[f + i] end
    else
      for i = n - 1, 0, -1 do a2[t + i] = a1[f + i] end
    end
  end
  return a2
end

local function default_lt(a, b) return a < b end

-- Stable merge sort (insertion-sorted runs, then bottom-up merges). Reads and writes t[i] like
-- Lua's own sort, so __index/__newindex/__len are honoured.
table.sort = function(t, lt)
  if type(t) ~= "table" then
    error("bad argument #1 to 'sort' (table expected, got " .. type(t) .. ")", 2)
  end
  if lt == nil then
    lt = default_lt
  elseif type(lt) ~= "function" then
    error("bad argument #2 to 'sort' (function expected, got " .. type(lt) .. ")", 2)
  end
  local n = #t
  if n < 2 then return end
  local a, b = {}, {}
  for i = 1, n do a[i] = t[i] end
  local run = 8
  for lo = 1, n, run do
    local hi = lo + run - 1
    if hi > n then hi = n end
    for i = lo + 1, hi do
      local v = a[i]
      local j = i - 1
      while j >= lo and lt(v, a[j]) do
        a[j + 1] = a[j]
        j = j - 1
      end
      a[j + 1] = v
    end
  end
  local width = run
  while width < n do
    for lo = 1, n, 2 * width do
      local mid = lo + width - 1
      local hi = lo + 2 * width - 1
      if hi > n then hi = n end
      if mid >= hi then
        for i = lo, hi do b[i] = a[i] end
      else
        local i, j, k = lo, mid + 1, lo
        while i <= mid and j <= hi do
          local x, y = a[i], a[j]
          -- take from the right only when strictly smaller: equal elements keep their order
          if lt(y, x) then
            b[k] = y
            j = j + 1
          else
            b[k] = x
            i = i + 1
          end
          k = k + 1
        end
        while i <= mid do b[k] = a[i]; i = i + 1; k = k + 1 end
        while j <= hi do b[k] = a[j]; j = j + 1; k = k + 1 end
      end
    end
    a, b = b, a
    width = width * 2
  end
  for i = 1, n do t[i] = a[i] end
end

return sorted_next
"##;

/// `string.format`, made deterministic: `%s` of a table or function shows
/// it as the sandbox's `tostring` does (`table: #3`), and `%p` (an address)
/// is refused. The chunk receives the sandbox's `tostring` and Lua's
/// `string.format`.
const FORMAT_LUA: &str = r#"
local sandbox_tostring, format = ...
local type, select, error, pack, unpack, find, sub = type, select, error, table.pack, table.unpack, string.find, string.sub
local objects = { table = true, ["function"] = true, thread = true, userdata = true }
string.format = function(fmt, ...)
  if type(fmt) == "string" then
    local args, arg, i = nil, 0, 1
    while true do
      local at = find(fmt, "%", i, true)
      if not at then break end
      local c_at = find(fmt, "[%a%%]", at + 1)
      if not c_at then break end
      local c = sub(fmt, c_at, c_at)
      if c ~= "%" then
        arg = arg + 1
        if c == "p" then
          error("bad argument #" .. (arg + 1) .. " to 'format' (%p shows a memory address, which changes from "
            .. "run to run: not available in scenarios)", 2)
        elseif c == "s" then
          args = args or pack(...)
          if objects[type(args[arg])] then args[arg] = sandbox_tostring(args[arg]) end
        end
      end
      i = c_at + 1
    end
    if args then
      local s = format(fmt, unpack(args, 1, args.n))
      return s
    end
  end
  local s = format(fmt, ...)
  return s
end
"#;

/// The most a run's `print` log may hold, in bytes.
pub const MAX_PRINT_BYTES: usize = 4 << 20;

/// Build a sandboxed Lua state.
///
/// The instruction hook is installed with [`Lua::set_global_hook`], so it covers the main thread,
/// every thread made later with [`Lua::create_thread`], and every coroutine the scenario creates
/// (Lua copies the hook into new coroutines). Callers must not replace it with `set_hook`,
/// `set_global_hook` or `Thread::set_hook`, nor remove it.
pub fn new_sandbox(seed: u64, limits: SandboxLimits) -> Result<(Lua, PrintLog), ScenarioError> {
    new_reusable_sandbox(seed, limits).map(|(lua, log, _)| (lua, log))
}

/// What a sandbox reused for many runs puts back between runs: the
/// instruction budget, the `math.random` stream (seeded again), and the
/// print log.
#[derive(Clone)]
pub struct SandboxReset {
    budget: Rc<Budget>,
    rng: Rc<RefCell<ChaCha8Rng>>,
    seed: Rc<Cell<u64>>,
    log: PrintLog,
    ids: Rc<ObjectIds>,
    /// Set when the scenario draws from (or reseeds) `math.random`: what
    /// it does from then on depends on the run's seed.
    drew: Rc<Cell<bool>>,
}

impl SandboxReset {
    /// Start a new run with `seed`: everything a run can change outside its
    /// own environment goes back to where a fresh sandbox starts.
    pub fn reset(&self, lua: &Lua, seed: u64) {
        // The main thread's hook count carries over from the last run:
        // restart it, and pay for its first interval, as for a fresh state.
        set_hook_count(&lua.current_thread(), HOOK_STRIDE);
        self.budget.used.set(u64::from(HOOK_STRIDE));
        self.budget.tripped.borrow_mut().take();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        *self.rng.borrow_mut() = rng;
        self.seed.set(seed);
        let mut log = self.log.borrow_mut();
        log.lines.clear();
        log.bytes = 0;
        drop(log);
        self.ids.reset(lua);
        self.drew.set(false);
    }

    /// Empty the print log, as [`SandboxReset::reset`] does, and nothing
    /// else: for a run whose Lua steps come from the memo, which reruns
    /// the chunk (and resets first) only if it misses.
    pub fn forget_prints(&self) {
        let mut log = self.log.borrow_mut();
        log.lines.clear();
        log.bytes = 0;
    }

    /// Whether the scenario used `math.random` or `math.randomseed` since
    /// the last [`SandboxReset::reset`].
    pub fn drew(&self) -> bool {
        self.drew.get()
    }
}

impl Printed {
    /// Append a line printed earlier in the same way (the program memo
    /// hands back what a Lua step printed when it recorded it).
    pub(crate) fn push_recorded(&mut self, line: String) {
        self.bytes += line.len() + 1;
        self.lines.push(line);
    }
}

/// The instruction budget of a run. Every hook interval is paid for before
/// it runs: the main thread's first at the start of the run, a program's
/// first (a short one, [`FIRST_STRIDE`]) when it starts, every later one by
/// the hook that begins it. So no instruction runs unpaid, however many
/// programs a scenario forks.
pub struct Budget {
    used: Cell<u64>,
    max: u64,
    /// Set once the budget is spent; `limit_check` re-raises it.
    tripped: RefCell<Option<LuaError>>,
}

impl Budget {
    fn charge(&self, lua: &Lua, n: u64) -> mlua::Result<VmState> {
        let total = self.used.get().saturating_add(n);
        self.used.set(total);
        if total <= self.max {
            return Ok(VmState::Continue);
        }
        // Hook errors carry no traceback of their own; attach one so the error can name the
        // scenario line that was running.
        let traceback = lua.traceback(None, 0).map(|s| s.to_string_lossy()).unwrap_or_default();
        // mlua's error type is not Send, but its CallbackError field is an Arc all the same.
        #[allow(clippy::arc_with_non_send_sync)]
        let err = LuaError::CallbackError {
            traceback,
            cause: Arc::new(LuaError::runtime(format!(
                "instruction limit exceeded: the scenario ran more than {} \
                     Lua instructions (an endless loop? raise the limit with --lua-instructions N)",
                self.max
            ))),
        };
        self.tripped.borrow_mut().get_or_insert_with(|| err.clone());
        Err(err)
    }
}

/// Make `thread`'s next hook interval `count` instructions long.
fn set_hook_count(thread: &mlua::Thread, count: u32) {
    let state = thread.state();
    // SAFETY: `state` is a live thread of this Lua state (the Thread keeps it alive); the hook
    // and mask are the ones it has, only the count changes (which also restarts it).
    unsafe {
        let hook = mlua::ffi::lua_gethook(state);
        let mask = mlua::ffi::lua_gethookmask(state);
        if hook.is_some() && mask != 0 {
            mlua::ffi::lua_sethook(state, hook, mask, count as std::os::raw::c_int);
        }
    }
}

/// Before a program's first instruction: pay for its first hook interval
/// (a short one). Lua counts each thread's instructions on its own, so
/// without this every program could run up to one interval for free.
pub fn start_program(lua: &Lua, thread: &mlua::Thread) -> mlua::Result<()> {
    set_hook_count(thread, FIRST_STRIDE);
    charge_work(lua, u64::from(FIRST_STRIDE))
}

/// [`new_sandbox`], plus the handle that resets it between runs.
pub fn new_reusable_sandbox(seed: u64, limits: SandboxLimits) -> Result<(Lua, PrintLog, SandboxReset), ScenarioError> {
    build_sandbox(seed, limits).map_err(|err| ScenarioError {
        location: None,
        message: format!("could not set up the Lua sandbox: {}", one_paragraph(&err.to_string())),
    })
}

fn build_sandbox(seed: u64, limits: SandboxLimits) -> mlua::Result<(Lua, PrintLog, SandboxReset)> {
    let libs = StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    let globals = lua.globals();

    for name in ["dofile", "loadfile", "require", "load", "collectgarbage"] {
        globals.raw_set(name, Value::Nil)?;
    }
    let string: Table = globals.raw_get("string")?;
    string.raw_set("dump", Value::Nil)?;

    let budget = Rc::new(Budget { used: Cell::new(0), max: limits.max_instructions, tripped: RefCell::new(None) });
    lua.set_app_data(Rc::clone(&budget));

    let limit_check = {
        let budget = Rc::clone(&budget);
        lua.create_function(move |_, ()| match &*budget.tripped.borrow() {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        })?
    };
    let sorted_next: Function =
        lua.load(HELPERS_LUA).set_name(HELPER_CHUNK_NAME).set_mode(ChunkMode::Text).call(limit_check)?;
    string.raw_set("rep", make_rep(&lua, string.raw_get("rep")?, limits.max_memory_bytes)?)?;

    globals.raw_set("pairs", make_pairs(&lua, sorted_next)?)?;
    let ids = Rc::new(ObjectIds { table: RefCell::new(weak_key_table(&lua)?), last: Cell::new(0) });
    let tostring = make_tostring(&lua, globals.raw_get("tostring")?, Rc::clone(&ids))?;
    globals.raw_set("tostring", tostring.clone())?;
    lua.load(FORMAT_LUA)
        .set_name(HELPER_CHUNK_NAME)
        .set_mode(ChunkMode::Text)
        .call::<()>((tostring.clone(), string.raw_get::<Function>("format")?))?;

    let log: PrintLog = Rc::new(RefCell::new(Printed::default()));
    globals.raw_set("print", make_print(&lua, tostring, Rc::clone(&log))?)?;

    let current_seed = Rc::new(Cell::new(seed));
    let drew = Rc::new(Cell::new(false));
    let rng = install_random(&lua, Rc::clone(&current_seed), Rc::clone(&drew))?;
    install_instruction_limit(&lua, Rc::clone(&budget))?;
    budget.used.set(u64::from(HOOK_STRIDE));
    // Most of what a run allocates (its environment, closures, coroutines,
    // strings) dies with the run: the generational collector frees young
    // objects without traversing the rest (GC cost ~7% of a small run
    // under the incremental one). Collections are invisible to scenarios
    // (`collectgarbage` is removed).
    lua.gc_set_mode(mlua::state::GcMode::Generational(mlua::state::GcGenParams::default()));
    // Last, so that building the sandbox itself is never what runs out.
    lua.set_memory_limit(limits.max_memory_bytes)?;
    let reset = SandboxReset { budget, rng, seed: current_seed, log: Rc::clone(&log), ids, drew };
    Ok((lua, log, reset))
}

/// `pairs` that visits keys in a fixed order (see the module docs).
fn make_pairs(lua: &Lua, sorted_next: Function) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let arg = args.into_iter().next();
        let table = match arg {
            Some(Value::Table(t)) => t,
            Some(Value::UserData(ud)) => {
                let mm = ud.metatable().and_then(|mt| mt.get::<Value>("__pairs")).unwrap_or(Value::Nil);
                if mm.is_nil() {
                    return Err(LuaError::runtime("bad argument #1 to 'pairs' (table expected, got userdata)"));
                }
                return call_pairs_metamethod(mm, Value::UserData(ud));
            }
            other => {
                let got = other.as_ref().map_or("no value", Value::type_name);
                return Err(LuaError::runtime(format!("bad argument #1 to 'pairs' (table expected, got {got})")));
            }
        };
        if let Some(mt) = table.metatable() {
            let mm: Value = mt.raw_get("__pairs")?;
            if !mm.is_nil() {
                return call_pairs_metamethod(mm, Value::Table(table));
            }
        }
        let (state, keys) = sorted_key_state(lua, &table)?;
        // Sorting the keys is work no Lua instruction counts: charge it,
        // one instruction a key (a loop of pairs over a big table).
        charge_work(lua, keys as u64)?;
        Ok(MultiValue::from_iter([Value::Function(sorted_next.clone()), Value::Table(state), Value::Nil]))
    })
}

fn call_pairs_metamethod(mm: Value, subject: Value) -> mlua::Result<MultiValue> {
    match mm {
        Value::Function(f) => {
            let (a, b, c) = f.call::<(Value, Value, Value)>(subject)?;
            Ok(MultiValue::from_iter([a, b, c]))
        }
        other => Err(LuaError::runtime(format!(
            "pairs: the __pairs metamethod is {}, not a function",
            with_article(other.type_name())
        ))),
    }
}

/// `word` with its indefinite article, by sound: "an integer", "a number",
/// "a userdata".
pub(crate) fn with_article(word: &str) -> String {
    let article = if word.starts_with(['a', 'e', 'i', 'o']) { "an" } else { "a" };
    format!("{article} {word}")
}

/// Charge `n` instructions of work done outside the Lua VM to the budget.
fn charge_work(lua: &Lua, n: u64) -> mlua::Result<()> {
    let budget = lua.app_data_ref::<Rc<Budget>>().map(|b| Rc::clone(&b));
    match budget {
        Some(budget) => budget.charge(lua, n).map(|_| ()),
        None => Ok(()),
    }
}

/// The iteration state for `sorted_next`: keys in order at 1..n, the table at `t`, position `i`;
/// and the number of keys.
fn sorted_key_state(lua: &Lua, table: &Table) -> mlua::Result<(Table, usize)> {
    let mut ints: Vec<i64> = Vec::new();
    let mut floats: Vec<f64> = Vec::new();
    // Copied out rather than kept as `mlua::String`s: each live handle takes a slot on mlua's
    // auxiliary stack, which a huge table could exhaust.
    let mut strings: Vec<Vec<u8>> = Vec::new();
    let (mut has_false, mut has_true) = (false, false);
    table.for_each::<Value, Value>(|key, _| {
        match key {
            Value::Integer(i) => ints.push(i),
            Value::Number(f) => floats.push(f),
            Value::String(s) => strings.push(s.as_bytes().to_vec()),
            Value::Boolean(false) => has_false = true,
            Value::Boolean(true) => has_true = true,
            other => {
                return Err(LuaError::runtime(format!(
                    "pairs: keys of type {} have no deterministic order; use an array or string keys",
                    other.type_name()
                )))
            }
        }
        Ok(())
    })?;
    ints.sort_unstable();
    // Float keys are never NaN and never integral (Lua stores those as integers).
    floats.sort_unstable_by(f64::total_cmp);
    strings.sort_unstable();

    let count = ints.len() + floats.len() + strings.len() + has_false as usize + has_true as usize;
    let state = lua.create_table_with_capacity(count, 2)?;
    let mut next = 1usize;
    let mut push = |key: Value| -> mlua::Result<()> {
        state.raw_set(next, key)?;
        next += 1;
        Ok(())
    };
    for i in ints {
        push(Value::Integer(i))?;
    }
    for f in floats {
        push(Value::Number(f))?;
    }
    for s in strings {
        push(Value::String(lua.create_string(s)?))?;
    }
    if has_false {
        push(Value::Boolean(false))?;
    }
    if has_true {
        push(Value::Boolean(true))?;
    }
    state.raw_set("t", table.clone())?;
    state.raw_set("i", 0)?;
    Ok((state, count))
}

/// `tostring` that names objects `table: #3` (numbered in order of first display) instead of by
/// memory address, which changes from run to run. `__tostring` and `__name` are still honoured.
fn make_tostring(lua: &Lua, raw_tostring: Function, numbering: Rc<ObjectIds>) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let subject = args.front().cloned().unwrap_or(Value::Nil);
        let text: Value = raw_tostring.call(args)?;
        let is_object = matches!(
            subject,
            Value::Table(_) | Value::Function(_) | Value::Thread(_) | Value::UserData(_) | Value::LightUserData(_)
        );
        let Value::String(s) = &text else {
            return Ok(text);
        };
        if !is_object {
            return Ok(text);
        }
        let addr = subject.to_pointer() as usize;
        let bytes = s.as_bytes();
        // glibc/macOS print "%p" as 0x..., MSVC as 16 upper-case hex digits.
        for suffix in [format!(": {addr:#x}"), format!(": {addr:016X}")] {
            if let Some(prefix) = bytes.strip_suffix(suffix.as_bytes()) {
                let ids = numbering.table.borrow().clone();
                let last_id = &numbering.last;
                let id = match ids.raw_get::<Option<i64>>(subject.clone())? {
                    Some(id) => id,
                    None => {
                        last_id.set(last_id.get() + 1);
                        ids.raw_set(subject.clone(), last_id.get())?;
                        last_id.get()
                    }
                };
                let mut out = prefix.to_vec();
                out.extend_from_slice(format!(": #{id}").as_bytes());
                return Ok(Value::String(lua.create_string(out)?));
            }
        }
        Ok(text)
    })
}

/// The numbers `tostring` gives objects: every run starts again from 1.
struct ObjectIds {
    /// Object -> number, weak in its keys.
    table: RefCell<Table>,
    last: Cell<i64>,
}

impl ObjectIds {
    fn reset(&self, lua: &Lua) {
        if self.last.get() == 0 {
            return;
        }
        self.last.set(0);
        if let Ok(table) = weak_key_table(lua) {
            *self.table.borrow_mut() = table;
        }
    }
}

fn weak_key_table(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let weak_keys = lua.create_table()?;
    weak_keys.raw_set("__mode", "k")?;
    table.set_metatable(Some(weak_keys))?;
    Ok(table)
}

/// `string.rep` that refuses a result larger than the sandbox's memory,
/// and makes an empty result at once: Lua's loops `n` times even when
/// each piece is empty (`string.rep("", 1 << 62)`), uncounted.
fn make_rep(lua: &Lua, raw_rep: Function, max_bytes: usize) -> mlua::Result<Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let piece = |i: usize, what: &str| -> mlua::Result<usize> {
            match args.get(i) {
                None | Some(Value::Nil) if i == 2 => Ok(0),
                Some(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => {
                    Ok(lua.coerce_string(v.clone())?.map_or(0, |s| s.as_bytes().len()))
                }
                other => Err(LuaError::runtime(format!(
                    "bad argument #{} to 'rep' ({what} expected, got {})",
                    i + 1,
                    other.map_or("no value", Value::type_name)
                ))),
            }
        };
        let len = piece(0, "string")?;
        let n = check_integer(args.get(1).unwrap_or(&Value::Nil), 2, "rep")?;
        let sep = piece(2, "string")?;
        if n <= 0 {
            return Ok(Value::String(lua.create_string("")?));
        }
        let total = (len as u128) * (n as u128) + (sep as u128) * (n as u128 - 1);
        if total == 0 {
            return Ok(Value::String(lua.create_string("")?));
        }
        if total > max_bytes as u128 {
            return Err(LuaError::runtime(format!(
                "string.rep: the result would be {total} bytes, more than the sandbox's memory limit \
                 ({max_bytes} bytes; --lua-memory-mb N)"
            )));
        }
        // Copying the result is work no instruction counts: one a 64 bytes.
        charge_work(lua, (total / 64) as u64)?;
        raw_rep.call::<Value>(args)
    })
}

/// `print` that appends one tab-separated line to the log.
fn make_print(lua: &Lua, tostring: Function, log: PrintLog) -> mlua::Result<Function> {
    lua.create_function(move |_, args: MultiValue| {
        let mut line = String::new();
        for (i, arg) in args.into_iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            match tostring.call::<Value>(arg)? {
                Value::String(s) => line.push_str(&s.to_string_lossy()),
                _ => return Err(LuaError::runtime("'__tostring' must return a string")),
            }
        }
        let line = escape_controls(&line).into_owned();
        let mut log = log.borrow_mut();
        log.bytes += line.len() + 1;
        if log.bytes > MAX_PRINT_BYTES {
            return Err(LuaError::runtime(format!(
                "print: the scenario printed more than {MAX_PRINT_BYTES} bytes in one run (the limit of the \
                 print log)"
            )));
        }
        log.lines.push(line);
        Ok(())
    })
}

/// `math.random` / `math.randomseed` on ChaCha8 stream 1 of the seed.
fn install_random(
    lua: &Lua,
    current_seed: Rc<Cell<u64>>,
    drew: Rc<Cell<bool>>,
) -> mlua::Result<Rc<RefCell<ChaCha8Rng>>> {
    let seed = current_seed.get();
    fn stream(seed: [u8; 32]) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(1);
        rng
    }
    fn stream_from_u64(seed: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1);
        rng
    }

    let rng = Rc::new(RefCell::new(stream_from_u64(seed)));
    let math: Table = lua.globals().raw_get("math")?;

    let random = {
        let (rng, drew) = (Rc::clone(&rng), Rc::clone(&drew));
        lua.create_function(move |_, args: MultiValue| {
            drew.set(true);
            let rv = rng.borrow_mut().next_u64();
            let (low, up) = match args.len() {
                // Same float construction as Lua 5.4: the top 53 bits, scaled into [0, 1).
                0 => return Ok(Value::Number((rv >> 11) as f64 * (0.5f64).powi(53))),
                1 => {
                    let up = check_integer(&args[0], 1, "random")?;
                    if up == 0 {
                        return Ok(Value::Integer(rv as i64));
                    }
                    (1, up)
                }
                2 => (check_integer(&args[0], 1, "random")?, check_integer(&args[1], 2, "random")?),
                _ => return Err(LuaError::runtime("wrong number of arguments to 'random'")),
            };
            if low > up {
                return Err(LuaError::runtime("bad argument #1 to 'random' (interval is empty)"));
            }
            let span = (up as u64).wrapping_sub(low as u64);
            let offset = project(rv, span, || rng.borrow_mut().next_u64());
            Ok(Value::Integer(offset.wrapping_add(low as u64) as i64))
        })?
    };

    let reseed = Rc::clone(&rng);
    let run_seed = Rc::clone(&current_seed);
    let randomseed = lua.create_function(move |_, args: MultiValue| {
        drew.set(true);
        let (n1, n2) = match args.len() {
            // Lua would pick a random seed here; the sandbox goes back to the run's seed.
            0 => (run_seed.get() as i64, 0),
            1 => (check_integer(&args[0], 1, "randomseed")?, 0),
            _ => (check_integer(&args[0], 1, "randomseed")?, check_integer(&args[1], 2, "randomseed")?),
        };
        *reseed.borrow_mut() = if n2 == 0 {
            // randomseed(seed) restarts exactly the stream the run began with.
            stream_from_u64(n1 as u64)
        } else {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&n1.to_le_bytes());
            key[8..16].copy_from_slice(&n2.to_le_bytes());
            stream(key)
        };
        Ok((n1, n2))
    })?;

    math.raw_set("random", random)?;
    math.raw_set("randomseed", randomseed)?;
    Ok(rng)
}

/// Lua 5.4's `project`: an unbiased value in `[0, n]` from random 64-bit draws.
fn project(mut ran: u64, n: u64, mut next: impl FnMut() -> u64) -> u64 {
    if n & n.wrapping_add(1) == 0 {
        return ran & n; // n + 1 is a power of two
    }
    let mut lim = n;
    lim |= lim >> 1;
    lim |= lim >> 2;
    lim |= lim >> 4;
    lim |= lim >> 8;
    lim |= lim >> 16;
    lim |= lim >> 32;
    loop {
        ran &= lim;
        if ran <= n {
            return ran;
        }
        ran = next();
    }
}

/// Lua's `luaL_checkinteger`, with Lua's error messages.
fn check_integer(value: &Value, arg: usize, func: &str) -> mlua::Result<i64> {
    let float_to_int = |f: f64| {
        // i64::MIN is -2^63, exact as a float; every integral float in [-2^63, 2^63) fits.
        let bound = -(i64::MIN as f64);
        (f.fract() == 0.0 && (-bound..bound).contains(&f)).then_some(f as i64)
    };
    let no_int =
        || LuaError::runtime(format!("bad argument #{arg} to '{func}' (number has no integer representation)"));
    match value {
        Value::Integer(i) => Ok(*i),
        Value::Number(f) => float_to_int(*f).ok_or_else(no_int),
        Value::String(s) => {
            let text = s.to_string_lossy();
            let text = text.trim();
            if let Ok(i) = text.parse::<i64>() {
                Ok(i)
            } else if let Ok(f) = text.parse::<f64>() {
                float_to_int(f).ok_or_else(no_int)
            } else {
                Err(LuaError::runtime(format!("bad argument #{arg} to '{func}' (number expected, got string)")))
            }
        }
        other => Err(LuaError::runtime(format!(
            "bad argument #{arg} to '{func}' (number expected, got {})",
            other.type_name()
        ))),
    }
}

/// One global hook, so every thread shares the same budget (see [`new_sandbox`]). Each trip
/// pays for the next interval before it runs (a full one, also after a program's short first).
fn install_instruction_limit(lua: &Lua, budget: Rc<Budget>) -> mlua::Result<()> {
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_STRIDE), move |lua, _debug| {
        set_hook_count(&lua.current_thread(), HOOK_STRIDE);
        budget.charge(lua, u64::from(HOOK_STRIDE))
    })
}

/// Control characters (an escape sequence would reach the user's
/// terminal) written as escapes: `\n`, `\x1b`, `\u{9b}`. Tabs stay.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Run a chunk of scenario source; `path` is how errors name the file (e.g. "scenarios/race1_fork.lua").
pub fn exec_source(lua: &Lua, path: &str, source: &str) -> Result<(), ScenarioError> {
    let chunk = lua
        .load(source)
        .set_name(format!("@{path}"))
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(|err| compile_error(lua, &err, path, source, ""))?;
    chunk.call::<()>(()).map_err(|err| scenario_error(&err, path))
}

/// A compile error as a [`ScenarioError`]. Lua's parser reports nesting
/// too deep for its C stack without a line: find the line as the first
/// whose prefix of the file already overflows (a binary search of a few
/// compilations).
fn compile_error(lua: &Lua, err: &LuaError, path: &str, source: &str, prefix: &str) -> ScenarioError {
    let mut error = scenario_error(err, path);
    if !error.message.contains("C stack overflow") {
        return error;
    }
    let overflows = |lines: usize| {
        let text: String = source.split_inclusive('\n').take(lines).collect();
        let compiled = lua.load(format!("{prefix}{text}")).set_mode(ChunkMode::Text).into_function();
        matches!(compiled, Err(e) if e.to_string().contains("C stack overflow"))
    };
    let (mut lo, mut hi) = (1, source.split_inclusive('\n').count().max(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if overflows(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    error.location = Some(format!("{path}:{lo}"));
    error.message = format!(
        "syntax error: the code nests too deeply here (brackets, tables, blocks or expressions more than \
         about {} levels deep)",
        200
    );
    error
}

/// Compile `source` (text only, never bytecode) into a function named after
/// `path`, for [`crate::run::Runner`] to run many times. The function takes
/// the run's environment as its argument: `local _ENV = ...;` is put in
/// front of the source on its first line (so line numbers do not move), and
/// every function the chunk creates closes over that run's `_ENV`.
pub fn compile_source(lua: &Lua, path: &str, source: &str) -> Result<mlua::Function, ScenarioError> {
    let prefix = "local _ENV = ...; ";
    lua.load(format!("{prefix}{source}"))
        .set_name(format!("@{path}"))
        .set_mode(ChunkMode::Text)
        .into_function()
        .map_err(|err| compile_error(lua, &err, path, source, prefix))
}

/// Turn any mlua::Error raised while running scenario code (at load time, or later inside a function
/// the scenario defined and Rust called, including inside a coroutine) into a ScenarioError.
pub fn scenario_error(err: &LuaError, path: &str) -> ScenarioError {
    // Peel the wrappers mlua adds around errors raised in Rust callbacks. Each CallbackError
    // carries the Lua stack at the point it was raised; the innermost one is the most precise.
    let mut tracebacks: Vec<&str> = Vec::new();
    let mut contexts: Vec<&str> = Vec::new();
    let mut root = err;
    loop {
        match root {
            LuaError::CallbackError { traceback, cause } => {
                tracebacks.push(traceback);
                root = cause;
            }
            LuaError::WithContext { context, cause } => {
                contexts.push(context);
                root = cause;
            }
            _ => break,
        }
    }
    tracebacks.reverse();

    // Lua-side errors arrive as text, often with a traceback appended by mlua's message handler.
    let text = match root {
        LuaError::SyntaxError { message, .. } => message.clone(),
        LuaError::RuntimeError(message) => message.clone(),
        LuaError::MemoryError(_) => {
            "out of memory: the scenario used more memory than the sandbox allows (raise the limit with \
             --lua-memory-mb N)"
                .to_string()
        }
        LuaError::ExternalError(e) => e.to_string(),
        other => argument_error_text(other, &tracebacks),
    };
    let (head, own_traceback) = match text.find("stack traceback:") {
        Some(at) => (&text[..at], &text[at..]),
        None => (text.as_str(), ""),
    };

    // Strip every leading `file:line:`; coroutine.wrap adds one per level it crosses, and the
    // last one is where the error happened.
    let mut rest = head.trim_start();
    let mut raised_at: Option<(&str, u64)> = None;
    while let Some((file, line, after)) = split_location(rest, path) {
        raised_at = Some((file, line));
        rest = after;
    }
    let mut message = escape_controls(&one_paragraph(rest)).into_owned();
    if raised_at.is_none() && !matches!(root, LuaError::SyntaxError { .. }) {
        if let Some(described) = describe_error_object(&message) {
            message = described;
        }
    }
    if matches!(root, LuaError::SyntaxError { .. }) {
        message = format!("syntax error: {message}");
    }
    if mentions_removed_global(&message) {
        message.push_str(SANDBOX_HINT);
    }
    if message.contains("stack overflow") && !message.contains("recursion") {
        message.push_str(" (an endless recursion?)");
    }
    for context in contexts.iter().rev() {
        message = format!("{}: {message}", one_paragraph(context));
    }

    let frames: Vec<(&str, u64)> =
        std::iter::once(own_traceback).chain(tracebacks.iter().copied()).flat_map(traceback_frames).collect();
    let location = match raised_at {
        Some((file, line)) if !is_internal_chunk(file) => format_location(file, line, path),
        _ => frames
            .iter()
            .find(|(file, _)| same_file(file, path))
            .or_else(|| frames.iter().find(|(file, _)| !is_internal_chunk(file)))
            .map(|&(file, line)| format_location(file, line, path))
            .unwrap_or_else(|| path.to_string()),
    };
    ScenarioError { location: (!location.is_empty()).then_some(location), message }
}

/// Text for mlua's own errors, mainly argument conversion failures in Rust functions.
fn argument_error_text(err: &LuaError, tracebacks: &[&str]) -> String {
    match err {
        LuaError::BadArgument { to, pos, name, cause, .. } => {
            // mlua rarely knows the function's name; Lua's traceback does ("in function 'f'").
            let func = to.clone().or_else(|| tracebacks.first().and_then(|tb| called_function_name(tb)));
            let mut text = match name {
                Some(name) => format!("bad argument '{name}'"),
                None => format!("bad argument #{pos}"),
            };
            if let Some(func) = func {
                text.push_str(&format!(" to '{func}'"));
            }
            let cause = match cause.as_ref() {
                LuaError::CallbackError { cause, .. } => cause.as_ref(),
                other => other,
            };
            format!("{text} ({})", argument_error_text(cause, &[]))
        }
        LuaError::FromLuaConversionError { from, to, message } => {
            let mut text = format!("{} expected, got {from}", lua_type_for_rust(to));
            // mlua's own detail ("expected number or string coercible to number") says the
            // same thing again; a detail from a custom FromLua impl is worth keeping.
            if let Some(detail) = message.as_deref().filter(|m| !m.starts_with("expected ")) {
                text.push_str(&format!(": {detail}"));
            }
            text
        }
        LuaError::RuntimeError(message) | LuaError::MemoryError(message) => message.clone(),
        other => other.to_string(),
    }
}

/// Lua's name for the Rust type an argument failed to convert to.
fn lua_type_for_rust(rust: &str) -> &str {
    match rust {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "integer",
        "f32" | "f64" => "number",
        "String" | "str" | "&str" | "BorrowedStr" | "CString" | "OsString" | "PathBuf" => "string",
        "bool" => "boolean",
        other if other.ends_with("Table") => "table",
        other if other.ends_with("Function") => "function",
        other => other,
    }
}

/// From a traceback whose innermost frame is a C/Rust function, that function's name.
fn called_function_name(traceback: &str) -> Option<String> {
    let first =
        traceback.lines().map(str::trim).find(|line| !line.is_empty() && !line.starts_with("stack traceback:"))?;
    let after = first.strip_prefix("[C]: in ")?;
    let start = after.find('\'')?;
    let end = after.rfind('\'')?;
    (end > start + 1).then(|| after[start + 1..end].to_string())
}

/// Splits `file:line: rest` off the front of `text`. Only names that look like a chunk name are
/// accepted, so that a message such as "expected 2: got 3" is not mistaken for a location.
fn split_location<'a>(text: &'a str, path: &str) -> Option<(&'a str, u64, &'a str)> {
    for (colon, _) in text.match_indices(':') {
        let file = &text[..colon];
        if file.contains('\n') {
            return None;
        }
        let after = &text[colon + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || !after[digits..].starts_with(':') {
            continue;
        }
        let plausible = same_file(file, path)
            || (file.starts_with('[') && file.ends_with(']'))
            || (!file.is_empty() && !file.contains(char::is_whitespace));
        if !plausible {
            return None;
        }
        let line = after[..digits].parse().ok()?;
        return Some((file, line, after[digits + 1..].trim_start()));
    }
    None
}

/// The `file:line` frames of a Lua traceback, innermost first.
fn traceback_frames(traceback: &str) -> impl Iterator<Item = (&str, u64)> {
    traceback.lines().filter_map(|line| {
        let line = line.trim_start();
        let (file, number, _) = split_location(line, "").or_else(|| split_location_any(line))?;
        Some((file, number))
    })
}

/// Like [`split_location`] but trusting the format (traceback lines are always `file:line: in`).
fn split_location_any(line: &str) -> Option<(&str, u64, &str)> {
    let rest_at = line.find(": in ")?;
    let (file_line, rest) = line.split_at(rest_at);
    let colon = file_line.rfind(':')?;
    let number = file_line[colon + 1..].parse().ok()?;
    Some((&file_line[..colon], number, rest))
}

/// `[C]`, `[string "..."]`, `[sandbox]`: frames that are not a scenario file.
fn is_internal_chunk(file: &str) -> bool {
    file.is_empty() || file.starts_with('[') || file == "?"
}

/// Lua shortens long chunk names to `...tail`; match those against the full path.
fn same_file(file: &str, path: &str) -> bool {
    !path.is_empty()
        && (file == path || file.strip_prefix("...").is_some_and(|tail| !tail.is_empty() && path.ends_with(tail)))
}

fn format_location(file: &str, line: u64, path: &str) -> String {
    if same_file(file, path) {
        format!("{path}:{line}")
    } else {
        format!("{file}:{line}")
    }
}

/// `error({})`, `error(42)` and friends reach us as Lua's default rendering of the value.
fn describe_error_object(message: &str) -> Option<String> {
    let advice = "pass a message string to error()";
    if message == "nil" {
        return Some("error object is a nil value (error() was called without a message)".into());
    }
    if message == "true" || message == "false" {
        return Some(format!("error object is a boolean value ({message}); {advice}"));
    }
    if message.parse::<f64>().is_ok() {
        return Some(format!("error object is a number value ({message}); {advice}"));
    }
    let (kind, address) = message.rsplit_once(": ")?;
    let address = address.strip_prefix("0x").unwrap_or(address);
    let is_address = !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit());
    let is_object = ["table", "function", "userdata", "thread"].contains(&kind);
    if is_address && is_object {
        return Some(format!("error object is a {kind} value, not a string; {advice}"));
    }
    // An object whose metatable has __name shows as `NAME: ADDRESS`; the
    // address must not reach the output.
    (is_address && address.len() >= 8)
        .then(|| format!("error object is a value named \"{kind}\" (its __name), not a string; {advice}"))
}

fn mentions_removed_global(message: &str) -> bool {
    // string.dump (bytecode) is gone too: `string.dump` and `("x"):dump()`.
    let dump = ["field", "method"].iter().any(|kind| message.contains(&format!("({kind} 'dump')")));
    dump || REMOVED_GLOBALS.iter().any(|name| {
        ["global", "field", "local", "upvalue", "method"]
            .iter()
            .any(|kind| message.contains(&format!("({kind} '{name}')")))
    })
}

/// Collapses lines and indentation into one paragraph.
fn one_paragraph(text: &str) -> String {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> (Lua, PrintLog) {
        new_sandbox(7, SandboxLimits::default()).expect("sandbox")
    }

    /// Runs `source` as `test.lua` and returns the error it must raise.
    fn run_err(lua: &Lua, source: &str) -> ScenarioError {
        exec_source(lua, "test.lua", source).expect_err("the chunk should fail")
    }

    fn small_budget() -> SandboxLimits {
        SandboxLimits { max_instructions: 2_000_000, ..SandboxLimits::default() }
    }

    fn assert_instruction_limit(err: &ScenarioError, line: u32) {
        assert!(err.message.contains("instruction limit exceeded"), "unexpected message: {err}");
        assert_eq!(err.location.as_deref(), Some(&*format!("test.lua:{line}")), "{err}");
    }

    #[test]
    fn removed_globals_are_nil() {
        let (lua, _) = sandbox();
        for name in REMOVED_GLOBALS {
            let value: Value = lua.globals().get(name).unwrap();
            assert!(value.is_nil(), "{name} should be nil, is {value:?}");
        }
        let dump: Value = lua.load("return string.dump").eval().unwrap();
        assert!(dump.is_nil());
        // coroutine stays: the scenario API relies on it.
        let kind: String = lua.load("return type(coroutine.yield)").eval().unwrap();
        assert_eq!(kind, "function");
    }

    #[test]
    fn os_execute_names_line_and_explains_sandbox() {
        let (lua, _) = sandbox();
        let err = run_err(&lua, "local a = 1\nlocal b = 2\nos.execute(\"ls\")\n");
        assert_eq!(err.location.as_deref(), Some("test.lua:3"));
        assert_eq!(err.message, format!("attempt to index a nil value (global 'os'){SANDBOX_HINT}"));
        assert_eq!(err.to_string(), format!("test.lua:3: attempt to index a nil value (global 'os'){SANDBOX_HINT}"));

        let err = run_err(&lua, "\nlocal m = require('socket')\n");
        assert_eq!(err.location.as_deref(), Some("test.lua:2"));
        assert!(err.message.ends_with(SANDBOX_HINT), "{err}");
        assert!(err.message.contains("(global 'require')"), "{err}");
    }

    #[test]
    fn unknown_function_keeps_lua_message_without_hint() {
        let (lua, _) = sandbox();
        let err = run_err(&lua, "frok()");
        assert_eq!(err.to_string(), "test.lua:1: attempt to call a nil value (global 'frok')");
    }

    #[test]
    fn syntax_error_has_location_and_message() {
        let (lua, _) = sandbox();
        let err = run_err(&lua, "local x = 1\nlocal y = = 2\n");
        assert_eq!(err.location.as_deref(), Some("test.lua:2"));
        assert_eq!(err.message, "syntax error: unexpected symbol near '='");

        let err = run_err(&lua, "function f()\n  return 1");
        assert_eq!(err.location.as_deref(), Some("test.lua:2"));
        assert_eq!(err.message, "syntax error: 'end' expected (to close 'function' at line 1) near <eof>");
    }

    #[test]
    fn runtime_error_in_function_called_later_from_rust() {
        let (lua, _) = sandbox();
        exec_source(&lua, "test.lua", "function f()\n  local t = nil\n  return t.field\nend\n").unwrap();
        let f: Function = lua.globals().get("f").unwrap();
        let err = scenario_error(&f.call::<()>(()).unwrap_err(), "test.lua");
        assert_eq!(err.to_string(), "test.lua:3: attempt to index a nil value (local 't')");
    }

    #[test]
    fn error_from_rust_callback_names_scenario_line() {
        let (lua, _) = sandbox();
        let check = lua
            .create_function(|_, ()| -> mlua::Result<()> { Err(LuaError::runtime("bad argument: expected integer")) })
            .unwrap();
        lua.globals().set("check", check).unwrap();
        let err = run_err(&lua, "local a = 1\nlocal b = 2\ncheck()\n");
        assert_eq!(err.to_string(), "test.lua:3: bad argument: expected integer");

        // The same error raised while Rust calls a scenario function.
        exec_source(&lua, "test.lua", "function later()\n  check()\nend\n").unwrap();
        let later: Function = lua.globals().get("later").unwrap();
        let err = scenario_error(&later.call::<()>(()).unwrap_err(), "test.lua");
        assert_eq!(err.to_string(), "test.lua:2: bad argument: expected integer");
    }

    #[test]
    fn external_error_from_rust_callback() {
        let (lua, _) = sandbox();
        let open = lua
            .create_function(|_, ()| -> mlua::Result<()> {
                Err(LuaError::external(std::io::Error::other("disk on fire")))
            })
            .unwrap();
        lua.globals().set("open", open).unwrap();
        let err = run_err(&lua, "\n\nopen()\n");
        assert_eq!(err.to_string(), "test.lua:3: disk on fire");
    }

    #[test]
    fn wrong_argument_type_to_rust_function_is_readable() {
        let (lua, _) = sandbox();
        let add = lua.create_function(|_, n: i64| Ok(n + 1)).unwrap();
        lua.globals().set("add_one", add).unwrap();
        let err = run_err(&lua, "local x = 1\nadd_one(\"many\")\n");
        assert_eq!(err.location.as_deref(), Some("test.lua:2"));
        assert_eq!(err.message, "bad argument #1 to 'add_one' (integer expected, got string)");
        let text = err.to_string();
        for internal in ["callback error", "runtime error", "stack traceback", "i64", "\n"] {
            assert!(!text.contains(internal), "{internal:?} in {text:?}");
        }
    }

    #[test]
    fn error_with_level_two_is_split_not_repeated() {
        let (lua, _) = sandbox();
        let err =
            run_err(&lua, "local function need(x)\n  if not x then error(\"need a value\", 2) end\nend\n\nneed(nil)\n");
        assert_eq!(err.location.as_deref(), Some("test.lua:5"));
        assert_eq!(err.message, "need a value");

        // Level 0: no position in the message; the traceback supplies it.
        let err = run_err(&lua, "\nerror(\"plain\", 0)\n");
        assert_eq!(err.to_string(), "test.lua:2: plain");
    }

    #[test]
    fn non_string_error_objects_are_described() {
        let (lua, _) = sandbox();
        let err = run_err(&lua, "local x = 1\nerror({})\n");
        assert_eq!(err.location.as_deref(), Some("test.lua:2"));
        assert!(err.message.starts_with("error object is a table value"), "{err}");
        assert!(!err.message.contains("0x"), "{err}");

        let err = run_err(&lua, "error(42)");
        assert_eq!(err.location.as_deref(), Some("test.lua:1"));
        assert!(err.message.starts_with("error object is a number value (42)"), "{err}");

        let err = run_err(&lua, "error()");
        assert!(err.message.starts_with("error object is a nil value"), "{err}");

        // __tostring is how a scenario chooses its own message.
        let err = run_err(&lua, "error(setmetatable({}, {__tostring = function() return 'custom' end}))");
        assert_eq!(err.to_string(), "test.lua:1: custom");
    }

    #[test]
    fn errors_inside_coroutines() {
        let (lua, _) = sandbox();
        // coroutine.wrap prefixes its own position; the innermost one wins.
        let err = run_err(&lua, "local f = coroutine.wrap(function()\n  error('boom')\nend)\nf()\n");
        assert_eq!(err.to_string(), "test.lua:2: boom");

        // A thread created and resumed from Rust, failing in a Rust callback after a yield.
        let fail =
            lua.create_function(|_, ()| -> mlua::Result<()> { Err(LuaError::runtime("no such process")) }).unwrap();
        lua.globals().set("fail", fail).unwrap();
        exec_source(
            &lua,
            "test.lua",
            "function body()\n  coroutine.yield()\n  fail()\nend\nfunction body2()\n  local n = nil + 1\nend\n",
        )
        .unwrap();
        let thread = lua.create_thread(lua.globals().get::<Function>("body").unwrap()).unwrap();
        thread.resume::<()>(()).unwrap();
        let err = scenario_error(&thread.resume::<()>(()).unwrap_err(), "test.lua");
        assert_eq!(err.to_string(), "test.lua:3: no such process");

        let thread = lua.create_thread(lua.globals().get::<Function>("body2").unwrap()).unwrap();
        let err = scenario_error(&thread.resume::<()>(()).unwrap_err(), "test.lua");
        assert_eq!(err.to_string(), "test.lua:6: attempt to perform arithmetic on a nil value");
    }

    #[test]
    fn long_paths_are_reported_in_full() {
        let (lua, _) = sandbox();
        let path = "scenarios/a/very/long/directory/name/that/lua/will/shorten/race1_fork.lua";
        let err = exec_source(&lua, path, "\nlocal x = nil + 1\n").unwrap_err();
        assert_eq!(err.location.as_deref(), Some(&*format!("{path}:2")));
        let check = lua.create_function(|_, ()| -> mlua::Result<()> { Err(LuaError::runtime("nope")) }).unwrap();
        lua.globals().set("check", check).unwrap();
        let err = exec_source(&lua, path, "\n\ncheck()\n").unwrap_err();
        assert_eq!(err.to_string(), format!("{path}:3: nope"));
    }

    #[test]
    fn pairs_visits_keys_in_sorted_order() {
        let (lua, _) = sandbox();
        let orders = ["b a d c", "d c b a", "a b c d", "c a d b"];
        for order in orders {
            let keys: Vec<String> = lua
                .load(format!(
                    "local t = {{}}\n\
                     for name in ('{order} zeta alpha'):gmatch('%S+') do t[name] = true end\n\
                     local out = {{}}\n\
                     for k in pairs(t) do out[#out + 1] = k end\n\
                     return out"
                ))
                .eval()
                .unwrap();
            assert_eq!(keys, ["a", "alpha", "b", "c", "d", "zeta"], "order {order}");
        }

        let keys: String = lua
            .load(
                "local t = {x = 1, [3] = 1, [true] = 1, [-2] = 1, [1.5] = 1, B = 1, [false] = 1, \
                 [10] = 1, [0.25] = 1, a = 1}\n\
                 local out = {}\n\
                 for k, v in pairs(t) do out[#out + 1] = tostring(k) end\n\
                 return table.concat(out, ' ')",
            )
            .eval()
            .unwrap();
        assert_eq!(keys, "-2 3 10 0.25 1.5 B a x false true");
    }

    #[test]
    fn pairs_details() {
        let (lua, _) = sandbox();
        let out: String = lua
            .load(
                r#"
                local out = {}
                -- values come with their keys; removing keys while iterating is allowed
                local t = {c = 3, a = 1, b = 2}
                for k, v in pairs(t) do
                  out[#out + 1] = k .. "=" .. v
                  t.b = nil
                end
                -- __pairs is honoured
                local p = setmetatable({}, {__pairs = function(self)
                  return function(_, k) if not k then return "only", 1 end end, self, nil
                end})
                for k, v in pairs(p) do out[#out + 1] = k .. "=" .. v end
                -- inside a coroutine, yielding from the loop body
                local co = coroutine.wrap(function()
                  for k in pairs({y = 1, x = 2}) do coroutine.yield(k) end
                end)
                out[#out + 1] = co() .. co()
                return table.concat(out, " ")
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(out, "a=1 c=3 only=1 xy");
    }

    #[test]
    fn pairs_rejects_keys_without_an_order() {
        let (lua, _) = sandbox();
        let err = run_err(&lua, "local t = {}\nt[{}] = 1\nfor k, v in pairs(t) do end\n");
        assert_eq!(
            err.to_string(),
            "test.lua:3: pairs: keys of type table have no deterministic order; use an array or string keys"
        );
        let err = run_err(&lua, "local t = {[print] = 1}\nfor k in pairs(t) do end");
        assert!(err.message.contains("keys of type function"), "{err}");
        let err = run_err(&lua, "for k in pairs(nil) do end");
        assert_eq!(err.to_string(), "test.lua:1: bad argument #1 to 'pairs' (table expected, got nil)");
    }

    #[test]
    fn math_random_is_seeded_and_in_range() {
        let draw = |seed: u64| -> Vec<i64> {
            let (lua, _) = new_sandbox(seed, SandboxLimits::default()).unwrap();
            lua.load("local t = {} for i = 1, 20 do t[i] = math.random(1000000) end return t").eval().unwrap()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));

        // Stream 1 of the seed, not the scheduler's stream 0.
        let (lua, _) = new_sandbox(99, SandboxLimits::default()).unwrap();
        let first: i64 = lua.load("return math.random(0)").eval().unwrap();
        let mut stream1 = ChaCha8Rng::seed_from_u64(99);
        stream1.set_stream(1);
        assert_eq!(first, stream1.next_u64() as i64);

        let ok: bool = lua
            .load(
                r#"
                for i = 1, 2000 do
                  local f = math.random()
                  assert(math.type(f) == "float" and f >= 0 and f < 1)
                  local a = math.random(6)
                  assert(math.type(a) == "integer" and a >= 1 and a <= 6)
                  local b = math.random(-3, 3)
                  assert(b >= -3 and b <= 3)
                  assert(math.random(5, 5) == 5)
                  assert(math.random(3.0) <= 3)
                end
                local big = math.random(math.mininteger, math.maxinteger)
                assert(math.type(big) == "integer")
                -- randomseed(x) restarts a fixed stream; randomseed() returns to the run's seed
                math.randomseed(42)
                local x1, x2 = math.random(100), math.random(100)
                math.randomseed(42)
                assert(math.random(100) == x1 and math.random(100) == x2)
                return true
                "#,
            )
            .eval()
            .unwrap();
        assert!(ok);
        let (fresh, _) = new_sandbox(99, SandboxLimits::default()).unwrap();
        let a: Vec<i64> = fresh.load("return {math.random(9), math.random(9)}").eval().unwrap();
        let b: Vec<i64> = lua.load("math.randomseed() return {math.random(9), math.random(9)}").eval().unwrap();
        assert_eq!(a, b);

        let err = run_err(&lua, "\nlocal n = math.random(5, 1)\n");
        assert_eq!(err.to_string(), "test.lua:2: bad argument #1 to 'random' (interval is empty)");
        let err = run_err(&lua, "math.random(1.5)");
        assert_eq!(err.to_string(), "test.lua:1: bad argument #1 to 'random' (number has no integer representation)");
    }

    #[test]
    fn print_is_captured() {
        let (lua, log) = sandbox();
        exec_source(
            &lua,
            "test.lua",
            r#"
            print("hello", 1, 2.5, nil, true)
            print()
            print(setmetatable({}, {__tostring = function() return "<proc 7>" end}))
            local t = {}
            print(t, {}, t)
            "#,
        )
        .unwrap();
        assert_eq!(
            log.borrow().lines,
            ["hello\t1\t2.5\tnil\ttrue", "", "<proc 7>", "table: #1\ttable: #2\ttable: #1",]
        );
    }

    #[test]
    fn table_sort_is_stable_and_deterministic() {
        let (lua, _) = sandbox();
        let out: String = lua
            .load(
                r#"
                local items = {}
                for i = 1, 500 do items[i] = {key = (i * 7919) % 5, id = i} end
                table.sort(items, function(a, b) return a.key < b.key end)
                for i = 2, #items do
                  local p, q = items[i - 1], items[i]
                  assert(p.key < q.key or (p.key == q.key and p.id < q.id), "not stable at " .. i)
                end
                local words = {"pear", "apple", "fig", "banana", "apple"}
                table.sort(words)
                local nums = {5, 3, 9, 1, 1, 8}
                table.sort(nums, function(a, b) return a > b end)
                return table.concat(words, ",") .. " " .. table.concat(nums, ",")
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!(out, "apple,apple,banana,fig,pear 9,8,5,3,1,1");

        let err = run_err(&lua, "local t = {3, 'x', 1}\ntable.sort(t)\n");
        assert_eq!(err.location.as_deref(), Some("test.lua:2"));
        assert!(err.message.starts_with("attempt to compare"), "{err}");
    }

    #[test]
    fn instruction_limit_stops_top_level_loop() {
        let (lua, _) = new_sandbox(1, small_budget()).unwrap();
        let err = run_err(&lua, "local n = 0\nwhile true do\n  n = n + 1\nend\n");
        assert!(err.location.as_deref().unwrap().starts_with("test.lua:"), "{err}");
        assert!(err.message.contains("instruction limit exceeded"), "{err}");
    }

    #[test]
    fn instruction_limit_stops_loop_in_lua_coroutine() {
        let (lua, _) = new_sandbox(1, small_budget()).unwrap();
        let err = run_err(&lua, "local x = 1\ncoroutine.wrap(function() while true do end end)()\n");
        assert_instruction_limit(&err, 2);
    }

    #[test]
    fn instruction_limit_stops_loop_in_thread_created_from_rust() {
        let (lua, _) = new_sandbox(1, small_budget()).unwrap();
        exec_source(&lua, "test.lua", "function spin()\n  while true do end\nend\n").unwrap();
        let thread = lua.create_thread(lua.globals().get::<Function>("spin").unwrap()).unwrap();
        let err = scenario_error(&thread.resume::<()>(()).unwrap_err(), "test.lua");
        assert_instruction_limit(&err, 2);
    }

    #[test]
    fn instruction_budget_is_shared_by_all_threads() {
        // Each piece alone fits in the budget; together they do not.
        let (lua, _) = new_sandbox(1, small_budget()).unwrap();
        exec_source(&lua, "test.lua", "function work()\n  for i = 1, 300000 do end\nend\n").unwrap();
        let work: Function = lua.globals().get("work").unwrap();
        let mut failure = None;
        for _ in 0..40 {
            let thread = lua.create_thread(work.clone()).unwrap();
            if let Err(err) = thread.resume::<()>(()) {
                failure = Some(scenario_error(&err, "test.lua"));
                break;
            }
        }
        let err = failure.expect("the shared budget should run out");
        assert_instruction_limit(&err, 2);
    }

    #[test]
    fn instruction_limit_cannot_be_caught() {
        let (lua, _) = new_sandbox(1, small_budget()).unwrap();
        let err = run_err(
            &lua,
            "while true do\n  pcall(function() while true do end end)\n\
             coroutine.resume(coroutine.create(function() while true do end end))\nend\n",
        );
        assert_instruction_limit(&err, 2);
    }

    #[test]
    fn memory_bomb_is_a_clear_error() {
        let (lua, _) = sandbox();
        let err = run_err(&lua, "local t = {}\nfor i = 1, 1e9 do t[i] = string.rep(\"x\", 1000) .. i end\n");
        assert!(err.message.contains("memory"), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");
        assert_eq!(err.location.as_deref(), Some("test.lua"));
    }

    #[test]
    fn wrapped_builtins_behave_like_lua() {
        let (lua, _) = sandbox();
        let out: String = lua
            .load(
                r##"
                local out = {}
                local ok, err = pcall(error, "x", 0)
                out[#out + 1] = tostring(ok) .. ":" .. err
                out[#out + 1] = select("#", pcall(function() return 1, nil, 3 end))
                local ok2, msg = xpcall(function() error("deep", 0) end, function(m) return "handled " .. m end)
                out[#out + 1] = tostring(ok2) .. ":" .. msg
                local co = coroutine.create(function(a)
                  local b = coroutine.yield(a + 1)
                  return b * 2
                end)
                local _, r1 = coroutine.resume(co, 1)
                local _, r2 = coroutine.resume(co, 5)
                out[#out + 1] = r1 .. "," .. r2
                -- yielding across the pcall wrapper
                local gen = coroutine.wrap(function()
                  pcall(function() coroutine.yield("through") end)
                  return "done"
                end)
                out[#out + 1] = gen() .. "," .. gen()
                return table.concat(out, " ")
                "##,
            )
            .eval()
            .unwrap();
        assert_eq!(out, "false:x 4 false:handled deep 2,10 through,done");
    }

    #[test]
    fn tostring_is_the_same_in_every_run() {
        let render = || {
            let (lua, log) = sandbox();
            exec_source(&lua, "test.lua", "local t = {}\nprint(t, print, coroutine.create(print), t)").unwrap();
            let line = log.borrow().lines[0].clone();
            line
        };
        assert_eq!(render(), "table: #1\tfunction: #2\tthread: #3\ttable: #1");
        assert_eq!(render(), render());
    }

    #[test]
    fn display_without_location() {
        let err = ScenarioError { location: None, message: "no scenario given".into() };
        assert_eq!(err.to_string(), "no scenario given");
    }
}
