//! Reading a few chosen files out of a layer tar in one streaming pass: their contents (capped)
//! and headers, plus the whiteouts and opaque markers that hide them in lower layers. Everything
//! else is skipped without being buffered.

use std::io::Read;

use tar::EntryType;

use super::path::{self, Whiteout};
use super::tar_header::for_each_entry;
use super::LayerError;

/// What a layer says about one path of interest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PickedKind {
    /// A regular file (or a hard link to one picked earlier in the same layer).
    File {
        /// The file's contents (at most the limit given to [`pick_files`]).
        content: Vec<u8>,
    },
    /// A whiteout of the path or of a directory above it.
    Deleted,
    /// An opaque marker on the path (a directory): what lower layers had below it is hidden.
    Opaque,
    /// Something that is not a regular file (a directory, symlink, device) sits at the path.
    NotAFile,
}

/// One entry (or whiteout) of a layer at a path of interest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Picked {
    /// The path, canonical (no leading `/`): for a whiteout, the deleted path; for an opaque
    /// marker, its directory.
    pub path: String,
    /// What the layer holds there.
    #[serde(flatten)]
    pub kind: PickedKind,
    /// Permission bits, as the header has them.
    pub mode: u32,
    /// Owner user ID.
    pub uid: u64,
    /// Owner group ID.
    pub gid: u64,
    /// Owner user name; empty when the header has none.
    pub uname: String,
    /// Owner group name; empty when the header has none.
    pub gname: String,
    /// Modification time, Unix seconds.
    pub mtime: u64,
}

/// Streams `tar` (decompressed) and returns, in layer order, every entry at a path for which
/// `wanted(path)` holds, and every whiteout or opaque marker for which `hides(path)` holds (the
/// whiteout's *deleted* path, the opaque marker's directory). File contents over `limit` bytes
/// are an error.
pub fn pick_files(
    tar: impl Read,
    wanted: &dyn Fn(&str) -> bool,
    hides: &dyn Fn(&str) -> bool,
    limit: u64,
) -> Result<Vec<Picked>, LayerError> {
    let mut out: Vec<Picked> = Vec::new();
    for_each_entry(tar, true, |raw, data| {
        let Some(full_path) = raw.path.clone() else {
            return Ok(());
        };
        let (path, kind) = match path::whiteout_meaning(&full_path) {
            Some(Whiteout::Deletes(p)) if hides(&p) => (p, PickedKind::Deleted),
            Some(Whiteout::Opaque(Some(dir))) if hides(&dir) => (dir, PickedKind::Opaque),
            Some(Whiteout::Opaque(None)) => (String::new(), PickedKind::Opaque),
            Some(_) => return Ok(()),
            None if !wanted(&full_path) => return Ok(()),
            None => {
                let kind = match raw.entry_type {
                    EntryType::Regular | EntryType::Continuous => {
                        if raw.size > limit {
                            return Err(LayerError::FileTooLarge {
                                path: full_path,
                                size: raw.size,
                                limit,
                            });
                        }
                        let mut content = Vec::with_capacity(raw.size as usize);
                        data.take(limit + 1)
                            .read_to_end(&mut content)
                            .map_err(LayerError::Read)?;
                        PickedKind::File { content }
                    }
                    EntryType::Link => {
                        let target = raw
                            .link_target
                            .as_deref()
                            .and_then(|t| path::normalize(t).ok().flatten());
                        match out.iter().rev().find(|p| Some(&p.path) == target.as_ref()) {
                            Some(Picked {
                                kind: PickedKind::File { content },
                                ..
                            }) => PickedKind::File {
                                content: content.clone(),
                            },
                            _ => PickedKind::NotAFile,
                        }
                    }
                    _ => PickedKind::NotAFile,
                };
                (full_path, kind)
            }
        };
        out.push(Picked {
            path,
            kind,
            mode: raw.mode,
            uid: raw.uid,
            gid: raw.gid,
            uname: raw.uname,
            gname: raw.gname,
            mtime: raw.mtime,
        });
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o640);
            h.set_uid(7);
            h.set_gid(0);
            h.set_mtime(42);
            h.set_entry_type(if p.ends_with('/') {
                EntryType::Directory
            } else {
                EntryType::Regular
            });
            b.append_data(&mut h, p, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn picks_wanted_files_and_hiding_markers_only() {
        let t = tar(&[
            ("var/", b""),
            ("var/lib/dpkg/status", b"Package: a\n"),
            ("var/lib/dpkg/available", b"big"),
            ("var/lib/.wh.apt", b""),
            ("usr/.wh.share", b""),
            ("lib/apk/db/.wh..wh..opq", b""),
        ]);
        let wanted = |p: &str| p == "var/lib/dpkg/status";
        let hides = |p: &str| p.starts_with("var") || p.starts_with("lib");
        let got = pick_files(t.as_slice(), &wanted, &hides, 100).unwrap();
        let summary: Vec<(&str, &PickedKind)> =
            got.iter().map(|p| (p.path.as_str(), &p.kind)).collect();
        assert_eq!(
            summary,
            [
                (
                    "var/lib/dpkg/status",
                    &PickedKind::File {
                        content: b"Package: a\n".to_vec()
                    }
                ),
                ("var/lib/apt", &PickedKind::Deleted),
                ("lib/apk/db", &PickedKind::Opaque),
            ]
        );
        assert_eq!((got[0].mode, got[0].uid, got[0].mtime), (0o640, 7, 42));
        let err = pick_files(t.as_slice(), &wanted, &hides, 5).unwrap_err();
        assert!(err.to_string().contains("more than the 5 bytes"), "{err}");
    }
}
