//! The rebase safety verdict: pure checks over what the layers hold.

pub mod files;
pub mod release;

pub use files::is_read;
