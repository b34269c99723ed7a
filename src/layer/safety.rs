//! Rebase safety: what can go wrong when an application's layers, built on an old base, are put
//! on a new base. Pure: it compares header-only [`Tree`]s and entry lists, never file contents.
//!
//! Definitions:
//! - A path is **changed by the new base** when the new base has it and either the old base did
//!   not (added) or the two headers differ in kind, mode, uid, gid, size, mtime or link target.
//!   Between two directories only kind, mode, uid and gid count: a directory's mtime and size move
//!   whenever its contents do, and its contents are judged path by path.
//! - [`FindingKind::AppOverwritesChangedFile`]: an application entry (not a whiteout) sits at a
//!   path the new base changed, so the application's copy hides the new base's. A directory entry
//!   over a directory only counts when its mode/uid/gid also differ from the new base's (it would
//!   revert the new base's change).
//! - [`FindingKind::AppWhiteoutDeletesChangedPath`]: an application whiteout deletes a path the
//!   new base changed, or a directory under which the new base changed or added paths; an opaque
//!   marker hides paths the new base changed or added below its directory.
//! - [`FindingKind::AppDependsOnRemovedPath`]: an application entry (not a whiteout) whose path
//!   the old base had and the new base does not (the application now re-creates it alone; for a
//!   directory, without the base's contents); or whose parent directory came from the old base, is
//!   gone from the new base and is not created by any application layer (extraction makes it up
//!   with default owner and mode); or a hard link whose target the old base had, the new base
//!   does not, and no application layer provides (extraction fails).

use std::collections::{BTreeMap, BTreeSet};

use super::path;
use super::{EntryInfo, EntryKind, Tree};

/// What a rebase safety finding is about (see the module's definitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
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
}

/// How much a finding matters. Only `Real` findings fail `--strict`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingClass {
    /// A package database the rebase reconciled: a note.
    PackageDb,
    /// Logs, caches, lock files, backups a tool keeps of its own state: informational.
    Volatile,
    /// Anything else: worth a look before shipping. Fails `--strict`.
    Real,
}

/// One thing a rebase changes under the application.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What kind of change.
    pub kind: FindingKind,
    /// How much it matters.
    pub class: FindingClass,
    /// The path in the image (no leading `/`), or the package name for a package finding.
    pub path: String,
    /// What differs, for humans.
    pub detail: String,
}

/// Volatile state: what a build leaves behind that no program relies on. Logs and caches
/// (`var/log/**`, `var/cache/**`, apt's lists), temporary directories, lock files (`**/lock`,
/// `lock-frontend`, `*.lock`), dpkg's backups of its own databases (`var/lib/dpkg/*-old`) and
/// its trigger queue.
pub fn is_volatile(path: &str) -> bool {
    const DIRS: [&str; 7] = [
        "var/log",
        "var/cache",
        "var/tmp",
        "tmp",
        "run",
        "var/lib/apt/lists",
        "var/lib/dpkg/triggers",
    ];
    let name = path::file_name(path);
    DIRS.iter().any(|d| path == *d || path::is_inside(path, d))
        || name == "lock"
        || name.starts_with("lock-")
        || name.ends_with(".lock")
        || (path::parent(path) == Some("var/lib/dpkg") && name.ends_with("-old"))
}

