//! `ocipatch append`: one reproducible layer on top of an image (every platform of an index).
//!
//! The layer is built once into a private temporary layout (so it reaches the destination
//! through the same digest-checked copy as every other blob), then each image gets it appended
//! with its diff ID and a history entry.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use super::attest::{self as attest_ops, AttestOptions, Attestation, WrittenImage};
use super::layers::scan_layers;
use super::load::{load, Image, Loaded};
use super::progress::Progress;
use super::write::{write_image, BlobCopy, BlobStats};
use crate::error::{Error, LayerContext, PlanContext, Result, UsageError};
use crate::layer::{build_layer, BuildOptions, LayerCompression, LayerInput, Tree};
use crate::model::time::{format_rfc3339, parse_rfc3339};
use crate::model::{Descriptor, Digest, Reference};
use crate::plan::{self, AppendPlan, NewEntry, NewLayer};
use crate::transport::{open_sink_with, open_source, RegistryOptions, Source, WriteOptions};

/// The `created_by` of the history entry an appended layer gets.
pub const CREATED_BY: &str = "ocipatch append";

/// What [`append()`] does: which image, which layer, where to write the result.
pub struct AppendOptions {
    /// The image to append to.
    pub image: Reference,
    /// Where to write the result; may equal `image`.
    pub dest: Reference,
    /// A directory (its contents become the layer) or a tar file (plain, gzip or zstd).
    pub layer: PathBuf,
    /// Paths to delete from the image (whiteouts).
    pub deletes: Vec<String>,
    /// How the new layer is compressed.
    pub compression: LayerCompression,
    /// Keep uid/gid/names and exact mode bits instead of normalising them to root and canonical modes.
    pub keep_owners: bool,
    /// Allow fifos and character/block devices (sockets are always refused).
    pub allow_devices: bool,
    /// Allow relative symlinks whose target climbs out of the root with `..`.
    pub allow_escaping_symlinks: bool,
    /// `SOURCE_DATE_EPOCH`: clamps mtimes and becomes `created`. Unset: the image's `created`.
    pub source_date_epoch: Option<i64>,
    /// Build the layer and plan, write nothing.
    pub dry_run: bool,
    /// Credentials and TLS for registry references.
    pub registry: RegistryOptions,
    /// How the destination writes blobs (`--copy`).
    pub write: WriteOptions,
    /// The documents to make about the written image (`--sbom`, `--provenance`).
    pub attest: AttestOptions,
}

/// The layer that was built (the same blob for every platform).
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// The compressed blob's digest.
    pub digest: Digest,
    /// The digest of the uncompressed tar (the config's new diff ID).
    pub diff_id: Digest,
    /// The compressed blob's size in bytes.
    pub size: u64,
    /// The layer's media type, in the image's OCI or Docker family.
    pub media_type: String,
    /// The mtime clamp used (Unix seconds).
    pub mtime: i64,
}

/// What [`append()`] did (or, with `dry_run`, would do). Serialized for `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct AppendReport {
    /// The source reference, as given.
    pub image: String,
    /// The destination reference, as given.
    pub destination: String,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// The media type of the written root (a manifest or an index).
    pub media_type: String,
    /// The written (or planned) root digest.
    pub digest: Digest,
    /// The new layer.
    pub layer: LayerReport,
    /// The platforms the layer was appended to, as `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// How many blobs were copied, linked or already present, and their bytes.
    pub blobs: BlobStats,
    /// The SBOM of every written platform image and the provenance of the image, when asked
    /// for (`AppendOptions::attest`); made once the image is written (with `dry_run`, of the
    /// planned image).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<Attestation>,
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

/// Builds one reproducible layer from `opts.layer` (a directory or a tar) and appends it to
/// every platform of `opts.image`, writing the result to `opts.dest`.
///
/// ```
/// use ocipatch::{layer::LayerCompression, model::Reference, ops};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tmp = tempfile::tempdir()?;
/// std::fs::create_dir_all(tmp.path().join("patch/etc"))?;
/// std::fs::write(tmp.path().join("patch/etc/motd"), "patched\n")?;
/// let opts = ops::AppendOptions {
///     image: Reference::parse("oci:testdata/images:app")?,
///     dest: Reference::parse(&format!("oci:{}:app", tmp.path().join("out").display()))?,
///     layer: tmp.path().join("patch"),
///     deletes: vec![],
///     compression: LayerCompression::Gzip,
///     keep_owners: false,
///     allow_devices: false,
///     allow_escaping_symlinks: false,
///     source_date_epoch: Some(1_700_000_000),
///     dry_run: false,
///     registry: Default::default(),
///     write: Default::default(),
///     attest: Default::default(),
/// };
/// let report = ops::append(&opts, &ops::Silent)?;
/// assert_eq!(report.platforms, ["linux/amd64"]);
/// # Ok(())
/// # }
/// ```
pub fn append(opts: &AppendOptions, progress: &dyn Progress) -> Result<AppendReport> {
    append_as(opts, None, progress)
}

