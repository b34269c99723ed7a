//! OCI image layout directories (`oci:DIR[:TAG]`).
//!
//! Reading: `index.json` names the images by `org.opencontainers.image.ref.name`; blobs live in
//! `blobs/sha256/<hex>`. Writing: blobs go to a temp name, are checked, fsync'ed and renamed into
//! place; `index.json` is replaced last by an atomic rename, under an exclusive lock on the
//! layout directory, re-read inside the lock so concurrent writers keep each other's tags.

use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use super::{select, CopyOutcome, Sink, Source};
use crate::engine;
use crate::error::{Error, Result};
use crate::model::media;
use crate::model::{Descriptor, Digest, Index, Location, Reference, Selector};

pub use super::select::REF_NAME;
pub(super) const LAYOUT_FILE: &str = "oci-layout";
pub(super) const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join("blobs")
        .join(digest.algorithm())
        .join(digest.hex())
}

/// A layout opened for reading.
pub struct LayoutSource {
    reference: Reference,
    dir: PathBuf,
    selector: Option<Selector>,
    index: Index,
}

impl LayoutSource {
    pub fn open(reference: &Reference) -> Result<LayoutSource> {
        let Location::OciLayout { dir, selector } = &reference.location else {
            unreachable!("LayoutSource::open is only called for oci: references")
        };
        let r = reference.to_string();
        let invalid = |file: PathBuf, reason: String| Error::InvalidFile {
            reference: r.clone(),
            file,
            reason,
        };
        if !dir.is_dir() {
            return Err(Error::NotFound {
                reference: r.clone(),
                what: format!("directory {}", dir.display()),
                hint: String::new(),
            });
        }
        let layout_file = dir.join(LAYOUT_FILE);
        let layout = fs::read(&layout_file).map_err(|e| {
            invalid(
                layout_file.clone(),
                format!("cannot read ({e}); is this an OCI image layout?"),
            )
        })?;
        let version = serde_json::from_slice::<Value>(&layout)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
        if version.as_deref() != Some("1.0.0") {
            return Err(invalid(
                layout_file,
                "not a valid oci-layout file (expected imageLayoutVersion 1.0.0)".into(),
            ));
        }
        let index_file = dir.join("index.json");
        let bytes = fs::read(&index_file)
            .map_err(|e| invalid(index_file.clone(), format!("cannot read: {e}")))?;
        let index = Index::parse(&bytes, Some(media::OCI_INDEX))
            .map_err(|e| invalid(index_file.clone(), e))?;
        Ok(LayoutSource {
            reference: reference.clone(),
            dir: dir.clone(),
            selector: selector.clone(),
            index,
        })
    }

    fn index_file(&self) -> String {
        self.dir.join("index.json").display().to_string()
    }
}

impl Source for LayoutSource {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn root(&self) -> Result<Descriptor> {
        match &self.selector {
            Some(Selector::Tag(tag)) => select::by_tag_or_default(
                &self.index,
                Some(tag),
                &self.reference,
                &self.index_file(),
                "layout",
            ),
            Some(Selector::Digest(d)) => {
                self.descriptor_for_digest(d)?
                    .ok_or_else(|| Error::NotFound {
                        reference: self.reference.to_string(),
                        what: format!("manifest {d}"),
                        hint: String::new(),
                    })
            }
            None => select::by_tag_or_default(
                &self.index,
                None,
                &self.reference,
                &self.index_file(),
                "layout",
            ),
        }
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        let path = blob_path(&self.dir, digest);
        match File::open(&path) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::MissingBlob {
                reference: self.reference.to_string(),
                digest: digest.clone(),
                location: path.display().to_string(),
            }),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(blob_path(&self.dir, digest).is_file())
    }

    fn blob_path(&self, digest: &Digest) -> Option<PathBuf> {
        Some(blob_path(&self.dir, digest))
    }

    fn descriptor_for_digest(&self, digest: &Digest) -> Result<Option<Descriptor>> {
        if let Some(d) = self.index.manifests.iter().find(|d| &d.digest == digest) {
            return Ok(Some(d.clone()));
        }
        // Not tagged, but maybe stored (a platform manifest of a tagged index, say).
        let path = blob_path(&self.dir, digest);
        let Ok(meta) = fs::metadata(&path) else {
            return Ok(None);
        };
        if meta.len() > super::MAX_JSON_BLOB {
            return Ok(None);
        }
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        Ok(select::sniff_descriptor(&bytes, digest))
    }
}

/// A layout opened for writing one tag.
pub struct LayoutSink {
    reference: Reference,
    dir: PathBuf,
    tag: String,
    /// The directory did not exist before this run: a failed run removes it whole.
    created: bool,
}

