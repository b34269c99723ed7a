//! `ocipatch verify`: every blob an image is made of, checked; every failure reported.
//!
//! Every descriptor reachable from the root is checked: nested indexes (recursively), image
//! manifests of every platform, attestation and other artifact manifests and the blobs they
//! point at, and index entries of media types we do not know (as plain blobs). Manifests,
//! indexes and image configs are checked as they are read (digest and size). Other blobs are
//! checked by the engine in parallel, each read once: digest and size of the stored bytes, and
//! for image layers the diff ID of the decompressed tar against the config's
//! `rootfs.diff_ids`. A blob reached several times (a layer shared by platforms, an index
//! listed twice) is read once and checked against every place that lists it. Each problem
//! carries its path from the root, e.g. `index → manifests[2] (index) → manifests[0]
//! (linux/arm64) → layers[1]`.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::load::image_from;
use super::progress::{Counting, Progress};
use crate::engine::{self, Compression};
use crate::error::{Error, Result};
use crate::model::{media, Descriptor, Digest, Index, Manifest, Reference};
use crate::transport::{
    absent_foreign_layer, open_source, read_json_blob, RegistryOptions, Source,
};

/// Indexes nested deeper than this are reported, not followed (none of the tools we know
/// writes more than two levels).
const MAX_DEPTH: usize = 8;

/// One thing wrong with the image.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Problem {
    /// `index`, `manifest`, `config`, `layer` or `blob` (an entry of unknown media type, or
    /// the config of an artifact), or `referrer` (the referrers of a subject could not be
    /// listed).
    pub kind: &'static str,
    /// The blob's digest (as its descriptor has it).
    pub digest: Digest,
    /// The platform(s) whose image includes the blob (empty for the index).
    pub platforms: Vec<String>,
    /// Where the blob was reached from the root (the first path, when there are several).
    pub path: String,
    /// What is wrong, for humans (digest or size mismatch, missing blob, invalid JSON, ...).
    pub message: String,
    /// What is wrong, as a stable name: the [`Error::kind`] of the error that reading the
    /// blob met (`missing-blob`, `invalid-blob`, `registry-unauthorized`…), or what the check
    /// found (`digest-mismatch`, `size-mismatch`, `diff-id-mismatch`, `size-conflict`,
    /// `layer-count-mismatch`, `unknown-media-type`, `decompress`, `read-blob`, `no-images`,
    /// `too-deep`).
    pub error_kind: &'static str,
}

/// What [`verify()`] checked and found. Serialized for `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// The verified reference, as given.
    pub image: String,
    /// The root's digest: the manifest's, or the index's.
    pub digest: Digest,
    /// The root's media type.
    pub media_type: String,
    /// The platforms of the images found, as `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// Indexes read, the root included.
    pub indexes_checked: usize,
    /// Image and artifact (attestation, signature…) manifests read.
    pub manifests_checked: usize,
    /// Image configs read and checked against their manifests.
    pub configs_checked: usize,
    /// Layer blobs read and checked (digest, size and diff ID).
    pub layers_checked: usize,
    /// Blobs other than layers checked by digest only: artifact configs, unknown entries.
    pub other_blobs_checked: usize,
    /// Foreign layers whose blob is not stored (only referenced by URL): not checkable here.
    pub layers_foreign: usize,
    /// Bytes of layer and other blobs read to check them (stored, i.e. compressed, bytes).
    pub bytes_checked: u64,
    /// OCI 1.1 referrers of the image (of its index or a platform manifest) read and
    /// checked: the manifest against its listing, its blobs by digest and size.
    pub referrers_checked: usize,
    /// Everything wrong; empty means intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// No problem found.
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A blob to stream through the engine, with what every place that lists it expects.
struct BlobJob {
    descriptor: Descriptor,
    /// `layer`, `config` or `blob`.
    kind: &'static str,
    /// (expected diff ID, platform) for each image listing this blob as a layer. Empty: an
    /// artifact's blob, checked by digest and size only.
    expected: Vec<(Option<Digest>, String)>,
    /// The platforms (or artifact labels) of everything that lists it.
    platforms: Vec<String>,
    /// The first path it was reached by.
    path: String,
}

