//! The parallel blob engine: one streaming pass per blob computes its digest and diff ID.
//!
//! (Minimal single-threaded version; the pipelined engine replaces it.)

use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::model::Digest;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        if mt.ends_with("+gzip") || mt.ends_with(".gzip") {
            Some(Compression::Gzip)
        } else if mt.ends_with("+zstd") {
            Some(Compression::Zstd)
        } else if mt.ends_with(".tar") {
            Some(Compression::None)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobDigests {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Option<Digest>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("read failed: {0}")]
    Read(#[source] io::Error),
    #[error("write failed: {0}")]
    Write(#[source] io::Error),
    #[error("{compression} stream is corrupt: {detail}")]
    Decompress {
        compression: &'static str,
        detail: String,
    },
}

struct Hashing<R> {
    inner: R,
    hash: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

pub fn digest_stream(
    reader: impl Read + Send,
    diff_id: Option<Compression>,
    mut copy_to: Option<&mut (dyn Write + Send)>,
) -> Result<BlobDigests, EngineError> {
    let mut h = Hashing {
        inner: reader,
        hash: Sha256::new(),
        size: 0,
    };
    let mut buf = vec![0u8; 1 << 20];
    if diff_id.is_none() || diff_id == Some(Compression::None) {
        loop {
            let n = h.read(&mut buf).map_err(EngineError::Read)?;
            if n == 0 {
                break;
            }
            if let Some(w) = copy_to.as_mut() {
                w.write_all(&buf[..n]).map_err(EngineError::Write)?;
            }
        }
        let digest = Digest::from_sha256(h.hash.finalize().into());
        let diff = diff_id.map(|_| digest.clone());
        return Ok(BlobDigests {
            digest,
            size: h.size,
            diff_id: diff,
        });
    }
    let _ = copy_to;
    let (name, mut dec): (&'static str, Box<dyn Read>) = match diff_id.unwrap() {
        Compression::Gzip => ("gzip", Box::new(flate2::read::MultiGzDecoder::new(&mut h))),
        _ => (
            "zstd",
            Box::new(zstd::Decoder::new(&mut h).map_err(EngineError::Read)?),
        ),
    };
    let mut out = Sha256::new();
    loop {
        let n = dec.read(&mut buf).map_err(|e| EngineError::Decompress {
            compression: name,
            detail: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        out.update(&buf[..n]);
    }
    drop(dec);
    io::copy(&mut h, &mut io::sink()).map_err(EngineError::Read)?;
    Ok(BlobDigests {
        digest: Digest::from_sha256(h.hash.finalize().into()),
        size: h.size,
        diff_id: Some(Digest::from_sha256(out.finalize().into())),
    })
}

pub fn digest_file(path: &Path, diff_id: Option<Compression>) -> Result<BlobDigests, EngineError> {
    let f = std::fs::File::open(path).map_err(EngineError::Read)?;
    digest_stream(f, diff_id, None)
}

pub fn copy_to_file(
    reader: impl Read + Send,
    dest: &Path,
    diff_id: Option<Compression>,
) -> Result<BlobDigests, EngineError> {
    let f = std::fs::File::create(dest).map_err(EngineError::Write)?;
    let mut w = io::BufWriter::new(f);
    let d = digest_stream(reader, diff_id, Some(&mut w))?;
    let f = w
        .into_inner()
        .map_err(|e| EngineError::Write(e.into_error()))?;
    f.sync_all().map_err(EngineError::Write)?;
    Ok(d)
}
