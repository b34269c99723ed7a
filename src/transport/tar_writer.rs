//! Writing an archive: a deterministic tar streamed into a temp file next to the target, then
//! fsync'ed and renamed over it. Until `finish` the target is untouched; dropping an unfinished
//! writer deletes the temp file, so a failed run leaves nothing behind.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Names of our temp files and directories next to a target archive.
pub const TEMP_MARK: &str = ".ocipatch-tmp-";
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh hidden name next to `target`: `.NAME.ocipatch-tmp-PID-N.SUFFIX`.
pub fn temp_name(target: &Path, suffix: &str) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(
        ".{name}{TEMP_MARK}{}-{n}.{suffix}",
        std::process::id()
    ))
}

pub struct TarWriter {
    builder: Option<tar::Builder<BufWriter<File>>>,
    /// Directory entries written so far (each member's parents come before it, for tools
    /// that extract the archive).
    dirs: BTreeSet<String>,
    tmp: PathBuf,
    target: PathBuf,
}

impl TarWriter {
    pub fn create(target: &Path) -> io::Result<TarWriter> {
        let tmp = temp_name(target, "tar");
        let f = File::create(&tmp)?;
        let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
        builder.mode(tar::HeaderMode::Deterministic);
        Ok(TarWriter {
            builder: Some(builder),
            dirs: BTreeSet::new(),
            tmp,
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
        fs::rename(&self.tmp, &self.target)?;
        let dir = match self.target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }
}

impl Drop for TarWriter {
    fn drop(&mut self) {
        if self.builder.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
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