/// What a check found that is not an error of reading (see [`Problem::error_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    DigestMismatch,
    SizeMismatch,
    DiffIdMismatch,
    SizeConflict,
    LayerCountMismatch,
    UnknownMediaType,
    NoImages,
    TooDeep,
}

impl Found {
    fn kind(self) -> &'static str {
        match self {
            Found::DigestMismatch => "digest-mismatch",
            Found::SizeMismatch => "size-mismatch",
            Found::DiffIdMismatch => "diff-id-mismatch",
            Found::SizeConflict => "size-conflict",
            Found::LayerCountMismatch => "layer-count-mismatch",
            Found::UnknownMediaType => "unknown-media-type",
            Found::NoImages => "no-images",
            Found::TooDeep => "too-deep",
        }
    }
}

fn problem(
    kind: &'static str,
    digest: &Digest,
    platforms: Vec<String>,
    path: &str,
    found: Found,
    message: String,
) -> Problem {
    Problem {
        kind,
        digest: digest.clone(),
        platforms,
        path: path.to_string(),
        message,
        error_kind: found.kind(),
    }
}

/// A problem from the error reading the blob met: its kind, and its message without the
/// reference (the report names the image once).
fn error_problem(
    kind: &'static str,
    digest: &Digest,
    platforms: Vec<String>,
    path: &str,
    e: &Error,
) -> Problem {
    Problem {
        kind,
        digest: digest.clone(),
        platforms,
        path: path.to_string(),
        message: e.detail(),
        error_kind: e.kind(),
    }
}

/// How an index entry is named in a path: its platform, else what it is.
fn entry_label(d: &Descriptor) -> String {
    let is_attestation = d.annotation("vnd.docker.reference.type") == Some("attestation-manifest");
    match d.platform() {
        _ if is_attestation => "attestation".to_string(),
        Some(p) if !p.is_unknown() => p.to_string(),
        _ if media::is_index(&d.media_type) => "index".to_string(),
        Some(p) => p.to_string(),
        None if media::is_manifest(&d.media_type) => "manifest".to_string(),
        None => d.media_type.clone(),
    }
}

/// The walk over the graph: each index and manifest read once, blobs collected for the engine.
struct Walk<'a> {
    src: &'a dyn Source,
    seen: HashSet<Digest>,
    blobs: BTreeMap<Digest, BlobJob>,
    problems: Vec<Problem>,
    report: VerifyReport,
    /// Image manifests (not artifacts) read: an index without any is a problem.
    images: usize,
}

