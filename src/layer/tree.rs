//! The file set that results from applying layers in order, built from headers alone.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{EntryInfo, EntryKind};

/// Canonical path → the header that put it there (never a whiteout or opaque marker), and the
/// index of the layer it came from (the order layers were applied in, from 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, (EntryInfo, usize)>,
    /// Paths a whiteout or opaque marker removed (and no later layer put back), with the
    /// layer of the marker.
    removed: BTreeMap<String, usize>,
    applied: usize,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Apply one layer. As the layer spec says, its whiteouts and opaque markers act on the lower
    /// layers only, so they are applied first; then its entries are added. An entry replaces what
    /// was at its path, and everything below it unless both old and new are directories (then the
    /// directory keeps its contents and takes the new header).
    pub fn apply(&mut self, layer: &[EntryInfo]) {
        let index = self.applied;
        self.applied += 1;
        for e in layer {
            let gone = match e.kind {
                EntryKind::Whiteout => self.remove_all(&e.path),
                EntryKind::OpaqueDir => self.remove_below(&e.path),
                _ => continue,
            };
            for p in gone {
                self.removed.insert(p, index);
            }
        }
        for e in layer {
            if matches!(e.kind, EntryKind::Whiteout | EntryKind::OpaqueDir) {
                continue;
            }
            let both_dirs = e.kind == EntryKind::Dir
                && self
                    .entries
                    .get(&e.path)
                    .is_some_and(|(old, _)| old.kind == EntryKind::Dir);
            if !both_dirs {
                self.remove_below(&e.path);
            }
            self.removed.remove(&e.path);
            self.entries.insert(e.path.clone(), (e.clone(), index));
        }
    }

    /// The entry at `path` (canonical: no leading `/`, no trailing `/`).
    pub fn get(&self, path: &str) -> Option<&EntryInfo> {
        self.entries.get(path).map(|(e, _)| e)
    }

    /// The index of the layer (in the order applied, from 0) whose entry is at `path`.
    pub fn layer_of(&self, path: &str) -> Option<usize> {
        self.entries.get(path).map(|(_, l)| *l)
    }

    /// How many layers were applied.
    pub fn layers(&self) -> usize {
        self.applied
    }

    /// Whether the tree has an entry at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// All paths, in byte order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Every entry, in path order.
    pub fn entries(&self) -> impl Iterator<Item = &EntryInfo> {
        self.entries.values().map(|(e, _)| e)
    }

    /// Entries strictly below `dir` (`""`: the root, so everything). Paths starting with `dir/`
    /// are contiguous in byte order, so this is one range scan.
    pub fn below<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a EntryInfo> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
            .map(|(_, (e, _))| e)
            .take_while(move |e| e.path.starts_with(&prefix))
    }

    /// How many entries the tree holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The layer (in the order applied, from 0) whose whiteout or opaque marker removed what a
    /// lower layer had at `path`; `None` when nothing was removed there (or it was put back).
    /// The one rule for "deleted": [`Tree::apply`]'s.
    pub fn deleted_by(&self, path: &str) -> Option<usize> {
        self.removed.get(path).copied()
    }

    fn remove_all(&mut self, path: &str) -> Vec<String> {
        let mut gone = self.remove_below(path);
        if self.entries.remove(path).is_some() {
            gone.push(path.to_string());
        }
        gone
    }

    /// Removes everything strictly below `dir`; returns what it removed.
    fn remove_below(&mut self, dir: &str) -> Vec<String> {
        let doomed: Vec<String> = self.below(dir).map(|e| e.path.clone()).collect();
        for p in &doomed {
            self.entries.remove(p);
        }
        doomed
    }
}

impl FromIterator<Vec<EntryInfo>> for Tree {
    /// Apply layers bottom to top.
    fn from_iter<I: IntoIterator<Item = Vec<EntryInfo>>>(layers: I) -> Tree {
        let mut tree = Tree::new();
        for layer in layers {
            tree.apply(&layer);
        }
        tree
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-made entry: mode 0644 (dirs 0755), root-owned, mtime 1.
    pub(crate) fn entry(path: &str, kind: EntryKind) -> EntryInfo {
        EntryInfo {
            path: path.to_string(),
            kind,
            mode: if kind == EntryKind::Dir { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 1,
            link_target: None,
            content: None,
        }
    }

    pub(crate) fn file(path: &str, size: u64) -> EntryInfo {
        EntryInfo {
            size,
            ..entry(path, EntryKind::File)
        }
    }

    pub(crate) fn dir(path: &str) -> EntryInfo {
        entry(path, EntryKind::Dir)
    }

    fn paths(t: &Tree) -> Vec<&str> {
        t.paths().collect()
    }

    #[test]
    fn whiteouts_apply_to_lower_layers_only() {
        let mut t = Tree::new();
        t.apply(&[
            dir("a"),
            file("a/x", 1),
            file("a-b", 1),
            dir("a/d"),
            file("a/d/y", 1),
        ]);
        // Same layer: deletes lower `a/d`, then adds a new `a/d/z`.
        t.apply(&[
            entry("a/d", EntryKind::Whiteout),
            dir("a/d"),
            file("a/d/z", 2),
        ]);
        assert_eq!(paths(&t), ["a", "a-b", "a/d", "a/d/z", "a/x"]);
        assert_eq!(t.deleted_by("a/d/y"), Some(1), "a/d went in layer 1");
        assert_eq!(t.deleted_by("a/d"), None, "and came back in it");
        t.apply(&[entry("a", EntryKind::OpaqueDir), file("a/new", 1)]);
        assert_eq!(paths(&t), ["a", "a-b", "a/new"]);
        assert_eq!(t.deleted_by("a/x"), Some(2));
        assert_eq!(t.deleted_by("a-b"), None);
        t.apply(&[entry("", EntryKind::OpaqueDir)]);
        assert!(t.is_empty());
    }

    #[test]
    fn a_file_replaces_a_directory_and_its_contents_but_a_dir_keeps_them() {
        let mut t: Tree = [vec![dir("a"), file("a/x", 1)]].into_iter().collect();
        t.apply(&[EntryInfo {
            mode: 0o700,
            ..dir("a")
        }]);
        assert_eq!(paths(&t), ["a", "a/x"]);
        assert_eq!(t.get("a").unwrap().mode, 0o700);
        t.apply(&[file("a", 5)]);
        assert_eq!(paths(&t), ["a"]);
        assert_eq!(t.below("").count(), 1);
    }
}
