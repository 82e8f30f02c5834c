//! One file (or folder) per subcommand, each with its clap arguments next
//! to the code that runs it, as cargo's and ripgrep's command folders are.
//! What they write goes through `crate::output`.

pub mod reduce;
pub mod run;
