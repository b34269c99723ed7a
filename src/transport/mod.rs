//! Where images live, behind one pair of traits. An operation never knows whether its source is
//! a directory, a tarball or a registry.

pub(crate) mod docker_archive;
pub(crate) mod docker_archive_sink;
pub(crate) mod layout;
pub(crate) mod memory;
pub(crate) mod oci_archive;
pub(crate) mod oci_archive_sink;
pub mod referrers;
pub mod registry;
mod select;
mod staging;
pub mod tar_index;
mod tar_writer;
pub(crate) mod temp;

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use registry::auth::Credentials;
pub use registry::client::{Deadlines, Session};

use crate::engine::{BlobDigests, EngineError};
use crate::error::{BlobError, Error, Result};
use crate::model::{Descriptor, Digest, Location, Reference};

/// Largest manifest, index or config we read into memory. Registries cap manifests at 4 MiB;
/// configs with long histories reach a few hundred KiB.
pub const MAX_JSON_BLOB: u64 = 32 << 20;

/// A place images are read from.
pub trait Source: Send + Sync {
    /// The reference this source was opened for; every error names it.
    fn reference(&self) -> &Reference;

    /// The descriptor the reference selects: an image manifest or an index.
    fn root(&self) -> Result<Descriptor>;

    /// A stream of the blob's stored bytes, unverified (the caller verifies as it reads).
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>>;

    /// Whether the source holds the blob (for foreign layers: whether it is stored, not only
    /// referenced by URL).
    fn has_blob(&self, digest: &Digest) -> Result<bool>;

    /// The blob as a plain file, when it is one (lets a sink on the same filesystem link it).
    fn blob_path(&self, _digest: &Digest) -> Option<PathBuf> {
        None
    }

    /// A manifest or index by digest, whether or not a tag points at it (how `base.digest`
    /// annotations are resolved). `None` when the source does not have it.
    fn descriptor_for_digest(&self, digest: &Digest) -> Result<Option<Descriptor>>;

    /// `(host, repository)` when the source is a registry repository: a registry sink on the
    /// same host mounts blobs from it instead of moving their bytes.
    fn registry_repository(&self) -> Option<(String, String)> {
        None
    }
    /// The referrers of the manifest `subject` (OCI 1.1: manifests whose `subject` is it), as
    /// index entries (media type, digest, size, `artifactType`, annotations), optionally only
    /// those of `artifact_type`. A store without referrers (docker-archive) has none.
    fn referrers(
        &self,
        _subject: &Digest,
        _artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        Ok(Vec::new())
    }
}

/// How to reach registries: credentials and TLS. Other transports ignore it.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// `--creds USER:PASS`; when unset, the auth files and credential helpers are asked.
    pub creds: Option<Credentials>,
    /// `--authfile PATH`: searched instead of `$REGISTRY_AUTH_FILE` / the runtime auth file.
    pub authfile: Option<PathBuf>,
    /// `--tls-verify=false` allows unverified TLS and plain HTTP (skopeo's meaning).
    pub tls_verify: bool,
    /// `--timeout`, `--min-transfer-rate`: how long one registry request may take.
    pub deadlines: Deadlines,
    /// The run's connections to registries and its request counts (shared by clones).
    pub session: Session,
}

impl Default for RegistryOptions {
    fn default() -> RegistryOptions {
        RegistryOptions {
            creds: None,
            authfile: None,
            tls_verify: true,
            deadlines: Deadlines::default(),
            session: Session::default(),
        }
    }
}

/// How a sink writes what it is given; the same for every transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// `--copy`: a layout destination gets its own copy of every blob, never a hard link to
    /// the source layout's file (a link shared with the source is replaced by a copy). For
    /// tools, or people, that edit blob files in place. Archives and registries always copy.
    pub copy_blobs: bool,
}

impl WriteOptions {
    /// These options with `copy_blobs` set to `yes`.
    pub fn copy_blobs(mut self, yes: bool) -> WriteOptions {
        self.copy_blobs = yes;
        self
    }
}

/// How a blob reached a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyOutcome {
    /// The destination already had it.
    Present,
    /// Hard-linked from the source, then digest-checked.
    Linked,
    /// Streamed through, digest-checked on the way.
    Copied,
    /// Mounted by the registry from another repository: no bytes moved through us.
    Mounted,
    /// A foreign layer whose blob the source does not have: referenced by its urls only.
    Foreign,
}

/// A place images are written to. Blobs first, then `commit` makes the tag point at the root,
/// atomically; `abort` undoes what a failed run created.
pub trait Sink: Send + Sync {
    /// The reference this sink writes; every error names it.
    fn reference(&self) -> &Reference;

    /// Copies a blob from `src`, checking its digest and size while it is copied.
    fn copy_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome>;

