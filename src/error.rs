//! The library's one error type. Every variant names the reference, blob or file at fault in
//! typed fields, keeps its cause as its `source()`, and has a stable [`Error::kind`], so
//! callers match on the variant or the kind, never on the text.
//!
//! A variant's Display is the whole message, its cause included (`{path}: {source}`), so
//! `to_string()` is complete for logs and JSON reports. Such a variant still returns its cause
//! from `source()` for callers that inspect it, so do not print the chain as well
//! (`{:#}` with anyhow would say the cause twice); the CLI's error line skips every cause whose
//! text is already in the message.
//!
//! What is a `String` here is a name as the user wrote it or as a message shows it (a
//! reference, a tag, a platform `os/arch[/variant]`, a layer's place in a rebase), or text
//! quoted from the input (what a registry answered). Causes are typed, with one deliberate
//! exception: [`Error::Registry`] keeps the transport's failure (ureq's, a body read's) as text
//! scrubbed of the run's secrets, because a cause chain that a caller prints could show an
//! unscrubbed URL or header; its status and error code are typed.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::model::digest::DigestParseError;
use crate::model::image::FormatError;
use crate::model::reference::{NameError, ReferenceError};
use crate::model::Digest;
use crate::ops::safety::SafetyReport;
use crate::plan::rebase::{
    ANNOTATION_BASE_DIGEST as BASE_DIGEST, ANNOTATION_BASE_NAME as BASE_NAME,
};
pub use crate::transport::docker_archive::ManifestJsonError;
// The causes an [`Error`] carries (their modules are building blocks, not API).
pub use crate::engine::EngineError;
pub use crate::layer::LayerError;
pub use crate::pkgdb::accounts::AccountsError;
pub use crate::pkgdb::rpm::{HeaderProblem, RpmDbError};
pub use crate::pkgdb::rpmheader::{EntryProblem, HeaderError};
pub use crate::pkgdb::ParseError;
pub use crate::plan::PlanError;
use crate::transport::registry::auth::AuthError;
use crate::transport::tar_index::TarError;
use crate::verdict::FindingClass;

