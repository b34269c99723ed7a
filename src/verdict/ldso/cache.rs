//! `ldconfig`'s view of an image: which libraries it puts in `etc/ld.so.cache`, and the file
//! itself in glibc's current format (`glibc-ld.so.cache1.1`, as glibc 2.32 and later write it
//! by default).
//!
//! The scan follows `search_dir` in `elf/ldconfig.c` (glibc 2.36):
//!
//! - directories: those of `ld.so.conf`, then the platform's system directories; one that does
//!   not resolve to a directory is skipped; two that resolve to the same directory count once,
//!   at the first one's place and spelling, with the later one's `=TYPE`;
//! - files: regular files and symlinks whose name looks like a library (`lib*.so*`, `ld-*.so*`,
//!   `ld.so.*`, `ld64.so.*`), not prelink temporaries; a symlink to a file stands for that file;
//!   broken links and links to directories are skipped;
//! - the file must be an `ET_DYN` ELF with a dynamic string table that the platform's
//!   `ldconfig` accepts (class and machine, see [`Platform::ldconfig_flags`]);
//! - its key is `DT_SONAME`, or the file name; a symlink named neither its target's soname nor
//!   a `.so` prefix of it is treated as a file; a symlink that is kept is keyed by its own name
//!   (so `libz.so -> libz.so.1.2.13` gives a `libz.so` entry);
//! - one entry per key and directory, valued `DIR/KEY` (`ldconfig` creates that link);
//! - entries sorted by key in `_dl_cache_libcmp` order, descending, then flags, descending;
//!   ties keep directory order.
//!
//! Not modelled: legacy hwcap subdirectories (`tls`, `x86_64`, ...) and `glibc-hwcaps/*`
//! subdirectories (none of which Debian's base images have), the a.out `libc4` format, and
//! prelink. The string table is laid out as `ldconfig`'s `stringtable_finalize` lays it out
//! (sorted by reversed string, tails merged), so with the same generator string the bytes are
//! those `ldconfig` writes.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::conf::conf_dirs;
use super::platform::{Platform, FLAG_ELF, FLAG_ELF_LIBC5, FLAG_ELF_LIBC6};
use super::{resolve_spelled, NodeKind, Resolved, View};

/// One entry of `ld.so.cache`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The name `ld.so` looks up (a soname, or a `.so` link's name).
    pub key: String,
    /// `ldconfig`'s flags: library type in the low byte, architecture in the next
    /// (`0x0303`: libc6, x86-64).
    pub flags: i32,
    /// The path `ld.so` opens, absolute, spelled with the directory as configured.
    pub path: String,
    /// The hwcap field (0 for every entry this model makes).
    pub hwcap: u64,
}

/// How [`write_cache`] lays out the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CacheOptions {
    /// The generator string of the extension section (`ldconfig (Debian GLIBC 2.36-9+deb12u4)
    /// stable release version 2.36`); `None` writes an extension directory without it.
    pub generator: Option<String>,
    /// Write a big-endian file (for big-endian platforms).
    pub big_endian: bool,
}

/// A parsed `ld.so.cache`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheFile {
    /// The entries, in file order.
    pub entries: Vec<CacheEntry>,
    /// The generator string, when the file has one.
    pub generator: Option<String>,
    /// The file is big-endian.
    pub big_endian: bool,
}

/// Why an `ld.so.cache` could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unreadable ld.so.cache: {reason}")]
pub struct CacheError {
    /// What was wrong.
    pub reason: String,
}

fn err<T>(reason: impl Into<String>) -> Result<T, CacheError> {
    Err(CacheError {
        reason: reason.into(),
    })
}

const MAGIC_NEW: &[u8] = b"glibc-ld.so.cache1.1";
const MAGIC_OLD: &[u8] = b"ld.so-1.7.0";
const HEADER: usize = 48;
const ENTRY: usize = 24;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174; // (uint32_t) -358342284
const TAG_GENERATOR: u32 = 0;
/// The most entries [`read_cache`] accepts.
pub const MAX_CACHE_ENTRIES: usize = 1 << 20;

