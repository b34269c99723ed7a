//! `docker-archive:FILE[:NAME:TAG]`: what `docker save` writes and `docker load` reads.
//!
//! The archive has no manifest, only `manifest.json`: a list of images, each a config file, its
//! `RepoTags` and its layer files (plain tars, or gzip in newer saves). Reading one synthesizes a
//! Docker schema 2 manifest from them, as skopeo does; the layer digests are those of the
//! member bytes, so an uncompressed layer's digest is its diff ID. Both the old layout
//! (`<id>/layer.tar`, `<hex>.json`) and the Docker ≥ 25 one (`blobs/sha256/<hex>`) are read;
//! in the latter the member name is the digest and is trusted (every copy verifies it).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{json, Map, Value};

use super::tar_index::{sniff, Magic, TarIndex};
use super::Source;
use crate::engine;
use crate::error::{BlobLocation, Error, FileError, NotFoundHint, Result, UsageError, Wanted};
use crate::model::reference::normalise_docker_name;
use crate::model::{media, Descriptor, Digest, Reference};

/// The member listing the archive's images.
pub const MANIFEST_JSON: &str = "manifest.json";

/// One image of `manifest.json`, with every field it was read with (kept when carried over).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The entry's JSON object, unknown fields included.
    pub json: Map<String, Value>,
    /// `Config`: the member holding the image config.
    pub config: String,
    /// `RepoTags`: the `NAME:TAG`s the image was saved under; empty when it has none.
    pub repo_tags: Vec<String>,
    /// `Layers`: the members holding the layers, base first.
    pub layers: Vec<String>,
}

/// Why a `manifest.json` is not what `docker save` writes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestJsonError {
    /// Not JSON.
    #[error("manifest.json: invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Not a list.
    #[error("manifest.json is not a list of images")]
    NotAList,
    /// An image entry that is not an object.
    #[error("manifest.json: image {image}: not an object")]
    NotAnObject {
        /// The entry's index.
        image: usize,
    },
    /// An image entry without a `Config`.
    #[error("manifest.json: image {image}: no Config")]
    NoConfig {
        /// The entry's index.
        image: usize,
    },
    /// `RepoTags` or `Layers` that is not a list of strings.
    #[error("manifest.json: image {image}: {key} {}", if *list { "holds a non-string" } else { "is not a list" })]
    NotStrings {
        /// The entry's index.
        image: usize,
        /// `RepoTags` or `Layers`.
        key: &'static str,
        /// It is a list (with something other than a string in it).
        list: bool,
    },
}

/// `manifest.json` parsed.
pub fn parse_manifest_json(bytes: &[u8]) -> std::result::Result<Vec<Entry>, ManifestJsonError> {
    let v: Value = serde_json::from_slice(bytes).map_err(ManifestJsonError::Json)?;
    let list = v.as_array().ok_or(ManifestJsonError::NotAList)?;
    list.iter()
        .enumerate()
        .map(|(i, e)| {
            let json = e
                .as_object()
                .ok_or(ManifestJsonError::NotAnObject { image: i })?
                .clone();
            let config = json
                .get("Config")
                .and_then(Value::as_str)
                .ok_or(ManifestJsonError::NoConfig { image: i })?
                .to_string();
            let strings =
                |key: &'static str| -> std::result::Result<Vec<String>, ManifestJsonError> {
                    let bad = |list| ManifestJsonError::NotStrings {
                        image: i,
                        key,
                        list,
                    };
                    match json.get(key) {
                        None | Some(Value::Null) => Ok(vec![]),
                        Some(Value::Array(a)) => a
                            .iter()
                            .map(|s| s.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| bad(true)),
                        Some(_) => Err(bad(false)),
                    }
                };
            Ok(Entry {
                repo_tags: strings("RepoTags")?,
                layers: strings("Layers")?,
                config,
                json,
            })
        })
        .collect()
}

/// Whether a RepoTag is the image `wanted` (already normalised) names.
pub fn same_name(repo_tag: &str, wanted: &str) -> bool {
    normalise_docker_name(repo_tag).is_ok_and(|n| n == wanted)
}

/// `blobs/sha256/<hex>`: the member's name is its digest.
pub fn digest_from_name(name: &str) -> Option<Digest> {
    let hex = name.strip_prefix("blobs/sha256/")?;
    format!("sha256:{hex}").parse().ok()
}

