//! The two-thread pass for big blobs.
//!
//! A spawned *reader* thread reads the stored bytes and, for a compressed blob with a diff ID
//! asked for, decompresses them. The calling thread is the *hasher*: it hashes the stored
//! chunks, hashes the decompressed chunks and writes the copy. Decompression is the one step
//! that cannot be split, so it gets a core to itself; all the SHA-256 work (~1.4 GB/s with
//! SHA-NI) fits on the other. Measured split choices are in `docs/performance.md`.
//!
//! Memory is bounded by a pool of `tuning.buffers` chunks that travel reader → hasher → back:
//! the reader blocks when every buffer is in flight, so a fast reader never runs ahead.

use std::cell::RefCell;
use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{channel, Receiver, Sender};

use sha2::{Digest as _, Sha256};

use super::decode::{check_end, decode_error, decoder};
use super::source::{classify, read_full, Tagged};
use super::{BlobDigests, Compression, EngineError, Tuning};
use crate::model::Digest;

/// A filled buffer on its way to the hasher: the bytes are `buf[..len]`.
enum Chunk {
    Stored(Vec<u8>, usize),
    Decoded(Vec<u8>, usize),
}

pub(crate) fn run(
    reader: impl Read + Send,
    diff_id: Option<Compression>,
    copy_to: Option<&mut (dyn Write + Send)>,
    tuning: Tuning,
) -> Result<BlobDigests, EngineError> {
    let (to_hasher, from_reader) = channel::<Chunk>();
    let (to_pool, pool_rx) = channel::<Vec<u8>>();
    let decode = match diff_id {
        Some(c @ (Compression::Gzip | Compression::Zstd)) => Some(c),
        _ => None,
    };
    let pool = Pool {
        back: pool_rx,
        allocated: 0,
        max: tuning.buffers.max(3),
        chunk: tuning.chunk,
    };
    let (hashed, read) = std::thread::scope(|s| {
        let reader_thread = s.spawn(move || produce(reader, decode, to_hasher, pool));
        let hashed = consume(from_reader, to_pool, copy_to);
        let read = reader_thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (hashed, read)
    });
    // A hasher error (a failed write) is the cause when both sides failed: the reader only saw
    // the hasher hang up.
    let (stored, size, decoded) = hashed?;
    read?;
    let digest = Digest::from_sha256(stored.finalize().into());
    let diff_id = match diff_id {
        None => None,
        Some(Compression::None) => Some(digest.clone()),
        Some(_) => Some(Digest::from_sha256(decoded.finalize().into())),
    };
    Ok(BlobDigests {
        digest,
        size,
        diff_id,
    })
}

/// Recycled buffers: allocated lazily up to `max`, then only reused.
struct Pool {
    back: Receiver<Vec<u8>>,
    allocated: usize,
    max: usize,
    chunk: usize,
}

impl Pool {
    /// A free buffer, waiting for the hasher to return one if all are in flight. Fails only
    /// when the hasher has stopped (it failed), which ends the reader too.
    fn take(&mut self) -> io::Result<Vec<u8>> {
        if let Ok(buf) = self.back.try_recv() {
            return Ok(buf);
        }
        if self.allocated < self.max {
            self.allocated += 1;
            return Ok(vec![0; self.chunk]);
        }
        self.back.recv().map_err(|_| hasher_gone())
    }
}

fn hasher_gone() -> io::Error {
    Tagged::Write(io::Error::other("hasher thread stopped")).into_io()
}

/// The reader thread.
fn produce(
    mut reader: impl Read,
    decode: Option<Compression>,
    tx: Sender<Chunk>,
    pool: Pool,
) -> Result<(), EngineError> {
    // Shared by the decode loop (output buffers) and the source under the decoder (input).
    let pool = RefCell::new(pool);
    let Some(c) = decode else {
        loop {
            let mut buf = pool
                .borrow_mut()
                .take()
                .map_err(|e| classify(e, "stored"))?;
            let n = read_full(&mut reader, &mut buf).map_err(EngineError::Read)?;
            if n == 0 {
                return Ok(());
            }
            tx.send(Chunk::Stored(buf, n))
                .map_err(|_| classify(hasher_gone(), "stored"))?;
        }
    };
    let mut src = Forwarding {
        inner: reader,
        tx: tx.clone(),
        pool: &pool,
        buf: Vec::new(),
        pos: 0,
        len: 0,
        eof: false,
        size: 0,
    };
    let mut dec = decoder(c, &mut src)?;
    loop {
        let mut out = pool.borrow_mut().take().map_err(|e| decode_error(e, c))?;
        let n = read_full(&mut dec, &mut out).map_err(|e| decode_error(e, c))?;
        if n == 0 {
            break;
        }
        tx.send(Chunk::Decoded(out, n))
            .map_err(|_| decode_error(hasher_gone(), c))?;
    }
    drop(dec);
    let size = src.size;
    check_end(&mut src, c, size)
}

/// The stored-bytes source on the reader thread: each buffer, once the decoder has consumed
/// all of it, is handed to the hasher instead of being overwritten.
struct Forwarding<'p, R> {
    inner: R,
    tx: Sender<Chunk>,
    pool: &'p RefCell<Pool>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    size: u64,
}

impl<R: Read> Read for Forwarding<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Forwarding<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len && !self.eof {
            if self.len > 0 {
                let done = std::mem::take(&mut self.buf);
                self.tx
                    .send(Chunk::Stored(done, self.len))
                    .map_err(|_| hasher_gone())?;
            }
            if self.buf.is_empty() {
                self.buf = self.pool.borrow_mut().take()?;
            }
            let n =
                read_full(&mut self.inner, &mut self.buf).map_err(|e| Tagged::Read(e).into_io())?;
            self.pos = 0;
            self.len = n;
            self.size += n as u64;
            self.eof = n == 0;
        }
        Ok(&self.buf[self.pos..self.len])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}

/// The hasher, on the calling thread. Returning (on error or at the end) drops the channels,
/// which unblocks and stops the reader.
fn consume(
    rx: Receiver<Chunk>,
    to_pool: Sender<Vec<u8>>,
    mut copy_to: Option<&mut (dyn Write + Send)>,
) -> Result<(Sha256, u64, Sha256), EngineError> {
    let mut stored = Sha256::new();
    let mut decoded = Sha256::new();
    let mut size = 0u64;
    for chunk in rx {
        let buf = match chunk {
            Chunk::Stored(buf, n) => {
                stored.update(&buf[..n]);
                size += n as u64;
                if let Some(w) = copy_to.as_mut() {
                    w.write_all(&buf[..n]).map_err(EngineError::Write)?;
                }
                buf
            }
            Chunk::Decoded(buf, n) => {
                decoded.update(&buf[..n]);
                buf
            }
        };
        // The reader may already be done; then the buffer is simply freed.
        let _ = to_pool.send(buf);
    }
    Ok((stored, size, decoded))
}