/// The library's `Result`: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything an operation can fail with. Match on the variant or on [`Error::kind`], never on
/// the text: the message is for people, the variant and the kind are the contract (new
/// variants may come: the enum is non-exhaustive).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference that does not parse (`oic:x`, a bad digest, a missing transport).
    #[error(transparent)]
    Reference(#[from] ReferenceError),

    /// An argument cannot work as given (a `--delete` path, a `--platform`, a destination with
    /// a digest, an archive reference that must name an image). The CLI exits 2.
    #[error(transparent)]
    Usage(#[from] UsageError),

    /// The operation needs what only a flag can give (`--from`, `--base`): the image does not
    /// say it. Exit 1, like any failure: the command line was valid.
    #[error("{}", needs_flag_message(image, missing))]
    NeedsFlag {
        /// The image, as written.
        image: String,
        /// The flag that fixes it (`--from`, `--base`).
        flag: &'static str,
        /// What the image does not say.
        missing: MissingInput,
    },

    /// The reference names something the place does not hold (a tag, a manifest).
    #[error("{reference}: {}", self.detail())]
    NotFound {
        /// The reference, as written.
        reference: String,
        /// What was looked for.
        what: Wanted,
        /// What the place does hold, or what the registry answered.
        hint: NotFoundHint,
    },

    /// A base has no image for a platform of the image.
    #[error("{which}{} has no image for platform {platform} of {image}", base.as_ref().map(|b| format!(" {b}")).unwrap_or_default())]
    NoPlatform {
        /// Which base: `the old base (--from)`, `the old base`, `the new base`, `the base`.
        which: &'static str,
        /// The base's reference or digest, when the message names it.
        base: Option<String>,
        /// The image's platform, `os/arch[/variant]`.
        platform: String,
        /// The image, as written.
        image: String,
    },

    /// An image (an index) holds no image an operation can work on.
    #[error("{image} has no {wanted}")]
    NoImages {
        /// The image, as written.
        image: String,
        /// What it lacks, in words (`images to rebase`, `image to append to`).
        wanted: &'static str,
    },

    /// A file of an image store is not what it must be (`index.json` that does not parse, an
    /// `oci-layout` of another version, an archive that is not a tar).
    #[error("{reference}: {}", self.detail())]
    InvalidFile {
        /// The image store's reference.
        reference: String,
        /// The file at fault.
        file: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<FileError>,
        /// The file is a destination's: ocipatch refuses to replace what it cannot read.
        overwrite: bool,
    },

    /// A blob a descriptor names is not in the source.
    #[error("{reference}: {}", self.detail())]
    MissingBlob {
        /// The source's reference.
        reference: String,
        /// The missing blob.
        digest: Digest,
        /// Where it was looked for.
        location: BlobLocation,
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

    /// A blob's content is not valid for its role (a manifest that does not parse, a blob over
    /// the size limit of JSON, an artifact where an image was expected).
    #[error("{reference}: {}", self.detail())]
    InvalidBlob {
        /// The source's reference.
        reference: String,
        /// Its role: `manifest`, `config`, `index`, `layer`, `blob`.
        what: &'static str,
        /// The blob.
        digest: Digest,
        /// What is wrong with it.
        #[source]
        source: BlobError,
    },

    /// A blob's bytes do not hash to its digest: it is corrupt (or was swapped).
    #[error("{reference}: {}", self.detail())]
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
    #[error("{reference}: {}", self.detail())]
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
    #[error("{reference}: {}", self.detail())]
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
    #[error("{}: {source}", path.display())]
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
        context: PlanContext,
        /// The planner's reason.
        #[source]
        source: Box<PlanError>,
    },

    /// A layer could not be read, built or scanned: a layer of an image whose tar is broken,
    /// the package-database layer of a rebase, the `--layer` input of an append.
    #[error("{}", layer_message(reference, digest.as_ref(), context, source))]
    Layer {
        /// The image the layer belongs to (or is built for), as written.
        reference: String,
        /// The layer blob, for a layer of an image (`None`: a layer being built).
        digest: Option<Digest>,
        /// Which layer it is.
        context: LayerContext,
        /// What is wrong with it.
        #[source]
        source: Box<LayerError>,
    },

    /// A package database of a rebase cannot be reconciled: it does not parse, it is over the
    /// size ocipatch reads, its rpm database cannot be read or merged. `--no-package-db`
    /// rebases without reconciling it (see [`Error::flag`]).
    #[error("{}", package_db_message(reference, path, layer, source))]
    PackageDb {
        /// The reference of the image whose layer holds it.
        reference: String,
        /// The database file in the image, without the leading `/` (`var/lib/dpkg/status`).
        path: String,
        /// The layer that holds the copy at fault.
        layer: LayerName,
        /// The 1-based line of the problem, for a text database that does not parse.
        line: Option<usize>,
        /// What is wrong.
        #[source]
        source: Box<PackageDbError>,
    },

    /// A package database of a written image that cannot be listed for its SBOM (`--sbom`).
    #[error("{reference}: cannot list the packages of /{path} in {layer} for the SBOM: {source}")]
    Sbom {
        /// The written image (the destination reference).
        reference: String,
        /// The database file in the image, without the leading `/`.
        path: String,
        /// The layer that holds it.
        layer: LayerName,
        /// What is wrong.
        #[source]
        source: Box<PackageDbError>,
    },

    /// JSON ocipatch edits (a config or manifest it rewrites for a package-database layer)
    /// does not parse back.
    #[error("{reference}: {}", self.detail())]
    Rewrite {
        /// The image, as written.
        reference: String,
        /// What was being done (`adding the package-database layer`).
        step: &'static str,
        /// Why the result does not parse.
        #[source]
        source: FormatError,
    },

    /// A layer's summary names a file whose contents the layer, read again, does not hold
    /// (the layer changed, or the layer cache lies).
    #[error("{reference}: {}", self.detail())]
    MissingContents {
        /// The reference of the image whose layer it is.
        reference: String,
        /// The path looked up.
        path: String,
        /// The path it leads to through links.
        found: String,
        /// The layer that should hold it.
        layer: LayerName,
    },

    /// `--strict` refuses the rebase: the safety verdict has real findings.
    #[error("{}", strict_message(image, reports))]
    Strict {
        /// The image, as written.
        image: String,
        /// The safety verdict of every platform (the real findings and platform changes are
        /// what refused it).
        reports: Vec<SafetyReport>,
    },

    /// A destination whose transport cannot hold OCI referrers (attachments): an archive.
    #[error("{destination}: {transport} archives cannot hold OCI referrers (attachments); write the documents to files instead (--sbom-file, --provenance-file)")]
    ReferrersUnsupported {
        /// The destination's reference.
        destination: String,
        /// `docker-archive` or `oci-archive`.
        transport: &'static str,
    },

    /// A destination that is not ocipatch's to write into (a file where a layout directory
    /// should be, a directory that is not a layout).
    #[error("{destination}: {} {reason}", path.display())]
    DestinationInUse {
        /// The destination's reference.
        destination: String,
        /// What is in the way.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },

    /// Something this version of ocipatch does not handle (an image whose layers and diff IDs
    /// disagree, written into a docker-archive).
    #[error("{reference}: {}", self.detail())]
    Unsupported {
        /// The reference.
        reference: String,
        /// What is not handled.
        what: Unsupported,
    },

    /// What a registry answered (status and error code), or why it could not be reached.
    /// Every text field is scrubbed of the run's secrets.
    #[error("{reference}: {}", self.detail())]
    Registry {
        /// The reference being read or written.
        reference: String,
        /// What was asked (`cannot fetch blob sha256:…`) when the registry answered with
        /// `status`; else the whole failure (`cannot reach registry …`, a refused redirect).
        message: String,
        /// The HTTP status the registry answered with.
        status: Option<u16>,
        /// The first error code of the answer's body (`MANIFEST_UNKNOWN`, `DENIED`,
        /// `TOOMANYREQUESTS`), as the distribution spec names them.
        code: Option<String>,
        /// The message of that error, as the registry wrote it.
        detail: Option<String>,
        /// The request failed without an answer in a way that may pass (a reset connection, a
        /// stalled read): see [`Error::is_temporary`].
        transient: bool,
    },

    /// The registry credentials could not be found: an auth file or credential helper failed.
    #[error("{reference}: {}", self.detail())]
    Credentials {
        /// The reference they were looked up for.
        reference: String,
        /// Which file or helper failed, and how (never what it returned).
        #[source]
        source: AuthError,
    },

    /// `check` compared with the base the image's `base.name` annotation names (no `--base`),
    /// and that failed: the cause, and the flag that picks another base.
    #[error("{source} (the base {base} was taken from the image's org.opencontainers.image.base.name annotation; pass --base REF to compare with a base you can reach, e.g. --base oci:DIR:TAG)")]
    ImplicitBase {
        /// The base, as the annotation names it.
        base: String,
        /// What went wrong with it.
        #[source]
        source: Box<Error>,
    },

    /// A path the command line gave (`-o`, `--layer`, `--images-from`, `--authfile`,
    /// `--cache-dir`, IMAGE) cannot be used: the flag, the path as given and what is wrong, in
    /// words. Never a temporary name: the path is the user's.
    #[error("{flag} {}: {problem}", given.display())]
    Argument {
        /// The flag or argument the path came from (`-o`, `--layer`, `IMAGE`).
        flag: &'static str,
        /// The path, as the user gave it.
        given: PathBuf,
        /// What is wrong with it.
        problem: PathProblem,
        /// The file system's answer.
        #[source]
        source: std::io::Error,
    },

    /// A failure another operation of the same run met first, shared (a blob copy that several
    /// images of a fleet wait for). Display, source and [`Error::kind`] are the original's.
    #[error(transparent)]
    Shared(Arc<Error>),
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Argument`]: `given` came from `flag` and the file system answered `source`.
    /// `output` says whether ocipatch was creating it (a destination) or reading it.
    pub fn argument(
        flag: &'static str,
        given: impl Into<PathBuf>,
        source: std::io::Error,
        output: bool,
    ) -> Error {
        let given = given.into();
        let problem = PathProblem::diagnose(&given, &source, output);
        Error::Argument {
            flag,
            given,
            problem,
            source,
        }
    }

    /// This error, told as a problem of the path `given` of `flag` when it is a file-system
    /// failure at that path, at one of its parent directories or at a temporary name beside it
    /// (what a writer creates before renaming into place); any other error is returned as it is.
    pub fn at_argument(self, flag: &'static str, given: &std::path::Path, output: bool) -> Error {
        let related = |path: &std::path::Path| {
            path == given
                || given.starts_with(path)
                || path.starts_with(given)
                || (path.parent() == given.parent()
                    && path.file_name().is_some_and(|n| {
                        n.to_string_lossy()
                            .contains(&crate::transport::temp::TEMP_PREFIX[1..])
                    }))
        };
        match self {
            Error::Io { path, source } if related(&path) => {
                Error::argument(flag, given, source, output)
            }
            // A blob write that failed for a reason of the path (not a full or failing
            // device, where the blob's name is what helps) is the flag's.
            Error::WriteBlob { path, source, .. } if related(&path) && about_the_path(&source) => {
                Error::argument(flag, given, source, output)
            }
            e => e,
        }
    }

    /// An [`Error::NeedsFlag`] for `image`: the flag follows from what is missing.
    pub fn needs_flag(image: impl fmt::Display, missing: MissingInput) -> Error {
        Error::NeedsFlag {
            image: image.to_string(),
            flag: missing.flag(),
            missing,
        }
    }

    /// The error itself, or for [`Error::Shared`] the one it shares.
    pub fn unshared(&self) -> &Error {
        match self {
            Error::Shared(e) => e.unshared(),
            Error::ImplicitBase { source, .. } => source.unshared(),
            e => e,
        }
    }

    /// A stable kebab-case name for what went wrong, for `--json` reports and for callers
    /// (docs/json.md lists them). Registry errors are named by their status:
    /// `registry-unauthorized` (401), `registry-denied` (403), `registry-not-found` (404),
    /// `registry-rate-limited` (429), `registry-unavailable` (5xx, or a failure that may pass),
    /// `registry` (anything else).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Reference(_) => "reference",
            Error::Usage(_) => "usage",
            Error::NeedsFlag { .. } => "needs-flag",
            Error::NotFound { .. } => "not-found",
            Error::NoPlatform { .. } => "no-platform",
            Error::NoImages { .. } => "no-images",
            Error::InvalidFile { .. } => "invalid-file",
            Error::MissingBlob { .. } => "missing-blob",
            Error::WriteBlob { .. } => "write-blob",
            Error::InvalidBlob { .. } => "invalid-blob",
            Error::DigestMismatch { .. } => "digest-mismatch",
            Error::SizeMismatch { .. } => "size-mismatch",
            Error::Blob { source, .. } => engine_kind(source),
            Error::Io { .. } => "io",
            Error::Argument { .. } => "io",
            Error::Plan { .. } => "plan",
            Error::Layer { .. } => "layer",
            Error::PackageDb { .. } => "package-db",
            Error::Sbom { .. } => "sbom",
            Error::Rewrite { .. } => "rewrite",
            Error::MissingContents { .. } => "missing-contents",
            Error::Strict { .. } => "strict",
            Error::DestinationInUse { .. } => "destination-in-use",
            Error::ReferrersUnsupported { .. } => "referrers-unsupported",
            Error::Unsupported { .. } => "unsupported",
            Error::Registry {
                status, transient, ..
            } => registry_kind(*status, *transient),
            Error::Credentials { .. } => "credentials",
            Error::Shared(e) => e.kind(),
            Error::ImplicitBase { source, .. } => source.kind(),
        }
    }

    /// Whether trying again may succeed: a registry that answered 429 or 5xx, or a request
    /// that failed without an answer in a way that may pass (a reset connection, a stalled
    /// read). What the retry logic of the registry client asks.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Registry {
                status: Some(s), ..
            } => temporary_status(*s),
            Error::Registry {
                status: None,
                transient,
                ..
            } => *transient,
            Error::Shared(e) => e.is_temporary(),
            Error::ImplicitBase { source, .. } => source.is_temporary(),
            _ => false,
        }
    }

    /// The flag that gets past this error, when one does: `--from` or `--base` for
    /// [`Error::NeedsFlag`], `--no-package-db` for [`Error::PackageDb`].
    pub fn flag(&self) -> Option<&'static str> {
        match self.unshared() {
            Error::NeedsFlag { flag, .. } => Some(flag),
            Error::PackageDb { .. } => Some("--no-package-db"),
            _ => None,
        }
    }

    /// The message without the reference it starts with, for a report that names the image
    /// once (`verify`'s problems): `blob sha256:… is missing (…)` for a [`Error::MissingBlob`].
    /// Errors whose message does not start with their reference are shown whole.
    pub fn detail(&self) -> String {
        match self.unshared() {
            Error::NotFound { what, hint, .. } => format!("{what} not found{hint}"),
            Error::Rewrite { step, source, .. } => format!("{step}: {source}"),
            Error::MissingContents {
                path, found, layer, ..
            } => format!("{path} leads to {found}, whose contents are not in {layer}"),
            Error::Unsupported { what, .. } => what.to_string(),
            Error::Registry {
                message,
                status,
                code,
                detail,
                ..
            } => registry_detail(message, *status, code.as_deref(), detail.as_deref()),
            Error::Credentials { source, .. } => source.to_string(),
            Error::InvalidFile {
                file,
                source,
                overwrite,
                ..
            } => format!(
                "{}: {source}{}",
                file.display(),
                if *overwrite {
                    "; refusing to overwrite it"
                } else {
                    ""
                }
            ),
            Error::MissingBlob {
                digest, location, ..
            } => format!("blob {digest} is missing ({location})"),
            Error::InvalidBlob {
                what,
                digest,
                source,
                ..
            } => format!("{what} {digest} is invalid: {source}"),
            Error::DigestMismatch {
                expected,
                actual,
                size,
                ..
            } => format!("blob {expected} has digest {actual} ({size} bytes): it is corrupt"),
            Error::SizeMismatch {
                digest,
                expected,
                actual,
                ..
            } => format!("blob {digest} has {actual} bytes, its descriptor says {expected}"),
            Error::Blob { digest, source, .. } => format!("blob {digest}: {source}"),
            e => e.to_string(),
        }
    }
}

/// The statuses a registry uses for "not now": 429 and every 5xx.
fn temporary_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

fn registry_kind(status: Option<u16>, transient: bool) -> &'static str {
    match status {
        Some(401) => "registry-unauthorized",
        Some(403) => "registry-denied",
        Some(404) => "registry-not-found",
        Some(429) => "registry-rate-limited",
        Some(s) if temporary_status(s) => "registry-unavailable",
        None if transient => "registry-unavailable",
        _ => "registry",
    }
}

fn engine_kind(e: &EngineError) -> &'static str {
    match e {
        EngineError::Decompress { .. } => "decompress",
        EngineError::Read(_) | EngineError::Write(_) => "read-blob",
    }
}

/// Whether an I/O failure is about the path itself (missing, not a directory, read-only,
/// refused), rather than the device (full, failing).
fn about_the_path(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        NotFound
            | NotADirectory
            | IsADirectory
            | ReadOnlyFilesystem
            | PermissionDenied
            | AlreadyExists
    )
}

/// What is wrong with a path of the command line ([`Error::Argument`]), in words.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathProblem {
    /// A directory on the way to it does not exist.
    MissingDirectory(PathBuf),
    /// A component on the way to it is a file.
    NotADirectory(PathBuf),
    /// The file to read does not exist.
    Missing,
    /// It is a directory where a file must be.
    IsADirectory,
    /// The file system is mounted read-only.
    ReadOnly,
    /// The permissions do not allow it.
    PermissionDenied,
    /// The device is full.
    NoSpace,
    /// The directory exists but the file system refuses to create anything in it (`/proc`).
    CannotCreate,
    /// Anything else: the operating system's words, without a path.
    Other(String),
}

impl PathProblem {
    /// Why `source` happened to `given`: the first missing or non-directory parent, else what
    /// the error code means. `output`: ocipatch was creating `given`.
    pub fn diagnose(given: &std::path::Path, source: &std::io::Error, output: bool) -> PathProblem {
        let ancestors: Vec<&std::path::Path> = given
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .collect();
        for dir in ancestors.into_iter().rev() {
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return PathProblem::NotADirectory(dir.to_path_buf()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return PathProblem::MissingDirectory(dir.to_path_buf())
                }
                Err(_) => break,
            }
        }
        use std::io::ErrorKind as K;
        match source.kind() {
            K::ReadOnlyFilesystem => PathProblem::ReadOnly,
            K::PermissionDenied => PathProblem::PermissionDenied,
            K::StorageFull | K::QuotaExceeded => PathProblem::NoSpace,
            K::NotFound if output => PathProblem::CannotCreate,
            K::NotFound => PathProblem::Missing,
            K::IsADirectory => PathProblem::IsADirectory,
            K::NotADirectory | K::AlreadyExists if given.is_file() => {
                PathProblem::NotADirectory(given.to_path_buf())
            }
            _ => PathProblem::Other(os_words(source)),
        }
    }
}

/// An OS error's description without the path a library may have added to it.
fn os_words(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.kind().to_string(),
    }
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathProblem::MissingDirectory(d) => {
                write!(f, "the directory {} does not exist", d.display())
            }
            PathProblem::NotADirectory(p) => {
                write!(f, "{} is a file, not a directory", p.display())
            }
            PathProblem::Missing => f.write_str("no such file or directory"),
            PathProblem::IsADirectory => f.write_str("is a directory, not a file"),
            PathProblem::ReadOnly => f.write_str("cannot create here: read-only file system"),
            PathProblem::PermissionDenied => f.write_str("permission denied"),
            PathProblem::NoSpace => f.write_str("no space left on the device"),
            PathProblem::CannotCreate => f.write_str(
                "cannot create here: the file system refuses new files in this directory",
            ),
            PathProblem::Other(words) => f.write_str(words),
        }
    }
}

/// What an image does not say, so that only a flag can tell it ([`Error::NeedsFlag`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MissingInput {
    /// No `org.opencontainers.image.base.digest` annotation: the old base is unknown
    /// (`--from`).
    #[error("no {BASE_DIGEST} annotation")]
    BaseDigest {
        /// The platform whose manifest lacks it.
        platform: String,
    },
    /// The `base.digest` annotation is not a digest (`--from`).
    #[error("invalid {BASE_DIGEST} annotation: {source}")]
    InvalidBaseDigest {
        /// Why it does not parse.
        #[source]
        source: DigestParseError,
    },
    /// The old base the annotation names is neither where the new base is nor where the
    /// image is (`--from`).
    #[error("the old base {digest} is not in {searched}")]
    OldBase {
        /// The annotation's digest.
        digest: Digest,
        /// The new base's reference, the first place looked in (the image's is the second).
        searched: String,
    },
    /// No `org.opencontainers.image.base.name` annotation: the base to compare with is
    /// unknown (`--base`).
    #[error("no {BASE_NAME} annotation")]
    BaseName,
    /// The `base.name` annotation is not a usable reference (`--base`).
    #[error("its {BASE_NAME} annotation {name:?} is not a usable reference")]
    InvalidBaseName {
        /// The annotation, redacted as references are.
        name: String,
        /// Why it does not parse.
        #[source]
        source: Box<ReferenceError>,
    },
}

impl MissingInput {
    /// The flag that gives what is missing.
    pub fn flag(&self) -> &'static str {
        match self {
            MissingInput::BaseDigest { .. }
            | MissingInput::InvalidBaseDigest { .. }
            | MissingInput::OldBase { .. } => "--from",
            MissingInput::BaseName | MissingInput::InvalidBaseName { .. } => "--base",
        }
    }
}

fn needs_flag_message(image: &str, missing: &MissingInput) -> String {
    match missing {
        MissingInput::BaseDigest { platform } => format!(
            "{image} ({platform}) has no {BASE_DIGEST} annotation, so its old base is unknown; pass --from OLD_BASE"
        ),
        MissingInput::InvalidBaseDigest { source } => format!(
            "{image}: invalid {BASE_DIGEST} annotation: {source}; pass --from OLD_BASE"
        ),
        MissingInput::OldBase { digest, searched } => format!(
            "the old base {digest} of {image} (its {BASE_DIGEST} annotation) is neither in {searched} nor in {image}; pass --from OLD_BASE"
        ),
        MissingInput::BaseName => {
            format!("{image} has no {BASE_NAME} annotation; pass --base REF")
        }
        MissingInput::InvalidBaseName { name, source } => format!(
            "{image}: its {BASE_NAME} annotation {name:?} is not a usable reference ({}); pass --base REF",
            source.reason()
        ),
    }
}

/// An argument that cannot work as given ([`Error::Usage`]: the CLI exits 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A `--delete` path that is not a path a layer can hold.
    #[error("--delete {path:?}: {source}")]
    DeletePath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        #[source]
        source: Box<LayerError>,
    },
    /// `--delete /`.
    #[error("--delete {path:?}: cannot delete the root")]
    DeleteRoot {
        /// The path as given.
        path: String,
    },
    /// A `--delete` path the image does not have.
    #[error("--delete {path:?}: no such path in {image}")]
    DeleteMissing {
        /// The path as given.
        path: String,
        /// The image, as written.
        image: String,
    },
    /// A `--platform` that is not `OS/ARCH[/VARIANT]`.
    #[error(
        "--platform {value:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
    )]
    Platform {
        /// The value as given.
        value: String,
    },
    /// Two images of a fleet would be written to one destination.
    #[error("{first} and {second} would both be written to {destination}; use {{name}}, {{tag}} or {{index}} in -o")]
    SameDestination {
        /// The first image, as written.
        first: String,
        /// The second image, as written.
        second: String,
        /// The destination, as expanded.
        destination: String,
    },
    /// Two images of a fleet would be written into one archive.
    #[error("{first} and {second} would both be written into the archive {archive}; a fleet writes one image per archive (use {{name}} in the file name, or an oci: layout)")]
    SameArchive {
        /// The first image, as written.
        first: String,
        /// The second image, as written.
        second: String,
        /// The archive (`docker-archive:FILE`).
        archive: String,
    },
    /// A destination that names a digest: a destination is tagged.
    #[error("{reference}: a destination needs a tag, not a digest")]
    DigestDestination {
        /// The destination, as written.
        reference: String,
    },
    /// A `docker-archive:` reference without a name, on an archive of several images.
    #[error("{reference}: the archive holds {images} images; name one as docker-archive:FILE:NAME:TAG{}", repo_tags_hint(repo_tags))]
    AmbiguousArchive {
        /// The reference, as written.
        reference: String,
        /// How many images the archive holds.
        images: usize,
        /// Their `RepoTags`.
        repo_tags: Vec<String>,
    },
    /// A `docker-archive:` image name that is not a Docker name.
    #[error(transparent)]
    DockerName(#[from] NameError),
    /// A `--base-name` that holds what may be a password.
    #[error("--base-name {name:?}: a base name carries no credentials (it is written into the image); name the base as HOST/REPO:TAG")]
    BaseNameCredentials {
        /// The name, what may be a password replaced by `***`.
        name: String,
    },
    /// A fleet's `-o` pattern that does not expand to a reference for an image.
    #[error("-o: {source}")]
    Pattern {
        /// Why.
        #[source]
        source: crate::model::reference::ReferenceError,
    },
    /// A fleet with no image (an empty `--images-from` file).
    #[error("--images-from {file}: the file lists no image")]
    NoImagesListed {
        /// The file, as given.
        file: String,
    },
}

/// ` (RepoTags: a, b)`, or nothing when there are none.
fn repo_tags_hint(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(" (RepoTags: {})", tags.join(", "))
    }
}

/// What [`Error::NotFound`] looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wanted {
    /// A layout directory.
    Directory(PathBuf),
    /// An archive file.
    Archive(PathBuf),
    /// A tag of a layout, archive or repository.
    Tag(String),
    /// A manifest by digest.
    Manifest(Digest),
    /// An image of a docker-archive, by name.
    Image(String),
    /// Any image (an archive that lists none).
    AnyImage,
}

impl fmt::Display for Wanted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wanted::Directory(d) => write!(f, "directory {}", d.display()),
            Wanted::Archive(a) => write!(f, "archive {}", a.display()),
            Wanted::Tag(t) => write!(f, "tag {t:?}"),
            Wanted::Manifest(d) => write!(f, "manifest {d}"),
            Wanted::Image(n) => write!(f, "image {n:?}"),
            Wanted::AnyImage => f.write_str("an image"),
        }
    }
}

/// What the place of an [`Error::NotFound`] holds instead, or what its registry said.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotFoundHint {
    /// Nothing worth saying.
    None,
    /// The tags of a layout or oci-archive index (`store`: `layout` or `archive`).
    Tags {
        /// `layout` or `archive`.
        store: &'static str,
        /// Its tags, sorted.
        tags: Vec<String>,
    },
    /// The `RepoTags` of a docker-archive.
    RepoTags(Vec<String>),
    /// A docker-archive whose `manifest.json` lists no images.
    NoImages,
    /// What the registry answered.
    Registry(Box<RegistryAnswer>),
}

impl fmt::Display for NotFoundHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotFoundHint::None => Ok(()),
            NotFoundHint::Tags { store, tags } if tags.is_empty() => {
                write!(f, " (the {store} has no tagged images)")
            }
            NotFoundHint::Tags { tags, .. } => write!(f, " (tags: {})", tags.join(", ")),
            NotFoundHint::RepoTags(tags) => f.write_str(&repo_tags_hint(tags)),
            NotFoundHint::NoImages => f.write_str(" (manifest.json lists no images)"),
            NotFoundHint::Registry(answer) => write!(f, " ({answer})"),
        }
    }
}

/// What a registry answered to a request that failed: the status and the first error of the
/// distribution error body, scrubbed of the run's secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The first error's `code`, when the body has one.
    pub code: Option<String>,
    /// The first error's `message`, when the body has one.
    pub message: Option<String>,
}

impl fmt::Display for RegistryAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        answer_text(
            f,
            self.status,
            self.code.as_deref(),
            self.message.as_deref(),
        )
    }
}

/// "registry answered 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)", and for a 401 where
/// credentials come from.
fn answer_text(
    f: &mut fmt::Formatter<'_>,
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
) -> fmt::Result {
    match ureq::http::StatusCode::from_u16(status) {
        Ok(s) => write!(f, "registry answered {s}")?,
        Err(_) => write!(f, "registry answered {status}")?,
    }
    if code.is_some() || message.is_some() {
        write!(
            f,
            " ({}: {})",
            code.unwrap_or_default(),
            message.unwrap_or_default()
        )?;
    }
    if status == 401 {
        f.write_str(" (check the credentials: --creds, --authfile or the auth files)")?;
    }
    Ok(())
}

/// What failed, then what the registry answered, if it did.
fn registry_detail(
    message: &str,
    status: Option<u16>,
    code: Option<&str>,
    detail: Option<&str>,
) -> String {
    struct Answer<'a>(u16, Option<&'a str>, Option<&'a str>);
    impl fmt::Display for Answer<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            answer_text(f, self.0, self.1, self.2)
        }
    }
    match status {
        Some(s) => format!("{message}: {}", Answer(s, code, detail)),
        None => message.to_string(),
    }
}

/// What is wrong with a file of an image store ([`Error::InvalidFile`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file cannot be read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// A layout's `oci-layout` cannot be read: maybe not a layout at all.
    #[error("cannot read ({0}); is this an OCI image layout?")]
    NoLayoutFile(#[source] std::io::Error),
    /// A layout's `oci-layout` names another version.
    #[error("not a valid oci-layout file (expected imageLayoutVersion 1.0.0)")]
    LayoutVersion,
    /// An oci-archive's `oci-layout` member is not the one version there is.
    #[error("oci-layout is not {{\"imageLayoutVersion\":\"1.0.0\"}}")]
    ArchiveLayoutVersion,
    /// The JSON does not parse as what it must be.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The archive is not a (complete) tar.
    #[error(transparent)]
    Tar(#[from] TarError),
    /// A docker-archive's `manifest.json` is not what `docker save` writes.
    #[error(transparent)]
    ManifestJson(#[from] ManifestJsonError),
    /// An archive lacks the member that makes it what it claims to be.
    #[error("no {member} member: not {what}")]
    NoMember {
        /// The member (`manifest.json`, `index.json`, `oci-layout`).
        member: &'static str,
        /// What the archive would be with it (`an oci-archive`).
        what: &'static str,
    },
    /// A member named by `manifest.json` is not in the archive.
    #[error("{what} {member} listed in manifest.json is not in the archive")]
    NotInArchive {
        /// `config` or `layer`.
        what: &'static str,
        /// The member's name.
        member: String,
    },
    /// A layer member that cannot be read.
    #[error("cannot read layer {member}: {source}")]
    LayerMember {
        /// The member's name.
        member: String,
        /// The failure.
        #[source]
        source: EngineError,
    },
    /// A zstd layer in a docker-archive, which Docker schema 2 cannot describe.
    #[error("layer {member} is zstd-compressed, which Docker schema 2 cannot describe")]
    ZstdLayer {
        /// The member's name.
        member: String,
    },
    /// A tag that names two different manifests of one index.
    #[error("tag {tag:?} names {manifests} different manifests")]
    DuplicateTag {
        /// The tag.
        tag: String,
        /// How many manifests it names.
        manifests: usize,
    },
    /// The file changed under us while it was being rewritten.
    #[error("became invalid while we were writing")]
    ChangedWhileWriting,
    /// A problem of one member of an archive.
    #[error("{member}: {source}")]
    Member {
        /// The member (`index.json`).
        member: &'static str,
        /// Its problem.
        #[source]
        source: Box<FileError>,
    },
}

/// Where [`Error::MissingBlob`] looked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobLocation {
    /// A file of a layout.
    File(PathBuf),
    /// A registry (its host).
    Registry(String),
    /// A member of an oci-archive.
    ArchiveMember {
        /// The member's name.
        member: String,
        /// The archive.
        file: PathBuf,
    },
    /// The selected image of a docker-archive.
    NotInImage(PathBuf),
    /// The layers this run built.
    NotBuilt,
}

impl fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobLocation::File(p) => write!(f, "{}", p.display()),
            BlobLocation::Registry(host) => write!(f, "registry {host}"),
            BlobLocation::ArchiveMember { member, file } => {
                write!(f, "no member {member} in {}", file.display())
            }
            BlobLocation::NotInImage(file) => {
                write!(f, "not part of the image in {}", file.display())
            }
            BlobLocation::NotBuilt => f.write_str("not built by this run"),
        }
    }
}

/// What is wrong with a blob's content ([`Error::InvalidBlob`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// A JSON blob over the size ocipatch reads.
    #[error("descriptor size {size} exceeds the {limit}-byte limit")]
    TooLarge {
        /// The descriptor's size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Reading it failed.
    #[error("read failed: {0}")]
    Read(#[source] std::io::Error),
    /// A store file that is not a regular file (a device, a directory).
    #[error("{}: {source}", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What opening it found.
        #[source]
        source: std::io::Error,
    },
    /// The JSON does not parse as what it must be.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A manifest whose config is not an image config: an artifact.
    #[error("it is an artifact (config media type {config_media_type}), not an image")]
    Artifact {
        /// The config's media type.
        config_media_type: String,
    },
    /// A layer of a media type ocipatch cannot decompress.
    #[error("unknown layer media type {media_type}")]
    UnknownMediaType {
        /// The media type.
        media_type: String,
    },
    /// The stream failed and the blob's bytes check out: nothing more to say.
    #[error("unreadable")]
    Unreadable,
}

/// Which operation [`Error::Plan`] planned.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanContext {
    /// A rebase of one platform.
    Rebase {
        /// The image, as written.
        image: String,
        /// The platform.
        platform: String,
        /// The old base: `--from`, or the annotation's digest.
        from: String,
        /// The new base, as written.
        onto: String,
    },
    /// An append to one platform.
    Append {
        /// The image, as written.
        image: String,
        /// The platform.
        platform: String,
    },
    /// The package-database layer appended to a rebased image.
    PackageDbLayer {
        /// The image, as written.
        image: String,
    },
}

impl fmt::Display for PlanContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanContext::Rebase {
                image,
                platform,
                from,
                onto,
            } => write!(
                f,
                "cannot rebase {image} ({platform}) from {from} onto {onto}"
            ),
            PlanContext::Append { image, platform } => {
                write!(f, "cannot append to {image} ({platform})")
            }
            PlanContext::PackageDbLayer { image } => {
                write!(f, "{image}: adding the package-database layer")
            }
        }
    }
}

/// Which layer [`Error::Layer`] is about.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerContext {
    /// A layer blob of the image (its digest is the error's).
    Blob,
    /// The package-database layer a rebase builds for one platform.
    PackageDb {
        /// The platform.
        platform: String,
    },
    /// The `--layer` input of an append (a directory or tar).
    Input(PathBuf),
}

fn layer_message(
    reference: &str,
    digest: Option<&Digest>,
    context: &LayerContext,
    source: &LayerError,
) -> String {
    match (context, digest) {
        (LayerContext::Blob, Some(d)) => format!("{reference}: layer {d} is invalid: {source}"),
        (LayerContext::Blob, None) => format!("{reference}: a layer is invalid: {source}"),
        (LayerContext::PackageDb { platform }, _) => {
            format!("{reference} ({platform}): building the package-database layer: {source}")
        }
        (LayerContext::Input(path), _) => format!("--layer {}: {source}", path.display()),
    }
}

/// One layer of the images a rebase reads, as messages name it: `the application layer
/// sha256:…`, `new base layer sha256:…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerName {
    /// Which image's layers: `application`, `old base`, `new base`, `image`.
    pub image: &'static str,
    /// The layer blob (`None`: the image as a whole).
    pub digest: Option<Digest>,
}

impl fmt::Display for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{} layer {d}", self.image),
            None => f.write_str(self.image),
        }
    }
}