/// `_dl_cache_libcmp`: compares runs of digits as numbers, other bytes as (signed) chars.
pub fn libcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let at = |s: &[u8], k: usize| s.get(k).copied().unwrap_or(0);
    while at(a, i) != 0 {
        let (c1, c2) = (at(a, i), at(b, j));
        if c1.is_ascii_digit() {
            if !c2.is_ascii_digit() {
                return Ordering::Greater;
            }
            let mut v1: i32 = 0;
            while at(a, i).is_ascii_digit() {
                v1 = v1.wrapping_mul(10).wrapping_add(i32::from(at(a, i) - b'0'));
                i += 1;
            }
            let mut v2: i32 = 0;
            while at(b, j).is_ascii_digit() {
                v2 = v2.wrapping_mul(10).wrapping_add(i32::from(at(b, j) - b'0'));
                j += 1;
            }
            if v1 != v2 {
                return v1.cmp(&v2);
            }
        } else if c2.is_ascii_digit() {
            return Ordering::Less;
        } else if c1 != c2 {
            return (c1 as i8).cmp(&(c2 as i8));
        } else {
            i += 1;
            j += 1;
        }
    }
    0i8.cmp(&(at(b, j) as i8))
}

/// `compare` in `elf/cache.c`: the order of entries in the file.
fn entry_order(e1: &CacheEntry, e2: &CacheEntry) -> Ordering {
    libcmp(&e2.key, &e1.key)
        .then(e2.flags.cmp(&e1.flags))
        .then(e2.hwcap.count_ones().cmp(&e1.hwcap.count_ones()))
        .then(e2.hwcap.cmp(&e1.hwcap))
}

/// `_dl_is_dso`: names `ldconfig` looks at.
fn is_dso_name(name: &str) -> bool {
    ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.")
}

fn is_prelink_temp(name: &str) -> bool {
    name.ends_with(".#prelink#")
        || name
            .len()
            .checked_sub(".#prelink#.XXXXXX".len())
            .is_some_and(|at| name.is_char_boundary(at) && name[at..].starts_with(".#prelink#."))
}

/// The cache entries `ldconfig` would write for the view, on the platform of the image's C
/// library ([`Platform::detect`]); empty when there is none. Meaningful for glibc images only
/// (musl has no `ldconfig` and no cache).
pub fn cache_entries(view: &dyn View) -> Vec<CacheEntry> {
    match Platform::detect(view) {
        Some(p) => cache_entries_for(view, &p),
        None => Vec::new(),
    }
}

struct ScanDir {
    spelled: String,
    canon: String,
    flag: Option<i32>,
}

/// The directories `ldconfig` scans, deduplicated as it does.
fn scan_dirs(view: &dyn View, platform: &Platform) -> Vec<ScanDir> {
    let mut dirs: Vec<ScanDir> = Vec::new();
    let configured = conf_dirs(view).into_iter().map(|d| (d.path, d.flag));
    let system = platform.ldconfig_dirs.iter().map(|d| (d.clone(), None));
    for (spelled, flag) in configured.chain(system) {
        let Resolved::Dir(canon) = resolve_spelled(view, &spelled) else {
            continue;
        };
        match dirs.iter_mut().find(|d| d.canon == canon) {
            Some(seen) => seen.flag = flag,
            None => dirs.push(ScanDir {
                spelled,
                canon,
                flag,
            }),
        }
    }
    dirs
}

struct Dlib {
    name: String,
    soname: String,
    flag: i32,
    is_link: bool,
}

