//! Writing `docker-archive:FILE[:NAME:TAG]`, for `docker load` and skopeo.
//!
//! The archive holds Docker schema 2 images whose layers are plain tars: a compressed layer
//! (gzip, or zstd, which Docker schema 2 cannot even name) is decompressed as it is copied, and
//! its digest in the archive is then its diff ID. Blob names follow Docker ≥ 25
//! (`blobs/sha256/<hex>` for config and layers) with `manifest.json` and the legacy
//! `repositories` file; `docker load` of any version since 1.10, and skopeo, read
//! `manifest.json` and open whatever member names it lists.
//!
//! What the format cannot hold is dropped: manifest annotations (so the
//! `org.opencontainers.image.base.*` annotations of a rebase), and an index (multi-platform
//! images are refused). As for oci-archive, blobs are staged, then `commit` streams the tar in a
//! fixed order into a temp file renamed over FILE; the other images of an existing FILE are
//! carried over, the one with our NAME:TAG loses that tag. Concurrent writers of one FILE take
//! turns at commit (`FILE.lock`) and re-read FILE under the lock, so none loses the other's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::docker_archive::{parse_manifest_json, same_name, Entry, MANIFEST_JSON};
use super::staging::Staging;
use super::tar_index::{Member, TarIndex};
use super::tar_writer::{ArchiveLock, TarWriter};
use super::{CopyOutcome, Sink, Source};
use crate::engine::Compression;
use crate::error::{Error, FileError, Result, Unsupported};
use crate::model::image::FormatError;
use crate::model::reference::normalise_docker_name;
use crate::model::{media, Config, Descriptor, Digest, Manifest, Reference};

/// The `docker-archive:` [`Sink`]: writes a `docker save` tar (a new file, renamed into
/// place on commit), carrying over the other images of an existing archive.
pub struct DockerArchiveSink {
    reference: Reference,
    file: PathBuf,
    /// `NAME:TAG` as given (`:latest` added when no tag); `None`: an untagged image.
    repo_tag: Option<String>,
    staging: Staging,
    /// Compressed layer digest → the diff ID under which its plain tar is staged.
    decompressed: Mutex<BTreeMap<Digest, Digest>>,
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The archive being replaced (its index and images, carried over), or `None` when there is
/// none; something else there is refused rather than overwritten.
type Existing = Option<(TarIndex, Vec<Entry>)>;

fn read_existing(reference: &Reference, file: &Path) -> Result<Existing> {
    if !file.exists() {
        return Ok(None);
    }
    let refuse = |source: FileError| Error::InvalidFile {
        reference: reference.to_string(),
        file: file.to_path_buf(),
        source: Box::new(source),
        overwrite: true,
    };
    let tar = TarIndex::open(file).map_err(|e| refuse(e.into()))?;
    let bytes = tar
        .read_member(MANIFEST_JSON, super::MAX_JSON_BLOB)
        .map_err(|e| refuse(e.into()))?
        .ok_or_else(|| {
            refuse(FileError::NoMember {
                member: MANIFEST_JSON,
                what: "a docker-archive",
            })
        })?;
    let entries = parse_manifest_json(&bytes).map_err(|e| refuse(e.into()))?;
    Ok(Some((tar, entries)))
}

impl DockerArchiveSink {
    /// Prepares to write the archive a `docker-archive:` reference names; nothing is written until
    /// commit.
    pub fn open(
        reference: &Reference,
        file: &Path,
        name: Option<&str>,
    ) -> Result<DockerArchiveSink> {
        let (file, name) = (&file.to_path_buf(), &name.map(str::to_string));
        let repo_tag = name.as_ref().map(|n| {
            let last = n.rsplit('/').next().unwrap_or(n);
            if last.contains(':') {
                n.clone()
            } else {
                format!("{n}:latest")
            }
        });
        // Refused early what cannot be overwritten; FILE is read for real at commit.
        read_existing(reference, file)?;
        Ok(DockerArchiveSink {
            reference: reference.clone(),
            file: file.clone(),
            repo_tag,
            staging: Staging::next_to(file, reference)?,
            decompressed: Mutex::new(BTreeMap::new()),
        })
    }

    fn unsupported(&self, what: Unsupported) -> Error {
        Error::Unsupported {
            reference: self.reference.to_string(),
            what,
        }
    }

