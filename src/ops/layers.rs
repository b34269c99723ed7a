//! Reading layer contents: a layer blob as its uncompressed tar, and the headers of many layers
//! scanned in parallel (for the rebase safety report and `append --delete`).

use std::io::Read;

use rayon::prelude::*;

use crate::engine::{self, Compression};
use crate::error::{Error, Result};
use crate::layer::{scan_headers, EntryInfo};
use crate::model::{media, Descriptor};
use crate::transport::Source;

/// The layer's uncompressed tar stream. Digests are not checked here (verify does that).
pub fn open_tar<'a>(src: &'a dyn Source, desc: &Descriptor) -> Result<Box<dyn Read + 'a>> {
    let invalid = |reason: String| Error::InvalidBlob {
        reference: src.reference().to_string(),
        what: "layer",
        digest: desc.digest.clone(),
        reason,
    };
    let compression = Compression::from_media_type(&desc.media_type)
        .ok_or_else(|| invalid(format!("unknown layer media type {}", desc.media_type)))?;
    let blob = std::io::BufReader::with_capacity(1 << 20, src.open_blob(&desc.digest)?);
    engine::decoder(compression, blob).map_err(|e| invalid(e.to_string()))
}

/// The tar headers of each layer, in order, read in parallel (contents are skipped). A foreign
/// layer whose blob is not stored (a Windows base layer known by URL only) counts as empty.
pub fn scan_layers(src: &dyn Source, layers: &[Descriptor]) -> Result<Vec<Vec<EntryInfo>>> {
    layers
        .par_iter()
        .map(|desc| {
            if media::is_foreign_layer(&desc.media_type) && !src.has_blob(&desc.digest)? {
                return Ok(Vec::new());
            }
            let tar = open_tar(src, desc)?;
            scan_headers(tar).map_err(|e| Error::InvalidBlob {
                reference: src.reference().to_string(),
                what: "layer",
                digest: desc.digest.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}
