//! `swapsim run`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use engine::{format_ns, Outcome};
use kernel::{Fixes, Variant};
use script::run::describe;
use script::{RunOptions, RunReport};

/// `--kernel`, `--fix`, `--no-fix`: the kernel a command runs, shared by
/// run, explore and reduce.
#[derive(Args)]
pub struct KernelArgs {
    /// Kernel variant: pre4 (2.3.99-pre4/5), patched (with the seed's fixes), 2.4.10 or 5.1 (later swapoff designs).
    #[arg(long, default_value = "pre4", value_parser = crate::names::kernel())]
    pub kernel: Variant,
    /// Switch one fix of the seed's patch on, on top of the kernel variant (repeatable).
    #[arg(long = "fix", value_name = "NAME", value_parser = crate::names::fix())]
    pub fix: Vec<String>,
    /// Switch one fix off (repeatable). `swapsim kernels` lists the fixes.
    #[arg(long = "no-fix", value_name = "NAME", value_parser = crate::names::fix())]
    pub no_fix: Vec<String>,
}

impl KernelArgs {
    pub fn choice(&self) -> Result<KernelChoice, String> {
        KernelChoice::from_args(self.kernel, &self.fix, &self.no_fix)
    }

    /// The flags again, for a command line to print: "--kernel V [--fix F]...".
    pub fn flags(&self) -> String {
        let fixes = self.fix.iter().map(|f| format!(" --fix {f}"));
        let no_fixes = self.no_fix.iter().map(|f| format!(" --no-fix {f}"));
        format!("--kernel {}{}", self.kernel, fixes.chain(no_fixes).collect::<String>())
    }
}

#[derive(Args)]
#[command(
    after_help = "Examples:\n  swapsim run scenarios/race1_fork.lua --kernel pre4 --seed 3\n  swapsim run scenarios/race1_fork.lua --kernel patched --seeds 1..1000\n  swapsim run scenarios/race1_fork.lua --kernel pre4 --seed 3 --events output/race1.log\n\nExit status: 0 clean, 1 a violation, deadlock or step limit was found, 2 bad usage or a bad scenario."
)]
pub struct RunArgs {
    /// The scenario (a Lua file).
    pub file: PathBuf,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// The seed of the run's random schedule.
    #[arg(long, default_value_t = 1, conflicts_with = "seeds")]
    pub seed: u64,
    /// Run every seed of an inclusive range A..B and report which break.
    #[arg(long, value_parser = parse_range)]
    pub seeds: Option<(u64, u64)>,
    /// Write the event log (every lock event, sleep, wake and named point) to this file.
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub events: Option<PathBuf>,
    /// List the named interleaving points the scenario's kernel routines
    /// stopped at (over the seed, or every seed of --seeds), with counts.
    #[arg(long)]
    pub list_points: bool,
    /// Inject faults, overriding the scenario's machine{ faults }:
    /// alloc-fail=RATE, alloc-fail-nth=N, io-delay=RATE, read-error=RATE
    /// (repeatable or comma-separated; RATE is a probability from 0 to 1, in
    /// millionths: 0.000001 is the smallest above 0).
    #[arg(long, value_name = "FAULT=VALUE", value_delimiter = ',')]
    pub inject: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Write a Chrome trace-event JSON timeline (open it in Perfetto UI or chrome://tracing).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub trace: Option<PathBuf>,
    /// Write the event log as CSV (step, time_ns, cpu, task, event, lock, lock_class, point, sleep_ns, text).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    pub csv: Option<PathBuf>,
    /// Print lock statistics per lock class (as /proc/lock_stat prints
    /// them) and latency distributions of faults, forks, exits and
    /// swapoffs; with --seeds, the totals over the seeds.
    #[arg(long)]
    pub stats: bool,
    /// How --stats prints the lock statistics: text (/proc/lock_stat), csv or json.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    pub stats_format: StatsFormat,
    /// Timed mode, as sweeps run: the option that happens first in
    /// simulated time runs next (for cost questions on one scenario).
    #[arg(long, conflicts_with = "pct")]
    pub timed: bool,
    /// Run PCT's schedule for the seed, with bug depth D for runs of K steps
    /// (as `explore --strategy pct` printed them): replays a PCT run.
    #[arg(long, value_name = "D,K", value_parser = parse_pct)]
    pub pct: Option<(u32, u64)>,
    /// Write the lock-class dependency graph (lockdep's orders) as Graphviz DOT.
    #[arg(long, value_name = "FILE")]
    pub lockdep_graph: Option<PathBuf>,
}

/// How lock statistics are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsFormat {
    /// As /proc/lock_stat prints them (version 0.4), then call latencies.
    Text,
    /// One row per lock class and side (times in ns).
    Csv,
    /// One object per lock class (times in ns).
    Json,
}

