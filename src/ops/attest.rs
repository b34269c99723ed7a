//! The documents that attest what a rebase or an append wrote (`--sbom`, `--provenance`):
//! the facts gathered from the written image, handed to the pure [`crate::attest`] builders.
//!
//! The SBOM of a platform lists the packages of the RESULT: its layers (new base, the
//! application's, the package-database layer on top) stacked as a container sees them, each
//! database looked up the way the safety verdict does (`Stack`: links followed
//! inside the image, whiteouts honoured): dpkg `var/lib/dpkg/status` and the `status.d/` files
//! (not their `.md5sums` file lists),
//! apk `lib/apk/db/installed`, rpm `rpmdb.sqlite` (both locations, once when one is a link to the
//! other). The layers are read through the run's `LayerSummaries` (the package-database step and
//! the verdict usually read them already); from a registry that reads every layer.
//!
//! Documents are held in memory ([`Attestation`]): they are small JSON. Once the image is
//! written, the rebase or append attaches each as an OCI referrer of what it describes
//! ([`AttestOptions::attach`]); the ones the caller asked to keep detached it writes to files
//! itself ([`write_documents`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use serde::{Serialize, Serializer};

use super::stack::{Found, Stack};
use super::summaries::LayerSummaries;
use crate::attest::{
    self, cyclonedx, packages, provenance, spdx, BaseImage, ImageFacts, Layer, LayerRole, Package,
    SbomFormat,
};
use crate::error::{Error, LayerName, PackageDbError, Result};
use crate::layer::{resolve, EntryKind, Lookup};
use crate::model::{Config, Descriptor, Digest, Reference};
use crate::pkgdb::{self, RpmDbKind};
use crate::transport::{RegistryOptions, Source};
use crate::verdict::release;

/// Which documents a run makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttestOptions {
    /// An SBOM of every written platform image, in this format.
    pub sbom: Option<SbomFormat>,
    /// The provenance of the run (one statement per image).
    pub provenance: bool,
    /// `SOURCE_DATE_EPOCH`: the documents' time (see [`crate::attest`]).
    pub source_date_epoch: Option<i64>,
    /// Documents the caller writes elsewhere (the CLI's `--sbom-file`, `--provenance-file`):
    /// made, not attached. Every other document is attached to the image it describes as an
    /// OCI referrer once the image is written.
    pub detached: Detached,
}

/// Which documents are not attached (see [`AttestOptions::detached`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Detached {
    /// The SBOMs.
    pub sbom: bool,
    /// The provenance.
    pub provenance: bool,
}

impl AttestOptions {
    /// Whether any document is asked for.
    pub fn any(&self) -> bool {
        self.sbom.is_some() || self.provenance
    }

    /// Whether any document is to be attached as a referrer.
    pub fn attaches(&self) -> bool {
        (self.sbom.is_some() && !self.detached.sbom)
            || (self.provenance && !self.detached.provenance)
    }

    /// Refuses, before anything is written, a destination that cannot hold referrers (an
    /// archive) when a document is to be attached to it.
    pub fn check_destination(&self, dest: &Reference) -> Result<()> {
        if !self.attaches() || !dest.is_archive() {
            return Ok(());
        }
        Err(Error::ReferrersUnsupported {
            destination: dest.to_string(),
            transport: dest.transport(),
        })
    }

    /// Attaches every document of `docs` that is not detached to the image it describes in
    /// `dest` (just written), as an OCI 1.1 referrer; each attached one records its referrer
    /// manifest's digest. The manifest's `org.opencontainers.image.created` is set only from
    /// `SOURCE_DATE_EPOCH`, so the same inputs attach the same bytes.
    pub fn attach(
        &self,
        dest: &Reference,
        registry: &RegistryOptions,
        docs: &mut [Attestation],
    ) -> Result<()> {
        let mut annotations = BTreeMap::new();
        if let Some(t) = self.source_date_epoch {
            annotations.insert(
                "org.opencontainers.image.created".to_string(),
                crate::model::time::format_rfc3339(t),
            );
        }
        for d in docs.iter_mut() {
            let detached = if d.is_sbom() {
                self.detached.sbom
            } else {
                self.detached.provenance
            };
            if detached {
                continue;
            }
            let attached = super::referrers::attach(
                dest,
                registry,
                &d.subject,
                &d.artifact_type,
                &d.bytes,
                &d.media_type,
                &annotations,
            )?;
            d.referrer = Some(attached.digest);
        }
        Ok(())
    }
}

