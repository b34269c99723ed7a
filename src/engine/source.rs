//! The stored-bytes side of a pass: reading, and telling our own I/O errors apart from a
//! decompressor's complaints.
//!
//! Decoders see their input through `BufRead` and report everything as `io::Error`. A read or
//! write failure underneath them is tagged with [`Tagged`] on the way up, so the caller can
//! report "read failed" instead of "gzip stream is corrupt" for a disk error.

use std::io::{self, BufRead, Read, Write};

use sha2::{Digest as _, Sha256};

use super::EngineError;

/// An I/O failure of the engine's own reads or writes, smuggled through a decoder.
#[derive(Debug)]
pub(crate) enum Tagged {
    Read(io::Error),
    Write(io::Error),
}

impl std::fmt::Display for Tagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tagged::Read(e) => write!(f, "read failed: {e}"),
            Tagged::Write(e) => write!(f, "write failed: {e}"),
        }
    }
}

impl std::error::Error for Tagged {}

impl Tagged {
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Tagged::Read(e) | Tagged::Write(e) => e.kind(),
        };
        io::Error::new(kind, self)
    }
}

/// Turn an error that came out of a decoder (or our own plumbing) into an [`EngineError`].
pub(crate) fn classify(err: io::Error, compression: &'static str) -> EngineError {
    if err.get_ref().is_some_and(|e| e.is::<Tagged>()) {
        let inner = err.into_inner().expect("checked above");
        return match *inner.downcast::<Tagged>().expect("checked above") {
            Tagged::Read(e) => EngineError::Read(e),
            Tagged::Write(e) => EngineError::Write(e),
        };
    }
    let detail = if err.kind() == io::ErrorKind::UnexpectedEof {
        // A multi-member gzip decoder reads stray trailing bytes as the start of a next member
        // and then hits the end, so for gzip the two causes look the same.
        let cause = if compression == "gzip" {
            "truncated, or followed by bytes that are not gzip"
        } else {
            "truncated"
        };
        format!("{cause}: {err}")
    } else {
        err.to_string()
    };
    EngineError::Decompress {
        compression,
        detail,
    }
}

/// Read into `buf` until it is full or the reader ends; returns the bytes read. Fewer, bigger
/// chunks mean fewer hand-offs and hash calls.
pub(crate) fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A `BufRead` over the stored bytes that hashes, counts and copies each chunk as it is read,
/// so a decoder on top of it sees every byte exactly once and nothing is read twice.
pub(crate) struct TeeSource<'w, R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    pub hasher: Sha256,
    pub size: u64,
    copy_to: Option<&'w mut (dyn Write + Send)>,
}

impl<'w, R: Read> TeeSource<'w, R> {
    pub(crate) fn new(inner: R, chunk: usize, copy_to: Option<&'w mut (dyn Write + Send)>) -> Self {
        TeeSource {
            inner,
            buf: vec![0; chunk],
            pos: 0,
            len: 0,
            hasher: Sha256::new(),
            size: 0,
            copy_to,
        }
    }

    /// Read everything left without decoding it (for uncompressed blobs and digest-only passes).
    pub(crate) fn drain(&mut self) -> Result<(), EngineError> {
        loop {
            self.pos = self.len;
            if self.fill().map_err(|e| classify(e, "stored"))? == 0 {
                return Ok(());
            }
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        let n = read_full(&mut self.inner, &mut self.buf).map_err(|e| Tagged::Read(e).into_io())?;
        let chunk = &self.buf[..n];
        self.hasher.update(chunk);
        self.size += n as u64;
        if let Some(w) = self.copy_to.as_mut() {
            w.write_all(chunk).map_err(|e| Tagged::Write(e).into_io())?;
        }
        self.pos = 0;
        self.len = n;
        Ok(n)
    }
}

impl<R: Read> Read for TeeSource<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for TeeSource<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len {
            self.fill()?;
        }
        Ok(&self.buf[self.pos..self.len])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}
