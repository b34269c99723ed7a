//! The rebase safety verdict: pure checks over small per-layer summaries.

pub mod elf;
pub mod ldso;
