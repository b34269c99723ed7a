//! Blobs this run built (the package-database layer), served as a [`Source`] so they reach any
//! sink through the same digest-checked `copy_blob` as every other blob. They are small by
//! construction (bounded by `pkgdb::MAX_DB_SIZE` per file, compressed).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use super::Source;
use crate::error::{BlobLocation, Error, Result, Unsupported};
use crate::model::{Descriptor, Digest, Reference};

/// A [`Source`] whose blobs live in memory: the layers a run builds itself (package databases),
/// read like any other source's.
pub struct MemorySource {
    reference: Reference,
    blobs: Mutex<HashMap<Digest, std::sync::Arc<Vec<u8>>>>,
}

impl MemorySource {
    /// `name` appears in error messages (`oci:NAME`).
    pub fn new(name: &str) -> Result<MemorySource> {
        Ok(MemorySource {
            reference: Reference::parse(&format!("oci:{name}"))?,
            blobs: Mutex::new(HashMap::new()),
        })
    }

    /// Stores `bytes`; returns their digest.
    pub fn add(&self, bytes: Vec<u8>) -> Digest {
        let digest = Digest::of(&bytes);
        self.blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest.clone(), std::sync::Arc::new(bytes));
        digest
    }
}

/// `Read` over a shared buffer.
struct Shared {
    bytes: std::sync::Arc<Vec<u8>>,
    pos: usize,
}

impl Read for Shared {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.bytes[self.pos.min(self.bytes.len())..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

impl Source for MemorySource {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn root(&self) -> Result<Descriptor> {
        Err(Error::Unsupported {
            reference: self.reference.to_string(),
            what: Unsupported::NoImage,
        })
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        let blobs = self.blobs.lock().unwrap_or_else(|e| e.into_inner());
        match blobs.get(digest) {
            Some(b) => Ok(Box::new(Shared {
                bytes: b.clone(),
                pos: 0,
            })),
            None => Err(Error::MissingBlob {
                reference: self.reference.to_string(),
                digest: digest.clone(),
                location: BlobLocation::NotBuilt,
            }),
        }
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self
            .blobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(digest))
    }

    fn descriptor_for_digest(&self, _digest: &Digest) -> Result<Option<Descriptor>> {
        Ok(None)
    }
}
