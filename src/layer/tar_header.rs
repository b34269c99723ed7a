//! One tar header as both readers (the scanner and the tar-input builder) need it: GNU long names
//! and pax records already applied, path in canonical form.
//!
//! Both readers go through [`for_each_header`], which bounds what the `tar` crate may buffer.
//! The crate reads a GNU long name, long link or pax extension member whole into memory before
//! it hands out the entry it describes, so a 130 kB gzip tar holding a 128 MiB "name" costs
//! hundreds of megabytes. [`Guard`] sits under the crate and sees those members' headers go by:
//! it refuses one whose size field is over its cap before a byte of its data is read, and it
//! caps everything read between two entries (headers, extension members, sparse maps).

use std::cell::RefCell;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use tar::EntryType;

use super::{path, LayerError};

/// Counts what a callback read of an entry's data.
struct Counted<'a, R> {
    inner: &'a mut R,
    read: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Longest path (or link target) accepted, in bytes: Linux's PATH_MAX.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest single path component, in bytes: NAME_MAX, which no Linux file system goes beyond.
pub const MAX_NAME_BYTES: usize = 255;
/// Largest pax extended header member (Go's archive/tar, which docker and containerd use, has
/// the same 1 MiB limit for its "special files").
pub const MAX_PAX_BYTES: u64 = 1 << 20;
/// Largest GNU long name / long link member: a path of [`MAX_PATH_BYTES`] and its NUL.
pub const MAX_LONG_NAME_BYTES: u64 = MAX_PATH_BYTES as u64 + 1;
/// Everything the tar crate may read between handing out two entries: padding, headers, one
/// long name, one long link, one pax member and a GNU sparse map.
pub const MAX_METADATA_BYTES: u64 = 2 * MAX_PAX_BYTES;

const BLOCK: u64 = 512;

/// The xattr that holds a file's capabilities (`setcap`), and its pax record: the one xattr a
/// layer carries, as `docker build` does (others are host-specific: SELinux labels, a browser's
/// `user.xdg.origin.url`).
pub const CAPABILITY_XATTR: &str = "security.capability";
/// [`CAPABILITY_XATTR`] as a pax record key (GNU tar, Go's archive/tar and umoci spell it so).
pub const CAPABILITY_PAX_KEY: &str = "SCHILY.xattr.security.capability";

pub(crate) struct RawHeader {
    /// Canonical path; `None` for the root directory (`./`).
    pub path: Option<String>,
    pub entry_type: EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub size: u64,
    pub mtime: u64,
    pub link_target: Option<String>,
    pub device: (u32, u32),
    /// Where the entry's data starts in the tar stream.
    pub data_offset: u64,
    /// The file capabilities (`security.capability` xattr, pax `SCHILY.xattr.` record), raw.
    pub capability: Option<Vec<u8>>,
}

/// How a tar stream ended.
pub(crate) struct Ending {
    /// An end-of-archive block (all zeros) was read; without one the stream stopped at a member
    /// boundary: empty, or cut short.
    pub end_marker: bool,
    /// Bytes of the stream that were read.
    pub bytes: u64,
}

/// Read every header of the plain tar `reader` and hand it to `f`, in stream order. pax global
/// headers are skipped. Each entry's data is read through (and not kept) so a member cut short
/// is an error, and so the guard knows where the metadata before the next entry starts.
/// Non-UTF-8 names are refused unless `lossy` (analysis only).
pub(crate) fn for_each_header<R: Read>(
    reader: R,
    lossy: bool,
    mut f: impl FnMut(RawHeader) -> Result<(), LayerError>,
) -> Result<Ending, LayerError> {
    for_each_entry(reader, lossy, |raw, _| f(raw))
}

