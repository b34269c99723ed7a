//! The in-memory plan of a layer being built: one [`Node`] per path, sorted by path bytes, plus the
//! rules that turn raw input into a valid layer (hard-link groups, whiteouts, parent directories).
//! Only headers live here; file contents stay on disk until they are written.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::path::{self, symlink_escapes};
use super::{BuildOptions, EntryKind, LayerError, Tree};

/// Entries keyed by canonical path; a `BTreeMap<String, _>` iterates in byte order, which also
/// puts every directory before its children (a prefix sorts before its extensions).
pub(crate) type Entries = BTreeMap<String, Node>;

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub meta: Meta,
    /// Entries with the same key are one file reached by several names (hard links).
    pub link_key: Option<LinkKey>,
}

#[derive(Clone, Debug)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: i64,
    /// Copied from the image's own directory: emitted as is, never normalised.
    pub verbatim: bool,
    /// A regular file's capabilities (the raw `security.capability` xattr), kept in every
    /// mode: dropping them breaks binaries like `ping`.
    pub capability: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub(crate) enum NodeKind {
    Dir,
    File {
        size: u64,
        content: Content,
    },
    Symlink {
        target: String,
    },
    /// Before [`finish`]: a tar input's link entry; after: a link to the group's first path.
    HardLink {
        target: String,
    },
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Whiteout,
}

#[derive(Clone, Debug)]
pub(crate) enum Content {
    Path(PathBuf),
    /// Offset of the data in the (decompressed) tar input.
    TarAt(u64),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LinkKey {
    Inode { dev: u64, ino: u64 },
    TarPath(String),
}

impl Meta {
    /// Metadata of a directory or whiteout the builder makes up itself.
    pub fn synthetic(mode: u32) -> Meta {
        Meta {
            mode,
            uid: 0,
            gid: 0,
            uname: String::new(),
            gname: String::new(),
            mtime: i64::MAX, // clamped to the build's mtime when written
            verbatim: false,
            capability: None,
        }
    }
}

impl Node {
    pub fn new(kind: NodeKind, meta: Meta) -> Node {
        Node {
            kind,
            meta,
            link_key: None,
        }
    }
}

/// Validate the collected entries against the options and complete them into a layer:
/// hard-link groups, whiteouts for `opts.deletes`, and a directory entry for every parent.
pub(crate) fn finish(
    mut entries: Entries,
    opts: &BuildOptions,
    lower: Option<&Tree>,
) -> Result<Entries, LayerError> {
    check_kinds(&entries, opts)?;
    link_groups(&mut entries);
    let deletes = add_whiteouts(&mut entries, &opts.deletes)?;
    add_parents(&mut entries, lower)?;
    for deleted in &deletes {
        let prefix = format!("{deleted}/");
        let added_inside = entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|(p, _)| p.starts_with(&prefix));
        if entries.contains_key(deleted) || added_inside {
            return Err(LayerError::DeleteAlsoAdded {
                path: deleted.clone(),
            });
        }
    }
    Ok(entries)
}

fn check_kinds(entries: &Entries, opts: &BuildOptions) -> Result<(), LayerError> {
    for (path, node) in entries {
        let special = match node.kind {
            NodeKind::Fifo => "fifo",
            NodeKind::CharDevice { .. } => "character device",
            NodeKind::BlockDevice { .. } => "block device",
            NodeKind::Symlink { ref target } => {
                if !opts.allow_escaping_symlinks && symlink_escapes(path, target) {
                    return Err(LayerError::EscapingSymlink {
                        path: path.clone(),
                        target: target.clone(),
                    });
                }
                continue;
            }
            _ => continue,
        };
        if !opts.allow_devices {
            return Err(LayerError::SpecialFile {
                path: path.clone(),
                kind: special,
            });
        }
    }
    Ok(())
}

/// The first path of each group (in sorted order) keeps the content; the others become hard links
/// to it, so an extractor always meets the target before the link.
fn link_groups(entries: &mut Entries) {
    let mut first: BTreeMap<LinkKey, String> = BTreeMap::new();
    for (path, node) in entries.iter_mut() {
        let Some(key) = node.link_key.clone() else {
            continue;
        };
        match first.get(&key) {
            Some(target) => {
                node.kind = NodeKind::HardLink {
                    target: target.clone(),
                }
            }
            None => {
                first.insert(key, path.clone());
            }
        }
    }
}

/// Adds `dir/.wh.name` for every `--delete dir/name`; returns the canonical deleted paths.
/// A delete inside another delete (`a` and `a/b`) is redundant and dropped: its whiteout would
/// need `a/` as a directory entry in the very layer that deletes `a`.
fn add_whiteouts(entries: &mut Entries, deletes: &[String]) -> Result<Vec<String>, LayerError> {
    let mut canonical = Vec::new();
    for raw in deletes {
        let deleted = path::normalize(raw)?
            .ok_or_else(|| LayerError::unsafe_path(raw, "the root cannot be deleted"))?;
        if path::file_name(&deleted).starts_with(path::WHITEOUT_PREFIX) {
            return Err(LayerError::unsafe_path(
                raw,
                "whiteout names cannot be deleted",
            ));
        }
        canonical.push(deleted);
    }
    canonical.sort();
    canonical.dedup();
    let all = canonical.clone();
    canonical.retain(|d| {
        !path::ancestors(d).any(|a| all.binary_search_by(|x| x.as_str().cmp(a)).is_ok())
    });
    for deleted in &canonical {
        let whiteout = path::whiteout_for(deleted);
        match entries.get(&whiteout).map(|n| &n.kind) {
            None | Some(NodeKind::Whiteout) => {}
            Some(_) => return Err(LayerError::DeleteAlsoAdded { path: whiteout }),
        }
        entries.insert(
            whiteout,
            Node::new(NodeKind::Whiteout, Meta::synthetic(0o644)),
        );
    }
    Ok(canonical)
}

/// Every parent directory gets an entry. A parent the input did not provide copies the image's own
/// directory from `lower` when known (so extraction does not reset its owner or mode), and is
/// `0755 root:root` otherwise.
fn add_parents(entries: &mut Entries, lower: Option<&Tree>) -> Result<(), LayerError> {
    let mut missing = BTreeMap::new();
    for child in entries.keys() {
        for dir in path::ancestors(child) {
            match entries.get(dir).map(|n| &n.kind) {
                Some(NodeKind::Dir) => {}
                Some(_) => {
                    return Err(LayerError::NotADirectory {
                        parent: dir.to_string(),
                        path: child.clone(),
                    })
                }
                None => {
                    missing
                        .entry(dir.to_string())
                        .or_insert_with(|| Node::new(NodeKind::Dir, parent_meta(dir, lower)));
                }
            }
        }
    }
    entries.extend(missing);
    Ok(())
}

fn parent_meta(dir: &str, lower: Option<&Tree>) -> Meta {
    match lower.and_then(|tree| tree.get(dir)) {
        Some(info) if info.kind == EntryKind::Dir => Meta {
            mode: info.mode & 0o7777,
            uid: info.uid,
            gid: info.gid,
            uname: String::new(),
            gname: String::new(),
            mtime: i64::try_from(info.mtime).unwrap_or(i64::MAX),
            verbatim: true,
            capability: None,
        },
        _ => Meta::synthetic(0o755),
    }
}