impl Walk<'_> {
    fn visit(&mut self, desc: &Descriptor, path: &str, label: &str, depth: usize) {
        if !self.seen.insert(desc.digest.clone()) {
            return;
        }
        if media::is_index(&desc.media_type) {
            self.visit_index(desc, path, depth);
        } else if media::is_manifest(&desc.media_type) {
            self.visit_manifest(desc, path, label);
        } else {
            self.add_blob(desc, "blob", None, label, path);
        }
    }

    /// The referrers of the root and of each entry of a root index: each referrer manifest
    /// is read and checked against the descriptor it is listed by, its blobs queued like an
    /// artifact's.
    fn visit_referrers(&mut self, root: &Descriptor) {
        let mut subjects = vec![root.digest.clone()];
        if media::is_index(&root.media_type) {
            if let Ok(index) = read_json_blob(self.src, root, "index")
                .ok()
                .map(|b| Index::parse(&b, Some(&root.media_type)))
                .transpose()
            {
                subjects.extend(
                    index
                        .into_iter()
                        .flat_map(|i| i.manifests)
                        .map(|d| d.digest),
                );
            }
        }
        for subject in subjects {
            let listed = match self.src.referrers(&subject, None) {
                Ok(listed) => listed,
                Err(e) => {
                    let path = format!("referrers of {subject}");
                    let p = error_problem("referrer", &subject, vec![], &path, &e);
                    self.problems.push(p);
                    continue;
                }
            };
            for r in listed {
                let label = r.artifact_type().unwrap_or("referrer").to_string();
                let path = format!("referrer {} of {subject}", r.digest);
                if self.seen.contains(&r.digest) {
                    continue;
                }
                self.report.referrers_checked += 1;
                self.visit(&r, &path, &label, 1);
            }
        }
    }

    fn visit_index(&mut self, desc: &Descriptor, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            let message = format!("indexes nested more than {MAX_DEPTH} deep: not followed");
            let p = problem("index", &desc.digest, vec![], path, Found::TooDeep, message);
            self.problems.push(p);
            return;
        }
        let index = read_json_blob(self.src, desc, "index").and_then(|b| {
            Index::parse(&b, Some(&desc.media_type)).map_err(|e| Error::InvalidBlob {
                reference: self.src.reference().to_string(),
                what: "index",
                digest: desc.digest.clone(),
                source: e.into(),
            })
        });
        let index = match index {
            Ok(index) => index,
            Err(e) => {
                let p = error_problem("index", &desc.digest, vec![], path, &e);
                self.problems.push(p);
                return;
            }
        };
        self.report.indexes_checked += 1;
        for (i, entry) in index.manifests.iter().enumerate() {
            let label = entry_label(entry);
            let child = format!("{path} → manifests[{i}] ({label})");
            self.visit(entry, &child, &label, depth + 1);
        }
    }

    fn visit_manifest(&mut self, desc: &Descriptor, path: &str, label: &str) {
        let artifact = |m: &Manifest| {
            !m.is_image()
                || desc.platform().is_some_and(|p| p.is_unknown())
                || label == "attestation"
        };
        // Read (and check) it once, to tell an image from an artifact.
        let manifest = read_json_blob(self.src, desc, "manifest").and_then(|b| {
            Manifest::parse(&b, Some(&desc.media_type)).map_err(|e| Error::InvalidBlob {
                reference: self.src.reference().to_string(),
                what: "manifest",
                digest: desc.digest.clone(),
                source: e.into(),
            })
        });
        let manifest = match manifest {
            Ok(m) => m,
            Err(e) => {
                let p = error_problem("manifest", &desc.digest, vec![label.into()], path, &e);
                self.problems.push(p);
                return;
            }
        };
        if artifact(&manifest) {
            // An attestation, signature or other artifact: its blobs are not image layers.
            self.report.manifests_checked += 1;
            self.add_blob(
                &manifest.config,
                "config",
                None,
                label,
                &format!("{path} → config"),
            );
            for (i, layer) in manifest.layers.iter().enumerate() {
                self.add_blob(
                    layer,
                    "layer",
                    None,
                    label,
                    &format!("{path} → layers[{i}]"),
                );
            }
            return;
        }
        let config_digest = manifest.config.digest.clone();
        let image = match image_from(self.src, desc, manifest) {
            Ok(image) => image,
            Err(e) => {
                // The manifest was fine: the config is at fault.
                let digest = match e.unshared() {
                    Error::InvalidBlob { digest, .. }
                    | Error::MissingBlob { digest, .. }
                    | Error::SizeMismatch { digest, .. } => digest.clone(),
                    Error::DigestMismatch { expected, .. } => expected.clone(),
                    _ => config_digest,
                };
                let kind = if digest == desc.digest {
                    "manifest"
                } else {
                    "config"
                };
                let at = if kind == "config" {
                    format!("{path} → config")
                } else {
                    path.to_string()
                };
                let p = error_problem(kind, &digest, vec![label.into()], &at, &e);
                self.problems.push(p);
                return;
            }
        };
        self.images += 1;
        self.report.manifests_checked += 1;
        self.report.configs_checked += 1;
        let platform = image.platform().to_string();
        self.report.platforms.push(platform.clone());
        let (n_layers, n_ids) = (image.manifest.layers.len(), image.config.diff_ids.len());
        if n_layers != n_ids {
            self.problems.push(problem(
                "config",
                &image.manifest.config.digest,
                vec![platform.clone()],
                &format!("{path} → config"),
                Found::LayerCountMismatch,
                format!(
                    "the manifest lists {n_layers} layers but the config lists {n_ids} diff IDs"
                ),
            ));
        }
        for (i, layer) in image.manifest.layers.iter().enumerate() {
            let diff_id = image.config.diff_ids.get(i).cloned();
            let at = format!("{path} → layers[{i}]");
            self.add_blob(layer, "layer", Some(diff_id), &platform, &at);
        }
    }

    /// Queues a blob for the engine; `diff_id`: `Some` for an image layer (what its config
    /// expects), `None` for a blob checked by digest only.
    fn add_blob(
        &mut self,
        desc: &Descriptor,
        kind: &'static str,
        diff_id: Option<Option<Digest>>,
        label: &str,
        path: &str,
    ) {
        let job = self
            .blobs
            .entry(desc.digest.clone())
            .or_insert_with(|| BlobJob {
                descriptor: desc.clone(),
                kind,
                expected: Vec::new(),
                platforms: Vec::new(),
                path: path.to_string(),
            });
        if job.descriptor.size != desc.size {
            self.problems.push(problem(
                kind,
                &desc.digest,
                vec![label.to_string()],
                path,
                Found::SizeConflict,
                format!(
                    "listed with size {} here and {} at {}",
                    desc.size, job.descriptor.size, job.path
                ),
            ));
        }
        if let Some(diff_id) = diff_id {
            // An image layer: checked as one, whoever else lists the blob.
            job.kind = "layer";
            job.descriptor.media_type = desc.media_type.clone();
            job.expected.push((diff_id, label.to_string()));
        }
        if !job.platforms.iter().any(|p| p == label) {
            job.platforms.push(label.to_string());
        }
    }
}

