//! `oci-archive:FILE[:TAG]`: an OCI image layout in one tar file (what skopeo and buildah
//! write), read in place through a tar index, never unpacked.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::layout::LAYOUT_FILE;
use super::select;
use super::tar_index::TarIndex;
use super::Source;
use crate::error::{BlobLocation, Error, FileError, NotFoundHint, Result, Wanted};
use crate::model::media;
use crate::model::{Descriptor, Digest, Index, Reference};

/// Where a blob lives inside the archive.
pub fn blob_member(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.hex())
}

/// An archive indexed and its `index.json` parsed: what both the source and the sink (for the
/// images it carries over) need.
pub struct OciArchive {
    /// The archive's member table.
    pub tar: TarIndex,
    /// Its `index.json`.
    pub index: Index,
}

impl OciArchive {
    /// Indexes the archive `file` and parses its `oci-layout` and `index.json`. Errors name
    /// `reference`: not found, not a tar, or not an OCI layout.
    pub fn open(reference: &Reference, file: &Path) -> Result<OciArchive> {
        let invalid = |source: FileError| Error::InvalidFile {
            reference: reference.to_string(),
            file: file.to_path_buf(),
            source: Box::new(source),
            overwrite: false,
        };
        if !file.exists() {
            return Err(Error::NotFound {
                reference: reference.to_string(),
                what: Wanted::Archive(file.to_path_buf()),
                hint: NotFoundHint::None,
            });
        }
        let tar = TarIndex::open(file).map_err(|e| invalid(e.into()))?;
        let no_member = |member| FileError::NoMember {
            member,
            what: "an oci-archive",
        };
        let layout = tar
            .read_member(LAYOUT_FILE, 4096)
            .map_err(|e| invalid(e.into()))?
            .ok_or_else(|| invalid(no_member(LAYOUT_FILE)))?;
        let version = serde_json::from_slice::<Value>(&layout)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_string));
        if version.as_deref() != Some("1.0.0") {
            return Err(invalid(FileError::ArchiveLayoutVersion));
        }
        let bytes = tar
            .read_member("index.json", super::MAX_JSON_BLOB)
            .map_err(|e| invalid(e.into()))?
            .ok_or_else(|| invalid(no_member("index.json")))?;
        let index = Index::parse(&bytes, Some(media::OCI_INDEX)).map_err(|e| {
            invalid(FileError::Member {
                member: "index.json",
                source: Box::new(e.into()),
            })
        })?;
        Ok(OciArchive { tar, index })
    }

    /// Whether the archive holds `blobs/<alg>/<hex>` for `digest`.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.tar.get(&blob_member(digest)).is_some()
    }

    /// Streams the blob `digest` from the archive (unchecked: the caller verifies). Errors with
    /// [`Error::MissingBlob`] when the archive does not hold it.
    pub fn open_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Box<dyn Read + Send + '_>> {
        let name = blob_member(digest);
        let m = self.tar.get(&name).ok_or_else(|| Error::MissingBlob {
            reference: reference.to_string(),
            digest: digest.clone(),
            location: BlobLocation::ArchiveMember {
                member: name.clone(),
                file: self.tar.file().to_path_buf(),
            },
        })?;
        let r = self
            .tar
            .open_member(m)
            .map_err(|e| Error::io(self.tar.file(), e))?;
        Ok(Box::new(r))
    }
}

/// The `oci-archive:` [`Source`]: an OCI layout in a tar, read in place.
pub struct OciArchiveSource {
    reference: Reference,
    file: PathBuf,
    tag: Option<String>,
    archive: OciArchive,
}

impl OciArchiveSource {
    /// Opens an `oci-archive:` reference and resolves its tag (or its only image).
    pub fn open(reference: &Reference, file: &Path, tag: Option<&str>) -> Result<OciArchiveSource> {
        Ok(OciArchiveSource {
            reference: reference.clone(),
            file: file.to_path_buf(),
            tag: tag.map(str::to_string),
            archive: OciArchive::open(reference, file)?,
        })
    }
}

impl Source for OciArchiveSource {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn root(&self) -> Result<Descriptor> {
        select::by_tag_or_default(
            &self.archive.index,
            self.tag.as_deref(),
            &self.reference,
            (&self.file, Some("index.json")),
            "archive",
        )
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        self.archive.open_blob(&self.reference, digest)
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.archive.has_blob(digest))
    }

    fn descriptor_for_digest(&self, digest: &Digest) -> Result<Option<Descriptor>> {
        if let Some(d) = self
            .archive
            .index
            .manifests
            .iter()
            .find(|d| &d.digest == digest)
        {
            return Ok(Some(d.clone()));
        }
        // Not tagged, but maybe stored (a platform manifest of a tagged index, say).
        let Ok(Some(bytes)) = self
            .archive
            .tar
            .read_member(&blob_member(digest), super::MAX_JSON_BLOB)
        else {
            return Ok(None);
        };
        Ok(select::sniff_descriptor(&bytes, digest))
    }

    fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Vec<Descriptor>> {
        Ok(super::index_referrers(
            self,
            &self.archive.index,
            subject,
            artifact_type,
        ))
    }
}