/// Why a package database cannot be reconciled ([`Error::PackageDb`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageDbError {
    /// A dpkg or apk database that does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// An rpm database that cannot be read or merged.
    #[error(transparent)]
    Rpm(#[from] RpmDbError),
    /// An accounts file that cannot be merged.
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    /// A database over the size ocipatch reads of one.
    #[error("it is {size} bytes, more than the {limit} bytes ocipatch reads of one")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A database path that leads to something other than a regular file (a link that cannot
    /// be followed inside the image, a directory): why, in words.
    #[error("{why}")]
    Unusable {
        /// Why.
        why: String,
    },
    /// An rpm database whose write-ahead log holds transactions.
    #[error("the write-ahead log is not empty (the database was not closed cleanly)")]
    WalNotEmpty,
}

const NO_PACKAGE_DB: &str = "pass --no-package-db to rebase without reconciling it";

fn package_db_message(
    reference: &str,
    path: &str,
    layer: &LayerName,
    source: &PackageDbError,
) -> String {
    match source {
        PackageDbError::TooLarge { size, limit } => format!(
            "{reference}: package database /{path} in {layer} is {size} bytes, more than the {limit} bytes ocipatch reads of one; {NO_PACKAGE_DB}"
        ),
        PackageDbError::Parse(_) | PackageDbError::Accounts(_) | PackageDbError::Unusable { .. } => format!(
            "{reference}: /{path} in {layer} does not parse: {source}; fix the image, or {NO_PACKAGE_DB}"
        ),
        PackageDbError::Rpm(_) | PackageDbError::WalNotEmpty => format!(
            "{reference}: rpm database /{path} in {layer}: {source}; fix the image, or {NO_PACKAGE_DB}"
        ),
    }
}

