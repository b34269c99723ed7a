//! The rebase safety verdict: pure checks over small per-layer summaries.

pub mod elf;
pub mod files;
mod finding;
pub mod ldso;
pub mod relations;
pub mod release;
pub mod version;

pub use files::is_read;
pub use finding::{Finding, FindingClass, FindingKind, LoadFacts, ReleaseFacts};
