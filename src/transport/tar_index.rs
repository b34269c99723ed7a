//! A tar file indexed once, its members read in place by offset.
//!
//! Archives hold images of many GiB: they are never unpacked to disk nor read whole. One pass
//! over the headers (seeking over the data) records where each member's bytes are; a member is
//! then read with positioned reads (`pread`) from one shared handle, so several members can be
//! read at once, and a file replaced while we run (an archive rewritten in place) does not
//! change what we read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Where one member's data lies in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Byte offset of the member's data in the file.
    pub offset: u64,
    /// The member's size in bytes.
    pub size: u64,
}

/// A tar file's member table, built in one pass over its headers, and a shared handle to read
/// members in place.
#[derive(Debug)]
pub struct TarIndex {
    file: PathBuf,
    handle: Arc<File>,
    members: BTreeMap<String, Member>,
    /// Symbolic links between members (old `docker save` and skopeo point legacy
    /// `<id>/layer.tar` at the real layer file this way), name → normalised target.
    links: BTreeMap<String, String>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The compression a stream starts with, judged by its magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    /// Gzip (`1f 8b`).
    Gzip,
    /// Zstd (`28 b5 2f fd`).
    Zstd,
    /// Anything else: read as an uncompressed tar.
    Plain,
}

/// The compression `head` (the first bytes of a stream) starts with.
pub fn sniff(head: &[u8]) -> Magic {
    if head.starts_with(&GZIP_MAGIC) {
        Magic::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Magic::Zstd
    } else {
        Magic::Plain
    }
}

/// `./blobs/sha256/x`, `blobs//sha256/x` and `/blobs/sha256/x` all name `blobs/sha256/x`;
/// `..` is resolved lexically (as a link target would be).
pub fn normalise(path: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    parts.join("/")
}

