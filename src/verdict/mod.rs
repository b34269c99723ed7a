//! The rebase safety verdict: pure checks over what the layers hold.

pub mod relations;
pub mod version;
