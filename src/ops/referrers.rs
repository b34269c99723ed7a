//! OCI 1.1 referrers of an image: listing them (inspect, verify, and the attachments a rebase
//! does not carry) and attaching one (an SBOM, a provenance statement) to an image written.
//!
//! The manifest and index building is [`crate::transport::referrers`]'s; where a referrer is
//! stored and how it is listed is each transport's.

use std::collections::BTreeMap;

use super::load::Loaded;
use crate::error::Result;
use crate::model::{Descriptor, Digest, Reference};
use crate::transport::{self, referrers, RegistryOptions, Source};

/// One referrer of an image: a manifest whose `subject` is the image's index or one of its
/// platform manifests.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Referrer {
    /// The manifest it describes (its `subject`).
    pub subject: Digest,
    /// Its `artifactType` (or config media type), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The referrer manifest's media type.
    pub media_type: String,
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// The referrer manifest's size.
    pub size: u64,
}

impl Referrer {
    /// The referrer as the index entry it was listed by (media type, digest, size).
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, self.digest.clone(), self.size)
    }

    fn from_entry(subject: &Digest, d: &Descriptor) -> Referrer {
        Referrer {
            subject: subject.clone(),
            artifact_type: d.artifact_type().map(str::to_string),
            media_type: d.media_type.clone(),
            digest: d.digest.clone(),
            size: d.size,
        }
    }
}

/// The referrers of the manifest `subject` in `src` (optionally only those of
/// `artifact_type`).
pub fn list(
    src: &dyn Source,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Referrer>> {
    Ok(src
        .referrers(subject, artifact_type)?
        .iter()
        .map(|d| Referrer::from_entry(subject, d))
        .collect())
}

/// The referrers of a loaded image: of its root (the index, or the single manifest), then of
/// each platform manifest of an index, in index order; each once.
pub fn of_image(src: &dyn Source, image: &Loaded) -> Result<Vec<Referrer>> {
    let mut subjects = vec![image.descriptor().digest.clone()];
    if let Loaded::Multi { index, .. } = image {
        subjects.extend(index.manifests.iter().map(|d| d.digest.clone()));
    }
    let mut out: Vec<Referrer> = Vec::new();
    for s in &subjects {
        for r in list(src, s, None)? {
            if !out
                .iter()
                .any(|o| o.digest == r.digest && o.subject == r.subject)
            {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// What [`attach`] wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Attached {
    /// The subject it describes.
    pub subject: Digest,
    /// Its artifact type.
    pub artifact_type: String,
    /// The referrer manifest's digest.
    pub digest: Digest,
    /// The referrer manifest's size.
    pub size: u64,
    /// The document (the manifest's one layer).
    pub document: Digest,
}

/// Attaches `document` (of `media_type`) to the manifest `subject` in `dest` (an `oci:`
/// layout or a `docker://` repository, the place a rebase or append just wrote, by its tag
/// reference) as an OCI 1.1 referrer of `artifact_type`: blobs, the artifact manifest, then
/// the layout's `index.json` entry, or on a registry the referrers API (`OCI-Subject`) or the
/// referrers tag. `annotations` go on the manifest and its index entry (pass no timestamp
/// unless `SOURCE_DATE_EPOCH` gives one: the manifest is byte-identical for identical inputs).
/// Attaching the same document twice lists it once. An archive destination is refused with
/// [`crate::Error::ReferrersUnsupported`].
pub fn attach(
    dest: &Reference,
    registry: &RegistryOptions,
    subject: &Descriptor,
    artifact_type: &str,
    document: &[u8],
    media_type: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<Attached> {
    let doc = Descriptor::of_bytes(media_type, document);
    let built = referrers::build_manifest(subject, artifact_type, &doc, annotations);
    let sink = transport::open_sink(dest, registry)?;
    let empty = referrers::empty_descriptor();
    let blobs: [(Descriptor, &[u8]); 2] = [
        (
            Descriptor::new(&empty.media_type, empty.digest.clone(), empty.size),
            referrers::EMPTY_JSON,
        ),
        (doc.clone(), document),
    ];
    sink.attach_referrer(&built, &blobs, &subject.digest)?;
    Ok(Attached {
        subject: subject.digest.clone(),
        artifact_type: artifact_type.to_string(),
        digest: built.descriptor.digest,
        size: built.descriptor.size,
        document: doc.digest,
    })
}