/// Why a file is not a (complete, uncompressed) tar archive, or one of its members cannot be
/// read. The caller names the file ([`crate::Error::InvalidFile`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TarError {
    /// Opening the file failed.
    #[error("cannot open: {0}")]
    Open(#[source] io::Error),
    /// Its size could not be read.
    #[error("cannot stat: {0}")]
    Stat(#[source] io::Error),
    /// Reading it failed.
    #[error("cannot read: {0}")]
    Read(#[source] io::Error),
    /// An empty file.
    #[error("the file is empty, not a tar archive")]
    Empty,
    /// A compressed archive (`gzip` or `zstd`).
    #[error("the archive is {0} compressed; only uncompressed tar archives are supported (decompress it first, as for skopeo)")]
    Compressed(&'static str),
    /// Not a tar archive at all.
    #[error("not a tar archive: {0}")]
    NotTar(#[source] io::Error),
    /// A header that does not parse.
    #[error("not a valid tar archive: {0}")]
    Invalid(#[source] io::Error),
    /// The file ends inside a header (`after`: the member before it, if any).
    #[error("truncated: the archive ends inside {} ({source})", after.as_ref().map_or_else(|| "its first header".to_string(), |m| format!("the header after member {m}")))]
    TruncatedHeader {
        /// The last complete member.
        after: Option<String>,
        /// What the tar reader said.
        #[source]
        source: io::Error,
    },
    /// A member name that does not decode.
    #[error("bad member name: {0}")]
    BadName(#[source] io::Error),
    /// A member's data runs past the end of the file.
    #[error(
        "truncated: member {name} needs {size} bytes at offset {offset}, the file has {len} bytes"
    )]
    TruncatedMember {
        /// The member.
        name: String,
        /// Its size.
        size: u64,
        /// Where its data starts.
        offset: u64,
        /// The file's size.
        len: u64,
    },
    /// No end-of-archive marker (`after`: the last member, if any).
    #[error("{}", match after { None => "truncated or not a tar archive: no end-of-archive marker".to_string(), Some(m) => format!("truncated: the archive ends after member {m} without its end-of-archive marker") })]
    NoEnd {
        /// The last member.
        after: Option<String>,
    },
    /// A member over the size ocipatch reads whole.
    #[error("member {name} has {size} bytes, more than the {limit}-byte limit")]
    MemberTooLarge {
        /// The member.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Reading a member failed.
    #[error("cannot read member {name}: {source}")]
    ReadMember {
        /// The member.
        name: String,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

impl TarIndex {
    /// Scans the headers of `file`.
    pub fn open(file: &Path) -> Result<TarIndex, TarError> {
        let mut f = File::open(file).map_err(TarError::Open)?;
        let len = f.metadata().map_err(TarError::Stat)?.len();
        let mut head = [0u8; 4];
        let n = read_up_to(&mut f, &mut head).map_err(TarError::Read)?;
        if n == 0 {
            return Err(TarError::Empty);
        }
        match sniff(&head[..n]) {
            Magic::Plain => {}
            m => {
                return Err(TarError::Compressed(if m == Magic::Gzip {
                    "gzip"
                } else {
                    "zstd"
                }))
            }
        }
        f.seek(SeekFrom::Start(0)).map_err(TarError::Read)?;
        let mut members = BTreeMap::new();
        let mut links = BTreeMap::new();
        let handle = Arc::new(f.try_clone().map_err(TarError::Open)?);
        let mut archive = tar::Archive::new(f);
        let entries = archive.entries_with_seek().map_err(TarError::NotTar)?;
        // Where the last member's data (padded to a block) ends: the end-of-archive marker
        // must follow. The tar crate also stops quietly at EOF, so a file cut exactly between
        // two members would otherwise pass for a complete, smaller archive.
        let mut end = 0u64;
        let mut last = String::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                // A header that would lie past EOF: the file was cut inside it.
                if len < end + 512 {
                    TarError::TruncatedHeader {
                        after: (!last.is_empty()).then(|| last.clone()),
                        source: e,
                    }
                } else {
                    TarError::Invalid(e)
                }
            })?;
            let name = normalise(&entry.path().map_err(TarError::BadName)?);
            end = entry.raw_file_position() + entry.size().div_ceil(512) * 512;
            last.clone_from(&name);
            let kind = entry.header().entry_type();
            if kind.is_file() || kind.is_contiguous() {
                let m = Member {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                };
                // Seeking over the data cannot notice a short file; the end of the data can.
                if m.offset.saturating_add(m.size) > len {
                    return Err(TarError::TruncatedMember {
                        name,
                        size: m.size,
                        offset: m.offset,
                        len,
                    });
                }
                links.remove(&name);
                members.insert(name, m);
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry.link_name().ok().flatten() else {
                    continue;
                };
                // Symlinks are relative to the link's directory, hard links to the archive root.
                let target = if kind.is_symlink() && !target.is_absolute() {
                    Path::new(&name)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(target)
                } else {
                    target.into_owned()
                };
                members.remove(&name);
                links.insert(name, normalise(&target));
            }
        }
        if len < end + 512 {
            return Err(TarError::NoEnd {
                after: (!last.is_empty()).then_some(last),
            });
        }
        Ok(TarIndex {
            file: file.to_path_buf(),
            handle,
            members,
            links,
        })
    }

    /// The indexed file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The member a name designates, following links (a few hops, no loops).
    pub fn get(&self, name: &str) -> Option<Member> {
        let mut name = normalise(Path::new(name));
        for _ in 0..16 {
            if let Some(m) = self.members.get(&name) {
                return Some(*m);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    /// Names of the regular members, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// The member's bytes as a stream.
    pub fn open_member(&self, m: Member) -> io::Result<MemberReader> {
        Ok(MemberReader {
            file: Arc::clone(&self.handle),
            pos: m.offset,
            left: m.size,
        })
    }

    /// A small member whole (JSON files), refusing anything over `limit` bytes.
    pub fn read_member(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, TarError> {
        let Some(m) = self.get(name) else {
            return Ok(None);
        };
        if m.size > limit {
            return Err(TarError::MemberTooLarge {
                name: name.to_string(),
                size: m.size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(m.size as usize);
        self.open_member(m)
            .and_then(|mut r| r.read_to_end(&mut bytes))
            .map_err(|source| TarError::ReadMember {
                name: name.to_string(),
                source,
            })?;
        Ok(Some(bytes))
    }

    /// The first bytes of a member, for sniffing its compression.
    pub fn head(&self, m: Member) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 4];
        let n = read_up_to(&mut self.open_member(m)?, &mut buf)?;
        Ok(buf[..n].to_vec())
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A member's bytes, read at their offset. It fails, rather than ends early, when the file
/// was cut short after it was indexed (a clean short EOF would pass for a whole blob).
pub struct MemberReader {
    file: Arc<File>,
    pos: u64,
    left: u64,
}

impl Read for MemberReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("archive member ends {} bytes early", self.left),
            ));
        }
        self.pos += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn header(name: &str, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        h
    }

    fn write_tar(path: &Path, build: impl FnOnce(&mut tar::Builder<File>)) {
        let mut b = tar::Builder::new(File::create(path).unwrap());
        build(&mut b);
        b.finish().unwrap();
    }

    fn read_all(idx: &TarIndex, name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        idx.open_member(idx.get(name).unwrap())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn reads_members_by_name_with_dot_prefixes_long_names_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar");
        let long = format!("{}/layer.tar", "d".repeat(150));
        write_tar(&p, |b| {
            b.append(&header("./index.json", 2), &b"{}"[..]).unwrap();
            b.append_data(&mut header("x", 5), &long, &b"hello"[..])
                .unwrap();
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            b.append_link(&mut l, "legacy/layer.tar", format!("../{long}"))
                .unwrap();
        });
        let idx = TarIndex::open(&p).unwrap();
        assert_eq!(read_all(&idx, "index.json"), b"{}");
        assert_eq!(read_all(&idx, "./index.json"), b"{}");
        assert_eq!(read_all(&idx, &long), b"hello");
        assert_eq!(read_all(&idx, "legacy/layer.tar"), b"hello");
        assert!(idx.get("missing").is_none());
        assert_eq!(idx.names().count(), 2);
    }

    #[test]
    fn a_truncated_archive_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar");
        write_tar(&p, |b| {
            b.append(&header("big", 10_000), &vec![7u8; 10_000][..])
                .unwrap();
        });
        let f = fs_open_rw(&p);
        f.set_len(4096).unwrap();
        let e = TarIndex::open(&p).unwrap_err();
        assert!(matches!(e, TarError::TruncatedMember { .. }), "{e}");
        let e = e.to_string();
        assert!(e.contains("truncated") && e.contains("big"), "{e}");
        // cut exactly after a member: no end-of-archive marker
        write_tar(&p, |b| {
            b.append(&header("a", 3), &b"abc"[..]).unwrap();
            b.append(&header("b", 3), &b"def"[..]).unwrap();
        });
        fs_open_rw(&p).set_len(1024).unwrap();
        let e = TarIndex::open(&p).unwrap_err();
        assert!(
            matches!(&e, TarError::NoEnd { after: Some(a) } if a == "a"),
            "{e}"
        );
        let e = e.to_string();
        assert!(
            e.contains("truncated") && e.contains("after member a"),
            "{e}"
        );
    }

    #[test]
    fn compressed_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0u8; 1024]).unwrap();
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        let e = TarIndex::open(&p).unwrap_err();
        assert!(matches!(e, TarError::Compressed("gzip")), "{e}");
        assert!(e.to_string().contains("gzip"), "{e}");
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(TarIndex::open(&p), Err(TarError::Empty)));
    }

    fn fs_open_rw(p: &Path) -> File {
        std::fs::OpenOptions::new().write(true).open(p).unwrap()
    }

    /// A member past 4 GiB, in a sparse file (no real disk use): offsets are 64-bit.
    #[test]
    fn members_beyond_4_gib() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.tar");
        let huge: u64 = (5 << 30) + 3;
        let mut f = File::create(&p).unwrap();
        f.write_all(header("huge", huge).as_bytes()).unwrap();
        let next = 512 + huge.div_ceil(512) * 512;
        f.seek(SeekFrom::Start(next)).unwrap();
        f.write_all(header("after", 3).as_bytes()).unwrap();
        let mut data = b"end".to_vec();
        data.resize(512 + 1024, 0);
        f.write_all(&data).unwrap();
        drop(f);
        let idx = TarIndex::open(&p).unwrap();
        let m = idx.get("after").unwrap();
        assert_eq!(m.offset, next + 512);
        assert!(m.offset > u32::MAX as u64);
        assert_eq!(read_all(&idx, "after"), b"end");
        assert_eq!(idx.get("huge").unwrap().size, huge);
    }

    #[test]
    fn a_member_cut_after_indexing_is_an_error_not_a_short_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar");
        write_tar(&p, |b| {
            b.append(&header("m", 2000), &vec![1u8; 2000][..]).unwrap();
        });
        let idx = TarIndex::open(&p).unwrap();
        fs_open_rw(&p).set_len(1000).unwrap();
        let mut out = Vec::new();
        let e = idx
            .open_member(idx.get("m").unwrap())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
