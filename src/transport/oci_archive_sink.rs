//! Writing `oci-archive:FILE[:TAG]`.
//!
//! Blobs are checked and staged as they arrive (in parallel, in any order); `commit` streams a
//! new tar into a temp file next to FILE — `oci-layout`, the blobs in digest order, `index.json`
//! last — fsyncs it and renames it over FILE. The images of an existing FILE are carried over
//! (its blobs, its other tags; the entry that had our tag is replaced), as skopeo does.
//! A failed run removes the staging directory and the temp file: FILE is as it was.
//!
//! Concurrent writers of the same FILE take turns at commit (`FILE.lock`): each re-reads FILE
//! under the lock and carries over what the other wrote, so both tags survive.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::layout::{LAYOUT_CONTENT, LAYOUT_FILE};
use super::oci_archive::{blob_member, OciArchive};
use super::staging::Staging;
use super::tar_index::Member;
use super::tar_writer::{ArchiveLock, TarWriter};
use super::{select, CopyOutcome, Sink, Source};
use crate::engine;
use crate::error::{Error, Result};
use crate::model::{Descriptor, Digest, Reference};

/// The `oci-archive:` [`Sink`]: writes an OCI layout as a tar (a new file, renamed into
/// place on commit), carrying over the other images of an existing archive.
pub struct OciArchiveSink {
    reference: Reference,
    file: PathBuf,
    tag: String,
    /// The archive as it was when we opened it: the blobs we found there are not staged.
    old: Option<OciArchive>,
    /// The blobs `copy_blob` found in `old` (kept from it even if FILE was replaced since).
    from_old: Mutex<BTreeSet<Digest>>,
    staging: Staging,
}

/// FILE read as an oci-archive, or `None` when there is none; something else there is
/// refused rather than overwritten (it would be lost).
fn read_existing(reference: &Reference, file: &Path) -> Result<Option<OciArchive>> {
    if !file.exists() {
        return Ok(None);
    }
    OciArchive::open(reference, file)
        .map(Some)
        .map_err(|e| match e {
            Error::InvalidFile {
                reference,
                file,
                source,
                ..
            } => Error::InvalidFile {
                reference,
                file,
                source,
                overwrite: true,
            },
            e => e,
        })
}

impl OciArchiveSink {
    /// Prepares to write the archive an `oci-archive:` reference names; nothing is written until
    /// commit.
    pub fn open(reference: &Reference, file: &Path, tag: Option<&str>) -> Result<OciArchiveSink> {
        // Refuse early (again at commit) to replace something that is not an oci-archive.
        let old = read_existing(reference, file)?;
        Ok(OciArchiveSink {
            reference: reference.clone(),
            file: file.to_path_buf(),
            tag: tag.unwrap_or("latest").to_string(),
            old,
            from_old: Mutex::new(BTreeSet::new()),
            staging: Staging::next_to(file, reference)?,
        })
    }

    /// The old archive's copy of a blob, when it has the right size and content.
    fn old_has(&self, desc: &Descriptor) -> bool {
        let Some(old) = &self.old else { return false };
        let Some(m) = old.tar.get(&blob_member(&desc.digest)) else {
            return false;
        };
        m.size == desc.size
            && old
                .tar
                .open_member(m)
                .ok()
                .and_then(|r| engine::digest_stream(r, None, None).ok())
                .is_some_and(|d| d.digest == desc.digest)
    }

    /// `current`: FILE as re-read under the lock at commit, whose images are carried over.
    fn write_tar(&self, current: Option<&OciArchive>, index: &[u8]) -> std::io::Result<()> {
        // Member name → where its bytes come from; staged blobs win over old ones.
        enum Origin<'a> {
            Old(&'a OciArchive, Member),
            Staged(Digest),
        }
        let mut blobs: BTreeMap<String, (u64, Origin)> = BTreeMap::new();
        // What we took as present when we opened FILE, in case FILE was replaced since by a
        // writer that did not keep it (our open handle still reads the old bytes).
        if let Some(old) = &self.old {
            for d in self.from_old.lock().expect("sink lock").iter() {
                let name = blob_member(d);
                let m = old.tar.get(&name).expect("checked when found");
                blobs.insert(name, (m.size, Origin::Old(old, m)));
            }
        }
        if let Some(current) = current {
            for name in current.tar.names().filter(|n| n.starts_with("blobs/")) {
                let m = current.tar.get(name).expect("listed member");
                blobs.insert(name.to_string(), (m.size, Origin::Old(current, m)));
            }
        }
        for (digest, size) in self.staging.blobs() {
            blobs.insert(blob_member(&digest), (size, Origin::Staged(digest)));
        }
        let mut out = TarWriter::create(&self.file)?;
        out.bytes(LAYOUT_FILE, LAYOUT_CONTENT)?;
        for (name, (size, from)) in &blobs {
            match from {
                Origin::Old(archive, m) => {
                    out.file(name, *size, archive.tar.open_member(*m)?)?;
                }
                Origin::Staged(d) => {
                    out.file(name, *size, self.staging.open(d).map_err(into_io)?)?
                }
            }
        }
        out.bytes("index.json", index)?;
        out.finish()
    }
}

fn into_io(e: Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl Sink for OciArchiveSink {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn copy_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        if self.staging.has(&desc.digest) {
            return Ok(CopyOutcome::Present);
        }
        if self.old_has(desc) {
            self.from_old
                .lock()
                .expect("sink lock")
                .insert(desc.digest.clone());
            return Ok(CopyOutcome::Present);
        }
        if !desc.urls().is_empty() && super::absent_foreign_layer(src, desc)? {
            return Ok(CopyOutcome::Foreign);
        }
        self.staging.copy(src, desc)
    }

    fn put_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.staging.put(desc, bytes)
    }

    fn commit(&self, root: &Descriptor) -> Result<()> {
        let result = (|| {
            // Under the lock, FILE is what the last writer left: its tags are carried over.
            let _lock = ArchiveLock::acquire(&self.file)
                .map_err(|e| Error::io(ArchiveLock::path_for(&self.file), e))?;
            let current = read_existing(&self.reference, &self.file)?;
            let old_index: Option<Map<String, Value>> =
                current.as_ref().map(|o| o.index.json.clone());
            let index = select::retag(old_index, root, &self.tag);
            let bytes = serde_json::to_vec(&index).expect("a JSON value always serializes");
            self.write_tar(current.as_ref(), &bytes)
                .map_err(|e| Error::io(&self.file, e))
        })();
        self.staging.remove();
        result
    }

    fn abort(&self) {
        self.staging.remove();
    }
}
