//! Reproducible layer building: the same input gives the same bytes on any machine running the
//! same ocipatch build.
//!
//! What makes it reproducible:
//! - entries in byte order of their canonical path (`etc/`, `etc/passwd`; directories end in `/`,
//!   nothing starts with `./`; the root directory itself has no entry);
//! - GNU tar headers (GNU long-name records for paths over 100 bytes), atime/ctime left empty; a
//!   pax record only for a file's capabilities (`SCHILY.xattr.security.capability`, kept from
//!   the source in every mode, as `docker build` keeps them), no other xattr;
//! - mtime = min(source mtime, [`BuildOptions::mtime`]), never below 0;
//! - without `keep_owners`: uid = gid = 0, no user/group names, and permission bits canonical, so
//!   the umask that created the source does not matter: directories 0755, symlinks 0777, everything
//!   else 0755 if any execute bit is set and 0644 otherwise. setuid/setgid/sticky bits are kept (a
//!   umask never sets them, and dropping them would break binaries like `sudo`); a sticky
//!   world-writable directory (the `/tmp` pattern) stays 1777;
//! - with `keep_owners`: uid, gid, names (tar input only) and all 12 mode bits as in the source;
//! - gzip: fixed level 6, header with mtime 0, no name, OS byte 255; zstd: level 3, single thread,
//!   checksum on, no content size; both fed in fixed 128 KiB blocks (see `chunks.rs`), never
//!   flushed mid-stream.
//!
//! Byte identity holds for one ocipatch build (the compressors are pinned by `Cargo.lock`);
//! `golden_digests` in the tests catches a dependency update that changes the output.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use tar::{EntryType, Header};

use super::chunks::FixedChunks;
use super::entries::{finish, Content, Entries, Meta, NodeKind};
use super::from_dir::collect_dir;
use super::from_tar::collect_tar;
use super::hash::HashWriter;
use super::tar_header::CAPABILITY_PAX_KEY;
use super::{LayerError, Tree};
use crate::model::Digest;

/// Where the new layer's files come from.
#[derive(Clone, Debug)]
pub enum LayerInput {
    /// A directory whose contents become the layer (the directory itself is the image root).
    Dir(PathBuf),
    /// A tar file, plain, gzip or zstd (sniffed); its entries are normalised and re-sorted.
    Tar(PathBuf),
}

/// How a new layer is compressed. Gzip is readable everywhere; zstd has no Docker schema 2 media
/// type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    /// Gzip, with fixed parameters so the output is reproducible.
    Gzip,
    /// Zstandard, with fixed parameters so the output is reproducible.
    Zstd,
}

/// How [`build_layer`] turns its input into a reproducible layer.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Clamp: entries newer than this (Unix seconds) get this mtime. `SOURCE_DATE_EPOCH`, or the
    /// image's `created` when that is unset.
    pub mtime: i64,
    /// Keep uid/gid/names and exact mode bits instead of normalising them.
    pub keep_owners: bool,
    /// Paths to delete from the image, written as whiteouts (`a/b` → `a/.wh.b`).
    pub deletes: Vec<String>,
    /// Allow fifos and character/block devices (sockets are always refused).
    pub allow_devices: bool,
    /// Allow relative symlinks whose target climbs out of the root with `..`.
    pub allow_escaping_symlinks: bool,
    /// The layer's compression.
    pub compression: LayerCompression,
}

/// The identity of a layer that was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltLayer {
    /// sha256 of the compressed bytes written to `out`.
    pub digest: Digest,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Number of compressed bytes written to `out`.
    pub size: u64,
}

pub const GZIP_LEVEL: u32 = 6;
pub const ZSTD_LEVEL: i32 = 3;

/// Build one layer from `input` and write it, compressed, to `out` in a single pass that also
/// computes its digest and diff ID.
///
/// `lower` is the image's file tree below the new layer (see [`Tree`]), if the caller has it:
/// parent directories the input does not provide (for whiteouts, or missing from a tar input)
/// then copy the image's own directory header instead of `0755 root:root`, so extraction does
/// not change their owner or mode.
pub fn build_layer(
    input: &LayerInput,
    opts: &BuildOptions,
    lower: Option<&Tree>,
    out: &mut dyn Write,
) -> Result<BuiltLayer, LayerError> {
    let (entries, tar_file) = match input {
        LayerInput::Dir(dir) => (collect_dir(dir)?, None),
        LayerInput::Tar(path) => {
            let (entries, file) = collect_tar(path)?;
            (entries, Some((file, path.clone())))
        }
    };
    let entries = finish(entries, opts, lower)?;
    write_layer(&entries, tar_file.as_ref(), opts, out)
}