fn strict_message(image: &str, reports: &[SafetyReport]) -> String {
    let mut findings = reports.iter().flat_map(|r| {
        let findings = r
            .findings
            .iter()
            .filter(|f| f.class == FindingClass::Real)
            .map(move |f| format!("{} {}: {}", r.platform, f.path, f.detail));
        let platform = r
            .platform_changes
            .iter()
            .map(move |c| format!("{} {c}", r.platform));
        findings.chain(platform)
    });
    let first = findings.next().unwrap_or_default();
    let count = 1 + findings.count();
    format!("rebase of {image} refused by --strict: {count} safety finding(s), first: {first}")
}

/// What [`Error::Unsupported`] does not handle.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// The layers this run built are a source of blobs, not an image.
    NoImage,
    /// A multi-platform index, written into a docker-archive (which holds single-platform
    /// images).
    Index {
        /// The index.
        digest: Digest,
    },
    /// A foreign layer the source does not store: a docker-archive cannot reference it by URL.
    ForeignLayer {
        /// The layer.
        digest: Digest,
        /// The source's reference.
        source: String,
    },
    /// A manifest and its config disagree on the number of layers (a docker-archive needs
    /// one diff ID per layer).
    LayerCount {
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// A layer that was not copied into the docker-archive's staging.
    LayerNotCopied {
        /// Its index in the manifest.
        index: usize,
        /// Its digest.
        digest: Digest,
    },
    /// A layer whose content is not its config's diff ID.
    DiffIdMismatch {
        /// Its index in the manifest.
        index: usize,
        /// Its digest.
        digest: Digest,
        /// The diff ID of its content.
        found: Digest,
        /// The config's diff ID.
        expected: Digest,
    },
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::NoImage => f.write_str("holds layers built by this run, no image"),
            Unsupported::Index { digest } => write!(
                f,
                "{digest} is a multi-platform index; a docker-archive holds single-platform images"
            ),
            Unsupported::ForeignLayer { digest, source } => write!(
                f,
                "foreign layer {digest} is not in {source} and a docker-archive cannot reference it by URL"
            ),
            Unsupported::LayerCount { layers, diff_ids } => write!(
                f,
                "the manifest has {layers} layers, its config {diff_ids} diff IDs"
            ),
            Unsupported::LayerNotCopied { index, digest } => {
                write!(f, "layer {index} ({digest}) was not copied")
            }
            Unsupported::DiffIdMismatch {
                index,
                digest,
                found,
                expected,
            } => write!(
                f,
                "layer {index} ({digest}) has diff ID {found}, its config says {expected}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(status: Option<u16>, transient: bool) -> Error {
        Error::Registry {
            reference: "docker://r.test/app:1".into(),
            message: "cannot fetch tag \"1\"".into(),
            status,
            code: status.map(|_| "CODE".into()),
            detail: status.map(|_| "said so".into()),
            transient,
        }
    }

    #[test]
    fn registry_errors_are_named_by_status_and_temporary_when_they_may_pass() {
        let cases = [
            (Some(401), "registry-unauthorized", false),
            (Some(403), "registry-denied", false),
            (Some(404), "registry-not-found", false),
            (Some(429), "registry-rate-limited", true),
            (Some(502), "registry-unavailable", true),
            (Some(400), "registry", false),
            (None, "registry", false),
        ];
        for (status, kind, temporary) in cases {
            let e = registry(status, false);
            assert_eq!(e.kind(), kind, "{e}");
            assert_eq!(e.is_temporary(), temporary, "{e}");
        }
        let reset = registry(None, true);
        assert_eq!(reset.kind(), "registry-unavailable");
        assert!(reset.is_temporary());
        let shared = Error::Shared(Arc::new(registry(Some(429), false)));
        assert_eq!(shared.kind(), "registry-rate-limited");
        assert!(shared.is_temporary());
    }

    #[test]
    fn a_registry_answer_reads_as_before() {
        assert_eq!(
            registry(Some(401), false).to_string(),
            "docker://r.test/app:1: cannot fetch tag \"1\": registry answered 401 Unauthorized \
             (CODE: said so) (check the credentials: --creds, --authfile or the auth files)"
        );
        assert_eq!(
            registry(None, false).to_string(),
            "docker://r.test/app:1: cannot fetch tag \"1\""
        );
    }

    #[test]
    fn detail_is_the_message_without_the_reference() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let e = Error::MissingBlob {
            reference: "oci:x:1".into(),
            digest: d.clone(),
            location: BlobLocation::NotBuilt,
        };
        assert_eq!(e.to_string(), format!("oci:x:1: {}", e.detail()));
        assert_eq!(e.kind(), "missing-blob");
        let shared = Error::Shared(Arc::new(e));
        assert_eq!(
            shared.detail(),
            format!("blob {d} is missing (not built by this run)")
        );
    }

    #[test]
    fn a_path_error_names_the_flag_and_never_the_temp_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes");
        std::fs::write(&file, "x").unwrap();
        let given = dir.path().join("out.tar");
        // What a writer meets creating its temporary sibling, the temp name in the OS text.
        let tmp = dir.path().join(".out.tar.ocipatch-tmp-abc.d");
        let io = std::io::Error::new(
            std::io::ErrorKind::ReadOnlyFilesystem,
            format!("read-only at path {}", tmp.display()),
        );
        let e = Error::io(&tmp, io).at_argument("-o", &given, true);
        assert_eq!(e.kind(), "io");
        assert_eq!(
            e.to_string(),
            format!(
                "-o {}: cannot create here: read-only file system",
                given.display()
            )
        );
        // Under a file: the file is named, whatever the OS said.
        let under = file.join("x");
        let io = std::io::Error::from(std::io::ErrorKind::NotADirectory);
        let e = Error::argument("--layer", &under, io, false);
        assert_eq!(
            e.to_string(),
            format!(
                "--layer {}: {} is a file, not a directory",
                under.display(),
                file.display()
            )
        );
        // An error about another path is left as it is.
        let other = Error::io(
            "/elsewhere",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(matches!(
            other.at_argument("-o", &given, true),
            Error::Io { .. }
        ));
    }

    #[test]
    fn the_flag_that_helps_is_typed() {
        let e = Error::needs_flag("oci:x:1", MissingInput::BaseName);
        assert_eq!(e.flag(), Some("--base"));
        assert_eq!(e.kind(), "needs-flag");
        assert_eq!(
            e.to_string(),
            "oci:x:1 has no org.opencontainers.image.base.name annotation; pass --base REF"
        );
    }
}