/// The cache entries `ldconfig` would write for the view on `platform`, in file order.
pub fn cache_entries_for(view: &dyn View, platform: &Platform) -> Vec<CacheEntry> {
    let mut entries: Vec<CacheEntry> = Vec::new();
    for dir in scan_dirs(view, platform) {
        let mut dlibs: Vec<Dlib> = Vec::new();
        for (name, kind) in view.list(&dir.canon) {
            if !matches!(kind, NodeKind::File | NodeKind::Symlink)
                || !is_dso_name(&name)
                || is_prelink_temp(&name)
            {
                continue;
            }
            let full = if dir.canon.is_empty() {
                name.clone()
            } else {
                format!("{}/{name}", dir.canon)
            };
            let target = match kind {
                NodeKind::Symlink => match view.resolve(&full) {
                    Resolved::File(t) => t,
                    _ => continue,
                },
                _ => full,
            };
            let Some(info) = view.elf(&target) else {
                continue;
            };
            let Some(mut flag) = platform.ldconfig_flags(info) else {
                continue;
            };
            let mut soname = info.soname.clone().unwrap_or_else(|| name.clone());
            let mut is_link = kind == NodeKind::Symlink;
            if is_link
                && name != soname
                && !(name.ends_with(".so") && soname.starts_with(name.as_str()))
            {
                is_link = false;
            }
            if is_link {
                soname = name.clone();
            }
            if flag == FLAG_ELF && matches!(dir.flag, Some(FLAG_ELF_LIBC5 | FLAG_ELF_LIBC6)) {
                flag = dir.flag.unwrap_or(flag);
            }
            match dlibs.iter_mut().find(|d| d.soname == soname) {
                Some(d) => {
                    let newer = (!is_link && d.is_link)
                        || (is_link == d.is_link && libcmp(&d.name, &name) == Ordering::Less);
                    if newer {
                        // A libc5/libc6 type and a plain ELF one: the later one wins.
                        let libc = |f: i32| f == FLAG_ELF_LIBC5 || f == FLAG_ELF_LIBC6;
                        if (d.flag == FLAG_ELF && libc(flag)) || (libc(d.flag) && flag == FLAG_ELF)
                        {
                            d.flag = flag;
                        }
                        d.name = name;
                        d.is_link = is_link;
                    }
                }
                None => dlibs.insert(
                    0,
                    Dlib {
                        name,
                        soname,
                        flag,
                        is_link,
                    },
                ),
            }
        }
        for d in dlibs {
            let path = format!("{}/{}", dir.spelled, d.soname);
            entries.push(CacheEntry {
                key: d.soname,
                flags: d.flag,
                path,
                hwcap: 0,
            });
        }
    }
    // add_to_cache inserts after equal entries: a stable sort.
    entries.sort_by(entry_order);
    entries
}

/// `stringtable_finalize`: each distinct string once, sorted so that a string that is a tail of
/// the one before shares its bytes; returns the table and each string's offset.
fn string_table<'a>(
    strings: impl IntoIterator<Item = &'a str>,
) -> (Vec<u8>, HashMap<&'a str, u32>) {
    let mut distinct: Vec<&str> = strings.into_iter().collect();
    distinct.sort_unstable();
    distinct.dedup();
    // Compare from the last byte backwards: larger bytes first; a longer string before its tail.
    distinct.sort_by(|l, r| {
        let (l, r) = (l.as_bytes(), r.as_bytes());
        for k in 1..=l.len().min(r.len()) {
            let (lc, rc) = (l[l.len() - k], r[r.len() - k]);
            if lc != rc {
                return rc.cmp(&lc);
            }
        }
        r.len().cmp(&l.len())
    });
    let mut offsets = HashMap::new();
    let mut table = Vec::new();
    let mut prev: Option<(&str, u32)> = None;
    for s in distinct {
        let off = match prev {
            Some((p, poff)) if p.len() >= s.len() && p.ends_with(s) => {
                poff + (p.len() - s.len()) as u32
            }
            _ => {
                let off = table.len() as u32;
                table.extend_from_slice(s.as_bytes());
                table.push(0);
                off
            }
        };
        offsets.insert(s, off);
        prev = Some((s, off));
    }
    (table, offsets)
}

