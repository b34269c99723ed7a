//! What one layer holds, in one streaming pass over its tar: every header, the SHA-256 of
//! every regular file's contents, and the whole contents of the few files an analysis reads
//! (package databases, release files, the dynamic loader's configuration). Everything the
//! rebase's package-database step and its safety verdict need from a layer, so each layer is
//! decompressed once, and its summary can be cached by the layer's digest.
//!
//! Contents are hashed as they stream by (never buffered); only files for which `keep(path)`
//! holds are kept, each up to a limit.

use std::io::Read;

use sha2::{Digest as _, Sha256};
use tar::EntryType;

use super::path::{self, Whiteout};
use super::scan::{kind_of, EntryInfo, EntryKind};
use super::tar_header::for_each_entry;
use super::LayerError;
use crate::model::Digest;
use crate::verdict::elf::{ElfError, ElfInfo, ElfScanner};

/// One kept file: its contents and the owner names its header gives (the rest of its header
/// is the [`EntryInfo`] at the same path).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptFile {
    /// Canonical path.
    pub path: String,
    /// The file's bytes.
    pub content: Vec<u8>,
    /// Owner user name; empty when the header has none.
    pub uname: String,
    /// Owner group name; empty when the header has none.
    pub gname: String,
}

/// One layer, summarised.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerSummary {
    /// Every entry, in layer order (whiteouts and opaque markers included), regular files with
    /// the digest of their contents.
    pub entries: Vec<EntryInfo>,
    /// The contents of the regular files (or hard links to them) that `keep` selected, in
    /// layer order.
    pub kept: Vec<KeptFile>,
    /// Files `keep` selected that are over the limit: hashed, not kept (path, size). Whoever
    /// needs one says so; the summary itself stays usable.
    pub oversized: Vec<(String, u64)>,
    /// Every ELF file (and hard link to one), in layer order: what the dynamic loader reads of
    /// it, or why it could not be summarised.
    pub elf: Vec<(String, Result<ElfInfo, ElfError>)>,
}

impl LayerSummary {
    /// The ELF summary of the regular file at `path` in this layer.
    pub fn elf(&self, path: &str) -> Option<&Result<ElfInfo, ElfError>> {
        self.elf
            .iter()
            .rev()
            .find(|(p, _)| p == path)
            .map(|(_, e)| e)
    }
}

impl LayerSummary {
    /// The kept contents of `path` in this layer (the last entry wins, as extraction does).
    pub fn kept(&self, path: &str) -> Option<&KeptFile> {
        self.kept.iter().rev().find(|k| k.path == path)
    }
}

const CHUNK: usize = 64 << 10;

/// Streams `tar` (decompressed) once. Files for which `keep(path)` holds are kept whole, up to
/// `limit` bytes; a bigger one is listed in [`LayerSummary::oversized`] instead.
pub fn summarize(
    tar: impl Read,
    keep: &dyn Fn(&str) -> bool,
    limit: u64,
) -> Result<LayerSummary, LayerError> {
    let mut out = LayerSummary::default();
    let mut buf = vec![0u8; CHUNK];
    for_each_entry(tar, true, |raw, data| {
        let Some(full_path) = raw.path.clone() else {
            return Ok(());
        };
        let (kind, path) = match path::whiteout_meaning(&full_path) {
            Some(Whiteout::Deletes(deleted)) => (EntryKind::Whiteout, deleted),
            Some(Whiteout::Opaque(dir)) => (EntryKind::OpaqueDir, dir.unwrap_or_default()),
            None => (kind_of(raw.entry_type), full_path),
        };
        let link_target = match (kind, raw.link_target.as_deref()) {
            (EntryKind::HardLink, Some(t)) => path::normalize(t)?,
            (EntryKind::Symlink, t) => t.map(str::to_string),
            _ => None,
        };
        let mut content = None;
        let wanted = kind != EntryKind::Whiteout && kind != EntryKind::OpaqueDir && keep(&path);
        match raw.entry_type {
            EntryType::Regular | EntryType::Continuous => {
                let mut kept =
                    (wanted && raw.size <= limit).then(|| Vec::with_capacity(raw.size as usize));
                if wanted && kept.is_none() {
                    out.oversized.push((path.clone(), raw.size));
                }
                let mut hash = Sha256::new();
                let mut elf = Some(ElfScanner::new(raw.size));
                loop {
                    let n = match data.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(LayerError::Read(e)),
                    };
                    hash.update(&buf[..n]);
                    if let Some(scanner) = elf.as_mut() {
                        scanner.feed(&buf[..n]);
                        if scanner.is_done() {
                            // Not ELF, or summarised: keep the result, stop feeding.
                            if let Some(e) = elf.take().and_then(|s| s.finish().transpose()) {
                                out.elf.push((path.clone(), e));
                            }
                        }
                    }
                    if let Some(k) = kept.as_mut() {
                        // The tar crate stops an entry at its header's size: never past limit.
                        k.extend_from_slice(&buf[..n]);
                    }
                }
                if let Some(e) = elf.and_then(|s| s.finish().transpose()) {
                    out.elf.push((path.clone(), e));
                }
                content = Some(Digest::from_sha256(hash.finalize().into()));
                if let Some(k) = kept {
                    out.kept.push(KeptFile {
                        path: path.clone(),
                        content: k,
                        uname: raw.uname.clone(),
                        gname: raw.gname.clone(),
                    });
                }
            }
            // A hard link shares the contents of an earlier entry of this layer.
            EntryType::Link => {
                let target = link_target.as_deref();
                content = out
                    .entries
                    .iter()
                    .rev()
                    .find(|e| Some(e.path.as_str()) == target)
                    .and_then(|e| e.content.clone());
                if let Some(e) = target.and_then(|t| out.elf(t)).cloned() {
                    out.elf.push((path.clone(), e));
                }
                if wanted {
                    if let Some(k) = target.and_then(|t| out.kept(t)).cloned() {
                        out.kept.push(KeptFile {
                            path: path.clone(),
                            uname: raw.uname.clone(),
                            gname: raw.gname.clone(),
                            ..k
                        });
                    }
                }
            }
            _ => {}
        }
        out.entries.push(EntryInfo {
            path,
            kind,
            mode: raw.mode,
            uid: raw.uid,
            gid: raw.gid,
            size: raw.size,
            mtime: raw.mtime,
            link_target,
            content,
        });
        Ok(())
    })?;
    Ok(out)
}
