//! `ocipatch append`: one reproducible layer on top of an image (every platform of an index).
//!
//! The layer is built once into a private temporary layout (so it reaches the destination
//! through the same digest-checked copy as every other blob), then each image gets it appended
//! with its diff ID and a history entry.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use super::layers::scan_layers;
use super::load::{load, Image, Loaded};
use super::progress::Progress;
use super::write::{write_image, BlobCopy, BlobStats};
use crate::error::{Error, Result};
use crate::layer::{build_layer, BuildOptions, LayerCompression, LayerInput, Tree};
use crate::model::time::{format_rfc3339, parse_rfc3339};
use crate::model::{Descriptor, Digest, Reference};
use crate::plan::{self, AppendPlan, NewEntry, NewLayer};
use crate::transport::{open_sink, open_source, RegistryOptions, Source};

pub const CREATED_BY: &str = "ocipatch append";

pub struct AppendOptions {
    pub image: Reference,
    pub dest: Reference,
    /// A directory (its contents become the layer) or a tar file (plain, gzip or zstd).
    pub layer: PathBuf,
    /// Paths to delete from the image (whiteouts).
    pub deletes: Vec<String>,
    pub compression: LayerCompression,
    pub keep_owners: bool,
    pub allow_devices: bool,
    pub allow_escaping_symlinks: bool,
    /// `SOURCE_DATE_EPOCH`: clamps mtimes and becomes `created`. Unset: the image's `created`.
    pub source_date_epoch: Option<i64>,
    pub dry_run: bool,
    /// Credentials and TLS for registry references.
    pub registry: RegistryOptions,
}

#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
    /// The mtime clamp used (Unix seconds).
    pub mtime: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppendReport {
    pub image: String,
    pub destination: String,
    pub dry_run: bool,
    pub media_type: String,
    pub digest: Digest,
    pub layer: LayerReport,
    pub platforms: Vec<String>,
    pub blobs: BlobStats,
}

/// The first image's `created`, as Unix seconds (0 when it has none).
fn image_created(loaded: &Loaded) -> i64 {
    loaded
        .images()
        .first()
        .and_then(|i| {
            i.config
                .json
                .get("created")?
                .as_str()
                .and_then(parse_rfc3339)
        })
        .unwrap_or(0)
}

/// The image's file tree, for `--delete`: the paths must exist, and whiteout parents copy the
/// image's own directory headers.
fn lower_tree(src: &dyn Source, image: &Image) -> Result<Tree> {
    let mut tree = Tree::new();
    for layer in scan_layers(src, &image.manifest.layers)? {
        tree.apply(&layer);
    }
    Ok(tree)
}

