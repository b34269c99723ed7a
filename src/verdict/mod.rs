//! The rebase safety verdict: pure checks over what the layers hold.

pub mod files;
mod finding;
pub mod release;

pub use files::is_read;
pub use finding::{
    Finding, FindingClass, FindingKind, LoadFacts, PackageVersion, RelationFacts, ReleaseFacts,
};
