//! The scenario as declared by its Lua file: first raw (what the calls
//! said, with the line of each), then validated into a [`Scenario`] before
//! anything runs — a bad scenario fails before step 0.

use kernel::{Machine, PAGE_SIZE};

use crate::sandbox::ScenarioError;

/// One set-up step, run as its process before interleaving starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupOp {
    /// Store to the page at the address (faulting it in if needed).
    Write(u64),
    /// Load from it.
    Read(u64),
    /// Push the page out to swap (page stealer, write-out, shrink_mmap),
    /// to the given device (numbered from 1), or wherever `get_swap_page`
    /// puts it.
    SwapOut(u64, Option<usize>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupStep {
    /// Index into [`Scenario::processes`].
    pub process: usize,
    pub op: SetupOp,
    /// Line of the scenario that asked for it.
    pub line: usize,
}

/// A process the scenario declared.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub name: String,
    /// Anonymous mappings: (start, pages).
    pub maps: Vec<(u64, u64)>,
    /// Shm attaches: (segment, start); a segment's size is in `segments`.
    pub attaches: Vec<(usize, u64)>,
    /// Its program, run interleaved (none: the process only exists).
    pub program: Option<mlua::Function>,
    pub line: usize,
}

/// What the Lua calls declared, as they were made.
#[derive(Debug, Default)]
pub struct RawSpec {
    pub machine: Option<(RawMachine, usize)>,
    /// Shm segments' sizes in pages, by id.
    pub segments: Vec<u64>,
    /// The line of each `shmget`.
    pub segment_lines: Vec<usize>,
    pub processes: Vec<ProcessSpec>,
    /// The processes' names, to refuse a second one in O(log n) (a scan
    /// made 20 000 declarations quadratic).
    pub process_names: std::collections::BTreeSet<String>,
    pub setup: Vec<SetupStep>,
    /// True once interleaving started: declarations are then refused.
    pub running: bool,
    /// The scenario's `sweep{}`, with its line.
    pub sweep: Option<(Sweep, usize)>,
    /// The point of the sweep this run is (from the run's options).
    pub params: Vec<(String, i64)>,
    /// The named points the programs may wait for (`point(name)`), in
    /// declaration order.
    pub points: Vec<&'static str>,
}

/// A parameter grid: `sweep{ params = { processes = {1, 2, 4} }, kernels =
/// {"pre4", "patched"}, seeds = 3 }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Each parameter's values, parameters in name order.
    pub params: Vec<(String, Vec<i64>)>,
    pub kernels: Vec<String>,
    pub seeds: u64,
}

impl Sweep {
    /// Every point of the grid, in order (the last parameter varies fastest).
    pub fn points(&self) -> Vec<Vec<(String, i64)>> {
        let mut points: Vec<Vec<(String, i64)>> = vec![Vec::new()];
        for (name, values) in &self.params {
            points = points
                .into_iter()
                .flat_map(|point| {
                    values.iter().map(move |&v| {
                        let mut p = point.clone();
                        p.push((name.clone(), v));
                        p
                    })
                })
                .collect();
        }
        points
    }
}

#[derive(Clone, Debug, Default)]
pub struct RawMachine {
    pub cpus: Option<i64>,
    pub memory_pages: Option<i64>,
    pub swap_devices: Option<Vec<i64>>,
    pub alloc_sleep: Option<RawNumber>,
    pub step_budget: Option<i64>,
    pub kswapd: Option<bool>,
    pub max_threads: Option<i64>,
    /// `costs = { disk_read = ns, ... }`, in order of appearance.
    pub costs: Vec<(String, i64)>,
    /// `faults = { alloc_fail = rate, alloc_fail_nth = n, io_delay = rate }`.
    pub faults: Option<RawFaults>,
}

#[derive(Clone, Debug, Default)]
pub struct RawFaults {
    pub alloc_fail: Option<RawNumber>,
    pub alloc_fail_nth: Option<i64>,
    pub io_delay: Option<RawNumber>,
    pub read_error: Option<RawNumber>,
}

/// A number of the scenario, and how its messages show it: as Lua writes
/// it (`2`, `1.5`, `-1e-07`), not as Rust would (`-0.0000001`).
#[derive(Clone, Debug, PartialEq)]
pub struct RawNumber {
    pub value: f64,
    /// The Lua integer it was, if it was one (messages show it as Lua does).
    pub integer: Option<i64>,
}

impl RawNumber {
    /// The number as Lua's `tostring` shows it: made only for a message,
    /// never for a run that goes well.
    pub fn shown(&self) -> String {
        match self.integer {
            Some(n) => n.to_string(),
            None => crate::api::lua_float(self.value),
        }
    }
}

/// Why a fault rate is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRate {
    /// Not a probability: below 0, above 1, or NaN.
    OutOfRange,
    /// Above 0 but below half a millionth: it would round to no faults.
    BelowOnePpm,
}

