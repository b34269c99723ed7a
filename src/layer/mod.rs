//! Layer contents: reproducible tar + compression for new layers ([`build_layer`]); streaming tar
//! headers ([`scan_headers`]), the file set they add up to ([`Tree`]) and the rebase safety
//! analysis over them ([`safety_findings`]).
//!
//! Paths are canonical everywhere (`etc/passwd`: relative, no `./`, no trailing `/`, never `..`)
//! and must be UTF-8 in layers we build. Unix only (it reads owners, modes and inodes).

mod error;
pub mod path;
mod safety;
mod scan;
mod tar_header;
mod tree;

pub use error::LayerError;
pub use safety::{safety_findings, Finding, FindingKind};
pub use scan::{scan_headers, EntryInfo, EntryKind};
pub use tree::Tree;
