//! The RPM header blob, as rpm stores one per installed package in its database (`headerExport`:
//! no lead, no magic). Layout (rpm's `doc/manual/format.md`, `lib/header.c`), all big-endian:
//!
//! ```text
//! u32 il            number of index entries
//! u32 dl            size of the data store
//! il × { u32 tag, u32 type, i32 offset, u32 count }
//! dl bytes          the data store; `offset` is relative to its start
//! ```
//!
//! Only what the package database needs is read: typed access to a tag's values. Every offset
//! and count is checked against the data store, so a header with lying offsets is an error,
//! never a panic or an out-of-bounds read.

use std::collections::BTreeMap;

/// rpm's limits (`hdrchkTags`, `hdrchkData` in lib/header_internal.h).
const MAX_TAGS: u32 = 0xffff;
const MAX_DATA: u32 = 0x0fff_ffff;

/// `RPM_CHAR_TYPE`: bytes.
pub const TYPE_CHAR: u32 = 1;
/// `RPM_INT8_TYPE`.
pub const TYPE_INT8: u32 = 2;
/// `RPM_INT16_TYPE`: big-endian.
pub const TYPE_INT16: u32 = 3;
/// `RPM_INT32_TYPE`: big-endian.
pub const TYPE_INT32: u32 = 4;
/// `RPM_INT64_TYPE`: big-endian.
pub const TYPE_INT64: u32 = 5;
/// `RPM_STRING_TYPE`: one NUL-terminated string.
pub const TYPE_STRING: u32 = 6;
/// `RPM_BIN_TYPE`: raw bytes.
pub const TYPE_BIN: u32 = 7;
/// `RPM_STRING_ARRAY_TYPE`: NUL-terminated strings.
pub const TYPE_STRING_ARRAY: u32 = 8;
/// `RPM_I18NSTRING_TYPE`: one string per locale.
pub const TYPE_I18NSTRING: u32 = 9;

/// One tag's values, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// CHAR, INT8 and BIN: raw bytes (`count` of them).
    Bytes(Vec<u8>),
    /// INT16 values.
    Int16(Vec<u16>),
    /// INT32 values.
    Int32(Vec<u32>),
    /// INT64 values.
    Int64(Vec<u64>),
    /// STRING, STRING_ARRAY and I18NSTRING (each string without its NUL). Raw bytes: rpm does
    /// not promise UTF-8.
    Strings(Vec<Vec<u8>>),
}

/// A parsed header: each tag's type and values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Tag -> (its `TYPE_*` type, its values).
    pub entries: BTreeMap<u32, (u32, Value)>,
}

impl Header {
    /// The values of `tag`; `None` when the header has no such tag.
    pub fn get(&self, tag: u32) -> Option<&Value> {
        self.entries.get(&tag).map(|(_, v)| v)
    }

    /// The `TYPE_*` type of `tag`; `None` when the header has no such tag.
    pub fn type_of(&self, tag: u32) -> Option<u32> {
        self.entries.get(&tag).map(|(t, _)| *t)
    }

