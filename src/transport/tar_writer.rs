//! Writing an archive: a deterministic tar streamed into a temp file next to the target, then
//! fsync'ed and renamed over it. Until `finish` the target is untouched; dropping an unfinished
//! writer deletes the temp file, so a failed run leaves nothing behind.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::temp::{self, TempPath};
use crate::cleanup::{self, Registration};

pub struct TarWriter {
    builder: Option<tar::Builder<BufWriter<File>>>,
    /// Directory entries written so far (each member's parents come before it, for tools
    /// that extract the archive).
    dirs: BTreeSet<String>,
    /// `.NAME.ocipatch-tmp-RANDOM.tar`, created exclusively: removed when dropped unfinished.
    tmp: Option<TempPath>,
    target: PathBuf,
}

impl TarWriter {
    pub fn create(target: &Path) -> io::Result<TarWriter> {
        let (f, tmp) = temp::file_next_to(target, "tar")?;
        let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
        builder.mode(tar::HeaderMode::Deterministic);
        Ok(TarWriter {
            builder: Some(builder),
            dirs: BTreeSet::new(),
            tmp: Some(tmp),
            target: target.to_path_buf(),
        })
    }

    /// The same header for everyone: no owner, no time, fixed modes (what makes two runs on
    /// the same input produce the same bytes).
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h
    }

    fn builder(&mut self) -> &mut tar::Builder<BufWriter<File>> {
        self.builder.as_mut().expect("not finished")
    }

    fn parents(&mut self, name: &str) -> io::Result<()> {
        let mut end = 0;
        while let Some(i) = name[end..].find('/') {
            end += i;
            let dir = &name[..end];
            if self.dirs.insert(dir.to_string()) {
                let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
                self.builder()
                    .append_data(&mut h, format!("{dir}/"), io::empty())?;
            }
            end += 1;
        }
        Ok(())
    }

    /// A member of exactly `size` bytes from `data`: fewer or more bytes is an error (the
    /// header, written first, promised `size`).
    pub fn file(&mut self, name: &str, size: u64, data: impl Read) -> io::Result<()> {
        self.parents(name)?;
        let mut h = Self::header(tar::EntryType::Regular, 0o644, size);
        let mut counted = Counted {
            inner: data.take(size + 1),
            n: 0,
        };
        self.builder().append_data(&mut h, name, &mut counted)?;
        if counted.n != size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "member {name}: expected {size} bytes, the source gave {}",
                    counted.n
                ),
            ));
        }
        Ok(())
    }

    pub fn bytes(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.file(name, bytes.len() as u64, bytes)
    }

    /// Ends the tar, makes it durable and puts it in place of the target.
    pub fn finish(mut self) -> io::Result<()> {
        let builder = self.builder.take().expect("finish once");
        let f = builder
            .into_inner()?
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        drop(f);
        let tmp = self.tmp.take().expect("finish once");
        tmp.persist(&self.target)?;
        File::open(temp::parent_of(&self.target))?.sync_all()
    }
}

/// An exclusive lock for writing one archive, held from re-reading the archive to renaming its
/// replacement over it: two writers of the same FILE take turns, and the second carries over
/// the images (tags) of the first. The archive itself cannot be locked, since each writer
/// replaces it by a rename, so the lock is `FILE.lock` beside it (`flock`).
///
/// The lock file is opened with `O_NOFOLLOW` (a planted symlink is refused, never followed),
/// is never written, and is removed on release, while still locked. A waiter that then gets the
/// lock on the removed file sees that the name no longer leads to the file it locked, and tries
/// again; so the file comes and goes and the lock still holds.
pub struct ArchiveLock {
    path: PathBuf,
    _file: File,
    _registration: Registration,
}

impl ArchiveLock {
    pub fn path_for(archive: &Path) -> PathBuf {
        let mut name = archive
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".lock");
        archive.with_file_name(name)
    }

    /// Waits for the lock of `archive` and takes it.
    pub fn acquire(archive: &Path) -> io::Result<ArchiveLock> {
        let path = Self::path_for(archive);
        loop {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(&path)?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(io::Error::other(format!(
                    "{} is not a regular file; refusing to use it as a lock",
                    path.display()
                )));
            }
            file.lock()?;
            let same = std::fs::symlink_metadata(&path)
                .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
            if !same {
                continue; // its holder removed it while we waited: lock the new one
            }
            // We hold it: an interrupted run removes it like a released lock.
            let p = path.clone();
            let registration = cleanup::register(move || {
                let _ = std::fs::remove_file(p);
            });
            return Ok(ArchiveLock {
                path,
                _file: file,
                _registration: registration,
            });
        }
    }
}

impl Drop for ArchiveLock {
    fn drop(&mut self) {
        // Removed while still locked; the lock goes when `_file` closes, just after.
        let _ = std::fs::remove_file(&self.path);
    }
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn list(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn same_input_same_bytes_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str| {
            let t = dir.path().join(name);
            let mut w = TarWriter::create(&t).unwrap();
            w.bytes("blobs/sha256/b", b"abc").unwrap();
            w.bytes("blobs/sha256/a", b"abc").unwrap();
            w.finish().unwrap();
            fs::read(t).unwrap()
        };
        let (a, b) = (write("a.tar"), write("b.tar"));
        assert_eq!(a, b);
        let mut t = tar::Archive::new(&a[..]);
        let names: Vec<String> = t
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "blobs/",
                "blobs/sha256/",
                "blobs/sha256/b",
                "blobs/sha256/a"
            ]
        );
        assert_eq!(list(dir.path()), vec!["a.tar", "b.tar"]);
    }

    #[test]
    fn a_short_source_fails_and_an_unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("x.tar");
        let mut w = TarWriter::create(&t).unwrap();
        let e = w.file("m", 10, &b"abc"[..]).unwrap_err();
        assert!(e.to_string().contains("expected 10 bytes"), "{e}");
        let e = w.file("n", 1, &b"abc"[..]).unwrap_err();
        assert!(e.to_string().contains("gave 2"), "{e}");
        drop(w);
        assert!(list(dir.path()).is_empty());
    }
}
