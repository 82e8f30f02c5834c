//! Lua scenarios: the sandbox, the scenario API, and running a scenario.
//!
//! ```
//! use script::{run, RunOptions};
//! use kernel::Variant;
//!
//! let source = r#"
//!     machine { cpus = 1, memory_pages = 32, swap_devices = { 16 } }
//!     local p = process("p", function() read(0x10000); exit() end)
//!     p:map(0x10000, 1)
//!     p:write(0x10000)
//!     p:swap_out(0x10000)
//! "#;
//! let options = RunOptions::new(Variant::Patched.fixes(), 1);
//! let report = run::run("example.lua", source, &options).unwrap();
//! assert_eq!(report.outcome, engine::Outcome::Finished);
//! assert_eq!(report.stats.swap_ins, 1);
//! ```

pub mod api;
mod driver;
mod memo;
/// The model's named points (`MODEL_POINTS`), read from its sources at build time.
pub mod points {
    include!(concat!(env!("OUT_DIR"), "/points.rs"));
}
pub mod run;
pub mod sandbox;
pub mod spec;
pub mod watchdog;

pub use run::{RunOptions, RunReport, Strategy};
