//! Layer summaries ([`LayerSummary`]): each layer read once, in one checked pass, and kept by
//! its digest: in memory for the run (a fleet's images share them) and on disk under the cache
//! directory across runs.
//!
//! The disk cache is a convenience that must never change a result. An entry is trusted only
//! when it proves itself: its first line names the format, the ocipatch version that wrote it,
//! the layer digest it describes and the SHA-256 of the rest of the file; kept file contents
//! are stored by their own SHA-256 and checked when read. Anything else (a truncated entry, an
//! edited field, an entry of another version, a link where a file should be) is ignored with a
//! warning and the layer is read again. Entries are written 0600 in a 0700 directory, to a
//! random O_EXCL temp name renamed into place, and only after the layer blob's digest checked.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::layers::read_layer;
use crate::error::Result;
use crate::layer::{summarize, EntryInfo, KeptFile, LayerSummary};
use crate::model::{Descriptor, Digest};
use crate::pkgdb;
use crate::transport::{self, Source};
use crate::verdict::elf::{ElfError, ElfInfo};

/// The files whose contents a summary keeps: the package databases, the release files, the
/// accounts files and the dynamic loader's configuration and cache. Part of the cache format:
/// change the cache format number when this changes.
pub fn kept_path(path: &str) -> bool {
    pkgdb::is_watched(path) || crate::verdict::is_read(path)
}

/// Bumped whenever what a summary holds changes (with the crate version, it names the format).
const FORMAT: u32 = 3;
/// The first word of every cache entry.
const MAGIC: &str = "ocipatch-layer-summary";
/// Largest cache entry read (the entries of a layer of a few hundred thousand files).
const MAX_ENTRY: u64 = 256 << 20;

/// Layer summaries shared by every image of a run; see the module documentation.
pub struct LayerSummaries {
    dir: Option<PathBuf>,
    mem: Mutex<HashMap<Digest, Arc<LayerSummary>>>,
    /// One lock per layer being read: images that share a layer wait for one read of it
    /// instead of each downloading it at once.
    reading: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    warnings: Mutex<Vec<String>>,
}

impl LayerSummaries {
    /// Summaries kept in memory, and on disk under `dir` (in a `layers-v2` subdirectory) when
    /// given.
    pub fn new(dir: Option<PathBuf>) -> LayerSummaries {
        LayerSummaries {
            dir: dir.map(|d| d.join(format!("layers-v{FORMAT}"))),
            mem: Mutex::new(HashMap::new()),
            reading: Mutex::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// Cache entries that were ignored (and the layer read again) since the last call: each
    /// warning is reported once, by the image whose run found it.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The summary of one layer: from memory, from the disk cache, or by reading the layer
    /// (its compressed bytes are added to `counter`). A foreign layer whose blob is not stored
    /// has an empty summary.
    pub fn get(
        &self,
        src: &dyn Source,
        desc: &Descriptor,
        counter: &AtomicU64,
    ) -> Result<Arc<LayerSummary>> {
        let hit = || {
            self.mem
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&desc.digest)
                .cloned()
        };
        if let Some(hit) = hit() {
            return Ok(hit);
        }
        let lock = self
            .reading
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(desc.digest.clone())
            .or_default()
            .clone();
        let _reading = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = hit() {
            return Ok(hit);
        }
        let summary = match self.load(&desc.digest) {
            Some(s) => Arc::new(s),
            None => {
                let read = read_layer(src, desc, |tar| {
                    summarize(tar, &kept_path, pkgdb::MAX_DB_SIZE)
                })?;
                let summary = match read {
                    Some((s, bytes)) => {
                        counter.fetch_add(bytes, Ordering::Relaxed);
                        s
                    }
                    None => LayerSummary::default(),
                };
                if let Err(e) = self.store(&desc.digest, &summary) {
                    self.warn(format!(
                        "layer cache: could not store the summary of {}: {e}",
                        desc.digest
                    ));
                }
                Arc::new(summary)
            }
        };
        self.mem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(desc.digest.clone(), summary.clone());
        Ok(summary)
    }

    /// Whether this run already has the summary of the layer `digest` (no read needed).
    pub fn has(&self, digest: &Digest) -> bool {
        self.mem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(digest)
    }

    /// Puts a summary in the memory cache (unit tests build summaries by hand).
    #[cfg(test)]
    pub(crate) fn insert(&self, digest: Digest, summary: Arc<LayerSummary>) {
        self.mem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest, summary);
    }

