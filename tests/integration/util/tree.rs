//! The one file-tree snapshot: what every path below a directory is, to compare an unpacked
//! image with a rebuild, prove that a run changed nothing, or that two builds are identical.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::sha256;

/// What we record of one path.
///
/// Compared: file type, permission bits (incl. setuid/setgid/sticky), uid, gid, size and sha256
/// of regular files, symlink targets, device numbers, hard-link group (the smallest path of all
/// names below the root sharing the inode, when there are two or more), and the mtime (seconds)
/// of every path, directories included: umoci unpack restores a directory's mtime after
/// applying a whiteout or adding an entry below it, so these are stable (the testdata sets all
/// of them to @1700000000). Not compared: atimes/ctimes, xattrs, the root directory itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Smallest path below the root sharing this inode, when two or more do.
    pub link_group: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    /// `digest`: `sha256:…` of the contents.
    File {
        size: u64,
        digest: String,
    },
    Symlink {
        target: String,
    },
    CharDev {
        rdev: u64,
    },
    BlockDev {
        rdev: u64,
    },
    Fifo,
    Socket,
}

/// Relative path (no leading `/` or `./`) → entry.
pub type Tree = BTreeMap<String, Entry>;

/// Walks `root` (not following symlinks) and records every path below it.
pub fn snapshot(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let md = fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                stack.push(path.clone());
                Kind::Dir
            } else if ft.is_file() {
                if md.nlink() > 1 {
                    inodes
                        .entry((md.dev(), md.ino()))
                        .or_default()
                        .push(rel.clone());
                }
                let bytes =
                    fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                Kind::File {
                    size: md.len(),
                    digest: sha256(&bytes),
                }
            } else if ft.is_symlink() {
                Kind::Symlink {
                    target: fs::read_link(&path)
                        .expect("readlink")
                        .to_string_lossy()
                        .into_owned(),
                }
            } else if ft.is_char_device() {
                Kind::CharDev { rdev: md.rdev() }
            } else if ft.is_block_device() {
                Kind::BlockDev { rdev: md.rdev() }
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                Kind::Socket
            };
            tree.insert(
                rel,
                Entry {
                    kind,
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    mtime: md.mtime(),
                    link_group: None,
                },
            );
        }
    }
    // A file linked from outside the tree (ocipatch links blobs it copies) is in no group.
    for names in inodes.into_values().filter(|n| n.len() > 1) {
        let first = names.iter().min().expect("non-empty").clone();
        for n in names {
            tree.get_mut(&n).expect("recorded").link_group = Some(first.clone());
        }
    }
    tree
}

/// What the bytes of a tree are: every path's kind, with the size and digest of files and the
/// target of links, but no modes, owners, times or hard links: for trees written at other times
/// or by other users (two builds, a checkout and a regeneration).
pub fn contents(tree: &Tree) -> BTreeMap<String, Kind> {
    tree.iter()
        .map(|(p, e)| (p.clone(), e.kind.clone()))
        .collect()
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::File { size, digest } => write!(f, "file size={size} {digest}")?,
            Kind::Symlink { target } => write!(f, "symlink -> {target}")?,
            other => write!(f, "{other:?}")?,
        }
        write!(
            f,
            " mode={:04o} uid={} gid={} mtime={}",
            self.mode, self.uid, self.gid, self.mtime
        )?;
        if let Some(g) = &self.link_group {
            write!(f, " hardlink-group={g}")?;
        }
        Ok(())
    }
}

/// Human-readable differences between two trees (empty when equal).
pub fn tree_diff(a: &Tree, b: &Tree) -> Vec<String> {
    map_diff(a, b, Entry::to_string)
}

/// Differences between two maps of paths, each value shown by `show`.
fn map_diff<V: PartialEq>(
    a: &BTreeMap<String, V>,
    b: &BTreeMap<String, V>,
    show: impl Fn(&V) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    for (path, va) in a {
        match b.get(path) {
            None => out.push(format!("only in left:  {path}: {}", show(va))),
            Some(vb) if va != vb => out.push(format!(
                "differs: {path}\n   left:  {}\n   right: {}",
                show(va),
                show(vb)
            )),
            Some(_) => {}
        }
    }
    for (path, vb) in b {
        if !a.contains_key(path) {
            out.push(format!("only in right: {path}: {}", show(vb)));
        }
    }
    out
}

#[track_caller]
pub fn assert_same_tree(left_name: &str, left: &Tree, right_name: &str, right: &Tree) {
    let diff = tree_diff(left, right);
    assert!(
        diff.is_empty(),
        "file trees differ (left = {left_name}, right = {right_name}), {} difference(s):\n{}",
        diff.len(),
        diff.join("\n")
    );
}

/// The same [`contents`], or a failure naming each path that differs.
#[track_caller]
pub fn assert_same_contents(left_name: &str, left: &Tree, right_name: &str, right: &Tree) {
    let diff = map_diff(&contents(left), &contents(right), |k| format!("{k:?}"));
    assert!(
        diff.is_empty(),
        "contents differ (left = {left_name}, right = {right_name}), {} difference(s):\n{}",
        diff.len(),
        diff.join("\n")
    );
}
