//! The library's one error type. Every variant names the reference, blob or file at fault,
//! so the CLI can print it as one line.
//!
//! A variant's Display is the whole message, its cause included (`{path}: {source}`), so
//! `to_string()` is complete for logs and JSON reports. Such a variant still returns its cause
//! from `source()` for callers that inspect it, so do not print the chain as well
//! (`{:#}` with anyhow would say the cause twice); the CLI's error line skips every cause whose
//! text is already in the message.

use std::path::PathBuf;

use crate::engine::EngineError;
use crate::model::reference::ReferenceError;
use crate::model::Digest;
use crate::plan::PlanError;

/// The library's `Result`: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything an operation can fail with. Match on the variant, never on the text: the
/// message is for people, the variant is the contract (new variants may come: the enum is
/// non-exhaustive).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference that does not parse (`oic:x`, a bad digest, a missing transport).
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// The reference names something the place does not hold (a tag, a manifest).
    #[error("{reference}: {what} not found{hint}")]
    NotFound {
        /// The reference, as written.
        reference: String,
        /// What was looked for (`tag "v2"`, `manifest sha256:…`).
        what: String,
        /// What the place does hold, or the registry's answer, with its leading space; may be empty.
        hint: String,
    },

    /// A file of an image store is not what it must be (`index.json` that does not parse, an
    /// `oci-layout` of another version, a device where a blob should be).
    #[error("{reference}: {file}: {reason}")]
    InvalidFile {
        /// The image store's reference.
        reference: String,
        /// The file at fault.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A blob a descriptor names is not in the source.
    #[error("{reference}: blob {digest} is missing ({location})")]
    MissingBlob {
        /// The source's reference.
        reference: String,
        /// The missing blob.
        digest: Digest,
        /// Where it was looked for (a path, a registry host).
        location: String,
    },

    /// Writing a copy failed (a full disk, a read-only file system): the destination's fault,
    /// never the source image's.
    #[error("{destination}: writing blob {digest} to {}: {source}", path.display())]
    WriteBlob {
        /// The destination's reference.
        destination: String,
        /// The blob being written.
        digest: Digest,
        /// The (temporary) file it was written to.
        path: PathBuf,
        /// The write failure.
        #[source]
        source: std::io::Error,
    },

    /// A blob's content is not valid for its role (a manifest that does not parse, a layer
    /// whose tar or compression is broken).
    #[error("{reference}: {what} {digest} is invalid: {reason}")]
    InvalidBlob {
        /// The source's reference.
        reference: String,
        /// Its role: `manifest`, `config`, `index`, `layer`, `blob`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// What is wrong with it.
        reason: String,
    },

    /// A blob's bytes do not hash to its digest: it is corrupt (or was swapped).
    #[error("{reference}: blob {expected} has digest {actual} ({size} bytes): it is corrupt")]
    DigestMismatch {
        /// The source's reference.
        reference: String,
        /// The digest its descriptor names.
        expected: Digest,
        /// The digest of the bytes read.
        actual: Digest,
        /// How many bytes were read.
        size: u64,
    },

    /// A blob is longer or shorter than its descriptor says (reading stops one byte past it).
    #[error("{reference}: blob {digest} has {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        /// The source's reference.
        reference: String,
        /// The blob.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// The bytes read (at most `expected + 1`).
        actual: u64,
    },

    /// Reading or decompressing a blob failed.
    #[error("{reference}: blob {digest}: {source}")]
    Blob {
        /// The source's reference.
        reference: String,
        /// The blob.
        digest: Digest,
        /// What the engine reported (read failure, corrupt compressed stream).
        #[source]
        source: EngineError,
    },

    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },

    /// The plan refused the images (not on the old base, platforms differ, a layer that has
    /// no Docker media type).
    #[error("{context}: {source}")]
    Plan {
        /// Which rebase or append, of which image and platform.
        context: String,
        /// The planner's reason.
        #[source]
        source: Box<PlanError>,
    },

    /// What a registry answered (status and error code), or why it could not be reached.
    #[error("{reference}: {message}")]
    Registry {
        /// The reference being read or written.
        reference: String,
        /// The registry's answer (status, error code, message) or the connection failure.
        message: String,
    },

    /// A rule of the operation refuses this input: the image is not on the old base, the new
    /// base lacks a platform, `--strict` found something, a destination is not ours to
    /// overwrite. Exit 1.
    #[error("{0}")]
    Refused(String),

    /// The operation needs what only a flag can give (`--from`, `--base`, `--no-package-db`);
    /// the message says so and `flag` names it.
    #[error("{message}")]
    NeedsFlag {
        /// The whole message, naming the flag.
        message: String,
        /// The flag that fixes it.
        flag: &'static str,
    },

    /// Something this version of ocipatch does not handle (a multi-platform index into a
    /// docker-archive, a foreign layer an archive cannot reference).
    #[error("{0}")]
    Unsupported(String),

    /// A file inside an image does not parse (a package database, a JSON blob we rewrite, an
    /// index with one tag on two manifests).
    #[error("{0}")]
    Corrupt(String),

    /// An argument cannot work as given (a `--delete` path, a `--platform`, a destination with
    /// a digest, an archive reference that must name an image). The CLI exits 2.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