/// All findings, one per (path, kind), sorted by path then kind. `app_layers` are the
/// application's layers (bottom to top) as scanned by [`super::scan_headers`].
pub fn safety_findings(
    old_base: &Tree,
    new_base: &Tree,
    app_layers: &[Vec<EntryInfo>],
) -> Vec<Finding> {
    let bases = Bases {
        old: old_base,
        new: new_base,
    };
    let created: BTreeSet<&str> = app_layers
        .iter()
        .flatten()
        .filter(|e| !matches!(e.kind, EntryKind::Whiteout | EntryKind::OpaqueDir))
        .map(|e| e.path.as_str())
        .collect();
    let mut found = BTreeMap::new();
    let mut report = |path: &str, kind: FindingKind, detail: String| {
        found.entry((path.to_string(), kind)).or_insert(detail);
    };
    for (n, layer) in app_layers.iter().enumerate() {
        for e in layer {
            let where_ = format!("application layer {}", n + 1);
            match e.kind {
                EntryKind::Whiteout => bases.check_whiteout(e, &where_, &mut report),
                EntryKind::OpaqueDir => bases.check_opaque(e, &where_, &mut report),
                _ => {
                    bases.check_overwrite(e, &where_, &mut report);
                    bases.check_removed(e, &where_, &created, &mut report);
                }
            }
        }
    }
    found
        .into_iter()
        .map(|((path, kind), detail)| Finding {
            kind,
            class: if is_volatile(&path) {
                FindingClass::Volatile
            } else {
                FindingClass::Real
            },
            path,
            detail,
        })
        .collect()
}

struct Bases<'a> {
    old: &'a Tree,
    new: &'a Tree,
}

enum Change {
    Added,
    Changed,
}

impl Bases<'_> {
    fn change(&self, path: &str) -> Option<Change> {
        let new = self.new.get(path)?;
        match self.old.get(path) {
            None => Some(Change::Added),
            Some(old) if differs(old, new) => Some(Change::Changed),
            Some(_) => None,
        }
    }

    /// Paths below `dir` the new base changed or added: their count and the first one.
    fn changed_below(&self, dir: &str) -> Option<(usize, String)> {
        let mut changed = self
            .new
            .below(dir)
            .filter(|e| self.change(&e.path).is_some());
        let first = changed.next()?.path.clone();
        Some((1 + changed.count(), first))
    }

    fn check_overwrite(
        &self,
        e: &EntryInfo,
        at: &str,
        report: &mut impl FnMut(&str, FindingKind, String),
    ) {
        let Some(change) = self.change(&e.path) else {
            return;
        };
        let new = self
            .new
            .get(&e.path)
            .expect("changed paths are in the new base");
        if e.kind == EntryKind::Dir && new.kind == EntryKind::Dir && !owner_or_mode_differ(e, new) {
            return;
        }
        let what = match change {
            Change::Added => "adds",
            Change::Changed => "changes",
        };
        report(
            &e.path,
            FindingKind::AppOverwritesChangedFile,
            format!(
                "the new base {what} {}; {at} replaces it with its own {:?}",
                e.path, e.kind
            ),
        );
    }

    fn check_whiteout(
        &self,
        e: &EntryInfo,
        at: &str,
        report: &mut impl FnMut(&str, FindingKind, String),
    ) {
        let kind = FindingKind::AppWhiteoutDeletesChangedPath;
        match self.change(&e.path) {
            Some(Change::Added) => report(
                &e.path,
                kind,
                format!("{at} deletes {}, which the new base adds back", e.path),
            ),
            Some(Change::Changed) => report(
                &e.path,
                kind,
                format!("{at} deletes {}, which the new base changes", e.path),
            ),
            None => {
                if let Some((count, first)) = self.changed_below(&e.path) {
                    report(
                        &e.path,
                        kind,
                        format!("{at} deletes {}, under which the new base changes or adds {count} path(s), e.g. {first}", e.path),
                    );
                }
            }
        }
    }

    fn check_opaque(
        &self,
        e: &EntryInfo,
        at: &str,
        report: &mut impl FnMut(&str, FindingKind, String),
    ) {
        if let Some((count, first)) = self.changed_below(&e.path) {
            report(
                &e.path,
                FindingKind::AppWhiteoutDeletesChangedPath,
                format!("{at} makes {} opaque, hiding {count} path(s) the new base changes or adds, e.g. {first}", display(&e.path)),
            );
        }
    }

    fn check_removed(
        &self,
        e: &EntryInfo,
        at: &str,
        created: &BTreeSet<&str>,
        report: &mut impl FnMut(&str, FindingKind, String),
    ) {
        let kind = FindingKind::AppDependsOnRemovedPath;
        let removed = |p: &str| self.old.contains(p) && !self.new.contains(p);
        if removed(&e.path) {
            report(
                &e.path,
                kind,
                format!(
                    "the new base removes {}; {at} re-creates it on its own as a {:?}",
                    e.path, e.kind
                ),
            );
        }
        for dir in path::ancestors(&e.path) {
            if removed(dir) && !created.contains(dir) {
                report(
                    &e.path,
                    kind,
                    format!("its parent {dir} came from the old base and the new base removes it; {at} does not create it"),
                );
                break;
            }
        }
        if let (EntryKind::HardLink, Some(target)) = (e.kind, e.link_target.as_deref()) {
            if removed(target) && !created.contains(target) {
                report(
                    &e.path,
                    kind,
                    format!("{at} hard-links it to {target}, which the new base removes"),
                );
            }
        }
    }
}

