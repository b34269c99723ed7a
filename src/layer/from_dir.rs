//! Collect a directory tree's headers into [`Entries`]. Symlinks are never followed; the root
//! directory itself gets no entry (a layer must not change the image root's owner or mode).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::entries::{Content, Entries, LinkKey, Meta, Node, NodeKind};
use super::tar_header::CAPABILITY_XATTR;
use super::{path, LayerError};

pub(crate) fn collect_dir(root: &Path) -> Result<Entries, LayerError> {
    let meta = fs::metadata(root).map_err(LayerError::io(root))?;
    if !meta.is_dir() {
        return Err(LayerError::Io {
            path: root.to_path_buf(),
            source: std::io::Error::other("not a directory"),
        });
    }
    let mut entries = Entries::new();
    walk(root, None, &mut entries)?;
    Ok(entries)
}

fn walk(dir: &Path, rel: Option<&str>, entries: &mut Entries) -> Result<(), LayerError> {
    for item in fs::read_dir(dir).map_err(LayerError::io(dir))? {
        let item = item.map_err(LayerError::io(dir))?;
        let full = item.path();
        let name = item
            .file_name()
            .into_string()
            .map_err(|_| LayerError::NonUtf8Path { path: full.clone() })?;
        let rel_path = path::join(rel, &name);
        if rel_path.len() > path::MAX_PATH_BYTES {
            return Err(LayerError::too_long(
                "path",
                rel_path.as_bytes(),
                path::MAX_PATH_BYTES,
            ));
        }
        let md = fs::symlink_metadata(&full).map_err(LayerError::io(&full))?;
        let node = node_for(&full, &rel_path, &md)?;
        let is_dir = matches!(node.kind, NodeKind::Dir);
        entries.insert(rel_path.clone(), node);
        if is_dir {
            walk(&full, Some(&rel_path), entries)?;
        }
    }
    Ok(())
}

fn node_for(full: &Path, rel: &str, md: &fs::Metadata) -> Result<Node, LayerError> {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_file() {
        NodeKind::File {
            size: md.len(),
            content: Content::Path(full.to_path_buf()),
        }
    } else if ft.is_symlink() {
        let target = fs::read_link(full).map_err(LayerError::io(full))?;
        let target =
            target
                .into_os_string()
                .into_string()
                .map_err(|_| LayerError::NonUtf8Path {
                    path: full.to_path_buf(),
                })?;
        NodeKind::Symlink { target }
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        let (major, minor) = dev_numbers(md.rdev());
        NodeKind::CharDevice { major, minor }
    } else if ft.is_block_device() {
        let (major, minor) = dev_numbers(md.rdev());
        NodeKind::BlockDevice { major, minor }
    } else {
        return Err(LayerError::Socket {
            path: rel.to_string(),
        });
    };
    let link_key = (ft.is_file() && md.nlink() > 1).then(|| LinkKey::Inode {
        dev: md.dev(),
        ino: md.ino(),
    });
    let meta = Meta {
        mode: md.mode() & 0o7777,
        uid: md.uid().into(),
        gid: md.gid().into(),
        uname: String::new(),
        gname: String::new(),
        mtime: md.mtime(),
        verbatim: false,
        capability: if ft.is_file() {
            capability_of(full)?
        } else {
            None
        },
    };
    Ok(Node {
        kind,
        meta,
        link_key,
    })
}

/// A file's `security.capability` xattr, if it has one (symlinks are not followed). A file
/// system without xattrs has none.
fn capability_of(full: &Path) -> Result<Option<Vec<u8>>, LayerError> {
    match xattr::get(full, CAPABILITY_XATTR) {
        Ok(value) => Ok(value.filter(|v| !v.is_empty())),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(None),
        Err(e) => Err(LayerError::Io {
            path: full.to_path_buf(),
            source: e,
        }),
    }
}

/// Linux `dev_t` encoding (glibc `gnu_dev_major` / `gnu_dev_minor`).
fn dev_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}