/// One document about a written image: what it describes and its bytes. Serialized for
/// `--json` without the bytes.
#[derive(Clone, Debug, Serialize)]
pub struct Attestation {
    /// The manifest (an SBOM) or the root manifest or index (the provenance) it describes:
    /// the subject of the OCI referrer it becomes.
    #[serde(serialize_with = "subject_json")]
    pub subject: Descriptor,
    /// The OCI `artifactType`: `application/spdx+json`, `application/vnd.cyclonedx+json`,
    /// `application/vnd.in-toto+json`.
    pub artifact_type: String,
    /// The document's media type (the same as the artifact type).
    pub media_type: String,
    /// The platform an SBOM describes (`os/arch[/variant]`); absent for the provenance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The document's digest.
    pub digest: Digest,
    /// The document's size in bytes.
    pub size: u64,
    /// Where the document was written (`--sbom-file`, `--provenance-file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The digest of the OCI referrer manifest that attaches it to its subject, once attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer: Option<Digest>,
    /// The document.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

fn subject_json<S: Serializer>(d: &Descriptor, s: S) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Subject<'a> {
        media_type: &'a str,
        digest: &'a Digest,
        size: u64,
    }
    Subject {
        media_type: &d.media_type,
        digest: &d.digest,
        size: d.size,
    }
    .serialize(s)
}

impl Attestation {
    /// A document about `subject`.
    pub fn new(
        subject: Descriptor,
        media_type: &str,
        platform: Option<String>,
        bytes: Vec<u8>,
    ) -> Attestation {
        Attestation {
            subject,
            artifact_type: media_type.to_string(),
            media_type: media_type.to_string(),
            platform,
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            file: None,
            referrer: None,
            bytes,
        }
    }

    /// Whether this is an SBOM (else the provenance).
    pub fn is_sbom(&self) -> bool {
        self.media_type != attest::IN_TOTO_MEDIA_TYPE
    }
}

/// One written platform image, as the SBOM sees it.
pub struct WrittenImage<'a> {
    /// The destination reference, as given.
    pub name: String,
    /// The written manifest.
    pub manifest: Descriptor,
    /// The written config's bytes.
    pub config: &'a [u8],
    /// The layers, bottom to top: where each blob is and what it is.
    pub layers: Vec<(&'a dyn Source, Descriptor, LayerRole)>,
    /// The base image.
    pub base: Option<BaseImage>,
}

/// The facts of one written platform image: its packages, release, base and layers.
pub fn image_facts(img: &WrittenImage, cache: &LayerSummaries) -> Result<ImageFacts> {
    let counter = AtomicU64::new(0);
    let summaries = img
        .layers
        .iter()
        .map(|(src, d, _)| cache.get(*src, d, &counter))
        .collect::<Result<Vec<_>>>()?;
    let stack = Stack::new(
        "result",
        img.layers
            .iter()
            .zip(summaries)
            .map(|((src, d, _), s)| (*src, d, s)),
    );
    let config = Config::parse(img.config).ok();
    let diff_ids = config
        .as_ref()
        .map(|c| c.diff_ids.clone())
        .unwrap_or_default();
    let created = config
        .as_ref()
        .and_then(|c| c.json.get("created")?.as_str().map(str::to_string));
    let platform = config
        .as_ref()
        .map(|c| c.platform.to_string())
        .unwrap_or_default();
    let layers = img
        .layers
        .iter()
        .enumerate()
        .map(|(i, (_, d, role))| Layer {
            digest: d.digest.clone(),
            diff_id: diff_ids.get(i).cloned(),
            media_type: d.media_type.clone(),
            size: d.size,
            role: *role,
        })
        .collect();
    let release = release::detect(&|p: &str| match stack.file(p, &counter) {
        Ok(Found::File(c)) => Some(c.content),
        _ => None,
    });
    let mut packages = image_packages(&img.name, &stack, &counter)?;
    attest::sort_packages(&mut packages);
    Ok(ImageFacts {
        name: img.name.clone(),
        manifest: img.manifest.clone(),
        platform,
        created,
        release,
        base: img.base.clone(),
        layers,
        packages,
    })
}