    /// Like `copy_blob`, for a source blob this run has already read and checked: a sink that
    /// can link it may skip reading it again.
    fn copy_verified_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        self.copy_blob(src, desc)
    }

    /// Whether a blob this sink stored is at once visible to every other sink of the same place
    /// (a layout directory, a registry repository), so a fleet can copy it there once. Archive
    /// sinks stage privately until commit: false.
    fn shares_blob_store(&self) -> bool {
        false
    }

    /// Stores a small blob we produced (config, manifest, index).
    fn put_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()>;

    /// Points the tag at `root`. Nothing is visible under the tag before this.
    fn commit(&self, root: &Descriptor) -> Result<()>;

    /// Called after a failure: removes what this run created that is not referenced.
    fn abort(&self);
    /// Attaches a referrer built by [`referrers::build_manifest`] to the subject `subject`:
    /// `blobs` (the empty config, the document) first, then the manifest, then whatever lists
    /// it (a layout's `index.json`, a registry's referrers API or referrers tag). Attaching
    /// the same referrer again changes nothing. Archives cannot: a typed error.
    fn attach_referrer(
        &self,
        _built: &referrers::Built,
        _blobs: &[(Descriptor, &[u8])],
        _subject: &Digest,
    ) -> Result<()> {
        Err(Error::ReferrersUnsupported {
            destination: self.reference().to_string(),
            transport: self.reference().transport(),
        })
    }
}

/// Opens the source a reference names.
pub fn open_source(reference: &Reference, opts: &RegistryOptions) -> Result<Box<dyn Source>> {
    match &reference.location {
        Location::OciLayout { dir, selector } => Ok(Box::new(layout::LayoutSource::open(
            reference,
            dir,
            selector.as_ref(),
        )?)),
        Location::OciArchive { file, tag } => Ok(Box::new(oci_archive::OciArchiveSource::open(
            reference,
            file,
            tag.as_deref(),
        )?)),
        Location::DockerArchive { file, name } => Ok(Box::new(
            docker_archive::DockerArchiveSource::open(reference, file, name.as_deref())?,
        )),
        Location::Registry {
            host,
            repository,
            selector,
        } => Ok(Box::new(registry::RegistrySource::open(
            reference,
            registry::Target {
                host,
                repository,
                selector,
            },
            opts,
        )?)),
    }
}

/// Opens the sink a reference names (creating a layout directory if needed; an archive is
/// only created, or replaced, at `commit`), with the default [`WriteOptions`].
pub fn open_sink(reference: &Reference, opts: &RegistryOptions) -> Result<Box<dyn Sink>> {
    open_sink_with(reference, opts, WriteOptions::default())
}

/// [`open_sink`] with explicit [`WriteOptions`].
pub fn open_sink_with(
    reference: &Reference,
    opts: &RegistryOptions,
    write: WriteOptions,
) -> Result<Box<dyn Sink>> {
    match &reference.location {
        Location::OciLayout { dir, selector } => Ok(Box::new(layout::LayoutSink::open_with(
            reference,
            dir,
            selector.as_ref(),
            write,
        )?)),
        Location::OciArchive { file, tag } => Ok(Box::new(oci_archive_sink::OciArchiveSink::open(
            reference,
            file,
            tag.as_deref(),
        )?)),
        Location::DockerArchive { file, name } => Ok(Box::new(
            docker_archive_sink::DockerArchiveSink::open(reference, file, name.as_deref())?,
        )),
        Location::Registry {
            host,
            repository,
            selector,
        } => Ok(Box::new(registry::RegistrySink::open(
            reference,
            registry::Target {
                host,
                repository,
                selector,
            },
            opts,
        )?)),
    }
}

/// A foreign layer (a Windows base layer, known by URL) whose blob `src` does not store: it is
/// referenced by its `urls`, never copied or read. The one place that decides it.
pub fn absent_foreign_layer(src: &dyn Source, desc: &Descriptor) -> Result<bool> {
    Ok(crate::model::media::is_foreign_layer(&desc.media_type) && !src.has_blob(&desc.digest)?)
}

/// A blob's stream cut at one byte past its descriptor's size: an endless or oversized blob
/// is then caught by the size check after at most that many bytes.
pub fn bounded<'a>(reader: impl Read + Send + 'a, desc: &Descriptor) -> impl Read + Send + 'a {
    reader.take(desc.size.saturating_add(1))
}

/// One bounded pass over a blob already on disk (a hard link we made, a destination's copy).
pub(crate) fn digest_bounded(
    file: File,
    desc: &Descriptor,
) -> std::result::Result<BlobDigests, EngineError> {
    crate::engine::digest_stream(bounded(file, desc), None, None)
}

fn open_checked(path: &Path, flags: i32) -> io::Result<File> {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below, and
    // it changes nothing for a regular file.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | flags)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not a regular file (a {}); refusing to read it",
                if kind.is_dir() {
                    "directory"
                } else {
                    "device, FIFO or socket"
                }
            ),
        ));
    }
    Ok(file)
}

