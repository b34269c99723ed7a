//! Decompressors over a `BufRead`, and the end-of-stream rules both passes share.

use std::io::{self, BufRead, Read};

use super::source::classify;
use super::{Compression, EngineError};

/// A decoder reading straight from `src` (no second input buffer, no copy). The one place
/// that knows how each layer compression is decoded: the engine's passes, the layer header
/// scan and the docker-archive writer all read through it.
///
/// Gzip uses multi-member semantics: concatenated members are one legal gzip stream (pigz and
/// some registries write them). Zstd likewise accepts concatenated frames, as `zstd -d` does.
pub fn decoder<'a, B: BufRead + 'a>(
    compression: Compression,
    src: B,
) -> Result<Box<dyn Read + 'a>, EngineError> {
    match compression {
        Compression::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(src))),
        Compression::Zstd => zstd::stream::read::Decoder::with_buffer(src)
            .map(|d| Box::new(d) as Box<dyn Read + 'a>)
            .map_err(|e| classify(e, "zstd")),
        Compression::None => Ok(Box::new(src)),
    }
}

/// After the decoder reported the end of its data: the stored stream must end there too, and
/// an empty stored stream is not a valid compressed stream.
pub(crate) fn check_end(
    src: &mut impl BufRead,
    compression: Compression,
    stored_size: u64,
) -> Result<(), EngineError> {
    let name = compression.name();
    let left = src.fill_buf().map_err(|e| classify(e, name))?.len();
    if left > 0 {
        return Err(EngineError::Decompress {
            compression: name,
            detail: "unexpected data after the end of the compressed stream".into(),
        });
    }
    if stored_size == 0 {
        return Err(EngineError::Decompress {
            compression: name,
            detail: "the stream is empty".into(),
        });
    }
    Ok(())
}

/// Map a decoder's error, naming the compression.
pub(crate) fn decode_error(err: io::Error, compression: Compression) -> EngineError {
    classify(err, compression.name())
}
