//! Flags shared by several subcommands and their parsers: the kernel
//! (`--kernel`, `--fix`, `--no-fix`, `--inject`), the sandbox's limits, and
//! the values (ranges, probabilities, `--pct`) clap does not parse itself.

use clap::Args;
use kernel::{Fixes, Variant};

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

/// `--pct D,K`.
pub fn parse_pct(text: &str) -> Result<(u32, u64), String> {
    let bad = || format!("--pct takes DEPTH,STEPS (e.g. 3,120), got {text:?}");
    let (d, k) = text.split_once(',').ok_or_else(bad)?;
    let d: u32 = d.trim().parse().ok().filter(|&d| d >= 1).ok_or_else(bad)?;
    let k: u64 = k.trim().parse().ok().filter(|&k| k >= 1).ok_or_else(bad)?;
    Ok((d, k))
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