/// `--pct D,K`.
pub fn parse_pct(text: &str) -> Result<(u32, u64), String> {
    let bad = || format!("--pct takes DEPTH,STEPS (e.g. 3,120), got {text:?}");
    let (d, k) = text.split_once(',').ok_or_else(bad)?;
    let d: u32 = d.trim().parse().ok().filter(|&d| d >= 1).ok_or_else(bad)?;
    let k: u64 = k.trim().parse().ok().filter(|&k| k >= 1).ok_or_else(bad)?;
    Ok((d, k))
}

/// Print lock statistics (and, as text, the call latencies) in `format`.
pub fn print_stats(stats: &[report::LockStat], latencies: &[report::Latency], format: StatsFormat) {
    match format {
        StatsFormat::Text => {
            print!("{}", report::render_lock_stat(stats));
            print!("{}", report::render_latencies(latencies));
        }
        StatsFormat::Csv => print!("{}", report::lock_stat_csv(stats)),
        StatsFormat::Json => print!("{}", report::lock_stat_json(stats)),
    }
}

/// Write a run's --events, --trace and --csv files (each if asked for).
pub fn write_outputs(
    report: &RunReport,
    events: Option<&Path>,
    trace: Option<&Path>,
    csv: Option<&Path>,
) -> Result<(), ExitCode> {
    if let Some(file) = events {
        let mut log = String::new();
        if report.events_dropped > 0 {
            log +=
                &format!("# the first {} events were dropped: the log keeps the latest ones\n", report.events_dropped);
        }
        for line in &report.events {
            log.push_str(&line.text);
            log.push('\n');
        }
        if let Err(e) = write_whole(file, log.as_bytes()) {
            eprintln!("error: cannot write the event log to {}: {e}", file.display());
            return Err(ExitCode::from(2));
        }
    }
    for (file, what, text) in [
        (trace, "trace", trace.map(|_| report::chrome_trace(report))),
        (csv, "CSV event log", csv.map(|_| report::events_csv(report))),
    ] {
        if let (Some(file), Some(text)) = (file, text) {
            if let Err(e) = write_whole(file, text.as_bytes()) {
                eprintln!("error: cannot write the {what} to {}: {e}", file.display());
                return Err(ExitCode::from(2));
            }
        }
    }
    Ok(())
}

/// Print the lockdep report of `order` and write `--lockdep-graph`.
pub fn lockdep_out(
    order: &crate::lockdep::LockOrder,
    graph: Option<&Path>,
    replay: &dyn Fn(u64) -> String,
) -> Result<(), ExitCode> {
    print!("{}", order.report(replay));
    if let Some(file) = graph {
        if let Err(e) = write_whole(file, order.dot().as_bytes()) {
            eprintln!("error: cannot write the lockdep graph to {}: {e}", file.display());
            return Err(ExitCode::from(2));
        }
    }
    Ok(())
}

/// The sandbox's limits on scenario code.
#[derive(Args, Clone, Copy, Debug)]
pub struct LimitArgs {
    /// Lua instructions a run may execute (loading and programs together; at most 10^12).
    #[arg(long, value_name = "N", default_value_t = 200_000_000)]
    pub lua_instructions: u64,
    /// Memory the scenario's Lua state may use, in MiB (1 to 65536).
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub lua_memory_mb: usize,
    /// Wall-clock seconds one run may take before the watchdog stops
    /// swapsim with exit status 2 (1 to 86400; the last line behind the
    /// instruction limit, for a library call that never returns).
    #[arg(long, value_name = "S", default_value_t = 600)]
    pub watchdog_seconds: u64,
}

