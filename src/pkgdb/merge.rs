//! The 3-way merge of one database, package by package.
//!
//! For each package (name, plus architecture for dpkg's multi-arch), with `old` the old base's
//! record, `new` the new base's and `app` the application's (each possibly absent):
//! - the application did not touch it (`app == old`, byte for byte): the new base's, which
//!   covers upgrades, additions and removals;
//! - the application changed it and the new base did not (`new == old`): the application's;
//! - both changed it: the application's, because its files are the ones on top; a [`Pin`] when
//!   the two differ.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::{apk, deb822, Db, Format, Record};

/// Where a package's record in the result comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    /// The application left it alone: the new base's record (or its absence).
    NewBase,
    /// Only the application changed it.
    Application,
    /// Both changed it, in the same way.
    Agree,
    /// Both changed it differently; the application's record wins.
    Pinned,
}

/// A package in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageEntry {
    /// The package name.
    pub package: String,
    /// Its architecture; empty when the format has none (apk).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// Its version.
    pub version: String,
}

/// A package whose version changes between what the image had and the result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    /// The package name.
    pub package: String,
    /// Its architecture; empty when the format has none (apk).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// The version the image had.
    pub from: String,
    /// The version the result has.
    pub to: String,
}

/// A package the application changed (installed, upgraded, removed) that the new base changed
/// too: the application's record is kept, and scanners will see its version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// The package name.
    pub package: String,
    /// Its architecture; empty when the format has none (apk).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// `None`: the application removed it.
    pub app_version: Option<String>,
    /// `None`: the new base removed it.
    pub new_base_version: Option<String>,
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The architecture is in the JSON report; a sentence reads better with the name alone.
        let name = &self.package;
        match (&self.app_version, &self.new_base_version) {
            (Some(a), Some(n)) => {
                write!(f, "the application pins {name} {a} over the new base's {n}")
            }
            (Some(a), None) => write!(
                f,
                "the application keeps {name} {a}, which the new base removed"
            ),
            (None, Some(n)) => write!(
                f,
                "the application removed {name}, which the new base has at {n}"
            ),
            (None, None) => write!(f, "{name}: removed by both"),
        }
    }
}

/// The merged database and what changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The file to write.
    pub bytes: Vec<u8>,
    /// Records in it (packages; world entries for `etc/apk/world`).
    pub packages: usize,
    /// Packages whose version differs from the application's copy (what the image had).
    pub changes: Vec<PackageChange>,
    /// In the result, not in the application's copy (added by the new base).
    pub added: Vec<PackageEntry>,
    /// In the application's copy, not in the result (removed by the new base).
    pub removed: Vec<PackageEntry>,
    /// Packages both the application and the new base changed: the application's record is kept.
    pub pins: Vec<Pin>,
}

type Key<'a> = (&'a str, &'a str);

fn by_key(records: &[Record]) -> BTreeMap<Key<'_>, &Record> {
    records.iter().map(|r| (r.key(), r)).collect()
}

fn same(a: Option<&&Record>, b: Option<&&Record>) -> bool {
    a.map(|r| &r.text) == b.map(|r| &r.text)
}

