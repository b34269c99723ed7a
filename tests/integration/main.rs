//! The integration tests: one binary, the real `ocipatch` run on images, with one module per
//! command or subject and [`util`], the support they share (running the binary and the tools,
//! layouts built in code, fixtures, the file-tree snapshot, the registries).
//!
//! - The fast tests (every module but `interop`): layouts built in code by [`util::layout`],
//!   no root needed, a few tools (rpm, bash, man, tar):
//!   `cargo test --test integration -- --skip interop::`.
//! - [`interop`]: real tools judge the output (skopeo, umoci, oci-image-tool, a real
//!   registry, buildah, dpkg, apt, rpm, ld.so); slow, as root:
//!   `cargo test --test integration interop::`.
//!
//! `cargo test` (and scripts/test.sh) runs both.
#![allow(clippy::disallowed_macros)] // test and benchmark output is not image text

mod append;
mod archive;
mod attest;
mod check;
mod cli;
mod errors;
mod fleet;
mod interop;
mod json_schema;
mod pkgdb;
mod pkgdb_links;
mod pkgdb_rpm;
mod rebase;
mod referrers;
mod safety;
mod secrets;
mod util;
mod verify;