impl LimitArgs {
    pub fn sandbox(&self) -> script::sandbox::SandboxLimits {
        script::sandbox::SandboxLimits {
            max_instructions: self.lua_instructions,
            max_memory_bytes: self.lua_memory_mb.saturating_mul(1 << 20),
            max_seconds: self.watchdog_seconds,
        }
    }

    /// Check the values, then make them the limits of every run of the
    /// command (`SandboxLimits::default()`).
    pub fn apply(&self) -> Result<script::sandbox::SandboxLimits, String> {
        let max = script::sandbox::SandboxLimits::MAX;
        let check = |flag: &str, value: u64, most: u64| {
            if (1..=most).contains(&value) {
                Ok(())
            } else {
                Err(format!("{flag} is between 1 and {most}, got {value}"))
            }
        };
        check("--lua-instructions", self.lua_instructions, max.max_instructions)?;
        check("--lua-memory-mb", self.lua_memory_mb as u64, (max.max_memory_bytes >> 20) as u64)?;
        check("--watchdog-seconds", self.watchdog_seconds, max.max_seconds)?;
        let limits = self.sandbox();
        script::sandbox::set_default_limits(limits);
        Ok(limits)
    }
}

/// The most bytes swapsim reads of a scenario or a schedule file.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Read a text file of at most [`MAX_INPUT_BYTES`] (a file that names
/// `/dev/zero` must not be read until memory runs out).
pub fn read_bounded(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(file)?.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {MAX_INPUT_BYTES} bytes, the most swapsim reads"
        )));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("it is not UTF-8 text"))
}

/// `text` as one shell word: as it is when that is safe, else in single quotes.
pub fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Refuse a path swapsim would print or write into a file that cannot
/// hold it on one line (a control character: a newline would split a
/// schedule file's line, an escape would reach the terminal).
pub fn check_path_text(what: &str, path: &Path) -> Result<(), String> {
    let text = path.to_string_lossy();
    if text.chars().any(char::is_control) {
        return Err(format!(
            "{what} {} has a control character (a newline?) in its name; rename it",
            script::sandbox::escape_controls(&text)
        ));
    }
    Ok(())
}

/// Check before any work that `file` can be written (its folder exists and
/// takes a new file, it is not a folder) and that it is not one of the
/// `inputs` (the scenario): a late failure would lose the whole search.
pub fn check_output_file(flag: &str, file: &Path, inputs: &[&Path]) -> Result<(), String> {
    check_path_text(flag, file)?;
    if file.is_dir() {
        return Err(format!("{flag} {}: it is a folder, not a file", file.display()));
    }
    for input in inputs {
        let same = match (std::fs::canonicalize(file), std::fs::canonicalize(input)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            return Err(format!(
                "{flag} {} is the scenario itself: writing it would destroy the input",
                file.display()
            ));
        }
    }
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    check_output_dir(flag, dir, false).map_err(|e| format!("{flag} {}: {e}", file.display()))
}

/// Check before any work that files can be created in `dir` (created
/// first when `create` is set): a probe file is made and removed.
pub fn check_output_dir(flag: &str, dir: &Path, create: bool) -> Result<(), String> {
    check_path_text(flag, dir)?;
    if create {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
    }
    let probe = dir.join(unique_temp_name("probe"));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("cannot write in {}: {e}", dir.display())),
    }
}

/// A temporary name no other swapsim (or thread of this one) uses:
/// `.swapsim-WHAT-PID-N`.
pub fn unique_temp_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(".swapsim-{what}-{}-{n}", std::process::id())
}

/// Set by Ctrl-C: long loops stop at the next run and report what they found.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A probability given on the command line (`--perturb 0.1`); the error
/// shows the text as typed.
pub fn parse_probability(flag: &str, text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(not_a_probability(flag, text)),
    }
}

fn not_a_probability(flag: &str, text: &str) -> String {
    format!("{flag} is a probability from 0 to 1, got {text:?}")
}