/// Like [`for_each_header`], and `f` may read the entry's data (what it leaves is skipped).
/// Data is not metadata: the guard's caps do not count it.
pub(crate) fn for_each_entry<R: Read>(
    reader: R,
    lossy: bool,
    mut f: impl FnMut(RawHeader, &mut dyn Read) -> Result<(), LayerError>,
) -> Result<Ending, LayerError> {
    let state = Rc::new(RefCell::new(GuardState::default()));
    let mut archive = tar::Archive::new(Guard {
        inner: reader,
        state: Rc::clone(&state),
    });
    let failed = |e: io::Error| {
        state
            .borrow_mut()
            .refusal
            .take()
            .unwrap_or(LayerError::Read(e))
    };
    let mut entries = archive.entries().map_err(LayerError::Read)?;
    loop {
        state.borrow_mut().open_window();
        let mut entry = match entries.next() {
            None => break,
            Some(entry) => entry.map_err(failed)?,
        };
        let mut shown = None;
        let mut consumed = 0;
        if entry.header().entry_type() != EntryType::XGlobalHeader {
            let raw = read_header(&mut entry, lossy)?;
            shown = raw.path.clone();
            state.borrow_mut().draining = true;
            let mut counted = Counted {
                inner: &mut entry,
                read: 0,
            };
            f(raw, &mut counted)?;
            consumed = counted.read;
        }
        state.borrow_mut().draining = true;
        let read = consumed + io::copy(&mut entry, &mut io::sink()).map_err(failed)?;
        state.borrow_mut().draining = false;
        if read != entry.size() {
            return Err(LayerError::TruncatedEntry {
                path: shown.unwrap_or_default(),
                read,
                size: entry.size(),
            });
        }
    }
    let state = state.borrow();
    Ok(Ending {
        end_marker: state.end_marker,
        bytes: state.pos,
    })
}

/// Read the header of `entry`. Non-UTF-8 names are refused unless `lossy` (analysis only).
fn read_header<R: Read>(entry: &mut tar::Entry<R>, lossy: bool) -> Result<RawHeader, LayerError> {
    let raw_path = text(&entry.path_bytes(), "path", lossy)?;
    let path = path::normalize(&raw_path)?;
    let link_target = match entry.link_name_bytes() {
        Some(target) => Some(text(&target, "link target", lossy)?),
        None => None,
    };
    let header = entry.header();
    let read = LayerError::Read;
    let mut raw = RawHeader {
        path,
        entry_type: header.entry_type(),
        mode: header.mode().map_err(read)? & 0o7777,
        uid: header.uid().map_err(read)?,
        gid: header.gid().map_err(read)?,
        uname: name_field(header.username_bytes()),
        gname: name_field(header.groupname_bytes()),
        size: entry.size(),
        mtime: header.mtime().map_err(read)?,
        link_target,
        device: (
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        ),
        data_offset: entry.raw_file_position(),
        capability: None,
    };
    apply_pax(entry, &mut raw)?;
    Ok(raw)
}

/// A name from a header as text, after checking its length (before any copy of it is made).
fn text(bytes: &[u8], what: &'static str, lossy: bool) -> Result<String, LayerError> {
    if bytes.len() > MAX_PATH_BYTES {
        return Err(LayerError::too_long(what, bytes, MAX_PATH_BYTES));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(_) if lossy => Ok(String::from_utf8_lossy(bytes).into_owned()),
        Err(_) => Err(LayerError::NonUtf8Path {
            path: Path::new(std::ffi::OsStr::from_bytes(bytes)).to_path_buf(),
        }),
    }
}
fn name_field(bytes: Option<&[u8]>) -> String {
    bytes
        .map(String::from_utf8_lossy)
        .unwrap_or_default()
        .into_owned()
}

/// pax records override the octal header fields (large ids, sub-second or far-future mtimes).
fn apply_pax<R: Read>(entry: &mut tar::Entry<R>, raw: &mut RawHeader) -> Result<(), LayerError> {
    let Some(records) = entry.pax_extensions().map_err(LayerError::Read)? else {
        return Ok(());
    };
    for record in records {
        let record = record.map_err(LayerError::Read)?;
        if record.key_bytes() == CAPABILITY_PAX_KEY.as_bytes() {
            raw.capability = Some(record.value_bytes().to_vec());
            continue;
        }
        let (Ok(key), Ok(value)) = (record.key(), record.value()) else {
            continue;
        };
        let number = || value.split('.').next().and_then(|v| v.parse::<u64>().ok());
        match key {
            "uid" => raw.uid = number().unwrap_or(raw.uid),
            "gid" => raw.gid = number().unwrap_or(raw.gid),
            "mtime" => raw.mtime = number().unwrap_or(raw.mtime),
            "uname" => raw.uname = value.to_string(),
            "gname" => raw.gname = value.to_string(),
            _ => {}
        }
    }
    Ok(())
}

