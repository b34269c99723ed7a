//! The rebase safety verdict: pure checks over what the layers hold.

pub mod files;
mod finding;
pub mod relations;
pub mod release;
pub mod version;

pub use files::is_read;
pub use finding::{Finding, FindingClass, FindingKind, LoadFacts, ReleaseFacts};