/// Parse --inject values into the faults to inject.
pub fn parse_faults(specs: &[String]) -> Result<Option<kernel::Faults>, String> {
    if specs.is_empty() {
        return Ok(None);
    }
    let mut faults = kernel::Faults::default();
    for spec in specs {
        let (name, value) = spec.split_once('=').ok_or_else(|| {
            format!("--inject takes FAULT=VALUE (alloc-fail=0.01, alloc-fail-nth=100, io-delay=0.1, read-error=0.01), got {spec:?}")
        })?;
        let rate = || -> Result<u32, String> {
            let flag = format!("--inject {name}");
            match script::spec::rate_ppm(parse_probability(&flag, value)?) {
                Ok(ppm) => Ok(ppm),
                Err(script::spec::BadRate::OutOfRange) => Err(not_a_probability(&flag, value)),
                Err(script::spec::BadRate::BelowOnePpm) => {
                    Err(format!("{flag} is {value:?}, below the smallest rate, 0.000001 (one in a million); 0 is none"))
                }
            }
        };
        match name {
            "alloc-fail" => faults.alloc_fail_ppm = rate()?,
            "io-delay" => faults.io_delay_ppm = rate()?,
            "read-error" => faults.read_error_ppm = rate()?,
            "alloc-fail-nth" => {
                faults.alloc_fail_nth =
                    Some(
                        value.parse::<u64>().ok().filter(|&n| n >= 1).ok_or_else(|| {
                            format!("--inject alloc-fail-nth: expected a count from 1, got {value:?}")
                        })?,
                    )
            }
            other => {
                return Err(format!(
                    "unknown fault {other:?}; the faults are alloc-fail, alloc-fail-nth, io-delay, read-error"
                ));
            }
        }
    }
    Ok(Some(faults))
}

pub fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("expected a seed range A..B (inclusive, e.g. 1..1000), got {s:?}");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(format!("the range {a}..{b} is empty"));
    }
    Ok((a, b))
}

/// FNV-1a, 64 bits: a stable content hash with no dependency.
pub fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The kernel to run: the variant with the --fix/--no-fix switches applied
/// (and the faults to inject, if any).
pub struct KernelChoice {
    pub variant: Variant,
    pub fixes: Fixes,
    pub faults: Option<kernel::Faults>,
    pub limits: script::sandbox::SandboxLimits,
}

impl KernelChoice {
    pub fn from_args(variant: Variant, on: &[String], off: &[String]) -> Result<KernelChoice, String> {
        if let Some(both) = on.iter().find(|name| off.contains(name)) {
            return Err(format!("--fix {both} and --no-fix {both} contradict each other: give one"));
        }
        let mut fixes = variant.fixes();
        for name in on {
            fixes.set(name, true)?;
        }
        for name in off {
            fixes.set(name, false)?;
        }
        Ok(KernelChoice { variant, fixes, faults: None, limits: Default::default() })
    }

    /// What the kernel is, in words.
    pub fn description(&self) -> String {
        let diff = self.fixes.diff(&self.variant.fixes());
        if diff.is_empty() {
            self.variant.description().to_string()
        } else {
            format!("{} variant with {} switched", self.variant, diff.join(" "))
        }
    }

    /// "pre4", or "patched -page-lock".
    pub fn label(&self) -> String {
        let diff = self.fixes.diff(&self.variant.fixes());
        if diff.is_empty() {
            self.variant.to_string()
        } else {
            format!("{} {}", self.variant, diff.join(" "))
        }
    }

