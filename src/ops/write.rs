//! Writing an image to a sink: blobs first (in parallel, each once, digest-checked by the
//! sink), then the JSON blobs in order (configs, manifests, index), then the tag.

use std::collections::HashSet;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::model::Descriptor;
use crate::transport::{CopyOutcome, Sink, Source};

#[derive(Clone, Debug, Default, Serialize)]
pub struct BlobStats {
    /// Blobs streamed into the destination (digest checked on the way).
    pub copied: usize,
    /// Blobs hard-linked from the source (digest checked after linking).
    pub linked: usize,
    /// Blobs the destination already had.
    pub present: usize,
    /// Foreign layers referenced by URL only.
    pub foreign: usize,
    /// Bytes in the copied and linked blobs (all read once to check them).
    pub bytes_checked: u64,
}

/// A blob the output needs, and the source to read it from.
pub struct BlobCopy<'a> {
    pub src: &'a dyn Source,
    pub descriptor: &'a Descriptor,
}

/// Copies `copies` (duplicates by digest are copied once), stores `json` in order, then points
/// the sink's tag at `root`. The first failure, in `copies` order, is returned.
pub fn write_image(
    sink: &dyn Sink,
    copies: Vec<BlobCopy>,
    json: &[(&Descriptor, &[u8])],
    root: &Descriptor,
) -> Result<BlobStats> {
    let mut seen = HashSet::new();
    let copies: Vec<BlobCopy> = copies
        .into_iter()
        .filter(|c| seen.insert(c.descriptor.digest.clone()))
        .collect();
    let outcomes: Vec<Result<CopyOutcome>> = copies
        .par_iter()
        .map(|c| sink.copy_blob(c.src, c.descriptor))
        .collect();
    let mut stats = BlobStats::default();
    for (c, outcome) in copies.iter().zip(outcomes) {
        match outcome? {
            CopyOutcome::Present => stats.present += 1,
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
