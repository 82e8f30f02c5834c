//! The 2.3.99-pre4/5 mm/swap world and the seed's patch.
//!
//! Kernel objects live in slotmap arenas inside [`World`]; kernel routines
//! are `async fn`s over a [`Kernel`] and an engine [`Task`], and read top to
//! bottom like the C they model. Every routine's doc comment names the C
//! function and file of 2.3.99-pre4-5 (commit `1d3f1e5e` of the
//! davej-history mirror) or the seed patch it models; every `.await` on an
//! engine primitive is a named interleaving point.
//!
//! ```
//! use kernel::{Kernel, Machine, Variant};
//! use engine::{Outcome, RandomChooser, Sim, SimConfig};
//!
//! let machine = Machine { cpus: 1, memory_pages: 64, swap_devices: vec![16], faults: Default::default(), max_threads: 512, costs: Default::default() };
//! let sim = Sim::new(SimConfig::default(), Box::new(RandomChooser::new(1, 0.0)));
//! let k = Kernel::new(sim.clone(), &machine, Variant::Patched.fixes());
//! let pid = k.create_process("init");
//! k.map_anonymous(pid, 0x10000, 2).unwrap();
//! let kk = k.clone();
//! sim.spawn("setup", move |t| async move {
//!     kk.bind(t.id(), pid);
//!     kernel::memory::user_access(&kk, &t, 0x10000, true).await.unwrap();
//!     kernel::swapfile::sys_swapon(&kk, &t, 0).await.unwrap();
//! });
//! assert_eq!(sim.run(), Outcome::Finished);
//! ```
//!
//! Architecture invariant: this crate knows nothing of Lua or the CLI.

pub mod exit;
pub mod fixes;
pub mod fork;
pub mod invariants;
pub mod later_races;
pub mod later_swap;
pub mod memory;
pub mod mm;
pub mod mmap;
pub mod page_alloc;
pub mod shm;
pub mod signatures;
pub mod swap_device;
pub mod swap_state;
pub mod swapfile;
pub mod tracked;
pub mod types;
pub mod unuse_2_4_10;
pub mod unuse_5_1;
pub mod vmscan;
mod world;

pub use fixes::{Era, FixInfo, Fixes, Later, Variant, FIXES};
pub use types::*;
pub use world::{Faults, Kernel, KernelCosts, Machine, Stats, World};

/// A kernel BUG() or oops: the task stops. The violation has already been
/// reported to the engine, which ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oops;

/// The result of a kernel routine that may oops.
pub type KResult<T> = Result<T, Oops>;

#[cfg(test)]
mod tests;