/// A fault rate (a probability) in parts per million, as `kernel::Faults`
/// keeps it.
pub fn rate_ppm(p: f64) -> Result<u32, BadRate> {
    if !(0.0..=1.0).contains(&p) {
        return Err(BadRate::OutOfRange);
    }
    let ppm = (p * 1e6).round() as u32;
    if ppm == 0 && p > 0.0 {
        return Err(BadRate::BelowOnePpm);
    }
    Ok(ppm)
}

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub machine: Machine,
    /// Probability that an allocation which may sleep does sleep, in
    /// random runs: an adversarial knob that over-approximates the C, where
    /// an allocation sleeps only in the direct reclaim it runs at or below
    /// `pages_min` (which the kernel model also does).
    pub alloc_sleep: f64,
    pub step_budget: u64,
    /// The engine's own costs (steps, locks, context switches).
    pub engine_costs: engine::Costs,
    /// Run kswapd, the page stealer thread.
    pub kswapd: bool,
    /// The parameter grid, for `swapsim sweep`.
    pub sweep: Option<Sweep>,
    /// Shm segments' sizes in pages, by id.
    pub segments: Vec<u64>,
    pub processes: Vec<ProcessSpec>,
    pub setup: Vec<SetupStep>,
    /// The named points the programs may wait for, by handle.
    pub points: Vec<&'static str>,
}

pub const DEFAULT_CPUS: usize = 1;
pub const DEFAULT_MEMORY_PAGES: u32 = 1024;
pub const DEFAULT_ALLOC_SLEEP: f64 = 0.2;
pub const DEFAULT_STEP_BUDGET: u64 = 1_000_000;
/// The largest `step_budget` a scenario may set.
pub const MAX_STEP_BUDGET: u64 = 1_000_000_000;
pub const MAX_CPUS: i64 = 64;
pub const DEFAULT_MAX_THREADS: u32 = 512;