/// [`append()`], the image named `shown` in the documents when it is not `opts.image`
/// (`scratch`: a private temporary layout).
fn append_as(
    opts: &AppendOptions,
    shown: Option<&str>,
    progress: &dyn Progress,
) -> Result<AppendReport> {
    if !opts.dry_run {
        opts.attest.check_destination(&opts.dest)?;
    }
    let src = open_source(&opts.image, &opts.registry)?;
    let root = src.root()?;
    let loaded = load(src.as_ref(), &root)?;
    let images = loaded.images();
    let Some(first) = images.first() else {
        return Err(Error::NoImages {
            image: opts.image.to_string(),
            wanted: "images",
        });
    };
    let mtime = opts
        .source_date_epoch
        .unwrap_or_else(|| image_created(&loaded));
    let lower = checked_deletes(opts, src.as_ref(), first)?;
    let staged = StagedLayer::build(opts, mtime, lower.as_ref())?;
    let built = &staged.built;

    let layer = NewLayer {
        digest: built.digest.clone(),
        diff_id: built.diff_id.clone(),
        size: built.size,
        zstd: opts.compression == LayerCompression::Zstd,
    };
    let planned = plan_entries(opts, &loaded, &layer, mtime)?;
    let layer_media_type = planned
        .plans
        .iter()
        .flatten()
        .next()
        .map(|p| p.layer.media_type.clone())
        .unwrap_or_default();

    let blob_stats = if opts.dry_run {
        BlobStats::default()
    } else {
        write_appended(
            opts,
            &images,
            src.as_ref(),
            staged.source.as_ref(),
            &planned,
            progress,
        )?
    };

    let attestations = if opts.attest.any() {
        let input = AppendAttest {
            opts,
            shown,
            loaded: &loaded,
            src: src.as_ref(),
            staged: staged.source.as_ref(),
            planned: &planned,
            layer: &built.digest,
        };
        let mut docs = input.documents()?;
        if !opts.dry_run {
            opts.attest.attach(&opts.dest, &opts.registry, &mut docs)?;
        }
        docs
    } else {
        Vec::new()
    };
    Ok(AppendReport {
        image: opts.image.to_string(),
        destination: opts.dest.to_string(),
        dry_run: opts.dry_run,
        media_type: planned.root.media_type.clone(),
        digest: planned.root.digest.clone(),
        layer: LayerReport {
            digest: built.digest.clone(),
            diff_id: built.diff_id.clone(),
            size: built.size,
            media_type: layer_media_type,
            mtime,
        },
        platforms: images.iter().map(|i| i.platform().to_string()).collect(),
        blobs: blob_stats,
        attestations,
    })
}

/// What the documents of an append are made from.
struct AppendAttest<'a> {
    opts: &'a AppendOptions,
    shown: Option<&'a str>,
    loaded: &'a Loaded,
    src: &'a dyn Source,
    staged: &'a dyn Source,
    planned: &'a PlannedAppend,
    layer: &'a Digest,
}

