//! Integration tests: the real binary on layouts built by `harness`.

mod append;
mod check;
mod fleet;
mod harness;
mod rebase;
mod safety;
mod verify;
