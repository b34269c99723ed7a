//! The one test-support module: every test module of the binary uses `crate::util::*`.
//!
//! - [`cmd`]: the one way to run the binary under test ([`ocipatch`], a clean environment)
//!   and the tools ([`cmd()`]), with a deadline and failure messages that show the command,
//!   its directory and environment, its output and a listing;
//! - [`digest`]: the one SHA-256 helper; [`media`]: media types and annotation keys;
//! - [`layout`]: layouts built in code ([`Layer`], [`Image`], [`Layout`], [`scenario`]) and
//!   read back; [`fixture`]: layouts made by real builders (testdata, fixture scripts) and
//!   unpacked with umoci; [`tree`]: the one file-tree snapshot;
//! - [`tools`]: [`require_tools`] (a missing tool fails, never skips) and [`chroot_run`];
//! - [`registry`]: a real registry (`docker-registry`); [`fake`]: a small fake server for the
//!   faults a real one cannot produce.

pub mod cmd;
pub mod digest;
pub mod fake;
pub mod fixture;
pub mod layout;
pub mod media;
pub mod registry;
pub mod tools;
pub mod tree;

pub use cmd::*;
pub use digest::*;
pub use fixture::*;
pub use layout::*;
pub use media::*;
pub use tools::*;
pub use tree::*;