    /// The staged plain tar of each layer, checked against the config's diff IDs.
    fn layer_files(&self, manifest: &Manifest, config: &Config) -> Result<Vec<(Digest, u64)>> {
        if manifest.layers.len() != config.diff_ids.len() {
            return Err(self.unsupported(Unsupported::LayerCount {
                layers: manifest.layers.len(),
                diff_ids: config.diff_ids.len(),
            }));
        }
        let staged: BTreeMap<Digest, u64> = self.staging.blobs().into_iter().collect();
        let decompressed = self.decompressed.lock().expect("sink lock");
        let mut out = Vec::new();
        for (i, (layer, diff_id)) in manifest.layers.iter().zip(&config.diff_ids).enumerate() {
            let file = decompressed.get(&layer.digest).unwrap_or(&layer.digest);
            let size = staged.get(file).ok_or_else(|| {
                self.unsupported(Unsupported::LayerNotCopied {
                    index: i,
                    digest: layer.digest.clone(),
                })
            })?;
            if file != diff_id {
                return Err(self.unsupported(Unsupported::DiffIdMismatch {
                    index: i,
                    digest: layer.digest.clone(),
                    found: file.clone(),
                    expected: diff_id.clone(),
                }));
            }
            out.push((file.clone(), *size));
        }
        Ok(out)
    }

    /// `manifest.json`: the old images (minus our tag), then ours.
    fn entries(&self, old: &Existing, config: &Digest, layers: &[(Digest, u64)]) -> Vec<Entry> {
        let wanted = self
            .repo_tag
            .as_deref()
            .and_then(|t| normalise_docker_name(t).ok());
        let mut entries: Vec<Entry> = Vec::new();
        for e in old.iter().flat_map(|(_, es)| es) {
            let mut e = e.clone();
            if let Some(w) = &wanted {
                let before = e.repo_tags.len();
                e.repo_tags.retain(|t| !same_name(t, w));
                if e.repo_tags.is_empty() && before > 0 {
                    continue; // its only names were ours: the image is replaced
                }
                e.json.insert(
                    "RepoTags".into(),
                    Value::from(e.repo_tags.iter().map(|t| t.as_str()).collect::<Vec<_>>()),
                );
            }
            entries.push(e);
        }
        let mut json = Map::new();
        json.insert("Config".into(), blob_name(config).into());
        json.insert(
            "RepoTags".into(),
            Value::from(self.repo_tag.iter().map(String::as_str).collect::<Vec<_>>()),
        );
        json.insert(
            "Layers".into(),
            Value::from(layers.iter().map(|(d, _)| blob_name(d)).collect::<Vec<_>>()),
        );
        entries.push(Entry {
            config: blob_name(config),
            repo_tags: self.repo_tag.iter().cloned().collect(),
            layers: layers.iter().map(|(d, _)| blob_name(d)).collect(),
            json,
        });
        entries
    }

