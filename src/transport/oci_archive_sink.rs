//! Writing `oci-archive:FILE[:TAG]`.
//!
//! Blobs are checked and staged as they arrive (in parallel, in any order); `commit` streams a
//! new tar into a temp file next to FILE — `oci-layout`, the blobs in digest order, `index.json`
//! last — fsyncs it and renames it over FILE. The images of an existing FILE are carried over
//! (its blobs, its other tags; the entry that had our tag is replaced), as skopeo does.
//! A failed run removes the staging directory and the temp file: FILE is as it was.
//!
//! Concurrent writers of the same FILE do not lock each other out: each writes a complete
//! archive, and the last rename wins (a tag written by the other may be lost).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::layout::{LAYOUT_CONTENT, LAYOUT_FILE};
use super::oci_archive::{blob_member, OciArchive};
use super::staging::Staging;
use super::tar_index::Member;
use super::tar_writer::TarWriter;
use super::{select, CopyOutcome, Sink, Source};
use crate::engine;
use crate::error::{Error, Result};
use crate::model::{media, Descriptor, Digest, Location, Reference};

pub struct OciArchiveSink {
    reference: Reference,
    file: PathBuf,
    tag: String,
    /// The archive being replaced, whose images are carried over.
    old: Option<OciArchive>,
    staging: Staging,
}

impl OciArchiveSink {
    pub fn open(reference: &Reference) -> Result<OciArchiveSink> {
        let Location::OciArchive { file, tag } = &reference.location else {
            unreachable!("OciArchiveSink::open is only called for oci-archive: references")
        };
        // Refuse to replace something that is not an oci-archive: it would be lost.
        let old = if file.exists() {
            let old = OciArchive::open(reference, file).map_err(|e| match e {
                Error::InvalidFile {
                    reference,
                    file,
                    reason,
                } => Error::InvalidFile {
                    reference,
                    file,
                    reason: format!("{reason}; refusing to overwrite it"),
                },
                e => e,
            })?;
            Some(old)
        } else {
            None
        };
        Ok(OciArchiveSink {
            reference: reference.clone(),
            file: file.clone(),
            tag: tag.clone().unwrap_or_else(|| "latest".to_string()),
            old,
            staging: Staging::next_to(file)?,
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

    fn write_tar(&self, index: &[u8]) -> std::io::Result<()> {
        // Member name → where its bytes come from; staged blobs win over old ones.
        enum Origin {
            Old(Member),
            Staged(Digest),
        }
        let mut blobs: BTreeMap<String, (u64, Origin)> = BTreeMap::new();
        if let Some(old) = &self.old {
            for name in old.tar.names().filter(|n| n.starts_with("blobs/")) {
                let m = old.tar.get(name).expect("listed member");
                blobs.insert(name.to_string(), (m.size, Origin::Old(m)));
            }
        }
        for (digest, size) in self.staging.blobs() {
            blobs.insert(blob_member(&digest), (size, Origin::Staged(digest)));
        }
        let mut out = TarWriter::create(&self.file)?;
        out.bytes(LAYOUT_FILE, LAYOUT_CONTENT)?;
        for (name, (size, from)) in &blobs {
            match from {
                Origin::Old(m) => {
                    let old = self.old.as_ref().expect("old member from the old archive");
                    out.file(name, *size, old.tar.open_member(*m)?)?;
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
    std::io::Error::other(e.to_string())
}

impl Sink for OciArchiveSink {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn copy_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        if self.staging.has(&desc.digest) || self.old_has(desc) {
            return Ok(CopyOutcome::Present);
        }
        if media::is_foreign_layer(&desc.media_type)
            && !desc.urls().is_empty()
            && !src.has_blob(&desc.digest)?
        {
            return Ok(CopyOutcome::Foreign);
        }
        self.staging.copy(src, desc)
    }

    fn put_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.staging.put(desc, bytes)
    }

    fn commit(&self, root: &Descriptor) -> Result<()> {
        let old_index: Option<Map<String, Value>> = self.old.as_ref().map(|o| o.index.json.clone());
        let index = select::retag(old_index, root, &self.tag);
        let bytes = serde_json::to_vec(&index).expect("a JSON value always serializes");
        let result = self.write_tar(&bytes).map_err(|e| Error::io(&self.file, e));
        self.staging.remove();
        result
    }

    fn abort(&self) {
        self.staging.remove();
    }
}