/// The `docker-archive:` [`Source`]: what `docker save` writes, read in place.
/// The manifest is synthesized (Docker schema 2), so its digest is ocipatch's, not a registry's.
pub struct DockerArchiveSource {
    reference: Reference,
    tar: TarIndex,
    manifest: Vec<u8>,
    root: Descriptor,
    /// The blobs of the selected image: digest → member name.
    blobs: BTreeMap<Digest, String>,
}

impl DockerArchiveSource {
    /// Opens a `docker-archive:` reference and selects its `NAME:TAG` (or its only image).
    pub fn open(
        reference: &Reference,
        file: &Path,
        name: Option<&str>,
    ) -> Result<DockerArchiveSource> {
        let (file, name) = (&file.to_path_buf(), &name.map(str::to_string));
        let invalid = |source: FileError| Error::InvalidFile {
            reference: reference.to_string(),
            file: file.clone(),
            source: Box::new(source),
            overwrite: false,
        };
        if !file.exists() {
            return Err(Error::NotFound {
                reference: reference.to_string(),
                what: Wanted::Archive(file.clone()),
                hint: NotFoundHint::None,
            });
        }
        let tar = TarIndex::open(file).map_err(|e| invalid(e.into()))?;
        let bytes = tar
            .read_member(MANIFEST_JSON, super::MAX_JSON_BLOB)
            .map_err(|e| invalid(e.into()))?
            .ok_or_else(|| {
                invalid(FileError::NoMember {
                    member: MANIFEST_JSON,
                    what: "a docker-archive (docker save) file",
                })
            })?;
        let entries = parse_manifest_json(&bytes).map_err(|e| invalid(e.into()))?;
        let entry = select(reference, &entries, name.as_deref())?;

        let config_member = tar.get(&entry.config).ok_or_else(|| {
            invalid(FileError::NotInArchive {
                what: "config",
                member: entry.config.clone(),
            })
        })?;
        let config = tar
            .read_member(&entry.config, super::MAX_JSON_BLOB)
            .map_err(|e| invalid(e.into()))?
            .ok_or_else(|| {
                invalid(FileError::NotInArchive {
                    what: "config",
                    member: entry.config.clone(),
                })
            })?;
        let config_digest = Digest::of(&config);
        let mut blobs = BTreeMap::new();
        blobs.insert(config_digest.clone(), entry.config.clone());
        // Old-layout layers are hashed here, once, in parallel.
        let descs = entry
            .layers
            .par_iter()
            .map(|name| layer_descriptor(&tar, name))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let mut layers = Vec::with_capacity(descs.len());
        for (desc, name) in descs.iter().zip(&entry.layers) {
            blobs.insert(desc.digest.clone(), name.clone());
            layers.push(desc.to_json());
        }
        // A fixed-order object: the same archive always yields the same manifest digest.
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": Descriptor::new(media::DOCKER_CONFIG, config_digest, config_member.size).to_json(),
            "layers": layers,
        });
        let manifest = serde_json::to_vec(&manifest).expect("a JSON value always serializes");
        let root = Descriptor::new(
            media::DOCKER_MANIFEST,
            Digest::of(&manifest),
            manifest.len() as u64,
        );
        Ok(DockerArchiveSource {
            reference: reference.clone(),
            tar,
            manifest,
            root,
            blobs,
        })
    }
}

/// The image `name` selects; with no name, the archive's only image.
fn select<'a>(
    reference: &Reference,
    entries: &'a [Entry],
    name: Option<&str>,
) -> Result<&'a Entry> {
    let listed = || -> Vec<String> {
        entries
            .iter()
            .flat_map(|e| e.repo_tags.iter().cloned())
            .collect()
    };
    match name {
        Some(name) => {
            let wanted = normalise_docker_name(name).map_err(UsageError::from)?;
            entries
                .iter()
                .find(|e| e.repo_tags.iter().any(|t| same_name(t, &wanted)))
                .ok_or_else(|| Error::NotFound {
                    reference: reference.to_string(),
                    what: Wanted::Image(name.to_string()),
                    hint: NotFoundHint::RepoTags(listed()),
                })
        }
        None => match entries {
            [one] => Ok(one),
            [] => Err(Error::NotFound {
                reference: reference.to_string(),
                what: Wanted::AnyImage,
                hint: NotFoundHint::NoImages,
            }),
            _ => Err(UsageError::AmbiguousArchive {
                reference: reference.to_string(),
                images: entries.len(),
                repo_tags: listed(),
            }
            .into()),
        },
    }
}

