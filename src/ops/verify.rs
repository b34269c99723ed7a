//! `ocipatch verify`: every blob an image is made of, checked; every failure reported.
//!
//! Manifests, indexes and configs are checked as they are read (digest and size). Layers are
//! checked by the engine in parallel, each read once: digest and size of the stored bytes,
//! and the diff ID of the decompressed tar against the config's `rootfs.diff_ids`. A layer
//! shared by several platforms is read once and checked against every config that lists it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::load::load_image;
use super::progress::{Counting, Progress};
use crate::engine::{self, Compression};
use crate::error::{Error, Result};
use crate::model::{media, Descriptor, Digest, Index, Reference};
use crate::transport::{open_source, read_json_blob, RegistryOptions, Source};

/// One thing wrong with the image.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Problem {
    /// `index`, `manifest`, `config` or `layer`.
    pub kind: &'static str,
    pub digest: Digest,
    /// The platform(s) whose image includes the blob (empty for the index).
    pub platforms: Vec<String>,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub image: String,
    pub digest: Digest,
    pub media_type: String,
    pub platforms: Vec<String>,
    pub manifests_checked: usize,
    pub configs_checked: usize,
    pub layers_checked: usize,
    /// Foreign layers whose blob is not stored (only referenced by URL): not checkable here.
    pub layers_foreign: usize,
    pub bytes_checked: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A layer to check, with what every image that uses it expects.
struct LayerJob {
    descriptor: Descriptor,
    /// (expected diff ID, platform) for each image listing this blob.
    expected: Vec<(Option<Digest>, String)>,
}

fn problem(
    kind: &'static str,
    digest: &Digest,
    platforms: Vec<String>,
    message: String,
) -> Problem {
    Problem {
        kind,
        digest: digest.clone(),
        platforms,
        message,
    }
}

/// The error text without the reference prefix (the report names the image once).
fn reason(e: &Error, reference: &Reference) -> String {
    let s = e.to_string();
    s.strip_prefix(&format!("{reference}: "))
        .unwrap_or(&s)
        .to_string()
}