fn write_layer(
    entries: &Entries,
    tar_file: Option<&(File, PathBuf)>,
    opts: &BuildOptions,
    out: &mut dyn Write,
) -> Result<BuiltLayer, LayerError> {
    let mut builder = start_layer(opts.compression, out)?;
    for (path, node) in entries {
        let mut header = header_for(path, &node.kind, &node.meta, opts)?;
        let w = LayerError::Write;
        match &node.kind {
            NodeKind::Dir => builder
                .append_data(&mut header, format!("{path}/"), io::empty())
                .map_err(w)?,
            NodeKind::Symlink { target } | NodeKind::HardLink { target } => {
                builder.append_link(&mut header, path, target).map_err(w)?
            }
            NodeKind::File { size, content } => {
                if let Some(cap) = &node.meta.capability {
                    builder
                        .append_pax_extensions([(CAPABILITY_PAX_KEY, cap.as_slice())])
                        .map_err(w)?;
                }
                let mut data = open_content(path, content, *size, tar_file)?;
                let written = builder.append_data(&mut header, path, &mut data);
                if let Some(err) = data.error.take() {
                    return Err(err);
                }
                written.map_err(w)?;
            }
            NodeKind::Whiteout
            | NodeKind::Fifo
            | NodeKind::CharDevice { .. }
            | NodeKind::BlockDevice { .. } => builder
                .append_data(&mut header, path, io::empty())
                .map_err(w)?,
        }
    }
    finish_layer(builder)
}

/// A new layer's tar writer: tar → diff ID hash → fixed 128 KiB chunks → compressor → digest
/// hash → `out`. Every layer ocipatch builds goes through this one pipeline.
pub(super) type LayerTar<'a> =
    tar::Builder<HashWriter<FixedChunks<Encoder<HashWriter<BufWriter<&'a mut dyn Write>>>>>>;

/// Starts a layer written to `out` with `compression`'s fixed parameters.
pub(super) fn start_layer(
    compression: LayerCompression,
    out: &mut dyn Write,
) -> Result<LayerTar<'_>, LayerError> {
    let compressed = HashWriter::new(BufWriter::new(out));
    let encoder = Encoder::new(compression, compressed).map_err(LayerError::Write)?;
    Ok(tar::Builder::new(HashWriter::new(FixedChunks::new(
        encoder,
    ))))
}

/// Ends the tar, flushes the compressor and `out`, and returns the layer's identity.
pub(super) fn finish_layer(builder: LayerTar<'_>) -> Result<BuiltLayer, LayerError> {
    let (chunks, diff_id, _) = builder.into_inner().map_err(LayerError::Write)?.finish();
    let encoder = chunks.finish().map_err(LayerError::Write)?;
    let (buffered, digest, size) = encoder.finish().map_err(LayerError::Write)?.finish();
    buffered
        .into_inner()
        .map_err(|e| LayerError::Write(e.into_error()))?
        .flush()
        .map_err(LayerError::Write)?;
    Ok(BuiltLayer {
        digest,
        diff_id,
        size,
    })
}

/// The header of one entry, everything but the path (and link name) set.
fn header_for(
    path: &str,
    kind: &NodeKind,
    meta: &Meta,
    opts: &BuildOptions,
) -> Result<Header, LayerError> {
    let (entry_type, size) = match kind {
        NodeKind::Dir => (EntryType::Directory, 0),
        NodeKind::File { size, .. } => (EntryType::Regular, *size),
        NodeKind::Whiteout => (EntryType::Regular, 0),
        NodeKind::Symlink { .. } => (EntryType::Symlink, 0),
        NodeKind::HardLink { .. } => (EntryType::Link, 0),
        NodeKind::Fifo => (EntryType::Fifo, 0),
        NodeKind::CharDevice { .. } => (EntryType::Char, 0),
        NodeKind::BlockDevice { .. } => (EntryType::Block, 0),
    };
    let normalise = !opts.keep_owners && !meta.verbatim;
    let mut h = Header::new_gnu();
    h.set_entry_type(entry_type);
    h.set_size(size);
    h.set_mtime(meta.mtime.min(opts.mtime).max(0) as u64);
    if normalise {
        h.set_mode(canonical_mode(kind, meta.mode));
        h.set_uid(0);
        h.set_gid(0);
    } else {
        let names = |e: io::Error| LayerError::UnsafePath {
            path: path.to_string(),
            reason: if e.kind() == io::ErrorKind::InvalidInput {
                "its user or group name is too long for a tar header"
            } else {
                "its owner cannot be written in a tar header"
            },
        };
        h.set_mode(meta.mode & 0o7777);
        h.set_uid(meta.uid);
        h.set_gid(meta.gid);
        h.set_username(&meta.uname).map_err(names)?;
        h.set_groupname(&meta.gname).map_err(names)?;
    }
    if let NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor } = kind {
        h.set_device_major(*major).map_err(LayerError::Write)?;
        h.set_device_minor(*minor).map_err(LayerError::Write)?;
    }
    Ok(h)
}