/// Lists the packages of one database file.
type ParseDb = fn(&[u8]) -> std::result::Result<Vec<Package>, PackageDbError>;

/// Every package of every database the stack holds.
fn image_packages(name: &str, stack: &Stack, counter: &AtomicU64) -> Result<Vec<Package>> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let error = |path: &str, layer: Option<usize>, source: PackageDbError| Error::Sbom {
        reference: name.to_string(),
        path: path.to_string(),
        layer: match layer {
            Some(l) => stack.layer(l),
            None => LayerName {
                image: "result",
                digest: None,
            },
        },
        source: Box::new(source),
    };
    // (path, parser) of every database; status.d files are added below.
    let mut dbs: Vec<(String, ParseDb)> = vec![
        (pkgdb::Format::DpkgStatus.path().to_string(), |b| {
            Ok(packages::dpkg(b)?)
        }),
        (pkgdb::Format::ApkInstalled.path().to_string(), |b| {
            Ok(packages::apk(b)?)
        }),
    ];
    for (path, kind) in RpmDbKind::PATHS {
        if kind == RpmDbKind::Sqlite {
            dbs.push((path.to_string(), |b| Ok(packages::rpm(b)?)));
        }
    }
    if let Lookup::Found { path: dir, .. } = resolve(stack.tree(), pkgdb::DPKG_STATUS_D, true) {
        let mut files: Vec<String> = stack
            .tree()
            .below(&dir)
            .filter(|e| {
                matches!(
                    e.kind,
                    EntryKind::File | EntryKind::HardLink | EntryKind::Symlink
                )
            })
            .filter_map(|e| {
                let rest = e.path.strip_prefix(&format!("{dir}/"))?;
                // distroless keeps each package's file list beside its stanza file.
                (!rest.is_empty() && !rest.contains('/') && !rest.ends_with(".md5sums"))
                    .then(|| e.path.clone())
            })
            .collect();
        files.sort();
        for f in files {
            dbs.push((f, |b| Ok(packages::dpkg(b)?)));
        }
    }
    for (path, parse) in dbs {
        match stack.file(&path, counter)? {
            Found::Absent => {}
            Found::Unusable(why) => {
                return Err(error(&path, None, PackageDbError::Unusable { why }))
            }
            Found::TooLarge {
                path: p,
                size,
                layer,
            } => {
                return Err(error(
                    &p,
                    Some(layer),
                    PackageDbError::TooLarge {
                        size,
                        limit: pkgdb::MAX_DB_SIZE,
                    },
                ))
            }
            Found::File(copy) => {
                // One file reached by two paths (var/lib/rpm → usr/lib/sysimage/rpm).
                if seen.contains(&copy.path) {
                    continue;
                }
                seen.push(copy.path.clone());
                out.extend(
                    parse(&copy.content).map_err(|e| error(&copy.path, Some(copy.layer), e))?,
                );
            }
        }
    }
    Ok(out)
}

/// The SBOM of one written platform image.
pub fn sbom(format: SbomFormat, facts: &ImageFacts, source_date_epoch: Option<i64>) -> Attestation {
    let doc = match format {
        SbomFormat::Spdx => spdx::document(facts, source_date_epoch),
        SbomFormat::Cyclonedx => cyclonedx::document(facts, source_date_epoch),
    };
    Attestation::new(
        facts.manifest.clone(),
        format.media_type(),
        Some(facts.platform.clone()),
        attest::to_canonical_json(&doc),
    )
}