    /// The first string of a string-typed tag (lossy UTF-8, for names and versions).
    pub fn string(&self, tag: u32) -> Option<String> {
        match self.get(tag)? {
            Value::Strings(s) => s.first().map(|s| String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }

    /// The values of an INT32 tag; `None` when absent or of another type.
    pub fn u32s(&self, tag: u32) -> Option<&[u32]> {
        match self.get(tag)? {
            Value::Int32(v) => Some(v),
            _ => None,
        }
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Why a header blob does not parse. The caller adds file, layer and package.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Shorter than the two counts that start it.
    #[error("header blob of {len} bytes is too short")]
    TooShort {
        /// The blob's size.
        len: usize,
    },
    /// No index entries, or more than rpm writes.
    #[error("header has {count} index entries")]
    IndexEntries {
        /// The count.
        count: u32,
    },
    /// A data store over the size rpm writes.
    #[error("header data store of {size} bytes is too large")]
    DataTooLarge {
        /// Its size.
        size: u32,
    },
    /// The blob's size is not what its counts say.
    #[error("header blob is {len} bytes, its index ({entries} entries) and data store ({data} bytes) say {expected}")]
    Size {
        /// The blob's size.
        len: usize,
        /// Index entries.
        entries: u32,
        /// Data store bytes.
        data: u32,
        /// The size they add up to.
        expected: usize,
    },
    /// One index entry is wrong.
    #[error("header entry {index} (tag {tag}, type {ty}): {problem}")]
    Entry {
        /// Its position.
        index: usize,
        /// Its tag.
        tag: u32,
        /// Its type.
        ty: u32,
        /// What is wrong with it.
        problem: EntryProblem,
    },
}

/// What is wrong with one index entry of a header ([`HeaderError::Entry`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// A count of 0 or over the data store's limit.
    #[error("count {0}")]
    Count(u32),
    /// An offset past the data store.
    #[error("offset {offset} is outside the {len}-byte data store")]
    Outside {
        /// The offset.
        offset: usize,
        /// The data store's size.
        len: usize,
    },
    /// An offset not aligned to the type's width.
    #[error("offset {offset} is not aligned to {width}")]
    Unaligned {
        /// The offset.
        offset: usize,
        /// The type's width.
        width: usize,
    },
    /// Values that run past the data store.
    #[error("{0} values run past the data store")]
    PastEnd(usize),
    /// A STRING with a count other than 1.
    #[error("a STRING with count {0}")]
    StringCount(usize),
    /// A string without its terminating NUL.
    #[error("string runs past the data store")]
    StringPastEnd,
    /// Fewer strings than the count before the data store ends.
    #[error("strings run past the data store")]
    StringsPastEnd,
    /// A type rpm does not define.
    #[error("unknown type")]
    UnknownType,
    /// A tag present twice.
    #[error("tag appears twice")]
    TagTwice,
}

/// Parses a header blob. The error says what is wrong; the caller adds file, layer and package.
pub fn parse(blob: &[u8]) -> Result<Header, HeaderError> {
    if blob.len() < 8 {
        return Err(HeaderError::TooShort { len: blob.len() });
    }
    let (il, dl) = (be32(blob, 0), be32(blob, 4));
    if il == 0 || il > MAX_TAGS {
        return Err(HeaderError::IndexEntries { count: il });
    }
    if dl > MAX_DATA {
        return Err(HeaderError::DataTooLarge { size: dl });
    }
    let index_end = 8 + 16 * il as usize;
    let expected = index_end + dl as usize;
    if blob.len() != expected {
        return Err(HeaderError::Size {
            len: blob.len(),
            entries: il,
            data: dl,
            expected,
        });
    }
    let data = &blob[index_end..];
    let mut entries = BTreeMap::new();
    for i in 0..il as usize {
        let e = 8 + 16 * i;
        let (tag, ty, off, count) = (
            be32(blob, e),
            be32(blob, e + 4),
            be32(blob, e + 8),
            be32(blob, e + 12),
        );
        let bad = |problem| HeaderError::Entry {
            index: i,
            tag,
            ty,
            problem,
        };
        if count == 0 || count > MAX_DATA {
            return Err(bad(EntryProblem::Count(count)));
        }
        let off = off as usize;
        if off >= data.len() {
            return Err(bad(EntryProblem::Outside {
                offset: off,
                len: data.len(),
            }));
        }
        let count = count as usize;
        let fixed = |width: usize| -> Result<&[u8], HeaderError> {
            if !off.is_multiple_of(width) {
                return Err(bad(EntryProblem::Unaligned { offset: off, width }));
            }
            let end = count
                .checked_mul(width)
                .and_then(|n| n.checked_add(off))
                .filter(|end| *end <= data.len())
                .ok_or_else(|| bad(EntryProblem::PastEnd(count)))?;
            Ok(&data[off..end])
        };
        let value = match ty {
            TYPE_CHAR | TYPE_INT8 | TYPE_BIN => Value::Bytes(fixed(1)?.to_vec()),
            TYPE_INT16 => Value::Int16(
                fixed(2)?
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect(),
            ),
            TYPE_INT32 => Value::Int32(fixed(4)?.chunks(4).map(|c| be32(c, 0)).collect()),
            TYPE_INT64 => Value::Int64(
                fixed(8)?
                    .chunks(8)
                    .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING => {
                if ty == TYPE_STRING && count != 1 {
                    return Err(bad(EntryProblem::StringCount(count)));
                }
                let mut strings = Vec::with_capacity(count.min(4096));
                let mut at = off;
                for _ in 0..count {
                    let len = data[at..]
                        .iter()
                        .position(|b| *b == 0)
                        .ok_or_else(|| bad(EntryProblem::StringPastEnd))?;
                    strings.push(data[at..at + len].to_vec());
                    at += len + 1;
                    if at > data.len() || (at == data.len() && strings.len() < count) {
                        return Err(bad(EntryProblem::StringsPastEnd));
                    }
                }
                Value::Strings(strings)
            }
            _ => return Err(bad(EntryProblem::UnknownType)),
        };
        if entries.insert(tag, (ty, value)).is_some() {
            return Err(bad(EntryProblem::TagTwice));
        }
    }
    Ok(Header { entries })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a header blob from (tag, type, count, data) entries, data laid out in order with
    /// the alignment rpm uses.
    pub(crate) fn build(entries: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        for (tag, ty, count, bytes) in entries {
            let align = match *ty {
                TYPE_INT16 => 2,
                TYPE_INT32 => 4,
                TYPE_INT64 => 8,
                _ => 1,
            };
            while !data.len().is_multiple_of(align) {
                data.push(0);
            }
            for v in [*tag, *ty, data.len() as u32, *count] {
                index.extend_from_slice(&v.to_be_bytes());
            }
            data.extend_from_slice(bytes);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&index);
        out.extend_from_slice(&data);
        out
    }

    pub(crate) fn s(v: &str) -> Vec<u8> {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    }

    pub(crate) fn strs(v: &[&str]) -> Vec<u8> {
        v.iter().flat_map(|x| s(x)).collect()
    }

    pub(crate) fn ints(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    #[test]
    fn reads_every_type() {
        let blob = build(&[
            (1000, TYPE_STRING, 1, s("openssl")),
            (1003, TYPE_INT32, 1, ints(&[2])),
            (
                1047,
                TYPE_STRING_ARRAY,
                2,
                strs(&["libssl.so.3", "openssl"]),
            ),
            (261, TYPE_BIN, 3, vec![1, 2, 3]),
            (1016, TYPE_I18NSTRING, 1, s("System")),
            (1030, TYPE_INT16, 2, vec![0x81, 0xa4, 0, 1]),
            (5008, TYPE_INT64, 1, 7u64.to_be_bytes().to_vec()),
        ]);
        let h = parse(&blob).unwrap();
        assert_eq!(h.string(1000).as_deref(), Some("openssl"));
        assert_eq!(h.u32s(1003), Some(&[2u32][..]));
        assert_eq!(
            h.get(1047),
            Some(&Value::Strings(vec![
                b"libssl.so.3".to_vec(),
                b"openssl".to_vec()
            ]))
        );
        assert_eq!(h.get(261), Some(&Value::Bytes(vec![1, 2, 3])));
        assert_eq!(h.string(1016).as_deref(), Some("System"));
        assert_eq!(h.get(1030), Some(&Value::Int16(vec![0x81a4, 1])));
        assert_eq!(h.get(5008), Some(&Value::Int64(vec![7])));
    }

    #[test]
    fn lying_headers_are_errors_not_panics() {
        let good = build(&[
            (1000, TYPE_STRING, 1, s("a")),
            (1003, TYPE_INT32, 1, ints(&[1])),
        ]);
        assert!(parse(&good).is_ok());
        let set = |at: usize, v: u32| {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            b
        };
        // Entry 1 starts at 24: tag, type, offset (32), count (36).
        for (blob, why) in [
            (set(0, 3), "header blob is"),               // il lies
            (set(4, 1), "header blob is"),               // dl lies
            (set(0, 0x10000), "index entries"),          // il beyond rpm's limit
            (set(32, 4000), "outside"),                  // offset beyond the store
            (set(36, 100), "run past"),                  // count beyond the store
            (set(36, 0), "count 0"),                     // empty entry
            (set(28, 77), "unknown type"),               // type
            (set(32, 1), "not aligned"),                 // misaligned int32
            (set(8, 1004), "tag 1004, type 6"),          // still parses the string: tag renamed
            (good[..7].to_vec(), "too short"),           // truncated
            (good[..good.len() - 1].to_vec(), "say 48"), // truncated store
        ] {
            match parse(&blob) {
                Err(e) => assert!(e.to_string().contains(why), "{why}: {e}"),
                Ok(h) => assert!(
                    why.starts_with("tag 1004") && h.get(1004).is_some(),
                    "{why}"
                ),
            }
        }
        // A string that never ends.
        let mut b = build(&[(1000, TYPE_STRING, 1, b"abc".to_vec())]);
        let e = parse(&b).unwrap_err();
        assert!(
            matches!(
                e,
                HeaderError::Entry {
                    problem: EntryProblem::StringPastEnd,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("past the data store"), "{e}");
        // A string array whose count lies.
        b = build(&[(1047, TYPE_STRING_ARRAY, 3, strs(&["a", "b"]))]);
        assert!(parse(&b)
            .unwrap_err()
            .to_string()
            .contains("past the data store"));
        // Duplicate tags.
        b = build(&[
            (1000, TYPE_STRING, 1, s("a")),
            (1000, TYPE_STRING, 1, s("b")),
        ]);
        let e = parse(&b).unwrap_err();
        assert!(
            matches!(
                e,
                HeaderError::Entry {
                    tag: 1000,
                    problem: EntryProblem::TagTwice,
                    ..
                }
            ),
            "{e}"
        );
    }
}