fn differs(old: &EntryInfo, new: &EntryInfo) -> bool {
    if old.kind == EntryKind::Dir && new.kind == EntryKind::Dir {
        owner_or_mode_differ(old, new)
    } else {
        old.fingerprint() != new.fingerprint()
    }
}

fn owner_or_mode_differ(a: &EntryInfo, b: &EntryInfo) -> bool {
    (a.mode, a.uid, a.gid) != (b.mode, b.uid, b.gid)
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "the root"
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tree::tests::{dir, entry, file};

    fn tree(entries: Vec<EntryInfo>) -> Tree {
        [entries].into_iter().collect()
    }

    fn kinds(findings: &[Finding]) -> Vec<(&str, FindingKind)> {
        findings.iter().map(|f| (f.path.as_str(), f.kind)).collect()
    }

    fn bases() -> (Tree, Tree) {
        let old = tree(vec![
            dir("etc"),
            file("etc/ssl.cnf", 10),
            file("etc/same", 1),
            dir("usr"),
            dir("usr/lib"),
            file("usr/lib/libssl.so", 100),
            dir("opt/legacy"),
            file("opt/legacy/tool", 5),
        ]);
        let new = tree(vec![
            EntryInfo {
                mtime: 99, // a directory's mtime alone is no change
                ..dir("etc")
            },
            file("etc/ssl.cnf", 12),
            file("etc/same", 1),
            file("etc/motd", 3),
            dir("usr"),
            dir("usr/lib"),
            file("usr/lib/libssl.so", 120),
            file("usr/lib/libnew.so", 7),
        ]);
        (old, new)
    }

    #[test]
    fn app_overwriting_a_changed_or_added_file_is_reported() {
        let (old, new) = bases();
        let app = vec![vec![
            dir("etc"),
            file("etc/ssl.cnf", 11),
            file("etc/motd", 1),
            file("etc/same", 2),
            file("etc/app.conf", 1),
        ]];
        let found = safety_findings(&old, &new, &app);
        assert_eq!(
            kinds(&found),
            [
                ("etc/motd", FindingKind::AppOverwritesChangedFile),
                ("etc/ssl.cnf", FindingKind::AppOverwritesChangedFile),
            ]
        );
        assert!(found[0].detail.contains("adds"), "{}", found[0].detail);
        assert!(found[1].detail.contains("changes"), "{}", found[1].detail);
    }

    #[test]
    fn app_dir_entry_reverting_a_base_mode_change_is_reported() {
        let (old, mut new) = bases();
        new.apply(&[EntryInfo {
            mode: 0o750,
            ..dir("usr/lib")
        }]);
        let found = safety_findings(&old, &new, &[vec![dir("usr/lib")]]);
        assert_eq!(
            kinds(&found),
            [("usr/lib", FindingKind::AppOverwritesChangedFile)]
        );
    }

    #[test]
    fn app_whiteouts_and_opaque_dirs_over_changed_paths_are_reported() {
        let (old, new) = bases();
        let app = vec![
            vec![
                entry("etc/ssl.cnf", EntryKind::Whiteout),
                entry("etc/same", EntryKind::Whiteout),
            ],
            vec![entry("usr/lib", EntryKind::Whiteout)],
            vec![
                entry("etc", EntryKind::OpaqueDir),
                entry("etc/motd", EntryKind::Whiteout),
            ],
            vec![entry("opt/legacy", EntryKind::Whiteout)],
        ];
        let found = safety_findings(&old, &new, &app);
        assert_eq!(
            kinds(&found),
            [
                ("etc", FindingKind::AppWhiteoutDeletesChangedPath),
                ("etc/motd", FindingKind::AppWhiteoutDeletesChangedPath),
                ("etc/ssl.cnf", FindingKind::AppWhiteoutDeletesChangedPath),
                ("usr/lib", FindingKind::AppWhiteoutDeletesChangedPath),
            ]
        );
        assert!(found[0].detail.contains("2 path(s)"), "{}", found[0].detail);
        assert!(found[1].detail.contains("adds back"), "{}", found[1].detail);
        assert!(
            found[3].detail.contains("e.g. usr/lib/libnew.so"),
            "{}",
            found[3].detail
        );
    }

    #[test]
    fn app_entries_relying_on_removed_paths_are_reported() {
        let (old, new) = bases();
        let app = vec![vec![
            // Parent `opt/legacy` is neither in the new base nor created by the app.
            file("opt/legacy/plugin", 1),
            // The app re-creates a file the new base removed.
            file("opt/legacy/tool", 6),
            EntryInfo {
                link_target: Some("opt/legacy/tool".into()),
                ..entry("bin/tool", EntryKind::HardLink)
            },
            // Created by the app itself: no finding for its children.
            dir("srv"),
            file("srv/data", 1),
        ]];
        let found = safety_findings(&old, &new, &app);
        assert_eq!(
            kinds(&found),
            [
                ("opt/legacy/plugin", FindingKind::AppDependsOnRemovedPath),
                ("opt/legacy/tool", FindingKind::AppDependsOnRemovedPath),
            ]
        );
        assert!(
            found[0].detail.contains("parent opt/legacy"),
            "{}",
            found[0].detail
        );
        // The hard link's target is provided by the app, so the link is fine.
        let without_copy = vec![vec![EntryInfo {
            link_target: Some("opt/legacy/tool".into()),
            ..entry("bin/tool", EntryKind::HardLink)
        }]];
        let found = safety_findings(&old, &new, &without_copy);
        assert_eq!(
            kinds(&found),
            [("bin/tool", FindingKind::AppDependsOnRemovedPath)]
        );
        assert!(
            found[0].detail.contains("hard-links"),
            "{}",
            found[0].detail
        );
    }

    #[test]
    fn findings_are_sorted_by_path_then_kind_and_deduplicated() {
        let (old, mut new) = bases();
        new.apply(&[file("opt/legacy/tool", 1)]);
        let app = vec![
            vec![
                file("etc/ssl.cnf", 1),
                entry("opt/legacy/tool", EntryKind::Whiteout),
            ],
            vec![
                file("etc/ssl.cnf", 2),
                entry("etc/ssl.cnf", EntryKind::Whiteout),
            ],
        ];
        let found = safety_findings(&old, &new, &app);
        assert_eq!(
            kinds(&found),
            [
                ("etc/ssl.cnf", FindingKind::AppOverwritesChangedFile),
                ("etc/ssl.cnf", FindingKind::AppWhiteoutDeletesChangedPath),
                (
                    "opt/legacy/tool",
                    FindingKind::AppWhiteoutDeletesChangedPath
                ),
            ]
        );
        assert!(safety_findings(&old, &new, &[]).is_empty());
    }
}