/// The `ld.so.cache` bytes for `entries` (in the order given; [`cache_entries_for`] gives them
/// in `ldconfig`'s order), in the new format only, as `ldconfig` 2.32 and later write it.
pub fn write_cache(entries: &[CacheEntry], opts: &CacheOptions) -> Vec<u8> {
    let u32b = |v: u32| {
        if opts.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u64b = |v: u64| {
        if opts.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let (table, offsets) = string_table(
        entries
            .iter()
            .flat_map(|e| [e.key.as_str(), e.path.as_str()]),
    );
    let str_offset = (HEADER + ENTRY * entries.len()) as u32;
    let extension_offset = (str_offset as usize + table.len()).next_multiple_of(4);
    let mut out = Vec::with_capacity(extension_offset + 64);
    out.extend_from_slice(MAGIC_NEW);
    out.extend_from_slice(&u32b(entries.len() as u32));
    out.extend_from_slice(&u32b(table.len() as u32));
    out.push(if opts.big_endian { 3 } else { 2 });
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&u32b(extension_offset as u32));
    out.extend_from_slice(&[0; 12]);
    for e in entries {
        out.extend_from_slice(&u32b(e.flags as u32));
        out.extend_from_slice(&u32b(str_offset + offsets[e.key.as_str()]));
        out.extend_from_slice(&u32b(str_offset + offsets[e.path.as_str()]));
        out.extend_from_slice(&u32b(0));
        out.extend_from_slice(&u64b(e.hwcap));
    }
    out.extend_from_slice(&table);
    out.resize(extension_offset, 0);
    out.extend_from_slice(&u32b(EXTENSION_MAGIC));
    match &opts.generator {
        Some(g) => {
            out.extend_from_slice(&u32b(1));
            out.extend_from_slice(&u32b(TAG_GENERATOR));
            out.extend_from_slice(&u32b(0));
            out.extend_from_slice(&u32b((extension_offset + 24) as u32));
            out.extend_from_slice(&u32b(g.len() as u32));
            out.extend_from_slice(g.as_bytes());
        }
        None => out.extend_from_slice(&u32b(0)),
    }
    out
}

/// Reads an `ld.so.cache` in the new format, alone or after an old-format (`ld.so-1.7.0`)
/// table. Every count, offset and string is checked against the file's length.
pub fn read_cache(bytes: &[u8]) -> Result<CacheFile, CacheError> {
    let base = if bytes.starts_with(MAGIC_OLD) {
        let n = le32(bytes, 12).ok_or_else(|| reason("truncated old header"))? as usize;
        if n > MAX_CACHE_ENTRIES {
            return err("too many old-format entries");
        }
        (16 + n * 12).next_multiple_of(8)
    } else {
        0
    };
    let cache = bytes
        .get(base..)
        .ok_or_else(|| reason("no new-format table"))?;
    if !cache.starts_with(MAGIC_NEW) {
        return err("no glibc-ld.so.cache1.1 magic");
    }
    let flags = *cache.get(28).ok_or_else(|| reason("truncated header"))?;
    let big_endian = flags & 3 == 3;
    let rd32 = |at: usize| -> Result<u32, CacheError> {
        let b: [u8; 4] = cache
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| reason(format!("truncated at byte {at}")))?;
        Ok(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let rd64 = |at: usize| -> Result<u64, CacheError> {
        Ok(if big_endian {
            (u64::from(rd32(at)?) << 32) | u64::from(rd32(at + 4)?)
        } else {
            u64::from(rd32(at)?) | (u64::from(rd32(at + 4)?) << 32)
        })
    };
    let nlibs = rd32(20)? as usize;
    if nlibs > MAX_CACHE_ENTRIES || HEADER + nlibs * ENTRY > cache.len() {
        return err(format!(
            "{nlibs} entries do not fit in {} bytes",
            cache.len()
        ));
    }
    let string = |off: u32| -> Result<String, CacheError> {
        let tail = cache
            .get(off as usize..)
            .ok_or_else(|| reason(format!("string offset {off} past the end")))?;
        let len = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| reason(format!("string at {off} is not terminated")))?;
        Ok(String::from_utf8_lossy(&tail[..len]).into_owned())
    };
    let mut entries = Vec::with_capacity(nlibs);
    for i in 0..nlibs {
        let at = HEADER + i * ENTRY;
        entries.push(CacheEntry {
            flags: rd32(at)? as i32,
            key: string(rd32(at + 4)?)?,
            path: string(rd32(at + 8)?)?,
            hwcap: rd64(at + 16)?,
        });
    }
    let mut generator = None;
    let ext = rd32(32)? as usize;
    if ext != 0 && ext.is_multiple_of(4) && rd32(ext).ok() == Some(EXTENSION_MAGIC) {
        let count = rd32(ext + 4)? as usize;
        for k in 0..count.min(64) {
            let s = ext + 8 + k * 16;
            if rd32(s)? == TAG_GENERATOR {
                let (off, size) = (rd32(s + 8)? as usize, rd32(s + 12)? as usize);
                let g = off
                    .checked_add(size)
                    .and_then(|end| cache.get(off..end))
                    .ok_or_else(|| reason("generator section past the end"))?;
                generator = Some(String::from_utf8_lossy(g).into_owned());
            }
        }
    }
    Ok(CacheFile {
        entries,
        generator,
        big_endian,
    })
}

fn reason(r: impl Into<String>) -> CacheError {
    CacheError { reason: r.into() }
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