    /// `blobs`: the new image's config and layers, staged, with their sizes.
    fn write_tar(
        &self,
        old: &Existing,
        entries: &[Entry],
        blobs: &[(Digest, u64)],
    ) -> std::io::Result<()> {
        enum Origin {
            Old(Member),
            Staged(Digest),
        }
        // Every member the images need, by name; the new image's blobs are staged.
        let mut members: BTreeMap<String, (u64, Origin)> = BTreeMap::new();
        if let Some((tar, _)) = old {
            for e in entries {
                for name in std::iter::once(&e.config).chain(&e.layers) {
                    if let Some(m) = tar.get(name) {
                        let name = super::tar_index::normalise(std::path::Path::new(name));
                        members.insert(name, (m.size, Origin::Old(m)));
                    }
                }
            }
        }
        for (d, size) in blobs {
            members.insert(blob_name(d), (*size, Origin::Staged(d.clone())));
        }
        let mut out = TarWriter::create(&self.file)?;
        for (name, (size, from)) in &members {
            match from {
                Origin::Old(m) => {
                    let (tar, _) = old.as_ref().expect("old member");
                    out.file(name, *size, tar.open_member(*m)?)?;
                }
                Origin::Staged(d) => {
                    let f = self.staging.open(d).map_err(std::io::Error::other)?;
                    out.file(name, *size, f)?;
                }
            }
        }
        let list: Vec<Value> = entries
            .iter()
            .map(|e| Value::Object(e.json.clone()))
            .collect();
        out.bytes(
            MANIFEST_JSON,
            &serde_json::to_vec(&list).expect("a JSON value always serializes"),
        )?;
        out.bytes("repositories", &repositories(entries))?;
        out.finish()
    }
}

/// The legacy `repositories` file: repository → tag → top layer ID. Only pre-1.10 `docker
/// load` needs it; newer ones and skopeo read `manifest.json`.
fn repositories(entries: &[Entry]) -> Vec<u8> {
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for e in entries {
        let Some(top) = e.layers.last() else { continue };
        let id = top
            .strip_prefix("blobs/sha256/")
            .or_else(|| top.strip_suffix("/layer.tar"))
            .or_else(|| top.strip_suffix(".tar"))
            .unwrap_or(top);
        for t in &e.repo_tags {
            let (repo, tag) = match t.rsplit_once(':') {
                Some((r, tag)) if !tag.contains('/') => (r, tag),
                _ => (t.as_str(), "latest"),
            };
            repos
                .entry(repo.to_string())
                .or_default()
                .insert(tag.to_string(), id.to_string());
        }
    }
    serde_json::to_vec(&repos).expect("a JSON value always serializes")
}

impl Sink for DockerArchiveSink {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn copy_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        if self.staging.has(&desc.digest)
            || self
                .decompressed
                .lock()
                .expect("sink lock")
                .contains_key(&desc.digest)
        {
            return Ok(CopyOutcome::Present);
        }
        if super::absent_foreign_layer(src, desc)? {
            return Err(self.unsupported(Unsupported::ForeignLayer {
                digest: desc.digest.clone(),
                source: src.reference().to_string(),
            }));
        }
        match Compression::from_media_type(&desc.media_type) {
            Some(c @ (Compression::Gzip | Compression::Zstd)) => {
                let diff_id = self.staging.copy_decompressed(src, desc, c)?;
                self.decompressed
                    .lock()
                    .expect("sink lock")
                    .insert(desc.digest.clone(), diff_id);
                Ok(CopyOutcome::Copied)
            }
            _ => self.staging.copy(src, desc),
        }
    }

    fn put_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        self.staging.put(desc, bytes)
    }

    fn commit(&self, root: &Descriptor) -> Result<()> {
        let result = (|| {
            if media::is_index(&root.media_type) {
                return Err(self.unsupported(Unsupported::Index {
                    digest: root.digest.clone(),
                }));
            }
            let bytes = self.staging.read(&root.digest)?;
            let invalid = |what, digest: &Digest, e: FormatError| Error::InvalidBlob {
                reference: self.reference.to_string(),
                what,
                digest: digest.clone(),
                source: e.into(),
            };
            let manifest = Manifest::parse(&bytes, Some(&root.media_type))
                .map_err(|e| invalid("manifest", &root.digest, e))?;
            let config_bytes = self.staging.read(&manifest.config.digest)?;
            let config = Config::parse(&config_bytes)
                .map_err(|e| invalid("config", &manifest.config.digest, e))?;
            let layers = self.layer_files(&manifest, &config)?;
            // Under the lock, FILE is what the last writer left: its images are carried over.
            let _lock = ArchiveLock::acquire(&self.file)
                .map_err(|e| Error::io(ArchiveLock::path_for(&self.file), e))?;
            let old = read_existing(&self.reference, &self.file)?;
            let entries = self.entries(&old, &manifest.config.digest, &layers);
            let mut blobs = layers;
            blobs.push((manifest.config.digest.clone(), config_bytes.len() as u64));
            self.write_tar(&old, &entries, &blobs)
                .map_err(|e| Error::io(&self.file, e))
        })();
        self.staging.remove();
        result
    }

    fn abort(&self) {
        self.staging.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_point_at_the_top_layer() {
        let e = parse_manifest_json(
            br#"[{"Config":"c","RepoTags":["example/app:2","x"],"Layers":["blobs/sha256/aa","blobs/sha256/bb"]},
                 {"Config":"d","RepoTags":["old:1"],"Layers":["123/layer.tar"]}]"#,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(repositories(&e)).unwrap(),
            r#"{"example/app":{"2":"bb"},"old":{"1":"123"},"x":{"latest":"bb"}}"#
        );
    }
}
