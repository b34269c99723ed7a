//! The library's one error type. Every variant names the reference, blob or file at fault,
//! so the CLI can print it as one line.

use std::path::PathBuf;

use crate::engine::EngineError;
use crate::model::reference::ReferenceError;
use crate::model::Digest;
use crate::plan::PlanError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    #[error("{reference}: {what} not found{hint}")]
    NotFound {
        reference: String,
        what: String,
        hint: String,
    },

    #[error("{reference}: {file}: {reason}")]
    InvalidFile {
        reference: String,
        file: PathBuf,
        reason: String,
    },

    #[error("{reference}: blob {digest} is missing ({location})")]
    MissingBlob {
        reference: String,
        digest: Digest,
        location: String,
    },

    #[error("{reference}: {what} {digest} is invalid: {reason}")]
    InvalidBlob {
        reference: String,
        what: &'static str,
        digest: Digest,
        reason: String,
    },

    #[error("{reference}: blob {expected} has digest {actual} ({size} bytes): it is corrupt")]
    DigestMismatch {
        reference: String,
        expected: Digest,
        actual: Digest,
        size: u64,
    },

    #[error("{reference}: blob {digest} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        reference: String,
        digest: Digest,
        expected: u64,
        actual: u64,
    },

    #[error("{reference}: blob {digest}: {source}")]
    Blob {
        reference: String,
        digest: Digest,
        #[source]
        source: EngineError,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Plan {
        context: String,
        #[source]
        source: Box<PlanError>,
    },

    /// What a registry answered (status and error code), or why it could not be reached.
    #[error("{reference}: {message}")]
    Registry { reference: String, message: String },

    /// A rule of the operation itself (no base found, no platform match, ...).
    #[error("{0}")]
    Rebase(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
