//! A blob's decompressed stream handed to a consumer (a tar reader, a file copy), with the
//! engine's guarantees: the stored bytes are hashed as they are read (digest and size), the
//! decompressed ones too (diff ID), whatever the consumer leaves is drained through the same
//! hashes, and the engine's end-of-stream rules apply (no trailing bytes after the compressed
//! stream, no empty stream). The layer header scan, the package-database reader, archive
//! staging and the tar input of `append` all read layers this way: one decoder, one set of
//! rules, nothing read twice.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::decode::{check_end, decode_error, decoder};
use super::source::TeeSource;
use super::{BlobDigests, Compression, EngineError, CHUNK};
use crate::model::Digest;

/// Why a consumed pass failed: the stream (read, decompression, end rules) or the consumer.
#[derive(Debug)]
pub enum ConsumeError<E> {
    /// The stream failed: reading, decompressing, or its end-of-stream rules.
    Stream(EngineError),
    /// The consumer returned an error.
    Consumer(E),
}

/// Hashes what the consumer reads of the decompressed stream.
struct Counted<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    compression: Compression,
    /// A decompression error the consumer saw as an I/O error.
    failed: Option<EngineError>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                let msg = e.to_string();
                self.failed
                    .get_or_insert_with(|| decode_error(e, self.compression));
                Err(io::Error::other(msg))
            }
        }
    }
}

/// Runs `consume` on the decompressed stream of `reader` (stored bytes, `compression`), then
/// reads the rest, and returns what `consume` returned with the blob's digests (diff ID
/// included). The caller compares them with the descriptor (`transport::check_blob`).
pub fn decode_with<T, E>(
    reader: impl Read,
    compression: Compression,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<(T, BlobDigests), ConsumeError<E>> {
    let stream = ConsumeError::Stream;
    let mut src = TeeSource::new(reader, CHUNK, None);
    let (value, diff_hasher) = {
        let mut dec = decoder(compression, &mut src).map_err(stream)?;
        let mut counted = Counted {
            inner: &mut dec,
            hasher: Sha256::new(),
            compression,
            failed: None,
        };
        let value = consume(&mut counted);
        if let Some(e) = counted.failed.take() {
            return Err(stream(e));
        }
        let value = value.map_err(ConsumeError::Consumer)?;
        io::copy(&mut counted, &mut io::sink()).map_err(|e| {
            stream(
                counted
                    .failed
                    .take()
                    .unwrap_or_else(|| decode_error(e, compression)),
            )
        })?;
        (value, counted.hasher)
    };
    if compression != Compression::None {
        let size = src.size;
        check_end(&mut src, compression, size).map_err(stream)?;
    }
    let digest = Digest::from_sha256(src.hasher.finalize().into());
    let diff_id = Digest::from_sha256(diff_hasher.finalize().into());
    Ok((
        value,
        BlobDigests {
            digest,
            size: src.size,
            diff_id: Some(diff_id),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn the_consumer_sees_the_decoded_stream_and_the_rest_is_hashed() {
        let data = vec![7u8; 300_000];
        let blob = gz(&data);
        let (first, d) = decode_with(blob.as_slice(), Compression::Gzip, |r| {
            let mut b = [0u8; 10];
            r.read_exact(&mut b).map(|()| b)
        })
        .unwrap();
        assert_eq!(first, [7u8; 10]);
        assert_eq!(d.digest, Digest::of(&blob));
        assert_eq!(d.size, blob.len() as u64);
        assert_eq!(d.diff_id, Some(Digest::of(&data)));
        let (_, d) = decode_with(data.as_slice(), Compression::None, |_| Ok::<_, ()>(())).unwrap();
        assert_eq!(d.diff_id, Some(Digest::of(&data)));
    }

    #[test]
    fn trailing_garbage_truncation_and_empty_streams_are_errors() {
        let mut blob = gz(b"hello");
        blob.extend_from_slice(b"garbage!");
        let ok = |_: &mut dyn Read| Ok::<(), ()>(());
        assert!(matches!(
            decode_with(blob.as_slice(), Compression::Gzip, ok),
            Err(ConsumeError::Stream(_))
        ));
        let blob = gz(&[1u8; 100_000]);
        let cut = &blob[..blob.len() / 2];
        assert!(matches!(
            decode_with(cut, Compression::Gzip, ok),
            Err(ConsumeError::Stream(_))
        ));
        assert!(matches!(
            decode_with(&b""[..], Compression::Gzip, ok),
            Err(ConsumeError::Stream(_))
        ));
        // A consumer's own failure is its own.
        let blob = gz(b"x");
        let r = decode_with(blob.as_slice(), Compression::Gzip, |_| Err::<(), _>("nope"));
        assert!(matches!(r, Err(ConsumeError::Consumer("nope"))));
    }
}