impl AppendAttest<'_> {
    /// One SBOM per written platform (the image's layers and the new one), then the
    /// provenance.
    fn documents(&self) -> Result<Vec<Attestation>> {
        use crate::attest::LayerRole;
        let opts = self.opts;
        let sde = opts.attest.source_date_epoch;
        let entries: Vec<Option<&Image>> = match self.loaded {
            Loaded::Single(i) => vec![Some(i)],
            Loaded::Multi { entries, .. } => entries.iter().map(|e| e.image()).collect(),
        };
        let mut out = Vec::new();
        if let Some(format) = opts.attest.sbom {
            let cache = super::summaries::LayerSummaries::new(None);
            for (img, p) in entries.iter().zip(&self.planned.plans) {
                let (Some(img), Some(p)) = (img, p) else {
                    continue;
                };
                let mut layers: Vec<(&dyn Source, Descriptor, LayerRole)> = img
                    .manifest
                    .layers
                    .iter()
                    .map(|l| (self.src, l.clone(), LayerRole::Image))
                    .collect();
                layers.push((self.staged, p.layer.clone(), LayerRole::Appended));
                let annotations = img.manifest.annotations();
                let base = match (
                    annotations.get(crate::plan::rebase::ANNOTATION_BASE_NAME),
                    annotations
                        .get(crate::plan::rebase::ANNOTATION_BASE_DIGEST)
                        .and_then(|d| d.parse::<Digest>().ok()),
                ) {
                    (Some(name), Some(digest)) => Some(crate::attest::BaseImage {
                        name: name.clone(),
                        digest,
                    }),
                    _ => None,
                };
                let written = WrittenImage {
                    name: opts.dest.to_string(),
                    manifest: p.manifest_descriptor.clone(),
                    config: &p.config,
                    layers,
                    base,
                };
                let facts = attest_ops::image_facts(&written, &cache)?;
                out.push(attest_ops::sbom(format, &facts, sde));
            }
        }
        if opts.attest.provenance {
            use crate::attest::provenance::{Dependency, Run, Subject, APPEND_BUILD_TYPE};
            let name = opts.dest.to_string();
            let image = self
                .shown
                .map_or_else(|| opts.image.to_string(), str::to_string);
            let mut subjects: Vec<Subject> = self
                .planned
                .plans
                .iter()
                .flatten()
                .map(|p| Subject {
                    name: name.clone(),
                    digest: p.manifest_descriptor.digest.clone(),
                })
                .collect();
            if let Some(ip) = &self.planned.index {
                subjects.push(Subject {
                    name: name.clone(),
                    digest: ip.descriptor.digest.clone(),
                });
            }
            let layer_path = opts.layer.display().to_string();
            let dependencies = vec![
                Dependency {
                    name: "image".into(),
                    uri: Some(image.clone()),
                    digest: self.loaded.descriptor().digest.clone(),
                },
                Dependency {
                    name: "layer".into(),
                    uri: Some(layer_path.clone()),
                    digest: self.layer.clone(),
                },
            ];
            let mut params = serde_json::Map::new();
            params.insert("operation".into(), "append".into());
            params.insert("image".into(), image.into());
            params.insert("layer".into(), layer_path.into());
            params.insert("destination".into(), name.into());
            params.insert("delete".into(), json!(opts.deletes));
            params.insert(
                "compression".into(),
                match opts.compression {
                    LayerCompression::Zstd => "zstd",
                    _ => "gzip",
                }
                .into(),
            );
            params.insert("keep_owners".into(), opts.keep_owners.into());
            params.insert("allow_devices".into(), opts.allow_devices.into());
            params.insert(
                "allow_escaping_symlinks".into(),
                opts.allow_escaping_symlinks.into(),
            );
            if let Some(t) = opts.source_date_epoch {
                params.insert("source_date_epoch".into(), t.into());
            }
            let statement = Run {
                build_type: APPEND_BUILD_TYPE,
                subjects,
                external_parameters: params,
                dependencies,
            };
            out.push(attest_ops::provenance(&statement, &self.planned.root, sde));
        }
        Ok(out)
    }
}

/// `--delete` paths, checked against the image's file tree; the tree is returned for the
/// builder (whiteout parents copy the image's own directory headers).
fn checked_deletes(opts: &AppendOptions, src: &dyn Source, image: &Image) -> Result<Option<Tree>> {
    if opts.deletes.is_empty() {
        return Ok(None);
    }
    let tree = lower_tree(src, image)?;
    for d in &opts.deletes {
        let path = crate::layer::path::normalize(d)
            .map_err(|source| UsageError::DeletePath {
                path: d.clone(),
                source: Box::new(source),
            })?
            .ok_or_else(|| UsageError::DeleteRoot { path: d.clone() })?;
        if !tree.contains(&path) {
            return Err(UsageError::DeleteMissing {
                path: d.clone(),
                image: opts.image.to_string(),
            }
            .into());
        }
    }
    Ok(Some(tree))
}

/// The new layer, built once into a private temporary layout, so it reaches the destination
/// through the same digest-checked copy as every other blob. Removed when dropped, and by the
/// clean-up of an interrupted run.
struct StagedLayer {
    built: crate::layer::BuiltLayer,
    source: Box<dyn Source>,
    _dir: tempfile::TempDir,
    _interrupted: crate::cleanup::Registration,
}

