//! Package databases, as scanners (Trivy, Grype, Clair) and the package managers read them:
//! dpkg's `var/lib/dpkg/status` (and the per-package `status.d/` files of distroless images),
//! apt's `var/lib/apt/extended_states`, apk's `lib/apk/db/installed` and `etc/apk/world`.
//!
//! PURE: parse ([`parse`]), 3-way merge by package (`merge`) and write, in the tool's own
//! order and format. `ops::pkgdb` decides which layers to read; nothing here touches a file.
//!
//! Why: an application built with `apt-get install` carries a full copy of the database in its
//! own layer. After a rebase that copy lies on top of the new base's and still lists the old
//! base's versions, so every scanner reports the rebased image as unpatched. The merge writes
//! what a rebuild on the new base would have written.

pub mod accounts;
mod apk;
pub(crate) mod deb822;
mod merge;
mod report;
pub mod rpm;
pub mod rpmheader;
pub mod rpmschema;

use std::fmt;

use serde::Serialize;

pub use merge::{merge, Merged, PackageChange, PackageEntry, Pin, Resolution};
pub use report::{BytesRead, DbAction, DbFile, DbLayer, PackageDbReport};

/// `created_by` of the history entry of the layer that holds the reconciled databases. A rebase
/// of an image whose top layer has it replaces that layer instead of stacking another.
pub const CREATED_BY: &str = "ocipatch rebase: package database";

/// Where distroless images keep one dpkg stanza per package.
pub const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d";

/// Databases files are capped: a real dpkg status is a few MB, apk's installed db (which lists
/// every file) some tens of MB on a big image, rpm's `rpmdb.sqlite` 5-100 MB (a full Fedora
/// workstation). An rpm reconciliation holds the three inputs and the output in memory, so at
/// most about 4 × this cap.
pub const MAX_DB_SIZE: u64 = 128 << 20;

/// rpm's databases. `Sqlite` is reconciled; BerkeleyDB (RHEL/UBI 8, CentOS 7, Amazon Linux 2)
/// and NDB (SUSE) are detected and refused: the report says so and a stale one stays a real
/// safety finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RpmDbKind {
    /// `rpmdb.sqlite` (rpm 4.16+): reconciled.
    Sqlite,
    /// `Packages` (BerkeleyDB): detected and refused.
    BerkeleyDb,
    /// `Packages.db` (NDB): detected and refused.
    Ndb,
}

impl RpmDbKind {
    /// Where each kind lives (no leading `/`). `usr/lib/sysimage/rpm` is the current location
    /// (Fedora 36+, openSUSE), with `var/lib/rpm` a symlink to it: layers then hold the file
    /// under its real path.
    pub const PATHS: [(&'static str, RpmDbKind); 5] = [
        ("var/lib/rpm/rpmdb.sqlite", RpmDbKind::Sqlite),
        ("usr/lib/sysimage/rpm/rpmdb.sqlite", RpmDbKind::Sqlite),
        ("var/lib/rpm/Packages", RpmDbKind::BerkeleyDb),
        ("var/lib/rpm/Packages.db", RpmDbKind::Ndb),
        ("usr/lib/sysimage/rpm/Packages.db", RpmDbKind::Ndb),
    ];

    /// The kind of rpm database at `path` (no leading `/`); `None` when it is not one.
    pub fn for_path(path: &str) -> Option<RpmDbKind> {
        RpmDbKind::PATHS
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, k)| *k)
    }
}

/// sqlite's write-ahead log beside an `rpmdb.sqlite`: transactions not yet in the main file.
pub fn rpm_wal_path(db: &str) -> String {
    format!("{db}-wal")
}

/// A package database file that ocipatch reconciles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `var/lib/dpkg/status`
    DpkgStatus,
    /// `var/lib/apt/extended_states` (which packages were installed automatically)
    AptExtendedStates,
    /// `lib/apk/db/installed`
    ApkInstalled,
    /// `etc/apk/world` (the packages asked for by name)
    ApkWorld,
}

impl Format {
    /// Every format, in the order they are reported.
    pub const ALL: [Format; 4] = [
        Format::DpkgStatus,
        Format::AptExtendedStates,
        Format::ApkInstalled,
        Format::ApkWorld,
    ];