    /// The command-line flags that select this kernel (and its faults).
    pub fn flags(&self) -> String {
        let mut flags = format!("--kernel {}", self.variant);
        for switch in self.fixes.diff(&self.variant.fixes()) {
            let (sign, name) = switch.split_at(1);
            flags += &format!(" --{}fix {name}", if sign == "+" { "" } else { "no-" });
        }
        if let Some(f) = self.faults {
            let mut parts = Vec::new();
            if f.alloc_fail_ppm > 0 {
                parts.push(format!("alloc-fail={}", f64::from(f.alloc_fail_ppm) / 1e6));
            }
            if let Some(n) = f.alloc_fail_nth {
                parts.push(format!("alloc-fail-nth={n}"));
            }
            if f.io_delay_ppm > 0 {
                parts.push(format!("io-delay={}", f64::from(f.io_delay_ppm) / 1e6));
            }
            if f.read_error_ppm > 0 {
                parts.push(format!("read-error={}", f64::from(f.read_error_ppm) / 1e6));
            }
            if !parts.is_empty() {
                flags += &format!(" --inject {}", parts.join(","));
            }
        }
        flags
    }
}

pub fn run(args: &RunArgs) -> ExitCode {
    let kernel = match args.kernel.choice() {
        Ok(kernel) => kernel,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let faults = match parse_faults(&args.inject) {
        Ok(faults) => faults,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let limits = match args.limits.apply() {
        Ok(limits) => limits,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let kernel = KernelChoice { faults, limits, ..kernel };
    let (path, source) = match read_source(&args.file) {
        Ok(x) => x,
        Err(code) => return code,
    };
    // Every output is checked before the run: a late failure loses it.
    for (flag, file) in [("--events", &args.events), ("--trace", &args.trace), ("--csv", &args.csv)] {
        if let Some(file) = file {
            if let Err(e) = check_output_file(flag, file, &[&args.file]) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if args.list_points {
        let (first, last) = args.seeds.unwrap_or((args.seed, args.seed));
        return list_points(&kernel, &path, &source, first, last);
    }
    match args.seeds {
        Some((first, last)) => run_seeds(args, &kernel, &path, &source, first, last),
        None => run_one(args, &kernel, &path, &source),
    }
}

fn options(kernel: &KernelChoice, seed: u64, record_events: bool) -> RunOptions {
    RunOptions { record_events, faults: kernel.faults, limits: kernel.limits, ..RunOptions::new(kernel.fixes, seed) }
}

/// The run's strategy: random, or --timed, or --pct D,K.
fn strategy(args: &RunArgs) -> script::Strategy {
    match (args.timed, args.pct) {
        (true, _) => script::Strategy::Timed,
        (false, Some((depth, steps))) => script::Strategy::Pct { depth, steps },
        (false, None) => script::Strategy::Random,
    }
}

/// The flags that select the run's strategy again.
fn strategy_flags(args: &RunArgs) -> String {
    match (args.timed, args.pct) {
        (true, _) => " --timed".to_string(),
        (false, Some((d, k))) => format!(" --pct {d},{k}"),
        (false, None) => String::new(),
    }
}

fn replay_command(kernel: &KernelChoice, path: &str, seed: u64) -> String {
    format!("swapsim run {} {} --seed {seed}", shell_quote(path), kernel.flags())
}

fn run_one(args: &RunArgs, kernel: &KernelChoice, path: &str, source: &str) -> ExitCode {
    let opts = RunOptions { strategy: strategy(args), lock_order: true, ..options(kernel, args.seed, true) };
    let report = match script::run::run(path, source, &opts) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(code) = write_outputs(&report, args.events.as_deref(), args.trace.as_deref(), args.csv.as_deref()) {
        return code;
    }
    let replay = replay_command(kernel, path, args.seed) + &strategy_flags(args);
    print!("{}", render_one(args.seed, kernel, path, source, &report, Some(&replay)));
    let mut order = crate::lockdep::LockOrder::default();
    order.add_run(args.seed, &report.lock_order);
    let witness = |seed| replay_command(kernel, path, seed) + &strategy_flags(args);
    if let Err(code) = lockdep_out(&order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    if args.stats {
        print_stats(&report::lock_stat(&report), &report::latencies(&report), args.stats_format);
    }
    if report.outcome.is_failure() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The report of one run, as printed.
pub fn render_one(
    seed: u64,
    kernel: &KernelChoice,
    path: &str,
    source: &str,
    report: &RunReport,
    replay: Option<&str>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario: {path} (content fnv1a {:016x})", content_hash(source.as_bytes()));
    let _ = writeln!(out, "kernel:   {} ({})", kernel.label(), kernel.description());
    let _ = writeln!(out, "seed:     {seed}");
    for line in &report.prints {
        let _ = writeln!(out, "print:    {line}");
    }
    match &report.outcome {
        Outcome::Finished => {
            let _ = writeln!(out, "result:   clean: every invariant held");
        }
        outcome => {
            let _ = writeln!(out, "result:   {}", headline(outcome));
            if let Outcome::Violation(v) = outcome {
                let by = report.culprit.as_deref().map(|c| format!(", detected by task {c}")).unwrap_or_default();
                let _ = writeln!(out, "  at step {}{by}:", v.step);
                let _ = writeln!(out, "  {}", v.message);
            } else {
                let _ = writeln!(out, "  {}", describe(outcome));
            }
        }
    }
    if !report.printk.is_empty() {
        let _ = writeln!(out, "kernel log:");
        for line in &report.printk {
            let _ = writeln!(out, "  {line}");
        }
    }
    if report.outcome.is_failure() {
        out += &report::timing_assumptions(report, 5);
    }
    if report.outcome.is_failure() && !report.events.is_empty() {
        // The story that led there: dispatches, sleeps, wakes, contention,
        // sleeping locks and kernel messages (--events has every event).
        const TAIL: usize = 30;
        let key: Vec<&str> = report.events.iter().filter(|e| e.key).map(|e| e.text.as_str()).collect();
        let skip = key.len().saturating_sub(TAIL);
        let _ = writeln!(
            out,
            "how it got there (last {} key events: step, time, cpu, task, event, lock, point):",
            key.len() - skip
        );
        for line in &key[skip..] {
            let _ = writeln!(out, "  {line}");
        }
    }
    let s = &report.stats;
    let stalls = match report.stalled_ns {
        0 => String::new(),
        ns => format!(" ({} of stalls the schedule assumes)", format_ns(ns)),
    };
    let _ = writeln!(
        out,
        "run:      {} steps, {} simulated{stalls}; {} forks, {} exits, {} faults, {} swap-ins, {} swap-outs, {} swapoffs",
        report.steps,
        format_ns(report.timeline_ns),
        s.forks,
        s.exits,
        s.faults,
        s.swap_ins,
        s.swap_outs,
        s.swapoffs
    );
    if let (true, Some(replay)) = (report.outcome.is_failure(), replay) {
        let _ = writeln!(out, "replay:   {replay}");
    }
    out
}

fn headline(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Finished => "clean".to_string(),
        Outcome::Violation(v) => format!("VIOLATION {}", v.invariant),
        Outcome::Deadlock(_) => "DEADLOCK".to_string(),
        Outcome::StepLimit(_) => "STEP LIMIT".to_string(),
        Outcome::Aborted => "ABORTED".to_string(),
    }
}

fn outcome_key(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Violation(v) => v.invariant.to_string(),
        other => headline(other).to_lowercase(),
    }
}

fn run_seeds(args: &RunArgs, kernel: &KernelChoice, path: &str, source: &str, first: u64, last: u64) -> ExitCode {
    println!("scenario: {path} (content fnv1a {:016x})", content_hash(source.as_bytes()));
    println!("kernel:   {} ({})", kernel.label(), kernel.description());
    println!("seeds:    {first}..{last}");
    let runner = match script::run::Runner::new(path, source, kernel.limits) {
        Ok(runner) => runner,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut broken: Vec<(u64, String)> = Vec::new();
    let mut by_kind: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    const LISTED: usize = 20;
    let mut total = 0u64;
    let progress = crate::progress::Progress::new(last.saturating_sub(first).saturating_add(1));
    let mut order = crate::lockdep::LockOrder::default();
    let mut lock_stats: Vec<Vec<report::LockStat>> = Vec::new();
    let mut calls: Vec<script::run::CallRecord> = Vec::new();
    for seed in first..=last {
        if interrupted() {
            let last_done = seed - 1;
            println!("interrupted: stopped after seed {last_done}; the summary covers seeds {first}..{last_done}");
            break;
        }
        total += 1;
        let opts = RunOptions { strategy: strategy(args), lock_order: true, ..options(kernel, seed, args.stats) };
        let report = match runner.run(&opts) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        progress.inc(report.outcome.is_failure());
        order.add_run(seed, &report.lock_order);
        if args.stats {
            lock_stats.push(report::lock_stat(&report));
            calls.extend(report.calls.iter().cloned());
        }
        if report.outcome.is_failure() {
            let key = outcome_key(&report.outcome);
            *by_kind.entry(key.clone()).or_default() += 1;
            if broken.len() < LISTED {
                progress.suspend(|| println!("seed {seed}: {}", headline(&report.outcome)));
            }
            broken.push((seed, key));
        }
    }
    progress.finish();
    if broken.len() > LISTED {
        println!("... and {} more", broken.len() - LISTED);
    }
    let witness = |seed| replay_command(kernel, path, seed) + &strategy_flags(args);
    if let Err(code) = lockdep_out(&order, args.lockdep_graph.as_deref(), &witness) {
        return code;
    }
    if args.stats {
        println!("stats:    totals over the {} seeds", lock_stats.len());
        let totals = report::lock_stat_total(lock_stats.iter().map(Vec::as_slice));
        print_stats(&totals, &report::latencies_of(&calls), args.stats_format);
    }
    let kinds: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
    if broken.is_empty() {
        println!("result:   {total} seeds, none broke");
        if interrupted() {
            return ExitCode::from(130);
        }
        ExitCode::SUCCESS
    } else {
        println!(
            "result:   {total} seeds, {} broke ({}), {} clean",
            broken.len(),
            kinds.join(", "),
            total - broken.len() as u64
        );
        let firsts: Vec<String> = by_kind
            .keys()
            .map(|kind| format!("{kind} seed {}", broken.iter().find(|(_, k)| k == kind).map(|(s, _)| *s).unwrap_or(0)))
            .collect();
        println!("firsts:   {}", firsts.join("; "));
        println!("first:    seed {}; replay: {}", broken[0].0, replay_command(kernel, path, broken[0].0));
        ExitCode::from(1)
    }
}

/// Write a file whole or not at all: write a temporary file beside it,
/// then rename it over the target.
/// Read a scenario file: (its path as shown, its text), or say why not
/// and exit 2.
pub fn read_source(file: &Path) -> Result<(String, String), ExitCode> {
    let path = file.display().to_string();
    if let Err(e) = check_path_text("the scenario", file) {
        eprintln!("error: {e}");
        return Err(ExitCode::from(2));
    }
    match read_bounded(file) {
        Ok(source) => Ok((path, source)),
        Err(e) => {
            eprintln!("error: cannot read scenario {path}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = dir.join(unique_temp_name(&name.to_string_lossy()));
    // A full disk or a file size limit (`ulimit -f`; SIGXFSZ is ignored, so
    // the write fails with EFBIG) leaves no temporary file behind.
    std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `--list-points`: every named interleaving point reached over the seeds,
/// grouped by kernel function, with how often it was reached.
fn list_points(kernel: &KernelChoice, path: &str, source: &str, first: u64, last: u64) -> ExitCode {
    let mut counts: std::collections::BTreeMap<&'static str, u64> = std::collections::BTreeMap::new();
    let runner = match script::run::Runner::new(path, source, kernel.limits) {
        Ok(runner) => runner,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for seed in first..=last {
        let options = RunOptions { record_events: false, count_points: true, ..RunOptions::new(kernel.fixes, seed) };
        match runner.run(&options) {
            Ok(report) => {
                for (point, n) in report.points {
                    *counts.entry(point).or_default() += n;
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!("scenario: {path}");
    println!("kernel:   {}", kernel.label());
    println!("seeds:    {first}..{last}");
    println!("{} named interleaving points reached (point, times reached):", counts.len());
    let mut function = "";
    for (point, n) in &counts {
        let this = point.split(':').next().unwrap_or(point);
        if this != function {
            println!("{this}");
            function = this;
        }
        println!("  {point:<50} {n}");
    }
    ExitCode::SUCCESS
}
