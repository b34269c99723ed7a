//! A blob's decompressed stream handed to a consumer (a tar reader, a file copy), with the
//! engine's guarantees: the stored bytes are hashed as they are read (digest and size), the
//! decompressed ones too (diff ID), whatever the consumer leaves is drained through the same
//! hashes, and the engine's end-of-stream rules apply (no trailing bytes after the compressed
//! stream, no empty stream). The layer header scan, the package-database reader, archive
//! staging and the tar input of `append` all read layers this way: one decoder, one set of
//! rules, nothing read twice.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use sha2::{Digest as _, Sha256};

use super::decode::{check_end, decode_error, decoder};
use super::source::{read_full, TeeSource};
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
    /// `None`: no diff ID asked for.
    hasher: Option<Sha256>,
    compression: Compression,
    /// A decompression error the consumer saw as an I/O error.
    failed: Option<EngineError>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&buf[..n]);
                }
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

/// How [`decode_with_options`] reads a blob.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// Hash the decompressed stream (the diff ID). A reader that only needs the stored digest
    /// checked (a layer read for its contents) saves a SHA-256 pass over every byte.
    pub diff_id: bool,
    /// Decompress (and hash the stored bytes) on a thread of its own, the consumer reading
    /// from it: for big blobs, whose decompression is then the only serial step.
    pub pipelined: bool,
}

