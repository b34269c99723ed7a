//! One function per user operation: open sources, plan, run the engine, commit to a sink.

pub mod append;
pub mod attest;
pub mod check;
pub mod fleet;
pub mod inspect;
pub(crate) mod layers;
pub(crate) mod load;
pub(crate) mod pkgdb;
pub mod progress;
pub mod rebase;
pub mod referrers;
pub(crate) mod safety;
pub(crate) mod stack;
pub(crate) mod summaries;
pub mod verify;
pub(crate) mod write;

pub use append::{append, AppendOptions, AppendReport};
pub use check::{check, CheckReport};
pub use fleet::Job;
pub use inspect::{inspect, InspectReport};
pub use pkgdb::{default_cache_dir, PackageDbOptions};
pub use progress::{Progress, Silent};
pub use rebase::{rebase, rebase_fleet, RebaseReport, RebaseRun};
pub use safety::SafetyReport;
pub use verify::{verify, VerifyReport};
pub use write::BlobStats;

// The types the reports above are made of (their modules are building blocks, not API).
pub use crate::engine::BlobDigests;
pub use crate::layer::LayerCompression;
pub use crate::pkgdb::{
    BytesRead, DbAction, DbFile, DbLayer, PackageChange, PackageDbReport, PackageEntry, Pin,
};
pub use crate::plan::{ImageReport, LayerSummary};
pub use crate::verdict::files::is_derived;
pub use crate::verdict::relations::{Installed, Problem as RelationProblem, RelationKind};
pub use crate::verdict::release::Release;
pub use crate::verdict::{Finding, FindingClass, FindingKind, LoadFacts, ReleaseFacts};
