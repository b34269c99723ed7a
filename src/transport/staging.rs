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

use super::temp::{self, TempPath};
use super::{CopyOutcome, Source};
use crate::cleanup::Registration;
use crate::engine::{self, BlobDigests, Compression, EngineError};
use crate::error::{Error, Result};
use crate::model::{Descriptor, Digest, Reference};

pub struct Staging {
    /// The archive being written, for errors (a full disk is the destination's).
    destination: Reference,
    dir: Mutex<Option<(tempfile::TempDir, Registration)>>,
    path: PathBuf,
    /// Staged blobs: digest → size.
    blobs: Mutex<BTreeMap<Digest, u64>>,
}

impl Staging {
    /// A staging directory next to `target` (same filesystem: hard links work).
    pub fn next_to(target: &Path, destination: &Reference) -> Result<Staging> {
        let dir = temp::dir_next_to(target).map_err(|e| Error::io(temp::parent_of(target), e))?;
        Ok(Staging {
            destination: destination.clone(),
            path: dir.0.path().to_path_buf(),
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

    /// A temp file for a blob arriving (random name, created exclusively).
    fn temp(&self, digest: &Digest) -> Result<(File, TempPath)> {
        temp::file_in(&self.path, digest.hex()).map_err(|e| Error::io(&self.path, e))
    }

    /// Copies a blob as it is stored, checking digest and size (linking it when the source
    /// is a file on this filesystem).
    pub fn copy(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        if self.has(&desc.digest) {
            return Ok(CopyOutcome::Present);
        }
        // Same filesystem: link instead of copying, but only a regular file (never a symlink
        // of the source's), then read the link once to check it.
        if let Some(path) = src.blob_path(&desc.digest) {
            if let Ok(link) = temp::link_in(&self.path, desc.digest.hex(), &path) {
                if let Ok(f) = super::open_regular_nofollow(link.path()) {
                    let got = super::check_blob(src, desc, super::digest_bounded(f, desc))?;
                    self.install(link, &got.digest, got.size)?;
                    return Ok(CopyOutcome::Linked);
                }
            }
        }
        let (mut f, tmp) = self.temp(&desc.digest)?;
        let reader = super::bounded(src.open_blob(&desc.digest)?, desc);
        let result = engine::digest_stream(reader, None, Some(&mut f))
            .and_then(|d| f.sync_all().map(|()| d).map_err(EngineError::Write));
        let got = super::check_copy(src, desc, &self.destination, tmp.path(), result)?;
        self.install(tmp, &got.digest, got.size)?;
        Ok(CopyOutcome::Copied)
    }

    /// Copies a compressed layer decompressed (docker-archive layers are plain tars), checking
    /// the compressed digest and size on the way. Returns the diff ID: the staged blob's name.
    pub fn copy_decompressed(
        &self,
        src: &dyn Source,
        desc: &Descriptor,
        compression: Compression,
    ) -> Result<Digest> {
        let (mut f, tmp) = self.temp(&desc.digest)?;
        let reader = super::bounded(src.open_blob(&desc.digest)?, desc);
        let result = decompress_to_file(reader, compression, &mut f);
        let got = super::check_copy(src, desc, &self.destination, tmp.path(), result)?;
        let diff_id = got.diff_id.expect("decompression yields a diff ID");
        if !self.has(&diff_id) {
            let size = f.metadata().map_err(|e| Error::io(tmp.path(), e))?.len();
            self.install(tmp, &diff_id, size)?;
        }
        Ok(diff_id)
    }

    /// Stores bytes we produced (configs, manifests); their digest is the caller's promise.
    pub fn put(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        if self.has(&desc.digest) {
            return Ok(());
        }
        let (mut f, tmp) = self.temp(&desc.digest)?;
        f.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
        self.install(tmp, &desc.digest, bytes.len() as u64)
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

    fn install(&self, tmp: TempPath, digest: &Digest, size: u64) -> Result<()> {
        let dest = self.path_of(digest);
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e))?;
        self.record(digest, size);
        Ok(())
    }

    /// Removes the directory now (it also goes when dropped).
    pub fn remove(&self) {
        if let Some((d, _registration)) = self.dir.lock().expect("staging lock").take() {
            let _ = d.close();
        }
    }
}

/// One pass through the engine's decoder: the compressed stream is hashed (digest) while it is
/// decompressed into `dest`, the decompressed stream hashed too (diff ID), under the engine's
/// end-of-stream rules.
fn decompress_to_file(
    reader: impl Read,
    compression: Compression,
    dest: &mut File,
) -> std::result::Result<BlobDigests, EngineError> {
    let copy = |r: &mut dyn Read| -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(1 << 20, &mut *dest);
        io::copy(r, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    };
    match engine::decode_with(reader, compression, copy) {
        Ok(((), digests)) => Ok(digests),
        Err(engine::ConsumeError::Stream(e)) => Err(e),
        // The decoder's own failures come back as `Stream`; what is left is the file's.
        Err(engine::ConsumeError::Consumer(e)) => Err(EngineError::Write(e)),
    }
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
        let out = || File::create(&dest).unwrap();
        let got = decompress_to_file(&blob[..], Compression::Gzip, &mut out()).unwrap();
        assert_eq!(got.digest, Digest::of(&blob));
        assert_eq!(got.size, blob.len() as u64);
        assert_eq!(got.diff_id, Some(Digest::of(&plain)));
        assert_eq!(fs::read(&dest).unwrap(), plain);
        let z = zstd::encode_all(&plain[..], 3).unwrap();
        let got = decompress_to_file(&z[..], Compression::Zstd, &mut out()).unwrap();
        assert_eq!(got.diff_id, Some(Digest::of(&plain)));
        assert!(decompress_to_file(&b"\x1f\x8bjunk"[..], Compression::Gzip, &mut out()).is_err());
    }

    #[test]
    fn the_directory_goes_away() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        let s =
            Staging::next_to(&target, &Reference::parse("oci-archive:/x.tar").unwrap()).unwrap();
        let d = Descriptor::new("application/json", Digest::of(b"{}"), 2);
        s.put(&d, b"{}").unwrap();
        assert_eq!(s.read(&d.digest).unwrap(), b"{}");
        assert_eq!(s.blobs(), vec![(d.digest.clone(), 2)]);
        s.remove();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
