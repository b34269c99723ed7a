//! Integration tests: the real binary on layouts built by `util`.

mod append;
mod archive;
mod check;
mod cli;
mod fleet;
mod interop;
mod json_schema;
mod pkgdb;
mod pkgdb_links;
mod pkgdb_rpm;
mod rebase;
mod safety;
mod secrets;
mod util;
mod verify;