/// Opens a file of an image store (a layout's blob, `index.json`) for reading: it must be a
/// regular file once opened (a symlink to one is followed: what is read is checked against a
/// digest or parsed, so where it lives does not matter). A device, FIFO, socket or directory,
/// `/dev/zero` say, is refused, so no read of a store can be endless.
pub fn open_regular(path: &Path) -> io::Result<File> {
    open_checked(path, 0)
}

/// Like [`open_regular`], refusing a symlink too: for names we created ourselves, where a
/// symlink can only be someone else's plant.
pub fn open_regular_nofollow(path: &Path) -> io::Result<File> {
    open_checked(path, libc::O_NOFOLLOW)
}

/// A small file whole (`index.json`, `oci-layout`, a JSON blob), refusing one over `limit`
/// bytes or that is not a regular file.
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than the {limit}-byte limit"),
        ));
    }
    Ok(bytes)
}

/// The referrers of `subject` among the manifests an `index.json` lists (the image-layout
/// rule): each OCI image manifest entry is read (at most its descriptor's size, checked) and
/// kept when its own `subject.digest` is `subject`. An entry whose blob cannot be read is no
/// referrer we can prove: skipped (verify reports broken blobs).
pub(crate) fn index_referrers(
    src: &dyn Source,
    index: &crate::model::Index,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Vec<Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| d.media_type == crate::model::media::OCI_MANIFEST)
        .filter_map(|d| {
            let bytes = read_json_blob(src, d, "referrer manifest").ok()?;
            (referrers::subject_of(&bytes).as_ref() == Some(subject))
                .then(|| referrers::entry_from_manifest(d, &bytes))
        })
        .filter(|e| artifact_type.is_none() || e.artifact_type() == artifact_type)
        .fold(Vec::new(), |mut out, e| {
            if !out.iter().any(|o: &Descriptor| o.digest == e.digest) {
                out.push(e);
            }
            out
        })
}

/// Reads a small blob whole and checks it against its descriptor.
pub fn read_json_blob(src: &dyn Source, desc: &Descriptor, what: &'static str) -> Result<Vec<u8>> {
    let reference = src.reference().to_string();
    if desc.size > MAX_JSON_BLOB {
        return Err(Error::InvalidBlob {
            reference,
            what,
            digest: desc.digest.clone(),
            source: BlobError::TooLarge {
                size: desc.size,
                limit: MAX_JSON_BLOB,
            },
        });
    }
    let mut bytes = Vec::with_capacity(desc.size as usize);
    src.open_blob(&desc.digest)?
        .take(desc.size + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::InvalidBlob {
            reference: reference.clone(),
            what,
            digest: desc.digest.clone(),
            source: BlobError::Read(e),
        })?;
    verify_bytes(&reference, desc, &bytes)?;
    Ok(bytes)
}

/// Checks what the engine computed while reading a blob of `src` against its descriptor; an
/// engine failure (a read error, a corrupt stream) becomes an error naming the blob.
/// [`check_blob`] for a copy into `dest` (a temp file at `path`): a write failure is charged
/// to the destination, so a full disk names where it is full, not the source image.
pub(crate) fn check_copy(
    src: &dyn Source,
    desc: &Descriptor,
    dest: &Reference,
    path: &Path,
    result: std::result::Result<BlobDigests, EngineError>,
) -> Result<BlobDigests> {
    match result {
        Err(EngineError::Write(source)) => Err(Error::WriteBlob {
            destination: dest.to_string(),
            digest: desc.digest.clone(),
            path: path.to_path_buf(),
            source,
        }),
        other => check_blob(src, desc, other),
    }
}

/// Turns an engine result for the blob `desc` read from `src` into the library's result: a stream
/// error becomes [`Error::Blob`], and a digest or size that differs from `desc` is an error.
pub fn check_blob(
    src: &dyn Source,
    desc: &Descriptor,
    result: std::result::Result<BlobDigests, EngineError>,
) -> Result<BlobDigests> {
    let reference = src.reference().to_string();
    let got = result.map_err(|source| Error::Blob {
        reference: reference.clone(),
        digest: desc.digest.clone(),
        source,
    })?;
    compare(&reference, desc, &got.digest, got.size)?;
    Ok(got)
}

/// Checks size and digest of bytes read for `desc`.
pub fn verify_bytes(reference: &str, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
    compare(reference, desc, &Digest::of(bytes), bytes.len() as u64)
}

/// The digest first: a blob with the right digest and the wrong size means the descriptor lies.
fn compare(reference: &str, desc: &Descriptor, digest: &Digest, size: u64) -> Result<()> {
    if digest != &desc.digest {
        return Err(Error::DigestMismatch {
            reference: reference.to_string(),
            expected: desc.digest.clone(),
            actual: digest.clone(),
            size,
        });
    }
    if size != desc.size {
        return Err(Error::SizeMismatch {
            reference: reference.to_string(),
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: size,
        });
    }
    Ok(())
}