/// What the guard knows about the stream (shared with [`for_each_header`], which tells it when
/// entry data is being read and when the metadata before the next entry starts).
#[derive(Default)]
struct GuardState {
    /// Bytes delivered so far.
    pos: u64,
    /// Entry data is being read: not metadata, not counted.
    draining: bool,
    /// Metadata bytes read since the last entry was handed out.
    window: u64,
    /// Where the next header block starts, while the guard can still follow the chain of
    /// extension members before an entry; `None` once it reached the entry's own header.
    next_header: Option<u64>,
    block: Vec<u8>,
    end_marker: bool,
    refusal: Option<LayerError>,
}

impl GuardState {
    fn open_window(&mut self) {
        self.draining = false;
        self.window = 0;
        self.next_header = Some(self.pos.div_ceil(BLOCK) * BLOCK);
        self.block.clear();
    }

    /// Follow the header blocks inside `bytes` (which start at `self.pos`).
    fn observe(&mut self, bytes: &[u8]) -> Result<(), LayerError> {
        let end = self.pos + bytes.len() as u64;
        while let Some(start) = self.next_header {
            let from = self.pos.max(start + self.block.len() as u64);
            let to = end.min(start + BLOCK);
            if from >= to {
                return Ok(());
            }
            self.block
                .extend_from_slice(&bytes[(from - self.pos) as usize..(to - self.pos) as usize]);
            if self.block.len() as u64 == BLOCK {
                self.next_header = self.inspect(start)?;
                self.block.clear();
            }
        }
        Ok(())
    }

    /// One complete header block at `offset`: where the next header is if this one is an
    /// extension member the tar crate will buffer, after checking its size against the cap.
    fn inspect(&mut self, offset: u64) -> Result<Option<u64>, LayerError> {
        let block = &self.block;
        if block.iter().all(|b| *b == 0) {
            self.end_marker = true;
            return Ok(None);
        }
        // The crate only treats these types as extensions in ustar and GNU headers.
        if &block[257..262] != b"ustar" {
            return Ok(None);
        }
        let (what, limit) = match block[156] {
            b'L' => ("GNU long name (a path)", MAX_LONG_NAME_BYTES),
            b'K' => ("GNU long link (a link target)", MAX_LONG_NAME_BYTES),
            b'x' => ("pax extended header", MAX_PAX_BYTES),
            _ => return Ok(None),
        };
        // An unreadable size is the crate's to report.
        let Some(size) = numeric_field(&block[124..136]) else {
            return Ok(None);
        };
        if size > limit {
            return Err(LayerError::TarLimit {
                offset,
                what,
                size,
                limit,
            });
        }
        Ok(Some(offset + BLOCK + size.div_ceil(BLOCK) * BLOCK))
    }
}

/// A tar numeric field: octal text, or GNU base-256 (high bit of the first byte set).
fn numeric_field(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            value = value.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(value);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The reader under the tar crate: passes entry data through, and bounds the metadata read
/// between two entries (see the module documentation).
struct Guard<R> {
    inner: R,
    state: Rc<RefCell<GuardState>>,
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.state.borrow_mut();
        if s.refusal.is_some() {
            return Err(io::Error::other("tar input refused"));
        }
        if s.draining {
            let n = self.inner.read(buf)?;
            s.pos += n as u64;
            return Ok(n);
        }
        let room = MAX_METADATA_BYTES - s.window;
        if room == 0 {
            s.refusal = Some(LayerError::TarMetadataLimit {
                offset: s.pos,
                limit: MAX_METADATA_BYTES,
            });
            return Err(io::Error::other("tar metadata over its limit"));
        }
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        if let Err(refusal) = s.observe(&buf[..n]) {
            s.refusal = Some(refusal);
            return Err(io::Error::other("tar member over its limit"));
        }
        s.pos += n as u64;
        s.window += n as u64;
        Ok(n)
    }
}
