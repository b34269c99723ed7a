//! Streaming header scan of a (decompressed) layer tar: paths, kinds, ownership and whiteouts,
//! never the contents (the tar reader skips each entry's data as it moves to the next header).

use std::io::Read;

use tar::EntryType;

use super::path::{self, Whiteout};
use super::tar_header::for_each_header;
use super::LayerError;

/// One layer entry as the rebase safety analysis sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EntryInfo {
    /// Canonical: no leading `./` or `/`, no trailing `/`. For whiteouts, the *deleted* path; for
    /// an opaque marker, the opaque directory (empty string: the root).
    pub path: String,
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission bits (and setuid/setgid/sticky), as the header has them.
    pub mode: u32,
    /// Owner user ID.
    pub uid: u64,
    /// Owner group ID.
    pub gid: u64,
    /// Content size in bytes, as the header says.
    pub size: u64,
    /// Modification time, Unix seconds.
    pub mtime: u64,
    /// Symlink target as written, or canonical hard-link target.
    pub link_target: Option<String>,
    /// SHA-256 of a regular file's contents (or, for a hard link, of its target's), when the
    /// contents were read ([`super::summarize`]); `None` from a header-only scan.
    pub content: Option<crate::model::Digest>,
}

/// The kind of a tar entry, whiteouts and opaque markers told apart.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link to an earlier entry.
    HardLink,
    /// `dir/.wh.name`: `path` is the deleted `dir/name`.
    Whiteout,
    /// `dir/.wh..wh..opq`: `path` is `dir`.
    OpaqueDir,
    /// Devices, fifos and anything else.
    Other,
}

impl EntryInfo {
    /// The header fields that say whether two entries at one path are the same thing.
    pub fn fingerprint(&self) -> (EntryKind, u32, u64, u64, u64, u64, Option<&str>) {
        (
            self.kind,
            self.mode,
            self.uid,
            self.gid,
            self.size,
            self.mtime,
            self.link_target.as_deref(),
        )
    }
}