impl RawSpec {
    /// Check everything that can be checked without running, and give the
    /// scenario line of the first problem.
    pub fn validate(&self, path: &str) -> Result<Scenario, ScenarioError> {
        let at = |line: usize, message: String| ScenarioError { location: Some(format!("{path}:{line}")), message };
        let (raw, line) = self.machine.clone().unwrap_or_default();
        let cpus = raw.cpus.unwrap_or(DEFAULT_CPUS as i64);
        if !(1..=MAX_CPUS).contains(&cpus) {
            return Err(at(line, format!("machine: cpus must be between 1 and {MAX_CPUS}, got {cpus}")));
        }
        let memory_pages = raw.memory_pages.unwrap_or(DEFAULT_MEMORY_PAGES as i64);
        if !(1..=1 << 24).contains(&memory_pages) {
            return Err(at(
                line,
                format!("machine: memory_pages must be between 1 and 16777216 (64 GiB, the simulator's limit), got {memory_pages}"),
            ));
        }
        let swap_devices = raw.swap_devices.unwrap_or_default();
        if swap_devices.len() > kernel::MAX_SWAPFILES {
            return Err(at(line, format!("machine: at most {} swap devices (MAX_SWAPFILES)", kernel::MAX_SWAPFILES)));
        }
        for (i, &size) in swap_devices.iter().enumerate() {
            if !(2..=1 << 20).contains(&size) {
                return Err(at(
                    line,
                    format!("machine: swap device {} must have between 2 and 1048576 pages (slot 0 is the header), got {size}", i + 1),
                ));
            }
        }
        let alloc_sleep = match &raw.alloc_sleep {
            None => DEFAULT_ALLOC_SLEEP,
            Some(p) if (0.0..=1.0).contains(&p.value) => p.value,
            Some(p) => {
                return Err(at(line, format!("machine: alloc_sleep is a probability from 0 to 1, got {}", p.shown())))
            }
        };
        let step_budget = raw.step_budget.unwrap_or(DEFAULT_STEP_BUDGET as i64);
        if step_budget < 1 {
            return Err(at(line, format!("machine: step_budget must be positive, got {step_budget}")));
        }
        // A run keeps a choice per step (for its schedule): bounded.
        if step_budget as u64 > MAX_STEP_BUDGET {
            return Err(at(line, format!("machine: step_budget is at most {MAX_STEP_BUDGET}, got {step_budget}")));
        }
        let max_threads = raw.max_threads.unwrap_or(DEFAULT_MAX_THREADS as i64);
        if !(1..=65536).contains(&max_threads) {
            return Err(at(line, format!("machine: max_threads must be between 1 and 65536, got {max_threads}")));
        }
        let mut kernel_costs = kernel::KernelCosts::default();
        let mut engine_costs = engine::Costs::default();
        for (name, value) in &raw.costs {
            if !(0..=1_000_000_000_000).contains(value) {
                return Err(at(line, format!("machine: costs.{name} is a time in ns from 0 to 10^12, got {value}")));
            }
            let v = *value as u64;
            match name.as_str() {
                "step" => engine_costs.step = v,
                "lock_op" => engine_costs.lock_op = v,
                "context_switch" => engine_costs.context_switch = v,
                "pte_scan" => kernel_costs.pte_scan = v,
                "page_copy" => kernel_costs.page_copy = v,
                "page_zero" => kernel_costs.page_zero = v,
                "disk_read" => kernel_costs.disk_read = v,
                "disk_write" => kernel_costs.disk_write = v,
                "alloc_sleep" => kernel_costs.alloc_sleep = v,
                other => {
                    return Err(at(
                        line,
                        format!(
                            "machine: unknown cost '{other}' (the costs are step, lock_op, context_switch, pte_scan, \
                             page_copy, page_zero, disk_read, disk_write, alloc_sleep; docs/timing.md)"
                        ),
                    ))
                }
            }
        }
        let raw_faults = raw.faults.clone().unwrap_or_default();
        let rate = |name: &str, value: &Option<RawNumber>| -> Result<u32, ScenarioError> {
            let Some(p) = value else { return Ok(0) };
            rate_ppm(p.value).map_err(|bad| {
                at(
                    line,
                    match bad {
                        BadRate::OutOfRange => {
                            format!("machine: faults.{name} is a probability from 0 to 1, got {}", p.shown())
                        }
                        BadRate::BelowOnePpm => format!(
                            "machine: faults.{name} is {}, below the smallest rate, 0.000001 (one in a million); \
                             0 is none",
                            p.shown()
                        ),
                    },
                )
            })
        };
        let faults = kernel::Faults {
            alloc_fail_ppm: rate("alloc_fail", &raw_faults.alloc_fail)?,
            alloc_fail_nth: match raw_faults.alloc_fail_nth {
                None => None,
                Some(n) if n >= 1 => Some(n as u64),
                Some(n) => {
                    return Err(at(line, format!("machine: faults.alloc_fail_nth counts from 1, got {n}")));
                }
            },
            io_delay_ppm: rate("io_delay", &raw_faults.io_delay)?,
            read_error_ppm: rate("read_error", &raw_faults.read_error)?,
        };
        let limit = memory_pages as u64 * 16;
        let mut total = 0;
        for (pages, &seg_line) in self.segments.iter().zip(&self.segment_lines) {
            total += pages;
            if total > limit {
                return Err(at(
                    seg_line,
                    format!(
                        "shmget: shm segments would total {total} pages, more than 16 times memory_pages ({limit}); \
                         raise memory_pages or use smaller segments"
                    ),
                ));
            }
        }
        if self.processes.is_empty() {
            return Err(ScenarioError {
                location: Some(path.to_string()),
                message: "the scenario declares no process: add process(\"name\", function() ... end)".into(),
            });
        }
        for step in &self.setup {
            if let SetupOp::SwapOut(_, device) = step.op {
                if swap_devices.is_empty() {
                    return Err(at(
                        step.line,
                        "swap_out: the machine has no swap device (machine{ swap_devices = {64} })".into(),
                    ));
                }
                if let Some(device) = device.filter(|&d| d > swap_devices.len()) {
                    return Err(at(
                        step.line,
                        format!(
                            "p:swap_out(): there is no swap device {device}: the machine has {} (machine{{ swap_devices }})",
                            swap_devices.len()
                        ),
                    ));
                }
            }
        }
        Ok(Scenario {
            machine: Machine {
                cpus: cpus as usize,
                memory_pages: memory_pages as u32,
                swap_devices: swap_devices.iter().map(|&s| s as u32).collect(),
                faults,
                max_threads: max_threads as u32,
                costs: kernel_costs,
            },
            alloc_sleep,
            step_budget: step_budget as u64,
            engine_costs,
            kswapd: raw.kswapd.unwrap_or(false),
            sweep: self.sweep.as_ref().map(|(s, _)| s.clone()),
            segments: self.segments.clone(),
            processes: self.processes.clone(),
            setup: self.setup.clone(),
            points: self.points.clone(),
        })
    }
}

impl ProcessSpec {
    /// Its mappings and attaches as (start, pages).
    pub fn ranges(&self, segments: &[u64]) -> Vec<(u64, u64)> {
        let attaches = self.attaches.iter().map(|&(seg, start)| (start, segments[seg]));
        self.maps.iter().copied().chain(attaches).collect()
    }
}

/// Whether `addr` lies in one of the ranges (start, pages).
pub fn mapped(ranges: &[(u64, u64)], addr: u64) -> bool {
    ranges.iter().any(|&(start, pages)| start <= addr && addr < start + pages * PAGE_SIZE)
}
