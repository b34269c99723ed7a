//! The one error type of the `layer` module. Every variant names the offending path.

use std::io;
use std::path::PathBuf;

/// Why a layer could not be built, read or scanned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A file of the input could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file (or directory) being read.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Writing the layer (tar, compression or destination) failed.
    #[error("writing layer: {0}")]
    Write(#[source] io::Error),
    /// Reading an input tar stream failed.
    #[error("reading tar stream: {0}")]
    Read(#[source] io::Error),
    /// A path that must not appear in a layer (absolute, `..`, empty component, ...).
    #[error("path {path:?} is not allowed in a layer: {reason}")]
    UnsafePath {
        /// The path as given.
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A file name that is not UTF-8: layers store UTF-8 paths only.
    #[error("{path:?} is not valid UTF-8; only UTF-8 paths can be stored")]
    NonUtf8Path {
        /// The file on disk.
        path: PathBuf,
    },
    /// A symlink whose target leaves the image root, refused unless escaping symlinks are
    /// allowed.
    #[error(
        "symlink {path:?} -> {target:?} points outside the image root (allow escaping symlinks to keep it)"
    )]
    EscapingSymlink {
        /// The symlink's path in the layer.
        path: String,
        /// Its target, as stored.
        target: String,
    },
    /// A device node or FIFO, refused unless devices are allowed.
    #[error("{path:?} is a {kind}; special files are refused unless devices are allowed")]
    SpecialFile {
        /// The file's path in the layer.
        path: String,
        /// What it is (`"fifo"`, `"character device"`, ...).
        kind: &'static str,
    },
    /// A socket: it has no content a layer could store.
    #[error("{path:?} is a socket; sockets cannot be stored in a layer")]
    Socket {
        /// The socket's path in the layer.
        path: String,
    },
    /// The same path is both deleted (a whiteout) and added by one layer.
    #[error("--delete {path:?} conflicts with {path:?} being added by the same layer")]
    DeleteAlsoAdded {
        /// The path in the layer.
        path: String,
    },
    /// A path lies under something that is not a directory in the same layer.
    #[error("{parent:?} is not a directory, but {path:?} is inside it")]
    NotADirectory {
        /// The ancestor that is a file or symlink.
        parent: String,
        /// The path inside it.
        path: String,
    },
    /// A tar input has two entries for one path.
    #[error("{path:?} appears more than once in the tar input")]
    DuplicatePath {
        /// The repeated path.
        path: String,
    },
    /// A hard link that cannot be stored (its target is missing, a directory, or later).
    #[error("hard link {path:?} -> {target:?}: {reason}")]
    BadHardLink {
        /// The link's path in the layer.
        path: String,
        /// The path it links to.
        target: String,
        /// What is wrong with the target.
        reason: &'static str,
    },
    /// A file's size changed between listing it and archiving it.
    #[error("{path:?} changed while the layer was being built")]
    ChangedWhileReading {
        /// The file's path in the layer.
        path: String,
    },
    /// A tar entry type ocipatch does not store (e.g. a GNU volume header).
    #[error("tar entry {path:?} has unsupported type {kind}")]
    UnsupportedEntry {
        /// The entry's path.
        path: String,
        /// The entry type, as the tar crate names it.
        kind: String,
    },
    /// An input file compressed with something other than gzip or zstd.
    #[error("{path}: unsupported compression ({format}); expected a plain, gzip or zstd tar")]
    UnsupportedCompression {
        /// The input file.
        path: PathBuf,
        /// The compression recognised from its magic bytes.
        format: &'static str,
    },
    /// A file larger than ocipatch reads into memory (package databases).
    #[error("{path:?} is {size} bytes, more than the {limit} bytes ocipatch reads of it")]
    FileTooLarge {
        /// The entry's path in the layer.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A tar header field (a long name, a PAX record, ...) over its size limit.
    #[error(
        "tar header at byte {offset}: a {what} of {size} bytes is over the limit of {limit} bytes"
    )]
    TarLimit {
        /// Byte offset of the header in the uncompressed tar stream.
        offset: u64,
        /// Which field or extension member.
        what: &'static str,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// More header metadata before one entry than ocipatch buffers.
    #[error(
        "tar stream at byte {offset}: more than {limit} bytes of headers, extension members and sparse maps before one entry"
    )]
    TarMetadataLimit {
        /// Byte offset in the uncompressed tar stream where the entry's headers start.
        offset: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// A path or link name longer than the limit.
    #[error("{what} {start:?}... is {len} bytes long, over the limit of {limit} bytes")]
    TooLong {
        /// What kind of name (`"path"`, `"link target"`, ...).
        what: &'static str,
        /// The first characters only: the whole name may be megabytes.
        start: String,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A tar entry whose content ends before its declared size.
    #[error("tar entry {path:?} is cut short: {read} of its {size} bytes are there")]
    TruncatedEntry {
        /// The entry's path.
        path: String,
        /// Bytes present.
        read: u64,
        /// Bytes the header declares.
        size: u64,
    },
    /// The tar input as a whole (its caller names the file).
    #[error("{problem}")]
    IncompleteTar {
        /// What is wrong with the stream (e.g. missing end-of-archive blocks).
        problem: &'static str,
    },
}

impl LayerError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LayerError {
        let path = path.into();
        move |source| LayerError::Io { path, source }
    }

    pub(crate) fn too_long(what: &'static str, name: &[u8], limit: usize) -> LayerError {
        LayerError::TooLong {
            what,
            start: String::from_utf8_lossy(&name[..name.len().min(64)]).into_owned(),
            len: name.len(),
            limit,
        }
    }

    pub(crate) fn unsafe_path(path: &str, reason: &'static str) -> LayerError {
        LayerError::UnsafePath {
            path: path.to_string(),
            reason,
        }
    }
}