/// Permission bits that do not depend on the umask of whoever created the source files.
fn canonical_mode(kind: &NodeKind, mode: u32) -> u32 {
    let special = mode & 0o7000;
    match kind {
        NodeKind::Symlink { .. } => 0o777,
        NodeKind::Dir if mode & 0o1002 == 0o1002 => 0o777 | special,
        NodeKind::Dir => 0o755 | special,
        _ if mode & 0o111 != 0 => 0o755 | special,
        _ => 0o644 | special,
    }
}

/// File data of exactly the size recorded in the header; a source that grew or shrank since it
/// was indexed is an error, never a corrupt archive.
struct ExactReader<'a> {
    inner: io::Take<Box<dyn Read + 'a>>,
    remaining: u64,
    path: &'a str,
    error: Option<LayerError>,
}

fn open_content<'a>(
    path: &'a str,
    content: &Content,
    size: u64,
    tar_file: Option<&'a (File, PathBuf)>,
) -> Result<ExactReader<'a>, LayerError> {
    let reader: Box<dyn Read + 'a> = match (content, tar_file) {
        (Content::Path(file), _) => Box::new(File::open(file).map_err(LayerError::io(file))?),
        (Content::TarAt(offset), Some((tar, tar_path))) => {
            let mut tar = tar;
            tar.seek(SeekFrom::Start(*offset))
                .map_err(LayerError::io(tar_path))?;
            Box::new(tar)
        }
        (Content::TarAt(_), None) => unreachable!("tar offsets only come from a tar input"),
    };
    // A file on disk is read one byte past its size, to notice that it grew; a tar input's data
    // is followed by padding, so exactly its size is read.
    let limit = match content {
        Content::Path(_) => size + 1,
        Content::TarAt(_) => size,
    };
    Ok(ExactReader {
        inner: reader.take(limit),
        remaining: size,
        path,
        error: None,
    })
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let msg = e.to_string();
                self.error = Some(LayerError::Io {
                    path: self.path.into(),
                    source: e,
                });
                return Err(io::Error::other(msg));
            }
        };
        if (n == 0 && self.remaining > 0) || n as u64 > self.remaining {
            self.error = Some(LayerError::ChangedWhileReading {
                path: self.path.to_string(),
            });
            return Err(io::Error::other("source changed size"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The compressor, fixed-parameter so its output depends only on its input.
pub(super) enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub(super) fn new(compression: LayerCompression, out: W) -> io::Result<Self> {
        Ok(match compression {
            LayerCompression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(out, flate2::Compression::new(GZIP_LEVEL)),
            ),
            LayerCompression::Zstd => {
                let mut enc = zstd::Encoder::new(out, ZSTD_LEVEL)?;
                enc.include_checksum(true)?;
                enc.include_contentsize(false)?;
                Encoder::Zstd(enc)
            }
        })
    }

    pub(super) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_modes_ignore_the_umask_but_keep_special_bits() {
        let file = NodeKind::Whiteout;
        let link = NodeKind::Symlink { target: "x".into() };
        let cases = [
            (&NodeKind::Dir, 0o700, 0o755),
            (&NodeKind::Dir, 0o775, 0o755),
            (&NodeKind::Dir, 0o1777, 0o1777),
            (&NodeKind::Dir, 0o1755, 0o1755),
            (&NodeKind::Dir, 0o2770, 0o2755),
            (&file, 0o600, 0o644),
            (&file, 0o664, 0o644),
            (&file, 0o700, 0o755),
            (&file, 0o744, 0o755),
            (&file, 0o4750, 0o4755),
            (&link, 0o755, 0o777),
        ];
        for (kind, mode, want) in cases {
            assert_eq!(canonical_mode(kind, mode), want, "{kind:?} {mode:o}");
        }
    }
}
