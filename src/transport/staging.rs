//! Where an archive sink keeps the blobs it received until `commit` streams them into the tar.
//!
//! Blobs arrive in parallel and in no particular order; the tar is written at commit, in digest
//! order, so identical inputs give byte-identical archives. Staging on disk (a hidden temp
//! directory next to the target, removed when dropped) keeps memory bounded whatever the
//! image size, and lets a blob on the same filesystem be hard-linked instead of copied.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

use super::tar_writer::{temp_name, TEMP_MARK};
use super::{CopyOutcome, Source};
use crate::engine::{self, BlobDigests, Compression, EngineError};
use crate::error::{Error, Result};
use crate::model::{Descriptor, Digest};

pub struct Staging {
    dir: Mutex<Option<tempfile::TempDir>>,
    path: PathBuf,
    /// Staged blobs: digest → size.
    blobs: Mutex<BTreeMap<Digest, u64>>,
}

impl Staging {
    /// A staging directory next to `target` (same filesystem: hard links work).
    pub fn next_to(target: &Path) -> Result<Staging> {
        let parent = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{name}{TEMP_MARK}"))
            .suffix(".d")
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        Ok(Staging {
            path: dir.path().to_path_buf(),
            dir: Mutex::new(Some(dir)),
            blobs: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        self.path.join(digest.hex())
    }

    /// Staged blobs, in digest order.
    pub fn blobs(&self) -> Vec<(Digest, u64)> {
        let blobs = self.blobs.lock().expect("staging lock");
        blobs.iter().map(|(d, s)| (d.clone(), *s)).collect()
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.blobs
            .lock()
            .expect("staging lock")
            .contains_key(digest)
    }

    fn record(&self, digest: &Digest, size: u64) {
        self.blobs
            .lock()
            .expect("staging lock")
            .insert(digest.clone(), size);
    }

    fn temp(&self, digest: &Digest) -> PathBuf {
        temp_name(&self.path_of(digest), "part")
    }

    /// Copies a blob as it is stored, checking digest and size (linking it when the source
    /// is a file on this filesystem).
    pub fn copy(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        if self.has(&desc.digest) {
            return Ok(CopyOutcome::Present);
        }
        let tmp = self.temp(&desc.digest);
        let mut outcome = CopyOutcome::Copied;
        let result = match src.blob_path(&desc.digest) {
            Some(path) if fs::hard_link(&path, &tmp).is_ok() => {
                outcome = CopyOutcome::Linked;
                engine::digest_file(&tmp, None)
            }
            _ => engine::copy_to_file(src.open_blob(&desc.digest)?, &tmp, None),
        };
        let got = check(src, desc, &tmp, result)?;
        self.install(&tmp, &got.digest, got.size)?;
        Ok(outcome)
    }

    /// Copies a compressed layer decompressed (docker-archive layers are plain tars), checking
    /// the compressed digest and size on the way. Returns the diff ID: the staged blob's name.
    pub fn copy_decompressed(
        &self,
        src: &dyn Source,
        desc: &Descriptor,
        compression: Compression,
    ) -> Result<Digest> {
        let tmp = self.temp(&desc.digest);
        let result = decompress_to_file(src.open_blob(&desc.digest)?, compression, &tmp);
        let got = check(src, desc, &tmp, result)?;
        let diff_id = got.diff_id.expect("decompression yields a diff ID");
        if self.has(&diff_id) {
            let _ = fs::remove_file(&tmp);
        } else {
            let size = fs::metadata(&tmp).map_err(|e| Error::io(&tmp, e))?.len();
            self.install(&tmp, &diff_id, size)?;
        }
        Ok(diff_id)
    }

    /// Stores bytes we produced (configs, manifests); their digest is the caller's promise.
    pub fn put(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        if self.has(&desc.digest) {
            return Ok(());
        }
        let tmp = self.temp(&desc.digest);
        fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
        self.install(&tmp, &desc.digest, bytes.len() as u64)
    }

    /// A staged blob whole (a manifest or config we need to read back at commit).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.path_of(digest);
        fs::read(&p).map_err(|e| Error::io(&p, e))
    }

    pub fn open(&self, digest: &Digest) -> Result<File> {
        let p = self.path_of(digest);
        File::open(&p).map_err(|e| Error::io(&p, e))
    }

    fn install(&self, tmp: &Path, digest: &Digest, size: u64) -> Result<()> {
        let dest = self.path_of(digest);
        fs::rename(tmp, &dest).map_err(|e| {
            let _ = fs::remove_file(tmp);
            Error::io(&dest, e)
        })?;
        self.record(digest, size);
        Ok(())
    }

    /// Removes the directory now (it also goes when dropped).
    pub fn remove(&self) {
        if let Some(d) = self.dir.lock().expect("staging lock").take() {
            let _ = d.close();
        }
    }
}

/// The engine's verdict on a copied blob, turned into the crate's errors naming the source.
/// The digest check of a staged blob; a failed one removes the temp file.
fn check(
    src: &dyn Source,
    desc: &Descriptor,
    tmp: &Path,
    result: std::result::Result<BlobDigests, EngineError>,
) -> Result<BlobDigests> {
    super::check_blob(src, desc, result).inspect_err(|_| {
        let _ = fs::remove_file(tmp);
    })
}

/// Hashes what passes through it.
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

/// One pass: the compressed stream is hashed (digest) while it is decompressed into `dest`,
/// the decompressed stream hashed too (diff ID). The engine only hashes decompressed data;
/// this is the one place that keeps it.
fn decompress_to_file(
    reader: impl Read,
    compression: Compression,
    dest: &Path,
) -> std::result::Result<BlobDigests, EngineError> {
    let mut compressed = Hashing {
        inner: reader,
        hash: Sha256::new(),
        size: 0,
    };
    let name = compression.name();
    let mut decoder = engine::decoder(compression, io::BufReader::new(&mut compressed))?;
    let f = File::create(dest).map_err(EngineError::Write)?;
    let mut out = io::BufWriter::with_capacity(1 << 20, f);
    let mut diff = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = decoder
            .read(&mut buf)
            .map_err(|e| EngineError::Decompress {
                compression: name,
                detail: e.to_string(),
            })?;
        if n == 0 {
            break;
        }
        diff.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(EngineError::Write)?;
    }
    drop(decoder);
    // Trailing bytes after the compressed stream still belong to the blob's digest.
    io::copy(&mut compressed, &mut io::sink()).map_err(EngineError::Read)?;
    let f = out
        .into_inner()
        .map_err(|e| EngineError::Write(e.into_error()))?;
    f.sync_all().map_err(EngineError::Write)?;
    Ok(BlobDigests {
        digest: Digest::from_sha256(compressed.hash.finalize().into()),
        size: compressed.size,
        diff_id: Some(Digest::from_sha256(diff.finalize().into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompresses_while_hashing_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let plain = b"some layer bytes".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let blob = gz.finish().unwrap();
        let dest = dir.path().join("out");
        let got = decompress_to_file(&blob[..], Compression::Gzip, &dest).unwrap();
        assert_eq!(got.digest, Digest::of(&blob));
        assert_eq!(got.size, blob.len() as u64);
        assert_eq!(got.diff_id, Some(Digest::of(&plain)));
        assert_eq!(fs::read(&dest).unwrap(), plain);
        let z = zstd::encode_all(&plain[..], 3).unwrap();
        let got = decompress_to_file(&z[..], Compression::Zstd, &dest).unwrap();
        assert_eq!(got.diff_id, Some(Digest::of(&plain)));
        assert!(decompress_to_file(&b"\x1f\x8bjunk"[..], Compression::Gzip, &dest).is_err());
    }

    #[test]
    fn the_directory_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        let s = Staging::next_to(&target).unwrap();
        let d = Descriptor::new("application/json", Digest::of(b"{}"), 2);
        s.put(&d, b"{}").unwrap();
        assert_eq!(s.read(&d.digest).unwrap(), b"{}");
        assert_eq!(s.blobs(), vec![(d.digest.clone(), 2)]);
        s.remove();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