pub fn append(opts: &AppendOptions, progress: &dyn Progress) -> Result<AppendReport> {
    let src = open_source(&opts.image, &opts.registry)?;
    let root = src.root()?;
    let loaded = load(src.as_ref(), &root)?;
    let images = loaded.images();
    if images.is_empty() {
        return Err(Error::Rebase(format!("{} has no images", opts.image)));
    }

    let meta = std::fs::metadata(&opts.layer).map_err(|e| Error::io(&opts.layer, e))?;
    let input = if meta.is_dir() {
        LayerInput::Dir(opts.layer.clone())
    } else {
        LayerInput::Tar(opts.layer.clone())
    };
    let mtime = opts
        .source_date_epoch
        .unwrap_or_else(|| image_created(&loaded));
    let lower = if opts.deletes.is_empty() {
        None
    } else {
        let tree = lower_tree(src.as_ref(), images[0])?;
        for d in &opts.deletes {
            let path = crate::layer::path::normalize(d)
                .map_err(|e| Error::Rebase(format!("--delete {d:?}: {e}")))?
                .ok_or_else(|| Error::Rebase(format!("--delete {d:?}: cannot delete the root")))?;
            if !tree.contains(&path) {
                return Err(Error::Rebase(format!(
                    "--delete {d:?}: no such path in {}",
                    opts.image
                )));
            }
        }
        Some(tree)
    };
    let build = BuildOptions {
        mtime,
        keep_owners: opts.keep_owners,
        deletes: opts.deletes.clone(),
        allow_devices: opts.allow_devices,
        allow_escaping_symlinks: opts.allow_escaping_symlinks,
        compression: opts.compression,
    };

    // Build into a private layout, so the blob is an ordinary source blob.
    let staging = tempfile::Builder::new()
        .prefix("ocipatch-append-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let blobs = staging.path().join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
    let tmp = blobs.join("building");
    let built = {
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        build_layer(&input, &build, lower.as_ref(), &mut f)
            .map_err(|e| Error::Rebase(format!("--layer {}: {e}", opts.layer.display())))?
    };
    std::fs::rename(&tmp, blobs.join(built.digest.hex())).map_err(|e| Error::io(&tmp, e))?;
    std::fs::write(
        staging.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .and_then(|_| {
        std::fs::write(
            staging.path().join("index.json"),
            br#"{"schemaVersion":2,"manifests":[]}"#,
        )
    })
    .map_err(|e| Error::io(staging.path(), e))?;
    let staged_ref = Reference::parse(&format!("oci:{}", staging.path().display()))?;
    let staged = open_source(&staged_ref, &opts.registry)?;

    let layer = NewLayer {
        digest: built.digest.clone(),
        diff_id: built.diff_id.clone(),
        size: built.size,
        zstd: opts.compression == LayerCompression::Zstd,
    };
    let created = format_rfc3339(mtime);
    let history = json!({ "created": created, "created_by": CREATED_BY });
    let set_created = opts.source_date_epoch.map(|_| created.as_str());
    let mut plans: Vec<Option<AppendPlan>> = Vec::new();
    let entries: Vec<Option<&Image>> = match &loaded {
        Loaded::Single(i) => vec![Some(i)],
        Loaded::Multi { entries, .. } => entries.iter().map(|e| e.image()).collect(),
    };
    for img in &entries {
        plans.push(
            img.map(|img| {
                plan::plan_append(img.parts(), &layer, history.clone(), set_created).map_err(|e| {
                    Error::Plan {
                        context: format!("cannot append to {} ({})", opts.image, img.platform()),
                        source: Box::new(e),
                    }
                })
            })
            .transpose()?,
        );
    }
    let index = match &loaded {
        Loaded::Single(_) => None,
        Loaded::Multi { index, .. } => {
            let new: Vec<Option<NewEntry>> = plans
                .iter()
                .zip(&entries)
                .map(|(p, img)| {
                    p.as_ref().map(|p| NewEntry {
                        manifest: &p.manifest_descriptor,
                        os_version: img.and_then(|i| i.platform().os_version.as_deref()),
                    })
                })
                .collect();
            Some(plan::rewrite_index(index, &new))
        }
    };
    let root_out: Descriptor = match &index {
        Some(ip) => ip.descriptor.clone(),
        None => plans[0]
            .as_ref()
            .expect("a single image has a plan")
            .manifest_descriptor
            .clone(),
    };
    let layer_media_type = plans
        .iter()
        .flatten()
        .next()
        .map(|p| p.layer.media_type.clone())
        .unwrap_or_default();

    let blob_stats = if opts.dry_run {
        BlobStats::default()
    } else {
        let sink = open_sink(&opts.dest, &opts.registry)?;
        let mut copies: Vec<BlobCopy> = Vec::new();
        for img in images.iter() {
            for l in &img.manifest.layers {
                copies.push(BlobCopy {
                    src: src.as_ref(),
                    descriptor: l,
                    verified: false,
                });
            }
        }
        for p in plans.iter().flatten() {
            copies.push(BlobCopy {
                src: staged.as_ref(),
                descriptor: &p.layer,
                verified: false,
            });
        }
        let mut json: Vec<(&Descriptor, &[u8])> = Vec::new();
        for p in plans.iter().flatten() {
            json.push((&p.config_descriptor, &p.config));
            json.push((&p.manifest_descriptor, &p.manifest));
        }
        if let Some(ip) = &index {
            json.push((&ip.descriptor, &ip.bytes));
        }
        write_image(sink.as_ref(), copies, &json, &root_out, None, progress)
            .inspect_err(|_| sink.abort())?
    };

    Ok(AppendReport {
        image: opts.image.to_string(),
        destination: opts.dest.to_string(),
        dry_run: opts.dry_run,
        media_type: root_out.media_type.clone(),
        digest: root_out.digest.clone(),
        layer: LayerReport {
            digest: built.digest,
            diff_id: built.diff_id,
            size: built.size,
            media_type: layer_media_type,
            mtime,
        },
        platforms: images.iter().map(|i| i.platform().to_string()).collect(),
        blobs: blob_stats,
    })
}
