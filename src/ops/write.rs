//! Writing an image to a sink: blobs first (in parallel, each once, digest-checked by the
//! sink), then the JSON blobs in order (configs, manifests, index), then the tag.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use super::progress::Progress;
use crate::engine;
use crate::error::{Error, Result};
use crate::model::{Descriptor, Digest};
use crate::transport::{CopyOutcome, Sink, Source};

/// What happened to the blobs an output needs. Serialized in every write report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BlobStats {
    /// Blobs streamed into the destination (digest checked on the way).
    pub copied: usize,
    /// Blobs hard-linked from the source (digest checked after linking).
    pub linked: usize,
    /// Blobs a registry mounted from the source's repository (no bytes moved through us).
    pub mounted: usize,
    /// Blobs the destination already had.
    pub present: usize,
    /// Foreign layers referenced by URL only.
    pub foreign: usize,
    /// Bytes in the copied and linked blobs (all read once to check them).
    pub bytes_checked: u64,
}

/// A blob the output needs, and the source to read it from.
pub struct BlobCopy<'a> {
    /// Where the blob is read from.
    pub src: &'a dyn Source,
    /// The blob's descriptor (digest and size are checked on the way).
    pub descriptor: &'a Descriptor,
    /// This run already read and checked the source blob (a fleet's new base).
    pub verified: bool,
}

/// Copies shared by the operations of one run (a fleet): each blob reaches each destination
/// place once, and every other image waits for that copy instead of repeating it.
#[derive(Default)]
pub struct SharedCopies {
    done: Mutex<HashMap<(String, Digest), Arc<CopyCell>>>,
}

/// One blob's copy into one place: run once, its outcome (or its error, shared) seen by all.
type CopyCell = OnceLock<Result<CopyOutcome, Arc<Error>>>;

impl SharedCopies {
    fn copy(&self, sink: &dyn Sink, c: &BlobCopy) -> Result<CopyOutcome> {
        // Sinks that stage privately until commit (archives) each need their own copy.
        if !sink.shares_blob_store() {
            return copy_one(sink, c);
        }
        let key = (sink.reference().place(), c.descriptor.digest.clone());
        let cell = self
            .done
            .lock()
            .expect("no panics while holding the lock")
            .entry(key)
            .or_default()
            .clone();
        let mut ran = false;
        let result = cell.get_or_init(|| {
            ran = true;
            copy_one(sink, c).map_err(Arc::new)
        });
        match result {
            Ok(outcome) if ran => Ok(*outcome),
            Ok(_) => Ok(CopyOutcome::Present),
            // The copy's own error, typed, for every image that needed the blob.
            Err(e) => Err(Error::Shared(e.clone())),
        }
    }
}

fn copy_one(sink: &dyn Sink, c: &BlobCopy) -> Result<CopyOutcome> {
    if c.verified {
        sink.copy_verified_blob(c.src, c.descriptor)
    } else {
        sink.copy_blob(c.src, c.descriptor)
    }
}

/// Copies `copies` (duplicates by digest are copied once), stores `json` in order, then points
/// the sink's tag at `root`. The first failure, in `copies` order, is returned.
pub fn write_image(
    sink: &dyn Sink,
    copies: Vec<BlobCopy>,
    json: &[(&Descriptor, &[u8])],
    root: &Descriptor,
    shared: Option<&SharedCopies>,
    progress: &dyn Progress,
) -> Result<BlobStats> {
    let mut seen = HashSet::new();
    let copies: Vec<BlobCopy> = copies
        .into_iter()
        .filter(|c| seen.insert(c.descriptor.digest.clone()))
        .collect();
    // Biggest first, so the cores finish together. Progress advances a blob at a time.
    progress.start(copies.iter().map(|c| c.descriptor.size).sum());
    let outcomes: Vec<Result<CopyOutcome>> = engine::map_biggest_first(
        &copies,
        |c| c.descriptor.size,
        |c| {
            let outcome = match shared {
                Some(shared) => shared.copy(sink, c),
                None => copy_one(sink, c),
            };
            progress.advance(c.descriptor.size);
            outcome
        },
    );
    progress.finish();
    let mut stats = BlobStats::default();
    for (c, outcome) in copies.iter().zip(outcomes) {
        match outcome? {
            CopyOutcome::Present => stats.present += 1,
            CopyOutcome::Mounted => stats.mounted += 1,
            CopyOutcome::Foreign => stats.foreign += 1,
            CopyOutcome::Linked => {
                stats.linked += 1;
                stats.bytes_checked += c.descriptor.size;
            }
            CopyOutcome::Copied => {
                stats.copied += 1;
                stats.bytes_checked += c.descriptor.size;
            }
        }
    }
    for (desc, bytes) in json {
        sink.put_bytes(desc, bytes)?;
    }
    sink.commit(root)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::model::Reference;
    use crate::transport::memory::MemorySource;

    /// A sink whose every copy fails as a corrupt source blob would.
    struct Failing {
        reference: Reference,
        copies: AtomicUsize,
    }

    impl Sink for Failing {
        fn reference(&self) -> &Reference {
            &self.reference
        }
        fn copy_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
            self.copies.fetch_add(1, Ordering::SeqCst);
            Err(Error::DigestMismatch {
                reference: src.reference().to_string(),
                expected: desc.digest.clone(),
                actual: Digest::of(b"other bytes"),
                size: 11,
            })
        }
        fn shares_blob_store(&self) -> bool {
            true
        }
        fn put_bytes(&self, _: &Descriptor, _: &[u8]) -> Result<()> {
            Ok(())
        }
        fn commit(&self, _: &Descriptor) -> Result<()> {
            Ok(())
        }
        fn abort(&self) {}
    }

    #[test]
    fn a_failed_shared_copy_keeps_its_kind_for_every_image_that_waits_for_it() {
        let sink = Failing {
            reference: Reference::parse("oci:/nonexistent/out:x").unwrap(),
            copies: AtomicUsize::new(0),
        };
        let src = MemorySource::new("(test)").unwrap();
        let desc = Descriptor::new("application/octet-stream", Digest::of(b"blob"), 4);
        let copy = BlobCopy {
            src: &src,
            descriptor: &desc,
            verified: false,
        };
        let shared = SharedCopies::default();
        let first = shared.copy(&sink, &copy).unwrap_err();
        let second = shared.copy(&sink, &copy).unwrap_err();
        assert_eq!(sink.copies.load(Ordering::SeqCst), 1, "copied once");
        for e in [&first, &second] {
            assert_eq!(e.kind(), "digest-mismatch", "{e}");
            assert!(
                matches!(e.unshared(), Error::DigestMismatch { .. }),
                "{e:?}"
            );
        }
        assert_eq!(first.to_string(), second.to_string());
    }
}
