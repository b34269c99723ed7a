//! The rebase safety verdict: pure checks over what the layers hold.

mod files;

pub use files::is_read;
