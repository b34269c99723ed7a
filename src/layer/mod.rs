//! Layer contents: reproducible tar + compression for new layers ([`build_layer`]); streaming tar
//! headers ([`scan_headers`]), the file set they add up to ([`Tree`]) and the rebase safety
//! analysis over them ([`safety_findings`]).
//!
//! Paths are canonical everywhere (`etc/passwd`: relative, no `./`, no trailing `/`, never `..`)
//! and must be UTF-8 in layers we build. Unix only (it reads owners, modes and inodes).

mod build;
mod chunks;
mod entries;
mod error;
mod files;
mod from_dir;
mod from_tar;
mod hash;
pub mod path;
mod resolve;
mod safety;
mod scan;
mod summary;
mod tar_header;
mod tree;

pub use build::{build_layer, BuildOptions, BuiltLayer, LayerCompression, LayerInput};
pub use error::LayerError;
pub use files::{build_files_layer, FileEntry};
pub use resolve::{resolve, Link, Lookup, MAX_HOPS};
pub use safety::{is_volatile, safety_findings, Finding, FindingClass, FindingKind};
pub use scan::{scan_headers, EntryInfo, EntryKind};
pub use summary::{summarize, KeptFile, LayerSummary};
pub use tree::Tree;

#[cfg(test)]
mod build_tests;