    fn warn(&self, w: String) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(w);
    }

    fn entry_path(&self, digest: &Digest) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(digest.hex()))
    }

    fn content_path(&self, digest: &Digest) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join("content").join(digest.hex()))
    }

    /// A cached summary that proves itself, or `None` (then the layer is read again; a
    /// present but unusable entry is also a warning).
    fn load(&self, digest: &Digest) -> Option<LayerSummary> {
        let path = self.entry_path(digest)?;
        let bytes = match transport::read_capped(&path, MAX_ENTRY) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.warn(format!(
                    "layer cache: ignoring {}: {e}; reading the layer again",
                    path.display()
                ));
                return None;
            }
        };
        match self.decode(digest, &bytes) {
            Ok(s) => Some(s),
            Err(why) => {
                self.warn(format!(
                    "layer cache: ignoring {}: {why}; reading the layer again",
                    path.display()
                ));
                None
            }
        }
    }

    fn decode(&self, digest: &Digest, bytes: &[u8]) -> std::result::Result<LayerSummary, Unusable> {
        let (head, body) = split_entry(bytes).ok_or(Unusable::NotAnEntry)?;
        let expected = header_line(digest, &Digest::of(body));
        if head != expected.as_bytes() {
            return Err(if head.starts_with(format!("{MAGIC} ").as_bytes()) {
                Unusable::Stale
            } else {
                Unusable::NotAnEntry
            });
        }
        let cached: Cached = serde_json::from_slice(body).map_err(Unusable::Json)?;
        let mut kept = Vec::with_capacity(cached.kept.len());
        for k in cached.kept {
            let path = self
                .content_path(&k.content)
                .ok_or(Unusable::NoContentDir)?;
            let content = match transport::read_capped(&path, pkgdb::MAX_DB_SIZE) {
                Ok(c) => c,
                Err(source) => return Err(Unusable::Content { path, source }),
            };
            if Digest::of(&content) != k.content {
                return Err(Unusable::ContentMismatch { path });
            }
            kept.push(KeptFile {
                path: k.path,
                content,
                uname: k.uname,
                gname: k.gname,
            });
        }
        Ok(LayerSummary {
            entries: cached.entries,
            kept,
            oversized: cached.oversized,
            elf: cached.elf,
        })
    }

    /// Writes the entry (contents first, then the entry that names them), each atomically.
    fn store(&self, digest: &Digest, summary: &LayerSummary) -> io::Result<()> {
        let (Some(dir), Some(entry)) = (self.dir.as_ref(), self.entry_path(digest)) else {
            return Ok(());
        };
        let content_dir = dir.join("content");
        private_dir(dir)?;
        private_dir(&content_dir)?;
        let mut kept = Vec::with_capacity(summary.kept.len());
        for k in &summary.kept {
            let d = Digest::of(&k.content);
            let path = content_dir.join(d.hex());
            let current = transport::read_capped(&path, pkgdb::MAX_DB_SIZE)
                .is_ok_and(|c| Digest::of(&c) == d);
            if !current {
                write_private(&content_dir, &path, &k.content)?;
            }
            kept.push(CachedKept {
                path: k.path.clone(),
                content: d,
                uname: k.uname.clone(),
                gname: k.gname.clone(),
            });
        }
        let body = serde_json::to_vec(&CachedRef {
            entries: &summary.entries,
            kept,
            oversized: &summary.oversized,
            elf: &summary.elf,
        })
        .map_err(io::Error::other)?;
        let mut bytes = header_line(digest, &Digest::of(&body)).into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(&body);
        write_private(dir, &entry, &bytes)
    }
}

