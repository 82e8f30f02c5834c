//! The swapsim engine: a deterministic, single-threaded discrete-event executor.
//!
//! It knows nothing of swap. It runs simulated kernel *tasks* — plain Rust
//! futures — on N simulated CPUs, one step per poll, and offers the lock
//! primitives of a Linux 2.3 kernel with their real semantics: spinlocks,
//! spinning rwlocks, semaphores, the page lock bit and the big kernel lock.
//! Every `.await` on a primitive is an interleaving point with a name.
//!
//! ```
//! use engine::{Sim, SimConfig, LockKind, RandomChooser, Outcome};
//!
//! let sim = Sim::new(SimConfig { cpus: 2, ..SimConfig::default() }, Box::new(RandomChooser::new(7, 0.0)));
//! let lock = sim.new_lock(LockKind::Spin, "demo_lock", "demo_lock".into());
//! for name in ["a", "b"] {
//!     sim.spawn(name, move |t| async move {
//!         t.spin_lock(lock, "demo:lock").await;
//!         t.point("demo:critical").await;
//!         t.spin_unlock(lock, "demo:unlock");
//!     });
//! }
//! assert_eq!(sim.run(), Outcome::Finished);
//! ```
//!
//! Determinism: all choices come from one [`Chooser`] (a seeded ChaCha
//! stream for random runs) and are recorded; collections that are iterated
//! are vectors or ordered maps; there is no wall clock and no threads.

mod choice;
mod event;
pub mod fast_hash;
pub mod footprint;
mod lock;
mod outcome;
mod sim;
mod task;

pub use choice::dfs::{DecisionLog, DecisionRecord, DfsChooser, DfsPlan, DfsRun, Sleeper};
pub use choice::dpor::DporTree;
pub use choice::pct::PctChooser;
pub use choice::perturb::PerturbChooser;
pub use choice::random::RandomChooser;
pub use choice::replay::ReplayChooser;
pub use choice::semantic::{Divergence, SemanticLog, SemanticReplayChooser, SemanticReplayReport};
pub use choice::timed::TimedChooser;
pub use choice::{Chooser, Decision, EventClass, Label, LabelView, SemanticEvent, StepKind, TaskTag, PRUNE};
pub use event::{Event, EventKind, StallCause};
pub use footprint::Footprint;
pub use lock::{LockId, LockKind, LockName};
pub use outcome::{Outcome, Violation};
pub use sim::{format_ns, Costs, Sampler, Sim, SimConfig, SimSnapshot};
pub use task::{Task, TaskId, TaskState};

/// A named interleaving point: `"function:where"`, e.g.
/// `"try_to_unuse:after_read_swap_cache"`.
pub type Point = &'static str;

#[cfg(test)]
mod tests;