/// A layer member's descriptor: its compression by magic number, its digest from its name
/// (new layout) or by reading it once (old layout).
fn layer_descriptor(tar: &TarIndex, name: &str) -> std::result::Result<Descriptor, FileError> {
    let m = tar.get(name).ok_or_else(|| FileError::NotInArchive {
        what: "layer",
        member: name.to_string(),
    })?;
    let unreadable = |source| FileError::LayerMember {
        member: name.to_string(),
        source,
    };
    let read_err = |e: std::io::Error| unreadable(engine::EngineError::Read(e));
    let media_type = match sniff(&tar.head(m).map_err(read_err)?) {
        Magic::Plain => media::DOCKER_LAYER_TAR,
        Magic::Gzip => media::DOCKER_LAYER_GZIP,
        Magic::Zstd => {
            return Err(FileError::ZstdLayer {
                member: name.to_string(),
            })
        }
    };
    let digest = match digest_from_name(&super::tar_index::normalise(Path::new(name))) {
        Some(d) => d,
        None => {
            let r = tar.open_member(m).map_err(read_err)?;
            engine::digest_stream(r, None, None)
                .map_err(unreadable)?
                .digest
        }
    };
    Ok(Descriptor::new(media_type, digest, m.size))
}

impl Source for DockerArchiveSource {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn root(&self) -> Result<Descriptor> {
        Ok(self.root.clone())
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        if digest == &self.root.digest {
            return Ok(Box::new(&self.manifest[..]));
        }
        let file = || PathBuf::from(self.tar.file());
        let name = self.blobs.get(digest).ok_or_else(|| Error::MissingBlob {
            reference: self.reference.to_string(),
            digest: digest.clone(),
            location: BlobLocation::NotInImage(file()),
        })?;
        let m = self
            .tar
            .get(name)
            .expect("indexed when the archive was opened");
        let r = self.tar.open_member(m).map_err(|e| Error::io(file(), e))?;
        Ok(Box::new(r))
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(digest == &self.root.digest || self.blobs.contains_key(digest))
    }

    fn descriptor_for_digest(&self, digest: &Digest) -> Result<Option<Descriptor>> {
        Ok((digest == &self.root.digest).then(|| self.root.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(json: &str) -> Vec<Entry> {
        parse_manifest_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn selects_by_normalised_name_or_the_only_image() {
        let r = Reference::parse("docker-archive:x.tar").unwrap();
        let two = entries(
            r#"[{"Config":"a.json","RepoTags":["docker.io/example/app:1"],"Layers":[]},
                {"Config":"b.json","RepoTags":["app:1"],"Layers":[]}]"#,
        );
        assert_eq!(
            select(&r, &two, Some("example/app:1")).unwrap().config,
            "a.json"
        );
        assert_eq!(
            select(&r, &two, Some("docker.io/library/app:1"))
                .unwrap()
                .config,
            "b.json"
        );
        let e = select(&r, &two, None).unwrap_err().to_string();
        assert!(
            e.contains("2 images") && e.contains("app:1") && e.contains("x.tar"),
            "{e}"
        );
        let e = select(&r, &two, Some("app:2")).unwrap_err().to_string();
        assert!(e.contains("\"app:2\" not found"), "{e}");
        let one = entries(r#"[{"Config":"c.json","RepoTags":null,"Layers":["l.tar"]}]"#);
        assert_eq!(select(&r, &one, None).unwrap().layers, vec!["l.tar"]);
    }

    #[test]
    fn malformed_manifest_json_says_what_is_wrong() {
        let e = parse_manifest_json(b"{}").unwrap_err();
        assert!(matches!(e, ManifestJsonError::NotAList), "{e}");
        assert!(e.to_string().contains("not a list"), "{e}");
        let e = parse_manifest_json(br#"[{"Layers":[]}]"#).unwrap_err();
        assert_eq!(e.to_string(), "manifest.json: image 0: no Config");
        let e = parse_manifest_json(br#"[{"Config":"c","Layers":[1]}]"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "manifest.json: image 0: Layers holds a non-string"
        );
    }

    #[test]
    fn names_in_the_new_layout_are_digests() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            digest_from_name(&format!("blobs/sha256/{hex}"))
                .unwrap()
                .hex(),
            hex
        );
        assert!(digest_from_name(&format!("{hex}.tar")).is_none());
        assert!(digest_from_name("blobs/sha256/zz").is_none());
    }
}