pub fn verify(
    reference: &Reference,
    registry: &RegistryOptions,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let src = open_source(reference, registry)?;
    let root = src.root()?;
    let mut problems = Vec::new();
    let mut report = VerifyReport {
        image: reference.to_string(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        platforms: Vec::new(),
        manifests_checked: 0,
        configs_checked: 0,
        layers_checked: 0,
        layers_foreign: 0,
        bytes_checked: 0,
        problems: Vec::new(),
    };

    // 1. The graph: index → manifests → configs, each blob checked as it is read.
    let mut manifests: Vec<Descriptor> = Vec::new();
    if media::is_index(&root.media_type) {
        match read_json_blob(src.as_ref(), &root, "index")
            .and_then(|b| Index::parse(&b, Some(&root.media_type)).map_err(Error::Rebase))
        {
            Ok(index) => manifests.extend(
                index
                    .manifests
                    .iter()
                    .filter(|d| {
                        media::is_manifest(&d.media_type)
                            && !d.platform().is_some_and(|p| p.is_unknown())
                    })
                    .cloned(),
            ),
            Err(e) => problems.push(problem(
                "index",
                &root.digest,
                vec![],
                reason(&e, reference),
            )),
        }
    } else {
        manifests.push(root.clone());
    }
    let mut layers: BTreeMap<Digest, LayerJob> = BTreeMap::new();
    for desc in &manifests {
        let label = desc
            .platform()
            .map_or_else(|| "image".to_string(), |p| p.to_string());
        let image = match load_image(src.as_ref(), desc) {
            Ok(image) => image,
            Err(e) => {
                // Say which blob: the manifest, or the config it points at.
                let digest = match &e {
                    Error::InvalidBlob { digest, .. }
                    | Error::MissingBlob { digest, .. }
                    | Error::SizeMismatch { digest, .. } => digest.clone(),
                    Error::DigestMismatch { expected, .. } => expected.clone(),
                    _ => desc.digest.clone(),
                };
                let kind = if digest == desc.digest {
                    "manifest"
                } else {
                    "config"
                };
                problems.push(problem(kind, &digest, vec![label], reason(&e, reference)));
                continue;
            }
        };
        report.manifests_checked += 1;
        report.configs_checked += 1;
        let platform = image.platform().to_string();
        report.platforms.push(platform.clone());
        let (n_layers, n_ids) = (image.manifest.layers.len(), image.config.diff_ids.len());
        if n_layers != n_ids {
            problems.push(problem(
                "config",
                &image.manifest.config.digest,
                vec![platform.clone()],
                format!(
                    "the manifest lists {n_layers} layers but the config lists {n_ids} diff IDs"
                ),
            ));
        }
        for (i, layer) in image.manifest.layers.iter().enumerate() {
            let job = layers
                .entry(layer.digest.clone())
                .or_insert_with(|| LayerJob {
                    descriptor: layer.clone(),
                    expected: Vec::new(),
                });
            if job.descriptor.size != layer.size {
                problems.push(problem(
                    "layer",
                    &layer.digest,
                    vec![platform.clone()],
                    format!(
                        "listed with size {} here and {} elsewhere",
                        layer.size, job.descriptor.size
                    ),
                ));
            }
            job.expected
                .push((image.config.diff_ids.get(i).cloned(), platform.clone()));
        }
    }
    if manifests.is_empty() && problems.is_empty() {
        problems.push(problem(
            "index",
            &root.digest,
            vec![],
            "the index lists no image manifests".into(),
        ));
    }

    // 2. The layers: biggest first, so the two cores finish together.
    let jobs: Vec<LayerJob> = layers.into_values().collect();
    progress.start(jobs.iter().map(|j| j.descriptor.size).sum());
    let results: Vec<(Vec<Problem>, bool, u64)> = engine::map_biggest_first(
        &jobs,
        |job| job.descriptor.size,
        |job| check_layer(src.as_ref(), job, progress, reference),
    );
    progress.finish();
    for (mut p, foreign, bytes) in results {
        if foreign {
            report.layers_foreign += 1;
        } else {
            report.layers_checked += 1;
            report.bytes_checked += bytes;
        }
        problems.append(&mut p);
    }
    report.problems = problems;
    Ok(report)
}

/// Checks one layer blob; returns its problems, whether it was a foreign layer left unchecked,
/// and the bytes read.
fn check_layer(
    src: &dyn Source,
    job: &LayerJob,
    progress: &dyn Progress,
    reference: &Reference,
) -> (Vec<Problem>, bool, u64) {
    let d = &job.descriptor;
    let platforms: Vec<String> = job.expected.iter().map(|(_, p)| p.clone()).collect();
    let bad = |msg: String| problem("layer", &d.digest, platforms.clone(), msg);
    if media::is_foreign_layer(&d.media_type)
        && !d.urls().is_empty()
        && !src.has_blob(&d.digest).unwrap_or(false)
    {
        return (vec![], true, 0);
    }
    let compression = Compression::from_media_type(&d.media_type);
    let reader = match src.open_blob(&d.digest) {
        Ok(r) => r,
        Err(e) => return (vec![bad(reason(&e, reference))], false, 0),
    };
    let counted = Counting {
        inner: reader,
        progress,
    };
    let got = match engine::digest_stream(counted, compression, None) {
        Ok(got) => got,
        Err(e) => {
            return (
                vec![bad(format!("cannot be read as {}: {e}", d.media_type))],
                false,
                0,
            )
        }
    };
    let mut out = Vec::new();
    if got.digest != d.digest {
        out.push(bad(format!(
            "content has digest {} ({} bytes): the blob is corrupt",
            got.digest, got.size
        )));
    } else if got.size != d.size {
        out.push(bad(format!(
            "has {} bytes, its descriptor says {}",
            got.size, d.size
        )));
    }
    match (&got.diff_id, compression) {
        (_, None) => out.push(bad(format!(
            "unknown layer media type {}: diff ID not checked",
            d.media_type
        ))),
        (Some(found), Some(_)) => {
            for (expected, platform) in &job.expected {
                match expected {
                    Some(e) if e == found => {}
                    Some(e) => out.push(problem(
                        "layer",
                        &d.digest,
                        vec![platform.clone()],
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
