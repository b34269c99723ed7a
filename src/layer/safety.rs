//! Rebase safety: what can go wrong when an application's layers, built on an old base, are put
//! on a new base. Pure: it compares [`Tree`]s and entry lists whose regular files carry the
//! SHA-256 of their contents ([`super::summarize`]); it never reads contents itself.
//!
//! Definitions:
//! - A path is **changed by the new base** when the new base has it and either the old base did
//!   not (added) or the two differ in kind, mode, uid, gid, link target or contents. A file's
//!   mtime is not a change (every rebuild of a base moves it), and neither is its size alone:
//!   when both contents are known they decide, and only entries from a header-only scan fall
//!   back to size and mtime. Between two directories only kind, mode, uid and gid count: a
//!   directory's mtime and size move whenever its contents do, and its contents are judged path
//!   by path.
//! - [`FindingKind::AppOverwritesChangedFile`]: an application entry (not a whiteout) sits at a
//!   path the new base changed, so the application's copy hides the new base's, and the
//!   application's copy is not the new base's (same contents, and the new base's mode and owner
//!   or the application's own). When the application's copy is byte for byte the old base's (a
//!   copy a `chown -R` or `chmod` made), the finding says so: it is exactly the new base's change
//!   that is lost. A directory entry over a directory only counts when its mode/uid/gid also
//!   differ from the new base's (it would revert the new base's change).
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

pub use crate::verdict::{Finding, FindingClass, FindingKind};

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
        .map(|((path, kind), detail)| {
            let class = if is_volatile(&path) {
                FindingClass::Volatile
            } else {
                FindingClass::Real
            };
            Finding::new(kind, class, path, detail)
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
        let Some(new) = self.new.get(&e.path) else {
            return;
        };
        if e.kind == EntryKind::Dir && new.kind == EntryKind::Dir && !owner_or_mode_differ(e, new) {
            return;
        }
        let old = self.old.get(&e.path);
        if same_contents(e, new) {
            // The application's copy holds what the new base holds: nothing is hidden, unless
            // it puts back the old base's mode or owner over a change of the new base's.
            let reverts =
                old.is_some_and(|o| owner_or_mode_differ(o, new) && !owner_or_mode_differ(e, o));
            if reverts {
                report(
                    &e.path,
                    FindingKind::AppOverwritesChangedFile,
                    format!(
                        "the new base changes the mode or owner of {}; {at}'s copy has the old base's ({:o} {}:{}, the new base has {:o} {}:{})",
                        e.path, e.mode, e.uid, e.gid, new.mode, new.uid, new.gid
                    ),
                );
            }
            return;
        }
        let detail = match (change, old) {
            (Change::Changed, Some(o)) if same_contents(e, o) => format!(
                "{at}'s copy of {} is the old base's file byte for byte (a copy that a chown or chmod makes), and it now hides the new base's change to it",
                e.path
            ),
            (Change::Added, _) => format!(
                "the new base adds {}; {at} replaces it with its own {}",
                e.path,
                kind_name(e.kind)
            ),
            _ => format!(
                "the new base changes {}; {at} replaces it with its own {}",
                e.path,
                kind_name(e.kind)
            ),
        };
        report(&e.path, FindingKind::AppOverwritesChangedFile, detail);
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
        owner_or_mode_differ(old, new) || !same_contents(old, new)
    }
}

/// A hard link whose contents are known is, for comparing, the regular file it names.
fn file_kind(e: &EntryInfo) -> EntryKind {
    match e.kind {
        EntryKind::HardLink if e.content.is_some() => EntryKind::File,
        k => k,
    }
}

/// Same kind and the same thing inside: contents for files (size and mtime when a header-only
/// scan did not hash them), target for links, device numbers aside.
fn same_contents(a: &EntryInfo, b: &EntryInfo) -> bool {
    if file_kind(a) != file_kind(b) {
        return false;
    }
    match (file_kind(a), &a.content, &b.content) {
        (EntryKind::File, Some(x), Some(y)) => x == y,
        (EntryKind::File, _, _) => (a.size, a.mtime) == (b.size, b.mtime),
        (EntryKind::Symlink | EntryKind::HardLink, _, _) => a.link_target == b.link_target,
        _ => true,
    }
}

fn kind_name(k: EntryKind) -> &'static str {
    match k {
        EntryKind::File => "file",
        EntryKind::Dir => "directory",
        EntryKind::Symlink => "symbolic link",
        EntryKind::HardLink => "hard link",
        EntryKind::Whiteout => "whiteout",
        EntryKind::OpaqueDir => "opaque marker",
        EntryKind::Other => "device or FIFO",
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

    /// A regular file with hashed contents and its own mtime.
    fn hashed(path: &str, content: &[u8], mtime: u64) -> EntryInfo {
        EntryInfo {
            content: Some(crate::model::Digest::of(content)),
            size: content.len() as u64,
            mtime,
            ..file(path, 0)
        }
    }

    #[test]
    fn contents_decide_not_mtimes() {
        let old = tree(vec![
            hashed("etc/apt/sources.list", b"deb x bookworm main\n", 1),
            hashed("etc/ssl/openssl.cnf", b"v1", 1),
            hashed("usr/bin/su", b"su", 1),
        ]);
        let new = tree(vec![
            hashed("etc/apt/sources.list", b"deb x bookworm main\n", 2),
            hashed("etc/ssl/openssl.cnf", b"v2", 2),
            EntryInfo {
                mode: 0o755, // the update drops setuid
                ..hashed("usr/bin/su", b"su", 2)
            },
        ]);
        // The app rewrote sources.list with the same bytes; carried a chmod-only copy of
        // openssl.cnf; and has the new base's contents of su but the old mode.
        let app = vec![vec![
            hashed("etc/apt/sources.list", b"deb x bookworm main\n", 3),
            EntryInfo {
                mode: 0o600,
                ..hashed("etc/ssl/openssl.cnf", b"v1", 3)
            },
            EntryInfo {
                mode: 0o644,
                ..hashed("usr/bin/su", b"su", 3)
            },
        ]];
        let found = safety_findings(&old, &new, &app);
        assert_eq!(
            kinds(&found),
            [
                ("etc/ssl/openssl.cnf", FindingKind::AppOverwritesChangedFile),
                ("usr/bin/su", FindingKind::AppOverwritesChangedFile),
            ]
        );
        assert!(
            found[0]
                .detail
                .contains("is the old base's file byte for byte"),
            "{}",
            found[0].detail
        );
        assert!(
            found[1].detail.contains("mode or owner"),
            "{}",
            found[1].detail
        );
        // The app's copy is the new base's: nothing hidden.
        let app = vec![vec![hashed("etc/ssl/openssl.cnf", b"v2", 9)]];
        assert!(safety_findings(&old, &new, &app).is_empty());
        // The app changed it its own way: a conflict, in the usual words.
        let app = vec![vec![hashed("etc/ssl/openssl.cnf", b"mine", 9)]];
        let found = safety_findings(&old, &new, &app);
        assert!(found[0]
            .detail
            .contains("the new base changes etc/ssl/openssl.cnf"));
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
