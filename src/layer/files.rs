//! A small reproducible layer of whole files given in memory, each with its exact header
//! (owner, names, mode, mtime): the reconciled package databases go on top of an image this way,
//! with the metadata of the copy they replace, so extraction changes nothing but the content.
//!
//! Same format rules as [`super::build_layer`]: GNU headers, entries in byte order of their
//! path, no parent directory entries (the files replace files that exist below), fixed
//! compressor parameters.

use std::io::Write;

use tar::{EntryType, Header};

use super::build::{finish_layer, start_layer};
use super::{BuiltLayer, LayerCompression, LayerError};

/// One regular file of the layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Canonical path (`var/lib/dpkg/status`).
    pub path: String,
    /// The file's bytes.
    pub content: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// Owner user ID.
    pub uid: u64,
    /// Owner group ID.
    pub gid: u64,
    /// Owner user name; empty for none.
    pub uname: String,
    /// Owner group name; empty for none.
    pub gname: String,
    /// Modification time, Unix seconds.
    pub mtime: u64,
}

/// Writes `files` as one compressed layer to `out`.
pub fn build_files_layer(
    files: &[FileEntry],
    compression: LayerCompression,
    out: &mut dyn Write,
) -> Result<BuiltLayer, LayerError> {
    let mut files: Vec<&FileEntry> = files.iter().collect();
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut builder = start_layer(compression, out)?;
    for f in files {
        let bad = |reason: &'static str| LayerError::UnsafePath {
            path: f.path.clone(),
            reason,
        };
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(f.content.len() as u64);
        h.set_mtime(f.mtime);
        h.set_mode(f.mode & 0o7777);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_username(&f.uname)
            .map_err(|_| bad("its user name is too long for a tar header"))?;
        h.set_groupname(&f.gname)
            .map_err(|_| bad("its group name is too long for a tar header"))?;
        builder
            .append_data(&mut h, &f.path, f.content.as_slice())
            .map_err(LayerError::Write)?;
    }
    finish_layer(builder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entry(path: &str, content: &[u8]) -> FileEntry {
        FileEntry {
            path: path.into(),
            content: content.to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            uname: "root".into(),
            gname: "root".into(),
            mtime: 1_700_000_000,
        }
    }

    #[test]
    fn files_layer_is_reproducible_sorted_and_keeps_headers() {
        let files = [
            entry("var/lib/dpkg/status", b"Package: a\n\n"),
            entry("etc/apk/world", b"busybox\n"),
        ];
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let la = build_files_layer(&files, LayerCompression::Gzip, &mut a).unwrap();
        let lb = build_files_layer(
            &[files[1].clone(), files[0].clone()],
            LayerCompression::Gzip,
            &mut b,
        )
        .unwrap();
        assert_eq!((a.clone(), la.clone()), (b, lb));
        assert_eq!(la.size, a.len() as u64);
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(a.as_slice()));
        let got: Vec<(String, u64, u32, String, Vec<u8>)> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mtime().unwrap(),
                    h.mode().unwrap(),
                    h.username().unwrap().unwrap().to_string(),
                    data,
                )
            })
            .collect();
        assert_eq!(got[0].0, "etc/apk/world");
        assert_eq!(
            got[1],
            (
                "var/lib/dpkg/status".into(),
                1_700_000_000,
                0o644,
                "root".into(),
                b"Package: a\n\n".to_vec()
            )
        );
    }
}