/// Names of files being written; never part of a finished layout.
const TEMP_PREFIX: &str = ".ocipatch-tmp-";
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LayoutSink {
    pub fn open(reference: &Reference) -> Result<LayoutSink> {
        let Location::OciLayout { dir, selector } = &reference.location else {
            unreachable!("LayoutSink::open is only called for oci: references")
        };
        let tag = match selector {
            None => "latest".to_string(),
            Some(Selector::Tag(t)) => t.clone(),
            Some(Selector::Digest(_)) => {
                return Err(Error::Rebase(format!(
                    "{reference}: a destination needs a tag, not a digest"
                )))
            }
        };
        let created = !dir.exists();
        if !created {
            if !dir.is_dir() {
                return Err(Error::Rebase(format!(
                    "{reference}: {} exists and is not a directory",
                    dir.display()
                )));
            }
            let index_file = dir.join("index.json");
            if index_file.exists() {
                let bytes = fs::read(&index_file).map_err(|e| Error::io(&index_file, e))?;
                Index::parse(&bytes, Some(media::OCI_INDEX)).map_err(|e| Error::InvalidFile {
                    reference: reference.to_string(),
                    file: index_file.clone(),
                    reason: format!("{e}; refusing to overwrite it"),
                })?;
            } else if !only_layout_entries(dir)? {
                return Err(Error::Rebase(format!(
                    "{reference}: {} is not empty and not an OCI image layout; refusing to write into it",
                    dir.display()
                )));
            }
        }
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        let sink = LayoutSink {
            reference: reference.clone(),
            dir: dir.clone(),
            tag,
            created,
        };
        // Written first so that a concurrent writer recognises the directory as a layout.
        let layout_file = dir.join(LAYOUT_FILE);
        if !layout_file.exists() {
            sink.write_atomically(&layout_file, LAYOUT_CONTENT)?;
        }
        Ok(sink)
    }

    fn temp_path(&self, name: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join("blobs")
            .join("sha256")
            .join(format!("{TEMP_PREFIX}{name}-{}-{n}", std::process::id()))
    }

    /// Moves a checked temp file to its content address.
    fn install(&self, tmp: &Path, digest: &Digest) -> Result<()> {
        let dest = blob_path(&self.dir, digest);
        fs::rename(tmp, &dest).map_err(|e| {
            let _ = fs::remove_file(tmp);
            Error::io(&dest, e)
        })
    }

    fn check(
        &self,
        src: &dyn Source,
        desc: &Descriptor,
        tmp: &Path,
        result: std::result::Result<engine::BlobDigests, engine::EngineError>,
    ) -> Result<()> {
        super::check_blob(src, desc, result)
            .map(|_| ())
            .inspect_err(|_| {
                let _ = fs::remove_file(tmp);
            })
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!("{TEMP_PREFIX}{name}-{}-{n}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(path, e)
        })
    }
}

/// An empty directory, or one another writer is turning into a layout right now.
fn only_layout_entries(dir: &Path) -> Result<bool> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let name = entry.map_err(|e| Error::io(dir, e))?.file_name();
        let name = name.to_string_lossy();
        let known = name == "blobs" || name == LAYOUT_FILE || name.starts_with(TEMP_PREFIX);
        if !known {
            return Ok(false);
        }
    }
    Ok(true)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

impl Sink for LayoutSink {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn copy_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        let dest = blob_path(&self.dir, &desc.digest);
        // A blob already there is trusted only after reading it: a corrupt one is replaced
        // from the source (or, when the source is this very layout, reported).
        if fs::metadata(&dest).is_ok_and(|m| m.len() == desc.size)
            && engine::digest_file(&dest, None).is_ok_and(|d| d.digest == desc.digest)
        {
            return Ok(CopyOutcome::Present);
        }
        if media::is_foreign_layer(&desc.media_type)
            && !desc.urls().is_empty()
            && !src.has_blob(&desc.digest)?
        {
            return Ok(CopyOutcome::Foreign);
        }
        let tmp = self.temp_path(desc.digest.hex());
        // Same filesystem: link instead of copying, then read the linked file once to check it.
        if let Some(path) = src.blob_path(&desc.digest) {
            if fs::hard_link(&path, &tmp).is_ok() {
                self.check(src, desc, &tmp, engine::digest_file(&tmp, None))?;
                self.install(&tmp, &desc.digest)?;
                return Ok(CopyOutcome::Linked);
            }
        }
        let reader = src.open_blob(&desc.digest)?;
        let result = engine::copy_to_file(reader, &tmp, None);
        self.check(src, desc, &tmp, result)?;
        self.install(&tmp, &desc.digest)?;
        Ok(CopyOutcome::Copied)
    }

    fn shares_blob_store(&self) -> bool {
        true
    }

    fn copy_verified_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        let dest = blob_path(&self.dir, &desc.digest);
        if let Some(path) = src.blob_path(&desc.digest) {
            if dest.exists() {
                // Present, but maybe corrupt: the full check decides.
                return self.copy_blob(src, desc);
            }
            let tmp = self.temp_path(desc.digest.hex());
            if fs::hard_link(&path, &tmp).is_ok() {
                self.install(&tmp, &desc.digest)?;
                return Ok(CopyOutcome::Linked);
            }
        }
        self.copy_blob(src, desc)
    }

    fn put_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        let dest = blob_path(&self.dir, &desc.digest);
        if dest.exists() {
            return Ok(());
        }
        self.write_atomically(&dest, bytes)
    }

    fn commit(&self, root: &Descriptor) -> Result<()> {
        sync_dir(&self.dir.join("blobs").join("sha256"))?;
        let lock = File::open(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        lock.lock().map_err(|e| Error::io(&self.dir, e))?;

        let index_file = self.dir.join("index.json");
        let index: Option<Map<String, Value>> = match fs::read(&index_file) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(Value::Object(m)) => Some(m),
                _ => {
                    return Err(Error::InvalidFile {
                        reference: self.reference.to_string(),
                        file: index_file,
                        reason: "became invalid while we were writing".into(),
                    })
                }
            },
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&index_file, e)),
        };
        let index = select::retag(index, root, &self.tag);
        let bytes = serde_json::to_vec(&index).expect("a JSON value always serializes");
        self.write_atomically(&index_file, &bytes)?;
        sync_dir(&self.dir)?;
        lock.unlock().map_err(|e| Error::io(&self.dir, e))
    }

    fn abort(&self) {
        // Only a directory this run created, and that no concurrent writer has committed to.
        if self.created && !self.dir.join("index.json").exists() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
