//! One function per user operation: open sources, plan, run the engine, commit to a sink.

pub mod append;
pub mod check;
pub mod fleet;
pub mod inspect;
pub mod layers;
pub mod load;
pub mod pkgdb;
pub mod progress;
pub mod rebase;
pub mod referrers;
pub mod safety;
pub mod stack;
pub mod summaries;
pub mod verify;
pub mod write;

pub use append::{append, AppendOptions, AppendReport};
pub use check::{check, CheckReport};
pub use fleet::Job;
pub use inspect::{inspect, InspectReport};
pub use progress::{Progress, Silent};
pub use rebase::{rebase, rebase_fleet, RebaseReport, RebaseRun};
pub use verify::{verify, VerifyReport};