    /// The file's canonical path in an image (no leading `/`).
    pub fn path(self) -> &'static str {
        match self {
            Format::DpkgStatus => "var/lib/dpkg/status",
            Format::AptExtendedStates => "var/lib/apt/extended_states",
            Format::ApkInstalled => "lib/apk/db/installed",
            Format::ApkWorld => "etc/apk/world",
        }
    }

    /// The format of the file at `path` (no leading `/`, as [`Format::path`] gives it); `None` when
    /// it is not a database ocipatch reconciles.
    pub fn for_path(path: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.path() == path)
    }

    /// Whether records carry package versions (worth a changelog).
    pub fn has_versions(self) -> bool {
        matches!(self, Format::DpkgStatus | Format::ApkInstalled)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// Whether a layer path is part of a package database ocipatch reads.
pub fn is_watched(path: &str) -> bool {
    Format::for_path(path).is_some()
        || is_status_d_file(path)
        || RpmDbKind::for_path(path).is_some()
        || path
            .strip_suffix("-wal")
            .and_then(RpmDbKind::for_path)
            .is_some()
}

/// A per-package stanza file of distroless images (`var/lib/dpkg/status.d/NAME`).
pub fn is_status_d_file(path: &str) -> bool {
    path.strip_prefix(DPKG_STATUS_D)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// One package (or, in `etc/apk/world`, one requested dependency) in a database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The package name (`Package:` / `P:`); for world entries, the name asked for.
    pub name: String,
    /// Architecture (`Architecture:` / `A:`); empty when the record has none.
    pub arch: String,
    /// `Version:` / `V:`; for world entries, the constraint as written (`>=1.2`).
    pub version: String,
    /// dpkg: `Multi-Arch: same`, which makes the architecture part of the name.
    pub multi_arch_same: bool,
    /// Whether the architecture is part of the key (dpkg, apt: one name can be installed for
    /// several architectures); apk installs one package per name.
    pub arch_in_key: bool,
    /// The record exactly as the tool wrote it: a stanza's lines, each ending in `\n`, without
    /// the blank line that separates stanzas; a world entry's token.
    pub text: Vec<u8>,
    /// 1-based line where the record starts, for errors.
    pub line: usize,
}

impl Record {
    /// Records are merged by this key: name plus architecture (multi-arch dpkg packages share a
    /// name); apk has one package per name.
    pub fn key(&self) -> (&str, &str) {
        (&self.name, if self.arch_in_key { &self.arch } else { "" })
    }
}

/// A parsed database: its records in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Db {
    /// Which kind of file it was parsed as.
    pub format: Format,
    /// Its records, in file order.
    pub records: Vec<Record>,
}

/// Why a database does not parse. The caller adds the file and layer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line of the problem.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl ParseError {
    fn new(line: usize, reason: impl Into<String>) -> ParseError {
        ParseError {
            line,
            reason: reason.into(),
        }
    }
}

/// Parses one database file. Strict: non-UTF-8 bytes, malformed lines, records without a name
/// and duplicate packages are errors, because a database that does not parse must never turn
/// into a wrong one.
pub fn parse(format: Format, bytes: &[u8]) -> Result<Db, ParseError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        return Err(ParseError::new(line, "not UTF-8"));
    }
    let records = match format {
        Format::DpkgStatus | Format::AptExtendedStates => deb822::parse(bytes)?,
        Format::ApkInstalled => apk::parse_installed(bytes)?,
        Format::ApkWorld => apk::parse_world(bytes)?,
    };
    let mut seen = std::collections::HashMap::new();
    for r in &records {
        if let Some(first) = seen.insert(r.key(), r.line) {
            let arch = if r.arch.is_empty() {
                String::new()
            } else {
                format!(":{}", r.arch)
            };
            return Err(ParseError::new(
                r.line,
                format!(
                    "package {}{arch} is listed twice (first at line {first})",
                    r.name
                ),
            ));
        }
    }
    Ok(Db { format, records })
}

/// A stanza as both line formats (dpkg's deb822, apk's `X:value`) lay them out: lines up to a
/// blank line. `text` keeps the exact bytes (every line with its `\n`, without the blank line).
struct RawStanza<'a> {
    /// 1-based line of its first line.
    line: usize,
    text: &'a str,
    /// (1-based line, content without its `\n`).
    lines: Vec<(usize, &'a str)>,
}

/// Splits a database file into stanzas separated by blank lines. A last line without its
/// newline is an error: the tools always end the file with one.
fn split_stanzas(bytes: &[u8]) -> Result<Vec<RawStanza<'_>>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::new(1, "not UTF-8"))?;
    let mut out = Vec::new();
    // The stanza being read, and the byte offset where it starts.
    let mut current: Option<(RawStanza, usize)> = None;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (lineno, start) = (i + 1, offset);
        offset += line.len();
        let content = line.strip_suffix('\n').unwrap_or(line);
        if content.is_empty() {
            if let Some((mut stanza, from)) = current.take() {
                stanza.text = &text[from..start];
                out.push(stanza);
            }
            continue;
        }
        if !line.ends_with('\n') {
            return Err(ParseError::new(
                lineno,
                "the file ends in the middle of a line (no final newline)",
            ));
        }
        let (stanza, _) = current.get_or_insert_with(|| {
            let stanza = RawStanza {
                line: lineno,
                text: "",
                lines: Vec::new(),
            };
            (stanza, start)
        });
        stanza.lines.push((lineno, content));
    }
    if let Some((mut stanza, from)) = current {
        stanza.text = &text[from..];
        out.push(stanza);
    }
    Ok(out)
}

/// The package list of a database for reports: (name, arch, version), versioned formats only.
pub fn packages(db: &Db) -> Vec<PackageEntry> {
    if !db.format.has_versions() {
        return Vec::new();
    }
    db.records
        .iter()
        .map(|r| PackageEntry {
            package: r.name.clone(),
            arch: r.arch.clone(),
            version: r.version.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