/// Read every header of a decompressed tar stream. The root entry (`./`) and pax global headers
/// are skipped; non-UTF-8 names are kept lossily (this is analysis, not extraction); a path no
/// extractor can apply (`..`, over PATH_MAX or NAME_MAX, a whiteout of `.` or `..`) is an error,
/// and so is tar metadata over its caps (see `tar_header`): memory stays bounded whatever the
/// stream holds.
pub fn scan_headers(tar: impl Read) -> Result<Vec<EntryInfo>, LayerError> {
    let mut out = Vec::new();
    for_each_header(tar, true, |raw| {
        let Some(full_path) = raw.path else {
            return Ok(());
        };
        let (kind, path) = match path::whiteout_meaning(&full_path) {
            Some(Whiteout::Deletes(deleted)) => (EntryKind::Whiteout, deleted),
            Some(Whiteout::Opaque(dir)) => (EntryKind::OpaqueDir, dir.unwrap_or_default()),
            None => (kind_of(raw.entry_type), full_path),
        };
        let link_target = match (kind, raw.link_target) {
            (EntryKind::HardLink, Some(t)) => path::normalize(&t)?,
            (EntryKind::Symlink, t) => t,
            _ => None,
        };
        out.push(EntryInfo {
            path,
            kind,
            mode: raw.mode,
            uid: raw.uid,
            gid: raw.gid,
            size: raw.size,
            mtime: raw.mtime,
            link_target,
            content: None,
        });
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn kind_of(t: EntryType) -> EntryKind {
    match t {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => EntryKind::File,
        EntryType::Directory => EntryKind::Dir,
        EntryType::Symlink => EntryKind::Symlink,
        EntryType::Link => EntryKind::HardLink,
        _ => EntryKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tar::{Builder, Header};

    fn header(kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn pax_record(key: &str, value: &str) -> Vec<u8> {
        let body = key.len() + value.len() + 3;
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        format!("{len} {key}={value}\n").into_bytes()
    }

    /// A layer written the way `tar -C dir .` writes it: `./`-prefixed, with a root entry.
    fn sample_layer() -> Vec<u8> {
        let mut b = Builder::new(Vec::new());
        let dir = |b: &mut Builder<Vec<u8>>, p: &str| {
            b.append_data(
                &mut header(EntryType::Directory, 0o755, 0),
                p,
                std::io::empty(),
            )
            .unwrap()
        };
        dir(&mut b, "./");
        dir(&mut b, "./etc/");
        let data = b"root:x:0:0::/root:/bin/sh\n";
        b.append_data(
            &mut header(EntryType::Regular, 0o644, data.len() as u64),
            "./etc/passwd",
            &data[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 0),
            "./usr/share/doc/.wh.foo",
            std::io::empty(),
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 0),
            "./var/cache/.wh..wh..opq",
            std::io::empty(),
        )
        .unwrap();
        b.append_link(
            &mut header(EntryType::Symlink, 0o777, 0),
            "./bin/sh",
            "busybox",
        )
        .unwrap();
        b.append_link(
            &mut header(EntryType::Link, 0o644, 0),
            "./etc/passwd-",
            "./etc/passwd",
        )
        .unwrap();
        let long = format!("./opt/{}/file", "d".repeat(120));
        b.append_data(
            &mut header(EntryType::Regular, 0o600, 3),
            &long,
            &b"abc"[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Fifo, 0o600, 0),
            "./run/fifo",
            std::io::empty(),
        )
        .unwrap();
        // A pax header overriding uid and mtime (with sub-second precision) of the next entry.
        let mut pax = pax_record("uid", "3000000");
        pax.extend(pax_record("mtime", "1700000000.25"));
        b.append_data(
            &mut header(EntryType::XHeader, 0o644, pax.len() as u64),
            "./PaxHeaders/big",
            &pax[..],
        )
        .unwrap();
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 0),
            "./home/big",
            std::io::empty(),
        )
        .unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn scan_normalises_paths_and_classifies_whiteouts() {
        let entries = scan_headers(&sample_layer()[..]).unwrap();
        let summary: Vec<(&str, EntryKind)> =
            entries.iter().map(|e| (e.path.as_str(), e.kind)).collect();
        let long = format!("opt/{}/file", "d".repeat(120));
        assert_eq!(
            summary,
            [
                ("etc", EntryKind::Dir),
                ("etc/passwd", EntryKind::File),
                ("usr/share/doc/foo", EntryKind::Whiteout),
                ("var/cache", EntryKind::OpaqueDir),
                ("bin/sh", EntryKind::Symlink),
                ("etc/passwd-", EntryKind::HardLink),
                (long.as_str(), EntryKind::File),
                ("run/fifo", EntryKind::Other),
                ("home/big", EntryKind::File),
            ]
        );
        assert_eq!(entries[1].size, 26);
        assert_eq!(entries[4].link_target.as_deref(), Some("busybox"));
        assert_eq!(entries[5].link_target.as_deref(), Some("etc/passwd"));
        assert_eq!((entries[6].mode, entries[6].size), (0o600, 3));
        assert_eq!(
            (entries[8].uid, entries[8].mtime),
            (3_000_000, 1_700_000_000)
        );
        assert_eq!(entries[1].mtime, 1_000);
    }

    #[test]
    fn scan_refuses_dotdot() {
        let mut h = header(EntryType::Regular, 0o644, 0);
        // Builder refuses `..`, so write the name bytes directly, as a hostile producer would.
        h.as_old_mut().name[..13].copy_from_slice(b"../etc/passwd");
        h.set_cksum();
        let mut b = Builder::new(Vec::new());
        b.append(&h, std::io::empty()).unwrap();
        let err = scan_headers(&b.into_inner().unwrap()[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("../etc/passwd"), "{err}");
    }

    /// A header block as a hostile producer writes it: any type and size, no data.
    fn raw_header(kind: EntryType, name: &str, size: u64) -> Vec<u8> {
        let mut h = header(kind, 0o644, size);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    /// Counts what the tar reader pulled from the stream.
    struct Counting<R>(R, std::rc::Rc<std::cell::Cell<u64>>);

    impl<R: std::io::Read> std::io::Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1.set(self.1.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn a_huge_gnu_long_name_is_refused_before_it_is_read() {
        // 128 MiB of name, streamed (never in memory in the test either).
        let size: u64 = 128 << 20;
        let mut tail = raw_header(EntryType::Regular, "x", 0);
        tail.extend([0u8; 1024]);
        let head = raw_header(EntryType::GNULongName, "././@LongLink", size);
        let stream = std::io::Read::chain(
            std::io::Read::chain(&head[..], std::io::repeat(b'a').take(size)),
            &tail[..],
        );
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let err = scan_headers(Counting(stream, read.clone())).unwrap_err();
        assert!(
            matches!(err, LayerError::TarLimit { size: s, limit: 4097, .. } if s == size),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("GNU long name") && msg.contains("4097"),
            "{msg}"
        );
        // Only the header block was read, not the name.
        assert!(read.get() <= 64 * 1024, "{} bytes read", read.get());
    }

    #[test]
    fn oversized_pax_members_and_long_link_names_are_refused() {
        let mut tar = raw_header(EntryType::XHeader, "PaxHeaders/x", 2 << 20);
        tar.extend(vec![b'a'; 2 << 20]);
        let err = scan_headers(&tar[..]).unwrap_err().to_string();
        assert!(
            err.contains("pax extended header") && err.contains("1048576"),
            "{err}"
        );

        let mut tar = raw_header(EntryType::GNULongLink, "././@LongLink", 10_000);
        tar.extend(vec![b'a'; 10_240]);
        let err = scan_headers(&tar[..]).unwrap_err().to_string();
        assert!(err.contains("GNU long link"), "{err}");
    }

    #[test]
    fn names_over_path_max_or_name_max_are_refused_and_shorter_ones_kept() {
        // Within the caps: a 4000-byte path of 200-byte components (a GNU long name).
        let long: String = (0..20).map(|i| format!("{i:0>199}/")).collect();
        let ok = format!("{}f", &long[..3999 - 1]);
        let mut b = Builder::new(Vec::new());
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 0),
            &ok,
            std::io::empty(),
        )
        .unwrap();
        let entries = scan_headers(&b.into_inner().unwrap()[..]).unwrap();
        assert_eq!(entries[0].path.len(), ok.len());

        // A pax path of 5000 bytes (under the pax cap, over PATH_MAX).
        let path = "d/".repeat(2500);
        let mut pax = pax_record("path", &path);
        let mut tar = raw_header(EntryType::XHeader, "PaxHeaders/x", pax.len() as u64);
        pax.resize(pax.len().div_ceil(512) * 512, 0);
        tar.extend(pax);
        tar.extend(raw_header(EntryType::Regular, "x", 0));
        tar.extend([0u8; 1024]);
        let err = scan_headers(&tar[..]).unwrap_err();
        assert!(
            matches!(
                err,
                LayerError::TooLong {
                    len: 5000,
                    limit: 4096,
                    ..
                }
            ),
            "{err}"
        );

        // A 300-byte component.
        let mut b = Builder::new(Vec::new());
        let name = format!("etc/{}", "n".repeat(300));
        b.append_data(
            &mut header(EntryType::Regular, 0o644, 0),
            &name,
            std::io::empty(),
        )
        .unwrap();
        let err = scan_headers(&b.into_inner().unwrap()[..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("255 bytes"), "{err}");
    }

    #[test]
    fn whiteouts_of_dot_and_dotdot_are_refused() {
        for name in ["etc/.wh..", "etc/.wh...", "etc/.wh."] {
            let mut tar = raw_header(EntryType::Regular, name, 0);
            tar.extend([0u8; 1024]);
            let err = scan_headers(&tar[..]).unwrap_err().to_string();
            assert!(
                err.contains(name) && err.contains("whiteout"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn an_entry_cut_short_is_an_error() {
        let mut tar = raw_header(EntryType::Regular, "etc/passwd", 1000);
        tar.extend([b'r'; 600]);
        let err = scan_headers(&tar[..]).unwrap_err().to_string();
        assert!(
            err.contains("etc/passwd") && err.contains("cut short"),
            "{err}"
        );
    }
}