/// Why a cache entry is ignored (the layer is read again, with a warning that says this).
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error("not a cache entry")]
    NotAnEntry,
    #[error("written by another ocipatch version, or for another layer, or its contents changed")]
    Stale,
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("no content directory")]
    NoContentDir,
    #[error("{}: {source}", path.display())]
    Content { path: PathBuf, source: io::Error },
    #[error("{}: contents do not match its name", path.display())]
    ContentMismatch { path: PathBuf },
}

/// `MAGIC FORMAT VERSION LAYER BODY-DIGEST`: what an entry must say of itself.
fn header_line(layer: &Digest, body: &Digest) -> String {
    format!(
        "{MAGIC} {FORMAT} {} {layer} {body}",
        env!("CARGO_PKG_VERSION")
    )
}

fn split_entry(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let nl = bytes.iter().take(512).position(|b| *b == b'\n')?;
    Some((&bytes[..nl], &bytes[nl + 1..]))
}

#[derive(Deserialize)]
struct Cached {
    entries: Vec<EntryInfo>,
    kept: Vec<CachedKept>,
    oversized: Vec<(String, u64)>,
    elf: Vec<(String, Result<ElfInfo, ElfError>)>,
}

#[derive(Serialize)]
struct CachedRef<'a> {
    entries: &'a [EntryInfo],
    kept: Vec<CachedKept>,
    oversized: &'a [(String, u64)],
    elf: &'a [(String, Result<ElfInfo, ElfError>)],
}

#[derive(Serialize, Deserialize)]
struct CachedKept {
    path: String,
    content: Digest,
    uname: String,
    gname: String,
}

/// Creates `dir` (and its parents) and makes sure it is a real directory of ours, 0700.
fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A private temp file (random name, O_EXCL, 0600) in `dir`, renamed to `path`. Not synced:
/// an entry a crash cuts short fails its own check and is read again.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (mut file, tmp) = transport::temp::private_file_in(dir, "cache")?;
    file.write_all(bytes)?;
    drop(file);
    tmp.persist(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::EntryKind;

    fn summary() -> LayerSummary {
        LayerSummary {
            entries: vec![EntryInfo {
                path: "var/lib/dpkg/status".into(),
                kind: EntryKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: 11,
                mtime: 5,
                link_target: None,
                content: Some(Digest::of(b"Package: a\n")),
            }],
            kept: vec![KeptFile {
                path: "var/lib/dpkg/status".into(),
                content: b"Package: a\n".to_vec(),
                uname: "root".into(),
                gname: "root".into(),
            }],
            oversized: vec![("etc/ld.so.cache".into(), 1 << 30)],
            elf: vec![(
                "usr/bin/x".into(),
                Err(ElfError {
                    reason: "truncated".into(),
                }),
            )],
        }
    }

    #[test]
    fn an_entry_round_trips_and_any_edit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerSummaries::new(Some(dir.path().to_path_buf()));
        let layer = Digest::of(b"layer");
        cache.store(&layer, &summary()).unwrap();
        assert_eq!(cache.load(&layer), Some(summary()));
        assert!(cache.take_warnings().is_empty());

        use std::os::unix::fs::PermissionsExt;
        let entry = cache.entry_path(&layer).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&entry), 0o600);
        assert_eq!(mode(cache.dir.as_ref().unwrap()), 0o700);

        // One digit of the mode changed: the body no longer hashes to what the entry says.
        let text = std::fs::read_to_string(&entry).unwrap();
        std::fs::write(&entry, text.replace("\"mode\":420", "\"mode\":422")).unwrap();
        assert_eq!(cache.load(&layer), None);
        let w = cache.take_warnings();
        assert!(w[0].contains("contents changed"), "{w:?}");

        // The entry of another layer, renamed: bound to its layer.
        let other = Digest::of(b"other");
        cache.store(&other, &summary()).unwrap();
        std::fs::rename(cache.entry_path(&other).unwrap(), &entry).unwrap();
        assert_eq!(cache.load(&layer), None);

        // A content file swapped for another file's bytes.
        cache.store(&layer, &summary()).unwrap();
        let content = cache.content_path(&Digest::of(b"Package: a\n")).unwrap();
        std::fs::write(&content, b"Package: b\n").unwrap();
        assert_eq!(cache.load(&layer), None);
        assert_eq!(cache.take_warnings().len(), 2);
    }
}
