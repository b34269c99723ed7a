//! Reading layer contents: one checked pass over a layer blob's tar ([`read_layer`]), and the
//! headers of many layers scanned in parallel (for the rebase safety report and `append
//! --delete`).

use std::io::Read;

use rayon::prelude::*;

use crate::engine::{self, Compression, ConsumeError};
use crate::error::{BlobError, Error, LayerContext, Result};
use crate::layer::{scan_headers, EntryInfo, LayerError};
use crate::model::Descriptor;
use crate::transport::{absent_foreign_layer, bounded, check_blob, Source};

/// Layers at least this big (stored bytes) are read by two threads (see `read_layer`).
const PIPELINE_FROM: u64 = 4 << 20;

/// Reads one layer blob: `consume` gets its decompressed tar; the rest is drained; the blob's
/// digest and size are checked against the descriptor, so nothing a corrupt or swapped blob
/// held is ever trusted. Returns what `consume` returned and the stored bytes read; `None` for
/// a foreign layer whose blob is not stored (a Windows base layer known by URL only).
pub fn read_layer<T>(
    src: &dyn Source,
    desc: &Descriptor,
    consume: impl FnOnce(&mut dyn Read) -> std::result::Result<T, LayerError>,
) -> Result<Option<(T, u64)>> {
    if absent_foreign_layer(src, desc)? {
        return Ok(None);
    }
    let invalid = |source: BlobError| Error::InvalidBlob {
        reference: src.reference().to_string(),
        what: "layer",
        digest: desc.digest.clone(),
        source,
    };
    let compression = Compression::from_media_type(&desc.media_type).ok_or_else(|| {
        invalid(BlobError::UnknownMediaType {
            media_type: desc.media_type.clone(),
        })
    })?;
    let blob = bounded(src.open_blob(&desc.digest)?, desc);
    // Only the stored digest is checked (a descriptor names no diff ID); a big layer is
    // decompressed on a thread of its own while `consume` reads it.
    let opts = engine::DecodeOptions {
        diff_id: false,
        pipelined: desc.size >= PIPELINE_FROM,
    };
    let (value, digests) = match engine::decode_with_options(blob, compression, opts, consume) {
        Ok(done) => done,
        Err(ConsumeError::Consumer(source)) => {
            return Err(Error::Layer {
                reference: src.reference().to_string(),
                digest: Some(desc.digest.clone()),
                context: LayerContext::Blob,
                source: Box::new(source),
            })
        }
        Err(ConsumeError::Stream(e)) => {
            return Err(check_blob(src, desc, Err(e))
                .err()
                .unwrap_or_else(|| invalid(BlobError::Unreadable)))
        }
    };
    let size = digests.size;
    check_blob(src, desc, Ok(digests))?;
    Ok(Some((value, size)))
}

/// The tar headers of each layer, in order, read in parallel (contents are skipped), each
/// blob digest-checked. A foreign layer whose blob is not stored counts as empty.
pub fn scan_layers(src: &dyn Source, layers: &[Descriptor]) -> Result<Vec<Vec<EntryInfo>>> {
    layers
        .par_iter()
        .map(|desc| {
            Ok(read_layer(src, desc, |tar| scan_headers(tar))?.map_or_else(Vec::new, |(e, _)| e))
        })
        .collect()
}
