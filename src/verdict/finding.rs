//! One finding of the rebase safety verdict: what kind, how much it matters, where, in words,
//! and, for the kinds that have them, the facts a program can act on.

use serde::Serialize;

use super::relations::Problem;
use super::release::Release;

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingKind {
    /// The application's entry hides a path the new base changed.
    AppOverwritesChangedFile,
    /// The application deletes (or hides under an opaque directory) a path the new base changed.
    AppWhiteoutDeletesChangedPath,
    /// The application relies on a path the old base had and the new base does not.
    AppDependsOnRemovedPath,
    /// The application changed a package the new base changed too (from the package report;
    /// `path` is the package name).
    AppPinsPackage,
    /// A path ocipatch must read (a package database) leads through a link that cannot be
    /// followed inside the image: a loop, a target above the root, or nothing.
    UnresolvablePath,
    /// An accounts file (`etc/passwd`, `group`, `shadow`, `gshadow`) both the application and
    /// the new base changed in ways that conflict (the same entry, or one ID for two names).
    AccountConflict,
    /// The new base is another release of the distribution (or another distribution) than the
    /// one the application's packages were built for; `release` has both.
    ReleaseChange,
    /// A relation of the merged package database is not satisfied (a dependency missing or of
    /// the wrong version, a `Breaks`/`Conflicts` matched); `relation` has the facts.
    PackageRelation,
    /// A file the dynamic loader reads that a rebuild regenerates (`etc/ld.so.cache`):
    /// reconciled, or checked consistent.
    DerivedFile,
    /// An application binary (or one that loads a library the application replaced) needs a
    /// library the result does not have; `load` has the facts.
    UnresolvedLibrary,
    /// A binary needs a symbol version its library in the result does not define (`GLIBC_2.38`
    /// on glibc 2.36); `load` has the facts.
    MissingSymbolVersion,
    /// A binary's program interpreter (`PT_INTERP`) is not in the result.
    MissingInterpreter,
}

/// How much a finding matters. Only `Real` findings fail `--strict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingClass {
    /// A package database (or a file a rebuild regenerates) the rebase reconciled: a note.
    PackageDb,
    /// Logs, caches, lock files, backups a tool keeps of its own state: informational.
    Volatile,
    /// Checked and consistent, or not checkable for a stated reason: informational.
    Info,
    /// Anything else: worth a look before shipping. Fails `--strict`.
    Real,
}

/// The two releases of a [`FindingKind::ReleaseChange`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReleaseFacts {
    /// The old base's release.
    pub from: Release,
    /// The new base's release.
    pub to: Release,
}

/// The facts of the loader findings ([`FindingKind::UnresolvedLibrary`],
/// [`FindingKind::MissingSymbolVersion`], [`FindingKind::MissingInterpreter`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoadFacts {
    /// The binary (or library) that needs it, canonical path.
    pub binary: String,
    /// The soname it needs (`libc.so.6`), or the interpreter's path.
    pub library: String,
    /// The library file it resolved to, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// The symbol version it needs (`GLIBC_2.38`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The highest version of that family the library defines (`GLIBC_2.36`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highest: Option<String>,
}

/// One thing a rebase changes under the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind of change.
    pub kind: FindingKind,
    /// How much it matters.
    pub class: FindingClass,
    /// The path in the image (no leading `/`), or the package name for a package finding.
    pub path: String,
    /// What differs, for humans.
    pub detail: String,
    /// [`FindingKind::ReleaseChange`]: both releases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseFacts>,
    /// [`FindingKind::PackageRelation`]: the package, the relation and the other package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Problem>,
    /// The loader findings: the binary, the library and the version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadFacts>,
}

impl Finding {
    /// A finding with no structured facts.
    pub fn new(
        kind: FindingKind,
        class: FindingClass,
        path: impl Into<String>,
        detail: impl Into<String>,
    ) -> Finding {
        Finding {
            kind,
            class,
            path: path.into(),
            detail: detail.into(),
            release: None,
            relation: None,
            load: None,
        }
    }
}