/// Checks every blob of an image: each index, manifest and config against its descriptor,
/// each layer's digest and diff ID (in parallel, biggest first). Every problem is collected
/// in [`VerifyReport::problems`]; an `Err` means the image could not be read at all.
///
/// ```
/// use ocipatch::{model::Reference, ops};
///
/// let image = Reference::parse("oci:testdata/images:app")?;
/// let report = ops::verify(&image, &Default::default(), &ops::Silent)?;
/// assert!(report.problems.is_empty());
/// assert_eq!(report.layers_checked, 3);
/// # Ok::<(), ocipatch::Error>(())
/// ```
pub fn verify(
    reference: &Reference,
    registry: &RegistryOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let src = open_source(reference, registry)?;
    let root = src.root()?;
    let report = VerifyReport {
        image: reference.to_string(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        platforms: Vec::new(),
        indexes_checked: 0,
        manifests_checked: 0,
        configs_checked: 0,
        layers_checked: 0,
        other_blobs_checked: 0,
        layers_foreign: 0,
        bytes_checked: 0,
        referrers_checked: 0,
        problems: Vec::new(),
    };
    let mut walk = Walk {
        src: src.as_ref(),
        seen: HashSet::new(),
        blobs: BTreeMap::new(),
        problems: Vec::new(),
        report,
        images: 0,
    };

    // 1. The graph, each index, manifest and image config checked as it is read.
    let root_label = if media::is_index(&root.media_type) {
        "index"
    } else {
        "manifest"
    };
    walk.visit(&root, root_label, "image", 0);
    walk.visit_referrers(&root);
    if walk.images == 0 && walk.problems.is_empty() {
        walk.problems.push(problem(
            "index",
            &root.digest,
            vec![],
            root_label,
            Found::NoImages,
            "the index lists no image manifests".into(),
        ));
    }
    let Walk {
        blobs,
        mut problems,
        mut report,
        ..
    } = walk;

    // 2. The other blobs: biggest first, so the two cores finish together.
    let jobs: Vec<BlobJob> = blobs.into_values().collect();
    progress.start(jobs.iter().map(|j| j.descriptor.size).sum());
    let results: Vec<(Vec<Problem>, bool, u64)> = engine::map_biggest_first(
        &jobs,
        |job| job.descriptor.size,
        |job| check_blob(src.as_ref(), job, progress),
    );
    progress.finish();
    for (job, (mut p, foreign, bytes)) in jobs.iter().zip(results) {
        if foreign {
            report.layers_foreign += 1;
        } else {
            if job.kind == "layer" {
                report.layers_checked += 1;
            } else {
                report.other_blobs_checked += 1;
            }
            report.bytes_checked += bytes;
        }
        problems.append(&mut p);
    }
    report.problems = problems;
    Ok(report)
}

/// Checks one blob; returns its problems, whether it was a foreign layer left unchecked, and
/// the bytes read.
fn check_blob(
    src: &dyn Source,
    job: &BlobJob,
    progress: &dyn Progress,
) -> (Vec<Problem>, bool, u64) {
    let d = &job.descriptor;
    let bad = |found: Found, msg: String| {
        problem(
            job.kind,
            &d.digest,
            job.platforms.clone(),
            &job.path,
            found,
            msg,
        )
    };
    if !d.urls().is_empty() && absent_foreign_layer(src, d).unwrap_or(true) {
        return (vec![], true, 0);
    }
    // An artifact's blob (an in-toto statement, a signature) is checked by its digest only:
    // there is no diff ID to compare, so nothing to decompress.
    let image_layer = !job.expected.is_empty();
    let compression = if image_layer {
        Compression::from_media_type(&d.media_type)
    } else {
        None
    };
    let reader = match src.open_blob(&d.digest) {
        Ok(r) => r,
        Err(e) => {
            let p = error_problem(job.kind, &d.digest, job.platforms.clone(), &job.path, &e);
            return (vec![p], false, 0);
        }
    };
    let counted = Counting {
        inner: reader,
        progress,
    };
    let got = match engine::digest_stream(counted, compression, None) {
        Ok(got) => got,
        Err(e) => {
            let message = format!("cannot be read as {}: {e}", d.media_type);
            // The engine's error, typed, names it (`read-blob`, `decompress`).
            let e = Error::Blob {
                reference: src.reference().to_string(),
                digest: d.digest.clone(),
                source: e,
            };
            let mut p = error_problem(job.kind, &d.digest, job.platforms.clone(), &job.path, &e);
            p.message = message;
            return (vec![p], false, 0);
        }
    };
    let mut out = Vec::new();
    if got.digest != d.digest {
        out.push(bad(
            Found::DigestMismatch,
            format!(
                "content has digest {} ({} bytes): the blob is corrupt",
                got.digest, got.size
            ),
        ));
    } else if got.size != d.size {
        out.push(bad(
            Found::SizeMismatch,
            format!("has {} bytes, its descriptor says {}", got.size, d.size),
        ));
    }
    match (&got.diff_id, compression) {
        (_, None) if !image_layer => {}
        (_, None) => out.push(bad(
            Found::UnknownMediaType,
            format!(
                "unknown layer media type {}: diff ID not checked",
                d.media_type
            ),
        )),
        (Some(found), Some(_)) => {
            for (expected, platform) in &job.expected {
                match expected {
                    Some(e) if e == found => {}
                    Some(e) => out.push(problem(
                        "layer",
                        &d.digest,
                        vec![platform.clone()],
                        &job.path,
                        Found::DiffIdMismatch,
                        format!(
                        "diff ID mismatch: the config says {e}, the uncompressed content is {found}"
                    ),
                    )),
                    None => {}
                }
            }
        }
        (None, Some(_)) => {}
    }
    (out, false, got.size)
}
