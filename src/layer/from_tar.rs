//! Collect a tar input's headers into [`Entries`] (first of two passes; the builder then copies
//! each file's data by offset, in sorted order). The input may be plain, gzip or zstd: compressed
//! input is decompressed once into an anonymous temp file so the data can be read by offset.
//!
//! A tar input is re-sorted like a directory input: the same files give the same layer whatever
//! tool (and readdir order) produced the tar.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use tar::EntryType;

use super::entries::{Content, Entries, LinkKey, Meta, Node, NodeKind};
use super::path;
use super::tar_header::for_each_header;
use super::LayerError;
use crate::engine::Compression;

/// Index `tar_path`; returns the entries and the seekable plain tar their offsets refer to.
pub(crate) fn collect_tar(tar_path: &Path) -> Result<(Entries, File), LayerError> {
    let tar = plain_tar(tar_path)?;
    let mut entries = Entries::new();
    index(&tar, tar_path, &mut entries)?;
    resolve_hard_links(&mut entries)?;
    Ok((entries, tar))
}

fn index(tar: &File, tar_path: &Path, entries: &mut Entries) -> Result<(), LayerError> {
    let ending = for_each_header(BufReader::new(tar), false, |raw| {
        let Some(path) = raw.path else {
            return Ok(());
        };
        let kind = match raw.entry_type {
            _ if path::whiteout_meaning(&path).is_some() => NodeKind::Whiteout,
            EntryType::Regular | EntryType::Continuous => NodeKind::File {
                size: raw.size,
                content: Content::TarAt(raw.data_offset),
            },
            EntryType::Directory => NodeKind::Dir,
            EntryType::Symlink => NodeKind::Symlink {
                target: raw.link_target.unwrap_or_default(),
            },
            EntryType::Link => {
                let target = raw.link_target.unwrap_or_default();
                NodeKind::HardLink {
                    target: path::normalize(&target)?.unwrap_or_default(),
                }
            }
            EntryType::Fifo => NodeKind::Fifo,
            EntryType::Char => NodeKind::CharDevice {
                major: raw.device.0,
                minor: raw.device.1,
            },
            EntryType::Block => NodeKind::BlockDevice {
                major: raw.device.0,
                minor: raw.device.1,
            },
            other => {
                return Err(LayerError::UnsupportedEntry {
                    path,
                    kind: format!("{other:?}"),
                })
            }
        };
        let meta = Meta {
            mode: raw.mode,
            uid: raw.uid,
            gid: raw.gid,
            uname: raw.uname,
            gname: raw.gname,
            mtime: i64::try_from(raw.mtime).unwrap_or(i64::MAX),
            verbatim: false,
            capability: raw
                .capability
                .filter(|_| matches!(kind, NodeKind::File { .. })),
        };
        insert(entries, path, Node::new(kind, meta))
    })
    .map_err(|e| match e {
        LayerError::Read(source) => LayerError::Io {
            path: tar_path.to_path_buf(),
            source,
        },
        other => other,
    })?;
    // A tar ends with zero blocks. Without them the input is empty (an empty file, /dev/null)
    // or was cut between two members: refuse it rather than build a layer of what is there.
    if !ending.end_marker {
        return Err(LayerError::IncompleteTar {
            problem: if ending.bytes == 0 {
                "the tar input is empty (not even the end-of-archive blocks of an empty tar)"
            } else {
                "the tar input ends without its end-of-archive blocks: it was cut short"
            },
        });
    }
    Ok(())
}

/// The layer spec forbids duplicate paths; a repeated directory is tolerated (last one wins).
fn insert(entries: &mut Entries, path: String, node: Node) -> Result<(), LayerError> {
    if let Some(old) = entries.get(&path) {
        if !(matches!(old.kind, NodeKind::Dir) && matches!(node.kind, NodeKind::Dir)) {
            return Err(LayerError::DuplicatePath { path });
        }
    }
    entries.insert(path, node);
    Ok(())
}

/// Give every hard link a copy of its target's header and content, and one group key per file,
/// so the builder can choose (by sorted order) which name carries the data.
fn resolve_hard_links(entries: &mut Entries) -> Result<(), LayerError> {
    let links: Vec<String> = entries
        .iter()
        .filter(|(_, n)| matches!(n.kind, NodeKind::HardLink { .. }))
        .map(|(p, _)| p.clone())
        .collect();
    for link in links {
        let mut target = link.clone();
        for _ in 0..=entries.len() {
            match entries.get(&target).map(|n| &n.kind) {
                Some(NodeKind::HardLink { target: next }) => target = next.clone(),
                _ => break,
            }
        }
        let bad = |reason| LayerError::BadHardLink {
            path: link.clone(),
            target: target.clone(),
            reason,
        };
        let file = match entries.get(&target) {
            None => return Err(bad("the target is not in this layer")),
            Some(n) if matches!(n.kind, NodeKind::Dir) => {
                return Err(bad("the target is a directory"))
            }
            Some(n) if matches!(n.kind, NodeKind::HardLink { .. }) => {
                return Err(bad("the links form a cycle"))
            }
            Some(n) => n.clone(),
        };
        let key = LinkKey::TarPath(target.clone());
        let node = entries.get_mut(&link).expect("link is indexed");
        *node = Node {
            link_key: Some(key.clone()),
            ..file
        };
        entries
            .get_mut(&target)
            .expect("target is indexed")
            .link_key = Some(key);
    }
    Ok(())
}

/// The tar input as a seekable plain tar: the file itself, or its decompressed copy.
fn plain_tar(tar_path: &Path) -> Result<File, LayerError> {
    let err = LayerError::io(tar_path);
    let mut file = File::open(tar_path).map_err(LayerError::io(tar_path))?;
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut file, &mut magic).map_err(LayerError::io(tar_path))?;
    file.seek(SeekFrom::Start(0))
        .map_err(LayerError::io(tar_path))?;
    let magic = &magic[..n];
    let unsupported = |format| LayerError::UnsupportedCompression {
        path: tar_path.to_path_buf(),
        format,
    };
    let compression = if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if magic.starts_with(b"BZh") {
        return Err(unsupported("bzip2"));
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Err(unsupported("xz"));
    } else {
        return Ok(file);
    };
    let mut plain = tempfile::tempfile().map_err(LayerError::io(std::env::temp_dir()))?;
    // The engine's decoder and end-of-stream rules: trailing bytes after the compressed
    // stream, or a cut one, are refused here as they are in an image's layers.
    let copied = crate::engine::decode_with(BufReader::new(file), compression, |r| {
        io::copy(r, &mut plain)
    });
    match copied {
        Ok(_) => {}
        Err(crate::engine::ConsumeError::Consumer(e)) => {
            return Err(LayerError::io(std::env::temp_dir())(e))
        }
        Err(crate::engine::ConsumeError::Stream(e)) => {
            return Err(LayerError::Io {
                path: tar_path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
            })
        }
    }
    plain.seek(SeekFrom::Start(0)).map_err(err)?;
    Ok(plain)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
