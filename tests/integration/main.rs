//! Integration tests: the real binary on layouts built by `harness`.

mod append;
mod archive;
mod check;
mod cli;
mod errors;
#[path = "../registry/fake.rs"]
mod fake;
mod fleet;
mod harness;
mod pkgdb;
mod pkgdb_links;
mod pkgdb_rpm;
mod rebase;
mod safety;
mod secrets;
mod verify;