/// Runs `consume` on the decompressed stream of `reader` (stored bytes, `compression`), then
/// reads the rest, and returns what `consume` returned with the blob's digests (diff ID
/// included). The caller compares them with the descriptor (`transport::check_blob`).
pub fn decode_with<T, E>(
    reader: impl Read,
    compression: Compression,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<(T, BlobDigests), ConsumeError<E>> {
    single(reader, compression, true, consume)
}

/// [`decode_with`], with the diff ID optional and the decompression on a thread of its own
/// when asked for. The same end-of-stream rules either way; a stream failure is reported as
/// such even when the consumer, seeing its input stop, failed first.
pub fn decode_with_options<T, E>(
    reader: impl Read + Send,
    compression: Compression,
    opts: DecodeOptions,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<(T, BlobDigests), ConsumeError<E>> {
    if opts.pipelined {
        pipelined(reader, compression, opts.diff_id, consume)
    } else {
        single(reader, compression, opts.diff_id, consume)
    }
}

/// The one-thread pass.
fn single<T, E>(
    reader: impl Read,
    compression: Compression,
    want_diff_id: bool,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<(T, BlobDigests), ConsumeError<E>> {
    let stream = ConsumeError::Stream;
    let mut src = TeeSource::new(reader, CHUNK, None);
    let (value, diff_hasher) = {
        let mut dec = decoder(compression, &mut src).map_err(stream)?;
        let mut counted = Counted {
            inner: &mut dec,
            hasher: want_diff_id.then(Sha256::new),
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
    let diff_id = diff_hasher.map(|h| Digest::from_sha256(h.finalize().into()));
    Ok((
        value,
        BlobDigests {
            digest,
            size: src.size,
            diff_id,
        },
    ))
}

/// What the decompressing thread hands the consumer.
enum Msg {
    Data(Vec<u8>, usize),
    /// The decoder reached its end (the end-of-stream rules are checked after it).
    End,
}

/// The consumer's side of the pipeline: a `Read` over the decompressed chunks. A stream that
/// stops without [`Msg::End`] (the decompressor failed, or hung up) is an I/O error here.
struct ChannelReader {
    rx: Receiver<Msg>,
    back: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            if self.ended {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(buf, len)) => {
                    let used = std::mem::replace(&mut self.current, buf);
                    if !used.is_empty() {
                        let _ = self.back.try_send(used);
                    }
                    (self.len, self.pos) = (len, 0);
                }
                Ok(Msg::End) => self.ended = true,
                Err(_) => return Err(io::Error::other("the blob's stream failed")),
            }
        }
        let n = (self.len - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Chunks in flight between the two threads (memory: this many `CHUNK`s, plus two).
const IN_FLIGHT: usize = 4;

fn pipelined<T, E>(
    reader: impl Read + Send,
    compression: Compression,
    want_diff_id: bool,
    consume: impl FnOnce(&mut dyn Read) -> Result<T, E>,
) -> Result<(T, BlobDigests), ConsumeError<E>> {
    let (tx, rx) = sync_channel::<Msg>(IN_FLIGHT);
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    std::thread::scope(|s| {
        let producer = s.spawn(move || -> Result<BlobDigests, EngineError> {
            let mut src = TeeSource::new(reader, CHUNK, None);
            let mut diff = want_diff_id.then(Sha256::new);
            {
                let mut dec = decoder(compression, &mut src)?;
                loop {
                    let mut buf = back_rx
                        .try_recv()
                        .ok()
                        .filter(|b| b.len() == CHUNK)
                        .unwrap_or_else(|| vec![0; CHUNK]);
                    let n =
                        read_full(&mut dec, &mut buf).map_err(|e| decode_error(e, compression))?;
                    if n == 0 {
                        break;
                    }
                    if let Some(h) = diff.as_mut() {
                        h.update(&buf[..n]);
                    }
                    if tx.send(Msg::Data(buf, n)).is_err() {
                        return Err(EngineError::Decompress {
                            compression: compression.name(),
                            detail: "the reader stopped".into(),
                        });
                    }
                }
            }
            if compression != Compression::None {
                let size = src.size;
                check_end(&mut src, compression, size)?;
            }
            let _ = tx.send(Msg::End);
            let digest = Digest::from_sha256(src.hasher.clone().finalize().into());
            let diff_id = match (want_diff_id, diff) {
                (false, _) => None,
                (true, _) if compression == Compression::None => Some(digest.clone()),
                (true, Some(h)) => Some(Digest::from_sha256(h.finalize().into())),
                (true, None) => None,
            };
            Ok(BlobDigests {
                digest,
                size: src.size,
                diff_id,
            })
        });
        let mut reader = ChannelReader {
            rx,
            back: back_tx,
            current: Vec::new(),
            len: 0,
            pos: 0,
            ended: false,
        };
        let value = consume(&mut reader);
        let drained = match &value {
            Ok(_) => io::copy(&mut reader, &mut io::sink()).map(drop),
            Err(_) => Ok(()),
        };
        drop(reader); // a producer still sending stops
        let produced = producer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (value, drained, produced) {
            (Ok(v), Ok(()), Ok(d)) => Ok((v, d)),
            // The stream's own failure explains whatever the consumer saw.
            (_, _, Err(e)) if !matches!(&e, EngineError::Decompress { detail, .. } if detail == "the reader stopped") => {
                Err(ConsumeError::Stream(e))
            }
            (Err(e), _, _) => Err(ConsumeError::Consumer(e)),
            (Ok(_), Err(e), _) => Err(ConsumeError::Stream(decode_error(e, compression))),
            (Ok(_), Ok(()), Err(e)) => Err(ConsumeError::Stream(e)),
        }
    })
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

    const BOTH: [bool; 2] = [false, true];

    fn with(
        pipelined: bool,
        blob: &[u8],
        compression: Compression,
        consume: impl FnOnce(&mut dyn Read) -> Result<Vec<u8>, &'static str>,
    ) -> Result<(Vec<u8>, BlobDigests), ConsumeError<&'static str>> {
        let opts = DecodeOptions {
            diff_id: true,
            pipelined,
        };
        decode_with_options(blob, compression, opts, consume)
    }

    #[test]
    fn both_passes_give_the_same_stream_digests_and_errors() {
        // Several chunks, so the pipeline recycles buffers.
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i * 7 / 3) as u8).collect();
        let blob = gz(&data);
        for p in BOTH {
            let (read, d) = with(p, &blob, Compression::Gzip, |r| {
                let mut v = vec![0; 1234];
                r.read_exact(&mut v).map(|()| v).map_err(|_| "short")
            })
            .unwrap();
            assert_eq!(read, data[..1234], "pipelined {p}");
            assert_eq!(d.digest, Digest::of(&blob));
            assert_eq!(d.diff_id, Some(Digest::of(&data)));
            // Everything, then the end.
            let (all, _) = with(p, &blob, Compression::Gzip, |r| {
                let mut v = Vec::new();
                r.read_to_end(&mut v).map(|_| v).map_err(|_| "io")
            })
            .unwrap();
            assert_eq!(all, data);
            let (_, d) = with(p, &data, Compression::None, |_| Ok(Vec::new())).unwrap();
            assert_eq!(d.diff_id, Some(Digest::of(&data)));
            // No diff ID asked for: none computed.
            let opts = DecodeOptions {
                diff_id: false,
                pipelined: p,
            };
            let (_, d) =
                decode_with_options(
                    blob.as_slice(),
                    Compression::Gzip,
                    opts,
                    |_| Ok::<_, ()>(()),
                )
                .unwrap();
            assert_eq!((d.diff_id, d.digest), (None, Digest::of(&blob)));

            let mut garbage = blob.clone();
            garbage.extend_from_slice(b"garbage!");
            let read_all = |r: &mut dyn Read| {
                let mut v = Vec::new();
                r.read_to_end(&mut v)
                    .map(|_| v)
                    .map_err(|_| "the stream stopped")
            };
            for bad in [garbage.as_slice(), &blob[..blob.len() / 2], &b""[..]] {
                assert!(
                    matches!(
                        with(p, bad, Compression::Gzip, read_all),
                        Err(ConsumeError::Stream(_))
                    ),
                    "pipelined {p}: a broken stream is the stream's failure"
                );
            }
            assert!(matches!(
                with(p, &blob, Compression::Gzip, |_| Err("nope")),
                Err(ConsumeError::Consumer("nope"))
            ));
        }
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
