//! One function per user operation: open sources, plan, run the engine, commit to a sink.

pub mod load;
pub mod rebase;

pub use rebase::{rebase, RebaseOptions, RebaseReport};
