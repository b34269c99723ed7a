//! The package report of one platform, as `--json` and the summary show it.

use serde::Serialize;

use super::{PackageChange, PackageEntry, Pin};
use crate::model::Digest;

/// Compressed bytes read from each source to find the databases (0 when the cache knew).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BytesRead {
    /// From the application image (its own layers).
    pub image: u64,
    /// From the new base.
    pub new_base: u64,
}

/// What happened to one database file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DbAction {
    /// Merged; the result goes into the package-database layer.
    Reconciled,
    /// Merged, and the application's copy already was the result.
    Unchanged,
    /// The application deleted it; left deleted.
    DeletedByApplication,
    /// Read for the report only (dpkg `status.d/` files of distroless images).
    ReportOnly,
    /// A format ocipatch cannot rewrite (rpm BerkeleyDB, NDB) that the new base changed: the
    /// application's stale copy stays on top, and its safety finding stays real.
    NotReconciled,
    /// A link of the application's at the database path cannot be followed inside the image
    /// (it loops, climbs above the root, or leads nowhere): nothing read or written, and a
    /// real safety finding names the link.
    Unresolvable,
}

/// One package-database file and what was done with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DbFile {
    /// Its path in the image, without a leading `/` (e.g. `var/lib/dpkg/status`).
    pub path: String,
    /// The file that path leads to through symbolic or hard links, when it is another one
    /// (the merged database is written there; the link stays).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// What was done with it.
    pub action: DbAction,
    /// Packages in the resulting database (versioned formats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<usize>,
}

/// The new layer, when one is written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DbLayer {
    /// The compressed blob's digest.
    pub digest: Digest,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The compressed blob's size in bytes.
    pub size: u64,
}

/// The package report of one platform: the changelog a security team wants.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PackageDbReport {
    /// Every database file found.
    pub databases: Vec<DbFile>,
    /// The package-database layer written on top; `None` when nothing needed writing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<DbLayer>,
    /// Packages whose version changes: what the image had, what the result has.
    pub changes: Vec<PackageChange>,
    /// Added by the new base.
    pub added: Vec<PackageEntry>,
    /// Removed by the new base.
    pub removed: Vec<PackageEntry>,
    /// Packages the application changed that the new base changed too (a safety finding).
    pub pinned: Vec<Pin>,
    /// The earlier package-database layer on top of the image, replaced by this one.
    pub replaced_layer: Option<Digest>,
    /// What finding the databases cost.
    pub bytes_read: BytesRead,
}