impl StagedLayer {
    fn build(opts: &AppendOptions, mtime: i64, lower: Option<&Tree>) -> Result<StagedLayer> {
        let meta = std::fs::metadata(&opts.layer).map_err(|e| Error::io(&opts.layer, e))?;
        let input = if meta.is_dir() {
            LayerInput::Dir(opts.layer.clone())
        } else {
            LayerInput::Tar(opts.layer.clone())
        };
        let build = BuildOptions {
            mtime,
            keep_owners: opts.keep_owners,
            deletes: opts.deletes.clone(),
            allow_devices: opts.allow_devices,
            allow_escaping_symlinks: opts.allow_escaping_symlinks,
            compression: opts.compression,
        };
        let (dir, interrupted) = private_tempdir("ocipatch-append-")?;
        let blobs = dir.path().join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        // A private directory (tempdir: 0700, random name): a fixed name inside is safe.
        let tmp = blobs.join("building");
        let built = {
            let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            build_layer(&input, &build, lower, &mut f).map_err(|source| Error::Layer {
                reference: opts.image.to_string(),
                digest: None,
                context: LayerContext::Input(opts.layer.clone()),
                source: Box::new(source),
            })?
        };
        std::fs::rename(&tmp, blobs.join(built.digest.hex())).map_err(|e| Error::io(&tmp, e))?;
        std::fs::write(
            dir.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .and_then(|_| {
            std::fs::write(
                dir.path().join("index.json"),
                br#"{"schemaVersion":2,"manifests":[]}"#,
            )
        })
        .map_err(|e| Error::io(dir.path(), e))?;
        let staged_ref = Reference::parse(&format!("oci:{}", dir.path().display()))?;
        let source = open_source(&staged_ref, &opts.registry)?;
        Ok(StagedLayer {
            built,
            source,
            _dir: dir,
            _interrupted: interrupted,
        })
    }
}

/// A private temporary directory (0700, random name) under `$TMPDIR`, removed when dropped and
/// by the clean-up of an interrupted run.
fn private_tempdir(prefix: &str) -> Result<(tempfile::TempDir, crate::cleanup::Registration)> {
    crate::cleanup::create(
        || tempfile::Builder::new().prefix(prefix).tempdir(),
        |d| {
            let path = d.path().to_path_buf();
            Box::new(move || {
                let _ = std::fs::remove_dir_all(path);
            })
        },
    )
    .map_err(|e| Error::io(std::env::temp_dir(), e))
}

/// The append planned for every image of the source (entries that are not images: `None`),
/// the rewritten index if there is one, and the root descriptor to tag.
struct PlannedAppend {
    plans: Vec<Option<AppendPlan>>,
    index: Option<plan::IndexPlan>,
    root: Descriptor,
}

fn plan_entries(
    opts: &AppendOptions,
    loaded: &Loaded,
    layer: &NewLayer,
    mtime: i64,
) -> Result<PlannedAppend> {
    let created = format_rfc3339(mtime);
    let history = json!({ "created": created, "created_by": CREATED_BY });
    let set_created = opts.source_date_epoch.map(|_| created.as_str());
    let entries: Vec<Option<&Image>> = match loaded {
        Loaded::Single(i) => vec![Some(i)],
        Loaded::Multi { entries, .. } => entries.iter().map(|e| e.image()).collect(),
    };
    let plans = entries
        .iter()
        .map(|img| {
            img.map(|img| {
                plan::plan_append(img.parts(), layer, history.clone(), set_created).map_err(|e| {
                    Error::Plan {
                        context: PlanContext::Append {
                            image: opts.image.to_string(),
                            platform: img.platform().to_string(),
                        },
                        source: Box::new(e),
                    }
                })
            })
            .transpose()
        })
        .collect::<Result<Vec<_>>>()?;
    let index = match loaded {
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
    let root = match (&index, plans.first()) {
        (Some(ip), _) => ip.descriptor.clone(),
        (None, Some(Some(p))) => p.manifest_descriptor.clone(),
        (None, _) => {
            return Err(Error::NoImages {
                image: opts.image.to_string(),
                wanted: "image to append to",
            })
        }
    };
    Ok(PlannedAppend { plans, index, root })
}

/// Copies the image's layers and the new one, writes the new JSON blobs, commits.
fn write_appended(
    opts: &AppendOptions,
    images: &[&Image],
    src: &dyn Source,
    staged: &dyn Source,
    planned: &PlannedAppend,
    progress: &dyn Progress,
) -> Result<BlobStats> {
    let sink = open_sink_with(&opts.dest, &opts.registry, opts.write)?;
    let mut copies: Vec<BlobCopy> = Vec::new();
    for img in images {
        for l in &img.manifest.layers {
            copies.push(BlobCopy {
                src,
                descriptor: l,
                verified: false,
            });
        }
    }
    for p in planned.plans.iter().flatten() {
        copies.push(BlobCopy {
            src: staged,
            descriptor: &p.layer,
            verified: false,
        });
    }
    let mut json: Vec<(&Descriptor, &[u8])> = Vec::new();
    for p in planned.plans.iter().flatten() {
        json.push((&p.config_descriptor, &p.config));
        json.push((&p.manifest_descriptor, &p.manifest));
    }
    if let Some(ip) = &planned.index {
        json.push((&ip.descriptor, &ip.bytes));
    }
    write_image(sink.as_ref(), copies, &json, &planned.root, None, progress)
        .inspect_err(|_| sink.abort())
}

/// The name `append` accepts instead of an image: start from an empty image, as a
/// Dockerfile's `FROM scratch` does.
pub const SCRATCH: &str = "scratch";

/// Appends the layer to an empty image of `platform` (`os/arch[/variant]`, e.g.
/// `linux/amd64`): the way to make an image from nothing but files, such as one holding a
/// single static binary. `opts.image` is not read; the report's `image` is `scratch`.
///
/// The empty image (a config with no layers and no history, and its manifest) is written to
/// a private temporary layout and appended to like any other image, so the result is as
/// reproducible as any append: its `created` and the layer's mtimes are `SOURCE_DATE_EPOCH`,
/// or the Unix epoch when that is unset.
pub fn append_scratch(
    platform: &str,
    opts: &AppendOptions,
    progress: &dyn Progress,
) -> Result<AppendReport> {
    let (os, architecture, variant) = parse_platform(platform)?;
    let (dir, _interrupted) = private_tempdir("ocipatch-scratch-")?;
    let mut config = json!({ "architecture": architecture, "os": os });
    if let Some(v) = variant {
        config["variant"] = json!(v);
    }
    config["config"] = json!({});
    config["rootfs"] = json!({ "type": "layers", "diff_ids": [] });
    // An empty history, so the appended layer gets its `ocipatch append` entry.
    config["history"] = json!([]);
    let config = serde_json::to_vec(&config).expect("a JSON value serializes");
    let config_digest = Digest::of(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": crate::model::media::OCI_MANIFEST,
        "config": {
            "mediaType": crate::model::media::OCI_CONFIG,
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": [],
    }))
    .expect("a JSON value serializes");
    let manifest_digest = Digest::of(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": crate::model::media::OCI_MANIFEST,
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
        }],
    }))
    .expect("a JSON value serializes");
    let blobs = dir.path().join("blobs").join("sha256");
    let write =
        |path: PathBuf, bytes: &[u8]| std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e));
    std::fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
    write(blobs.join(config_digest.hex()), &config)?;
    write(blobs.join(manifest_digest.hex()), &manifest)?;
    write(dir.path().join("index.json"), &index)?;
    write(
        dir.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let image = Reference::parse(&format!("oci:{}", dir.path().display()))?;
    let opts = AppendOptions {
        image,
        dest: opts.dest.clone(),
        layer: opts.layer.clone(),
        deletes: opts.deletes.clone(),
        compression: opts.compression,
        keep_owners: opts.keep_owners,
        allow_devices: opts.allow_devices,
        allow_escaping_symlinks: opts.allow_escaping_symlinks,
        // An empty image has no `created` to fall back on: the epoch, never the clock.
        source_date_epoch: Some(opts.source_date_epoch.unwrap_or(0)),
        dry_run: opts.dry_run,
        registry: opts.registry.clone(),
        write: opts.write,
        attest: opts.attest,
    };
    let mut report = append_as(&opts, Some(SCRATCH), progress)?;
    report.image = SCRATCH.to_string();
    Ok(report)
}

/// `os/arch[/variant]`, as `--platform` takes it.
fn parse_platform(s: &str) -> Result<(&str, &str, Option<&str>)> {
    let parts: Vec<&str> = s.split('/').collect();
    let ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match parts.as_slice() {
        [os, arch] if ok(os) && ok(arch) => Ok((os, arch, None)),
        [os, arch, variant] if ok(os) && ok(arch) && ok(variant) => Ok((os, arch, Some(variant))),
        _ => Err(UsageError::Platform {
            value: s.to_string(),
        }
        .into()),
    }
}
