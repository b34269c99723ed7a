//! Reading an image graph (index → manifests → configs) from any source, every JSON blob
//! checked against its descriptor.

use crate::error::{BlobError, Error, Result};
use crate::model::{media, Config, Descriptor, Index, Manifest, Platform};
use crate::plan::Parts;
use crate::transport::{read_json_blob, Source};

/// One image: a manifest and its config.
#[derive(Clone, Debug)]
pub struct Image {
    /// The manifest's descriptor (from the index, or the tag's).
    pub descriptor: Descriptor,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// The parsed config.
    pub config: Config,
}

impl Image {
    /// The manifest and config, as the planner takes them.
    pub fn parts(&self) -> Parts<'_> {
        Parts {
            manifest: &self.manifest,
            config: &self.config,
        }
    }

    /// The config's platform.
    pub fn platform(&self) -> &Platform {
        &self.config.platform
    }
}

/// An entry of an index that is not an image (attestation, signature, other artifact).
#[derive(Clone, Debug)]
pub struct Other {
    /// The entry's descriptor, as the index has it.
    pub descriptor: Descriptor,
    /// Why it is not treated as an image, for humans.
    pub why: String,
}

#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // few per index; boxing buys nothing
/// One entry of an index: an image, or something else that is passed through or dropped.
pub enum Entry {
    /// A manifest whose config is an image config.
    Image(Image),
    /// Anything else.
    Other(Other),
}

impl Entry {
    /// The image, for an image entry.
    pub fn image(&self) -> Option<&Image> {
        match self {
            Entry::Image(i) => Some(i),
            Entry::Other(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per operand of an operation: size does not matter
/// What a reference resolves to: one image, or an index of them.
pub enum Loaded {
    /// A single manifest.
    Single(Image),
    /// An index (or Docker manifest list) with its entries.
    Multi {
        /// The index's descriptor.
        descriptor: Descriptor,
        /// The parsed index.
        index: Box<Index>,
        /// One per `index.manifests` entry, in order.
        entries: Vec<Entry>,
    },
}

impl Loaded {
    /// The images, in index order (non-image entries left out).
    pub fn images(&self) -> Vec<&Image> {
        match self {
            Loaded::Single(i) => vec![i],
            Loaded::Multi { entries, .. } => entries.iter().filter_map(Entry::image).collect(),
        }
    }

    /// The root's descriptor: the manifest's, or the index's.
    pub fn descriptor(&self) -> &Descriptor {
        match self {
            Loaded::Single(i) => &i.descriptor,
            Loaded::Multi { descriptor, .. } => descriptor,
        }
    }

    /// The image for a platform (os/architecture/variant), if there is one.
    pub fn for_platform(&self, platform: &Platform) -> Option<&Image> {
        self.images()
            .into_iter()
            .find(|i| i.platform().same_target(platform))
    }
}

fn invalid(src: &dyn Source, what: &'static str, desc: &Descriptor, source: BlobError) -> Error {
    Error::InvalidBlob {
        reference: src.reference().to_string(),
        what,
        digest: desc.digest.clone(),
        source,
    }
}

/// Reads the image a manifest descriptor points at.
pub fn load_image(src: &dyn Source, desc: &Descriptor) -> Result<Image> {
    image_from(src, desc, read_manifest(src, desc)?)
}

fn read_manifest(src: &dyn Source, desc: &Descriptor) -> Result<Manifest> {
    let bytes = read_json_blob(src, desc, "manifest")?;
    Manifest::parse(&bytes, Some(&desc.media_type))
        .map_err(|e| invalid(src, "manifest", desc, e.into()))
}

/// The image of a manifest already read (and checked) from `src`: reads its config.
pub(crate) fn image_from(src: &dyn Source, desc: &Descriptor, manifest: Manifest) -> Result<Image> {
    if !manifest.is_image() {
        return Err(invalid(
            src,
            "manifest",
            desc,
            BlobError::Artifact {
                config_media_type: manifest.config.media_type.clone(),
            },
        ));
    }
    let config_bytes = read_json_blob(src, &manifest.config, "config")?;
    let config = Config::parse(&config_bytes)
        .map_err(|e| invalid(src, "config", &manifest.config, e.into()))?;
    Ok(Image {
        descriptor: desc.clone(),
        manifest,
        config,
    })
}

/// Reads everything `desc` (an index or a manifest) points at.
pub fn load(src: &dyn Source, desc: &Descriptor) -> Result<Loaded> {
    if !media::is_index(&desc.media_type) {
        return Ok(Loaded::Single(load_image(src, desc)?));
    }
    let bytes = read_json_blob(src, desc, "index")?;
    let index = Index::parse(&bytes, Some(&desc.media_type))
        .map_err(|e| invalid(src, "index", desc, e.into()))?;
    let mut entries = Vec::with_capacity(index.manifests.len());
    for entry in &index.manifests {
        let other = |why: &str| {
            Entry::Other(Other {
                descriptor: entry.clone(),
                why: why.to_string(),
            })
        };
        if entry.platform().is_some_and(|p| p.is_unknown()) {
            entries.push(other("platform unknown/unknown (attestation or artifact)"));
        } else if media::is_index(&entry.media_type) {
            entries.push(other("nested index"));
        } else if !media::is_manifest(&entry.media_type) {
            entries.push(other("not an image manifest"));
        } else {
            let manifest = read_manifest(src, entry)?;
            if manifest.is_image() {
                entries.push(Entry::Image(image_from(src, entry, manifest)?));
            } else {
                entries.push(other("artifact manifest"));
            }
        }
    }
    Ok(Loaded::Multi {
        descriptor: desc.clone(),
        index: Box::new(index),
        entries,
    })
}
