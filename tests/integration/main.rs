//! Integration tests: the real binary on layouts built by `harness`.

mod archive;
mod harness;
mod rebase;
mod verify;