/// The provenance of one written image (`root`: its manifest or index).
pub fn provenance(
    run: &provenance::Run,
    root: &Descriptor,
    source_date_epoch: Option<i64>,
) -> Attestation {
    Attestation::new(
        root.clone(),
        attest::IN_TOTO_MEDIA_TYPE,
        None,
        provenance::statement_bytes(run, source_date_epoch),
    )
}

/// `os/arch/variant` as a file-name part: `linux-arm64-v8`.
fn platform_slug(platform: &str) -> String {
    platform
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Where each document goes under `--sbom-file PATH` / `--provenance-file PATH`: `PATH` itself
/// when there is one document and it is not a fleet's (no position); otherwise `PATH` is a directory (created when missing) with one
/// file per document, `[N-]PLATFORM.spdx.json` / `[N-]PLATFORM.cdx.json` for SBOMs and
/// `[N-]provenance.intoto.json` for statements, `N` the image's position in a fleet (from 1;
/// absent for one image) and `PLATFORM` `os-arch[-variant]`.
pub fn document_paths(path: &Path, docs: &[(Option<usize>, &Attestation)]) -> Vec<PathBuf> {
    if let [(None, _)] = docs {
        return vec![path.to_path_buf()];
    }
    docs.iter()
        .map(|(n, a)| {
            let prefix = n.map(|n| format!("{n}-")).unwrap_or_default();
            let name = match &a.platform {
                Some(p) => {
                    let ext = if a.media_type == attest::SPDX_MEDIA_TYPE {
                        SbomFormat::Spdx.extension()
                    } else {
                        SbomFormat::Cyclonedx.extension()
                    };
                    format!("{prefix}{}.{ext}", platform_slug(p))
                }
                None => format!("{prefix}provenance.intoto.json"),
            };
            path.join(name)
        })
        .collect()
}

/// Writes each document to its path, atomically (a temp file next to it, renamed over it).
pub fn write_documents(docs: &[(PathBuf, &Attestation)]) -> Result<()> {
    use std::io::Write;
    for (path, doc) in docs {
        let dir = crate::transport::temp::parent_of(path);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let (mut f, tmp) =
            crate::transport::temp::file_next_to(path, "json").map_err(|e| Error::io(path, e))?;
        f.write_all(&doc.bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(tmp.path(), e))?;
        drop(f);
        tmp.persist(path).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(platform: Option<&str>, media_type: &str) -> Attestation {
        Attestation::new(
            Descriptor::of_bytes("application/vnd.oci.image.manifest.v1+json", b"m"),
            media_type,
            platform.map(str::to_string),
            b"{}\n".to_vec(),
        )
    }

    #[test]
    fn one_document_is_the_path_several_are_files_in_it() {
        let a = doc(Some("linux/amd64"), attest::SPDX_MEDIA_TYPE);
        let b = doc(Some("linux/arm64/v8"), attest::SPDX_MEDIA_TYPE);
        let p = doc(None, attest::IN_TOTO_MEDIA_TYPE);
        assert_eq!(
            document_paths(Path::new("x.json"), &[(None, &a)]),
            [PathBuf::from("x.json")]
        );
        assert_eq!(
            document_paths(Path::new("d"), &[(None, &a), (None, &b)]),
            [
                PathBuf::from("d/linux-amd64.spdx.json"),
                PathBuf::from("d/linux-arm64-v8.spdx.json")
            ]
        );
        assert_eq!(
            document_paths(Path::new("d"), &[(Some(1), &p)]),
            [PathBuf::from("d/1-provenance.intoto.json")],
            "a fleet's documents always go to a directory"
        );
        assert_eq!(
            document_paths(Path::new("d"), &[(Some(1), &p), (Some(2), &p)]),
            [
                PathBuf::from("d/1-provenance.intoto.json"),
                PathBuf::from("d/2-provenance.intoto.json")
            ]
        );
    }
}