/// Merges the application's database with the old and new base's (each `None` when that image
/// has no such file). All three must be of one format.
pub fn merge(old: Option<&Db>, new: Option<&Db>, app: &Db) -> Merged {
    let format = app.format;
    let empty: [Record; 0] = [];
    let old_r = old.map_or(&empty[..], |d| &d.records);
    let new_r = new.map_or(&empty[..], |d| &d.records);
    let app_r = &app.records[..];

    if format == Format::ApkWorld {
        let world = apk::merge_world(old_r, new_r, app_r);
        let mut bytes = Vec::new();
        for (i, r) in world.iter().enumerate() {
            if i > 0 {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(&r.text);
        }
        bytes.push(b'\n');
        return Merged {
            bytes,
            packages: world.len(),
            changes: Vec::new(),
            added: Vec::new(),
            removed: Vec::new(),
            pins: Vec::new(),
        };
    }

    let (o, n, a) = (by_key(old_r), by_key(new_r), by_key(app_r));
    let mut keys: Vec<Key> = o.keys().chain(n.keys()).chain(a.keys()).copied().collect();
    keys.sort();
    keys.dedup();

    let mut result: BTreeMap<Key, &Record> = BTreeMap::new();
    let mut pins = Vec::new();
    for k in keys {
        let (ro, rn, ra) = (o.get(&k), n.get(&k), a.get(&k));
        let (chosen, resolution) = if same(ra, ro) {
            (rn, Resolution::NewBase)
        } else if same(rn, ro) {
            (ra, Resolution::Application)
        } else if same(ra, rn) {
            (ra, Resolution::Agree)
        } else {
            (ra, Resolution::Pinned)
        };
        if resolution == Resolution::Pinned {
            let version = |r: Option<&&Record>| r.map(|r| r.version.clone());
            // A pin only matters to a changelog when versions differ; a stanza that differs in
            // another field (an `Auto-Installed` flag, a config-file hash) is still the app's.
            if !format.has_versions() || version(ra) != version(rn) {
                pins.push(Pin {
                    package: k.0.to_string(),
                    arch: ra
                        .or(rn)
                        .map_or_else(|| k.1.to_string(), |r| r.arch.clone()),
                    app_version: version(ra),
                    new_base_version: version(rn),
                });
            }
        }
        if let Some(r) = chosen {
            result.insert(k, r);
        }
    }

    let ordered = order(format, new_r, app_r, &result);
    let mut bytes = Vec::new();
    for r in &ordered {
        bytes.extend_from_slice(&r.text);
        bytes.push(b'\n');
    }

    let (mut changes, mut added, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    if format.has_versions() {
        for (k, r) in &result {
            match a.get(k) {
                Some(before) if before.version != r.version => changes.push(PackageChange {
                    package: r.name.clone(),
                    arch: r.arch.clone(),
                    from: before.version.clone(),
                    to: r.version.clone(),
                }),
                Some(_) => {}
                None => added.push(entry(r)),
            }
        }
        for (k, r) in &a {
            if !result.contains_key(k) {
                removed.push(entry(r));
            }
        }
    }
    if !format.has_versions() {
        pins.clear();
    }
    Merged {
        bytes,
        packages: ordered.len(),
        changes,
        added,
        removed,
        pins,
    }
}

fn entry(r: &Record) -> PackageEntry {
    PackageEntry {
        package: r.name.clone(),
        arch: r.arch.clone(),
        version: r.version.clone(),
    }
}

/// The records of the result in the order the tool writes them.
fn order<'a>(
    format: Format,
    new: &'a [Record],
    app: &'a [Record],
    result: &BTreeMap<Key<'a>, &'a Record>,
) -> Vec<&'a Record> {
    let mut records: Vec<&Record> = result.values().copied().collect();
    match format {
        Format::DpkgStatus => {
            let native = deb822::native_arch(records.iter().copied());
            records.sort_by(|a, b| deb822::dpkg_order(a, b, &native));
            records
        }
        Format::ApkInstalled if apk::is_apk_sorted(new) && apk::is_apk_sorted(app) => {
            records.sort_by(|a, b| apk::apk_order(a, b));
            records
        }
        // Tools that keep the file's order and append what is new (apt's extended_states,
        // apk-tools before 2.14): the new base's order, then the application's additions.
        _ => {
            let mut out = Vec::with_capacity(records.len());
            let mut emitted = HashSet::new();
            for r in new.iter().chain(app) {
                if let Some(chosen) = result.get(&r.key()) {
                    if emitted.insert(r.key()) {
                        out.push(*chosen);
                    }
                }
            }
            out
        }
    }
}
