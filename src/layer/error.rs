//! The one error type of the `layer` module. Every variant names the offending path.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing layer: {0}")]
    Write(#[source] io::Error),
    #[error("reading tar stream: {0}")]
    Read(#[source] io::Error),
    #[error("path {path:?} is not allowed in a layer: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("{path:?} is not valid UTF-8; only UTF-8 paths can be stored")]
    NonUtf8Path { path: PathBuf },
    #[error(
        "symlink {path:?} -> {target:?} points outside the image root (allow escaping symlinks to keep it)"
    )]
    EscapingSymlink { path: String, target: String },
    #[error("{path:?} is a {kind}; special files are refused unless devices are allowed")]
    SpecialFile { path: String, kind: &'static str },
    #[error("{path:?} is a socket; sockets cannot be stored in a layer")]
    Socket { path: String },
    #[error("--delete {path:?} conflicts with {path:?} being added by the same layer")]
    DeleteAlsoAdded { path: String },
    #[error("{parent:?} is not a directory, but {path:?} is inside it")]
    NotADirectory { parent: String, path: String },
    #[error("{path:?} appears more than once in the tar input")]
    DuplicatePath { path: String },
    #[error("hard link {path:?} -> {target:?}: {reason}")]
    BadHardLink {
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("{path:?} changed while the layer was being built")]
    ChangedWhileReading { path: String },
    #[error("tar entry {path:?} has unsupported type {kind}")]
    UnsupportedEntry { path: String, kind: String },
    #[error("{path}: unsupported compression ({format}); expected a plain, gzip or zstd tar")]
    UnsupportedCompression { path: PathBuf, format: &'static str },
}

impl LayerError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LayerError {
        let path = path.into();
        move |source| LayerError::Io { path, source }
    }

    pub(crate) fn unsafe_path(path: &str, reason: &'static str) -> LayerError {
        LayerError::UnsafePath {
            path: path.to_string(),
            reason,
        }
    }
}
