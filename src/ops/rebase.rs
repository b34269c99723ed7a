//! `ocipatch rebase`: open the sources, plan, copy the blobs the plan needs, commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::fleet;
use super::load::{load, Entry, Image, Loaded};
use super::pkgdb::{self as dbops, DbInput, PackageDbOptions};
use super::progress::{Progress, Silent};
use super::safety::{self, SafetyReport};
use super::summaries::LayerSummaries;
use super::write::{write_image, BlobCopy, BlobStats, SharedCopies};
use crate::engine;
use crate::error::{Error, LayerContext, MissingInput, PlanContext, Result, UsageError};
use crate::layer::{build_files_layer, FindingClass, LayerCompression};
use crate::model::image::FormatError;
use crate::model::{
    reference, Config, Descriptor, Digest, Location, Manifest, Platform, Reference,
};
use crate::pkgdb::{self, DbLayer};
use crate::plan::{self, rebase::ANNOTATION_BASE_DIGEST, ImagePlan, ImageReport, Origin};
use crate::transport::memory::MemorySource;
use crate::transport::{
    absent_foreign_layer, check_blob, open_sink_with, open_source, RegistryOptions, Sink, Source,
    WriteOptions,
};

/// When the safety report is computed. It reads (decompresses) every layer of the image and of
/// the new base: cheap on disk, a download of every layer from a registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SafetyScan {
    /// Never scan: the report has no safety section.
    Off,
    /// On, unless the image or the new base is in a registry (a registry-to-registry rebase
    /// moves no layer bytes; the report then says the scan was skipped and why).
    Auto,
    /// Always scan, registries included.
    On,
}

/// What [`rebase()`] does: which image, onto which base, where to write it.
#[derive(Clone)]
pub struct RebaseOptions {
    /// The application image to rebase.
    pub image: Reference,
    /// The new base (`--onto`).
    pub onto: Reference,
    /// The old base (`--from`); `None` finds it through the image's `org.opencontainers.image.base.digest`
    /// annotation, in the image's own source or the new base's.
    pub from: Option<Reference>,
    /// Where to write the result; may equal `image` (the tag is moved when the write commits).
    pub dest: Reference,
    /// `org.opencontainers.image.base.name` to record; the `--onto` reference when unset.
    pub base_name: Option<String>,
    /// Plan and report only: nothing is written.
    pub dry_run: bool,
    /// Whether to scan layer headers for the safety report (what the swap changes under the app).
    pub safety: SafetyScan,
    /// Refuse the rebase (write nothing) when the safety report has any finding.
    pub strict: bool,
    /// Check that the application's binaries still load on the new base (the default;
    /// `--no-abi-check` turns it off).
    pub abi_check: bool,
    /// Credentials and TLS for registry references.
    pub registry: RegistryOptions,
    /// Package-database reconciliation (`--no-package-db`, `--cache-dir`).
    pub package_db: PackageDbOptions,
    /// How the destination writes blobs (`--copy`).
    pub write: WriteOptions,
}

/// An index entry the rebase does not carry over (an attestation, an artifact, a platform the new
/// base lacks).
#[derive(Clone, Debug, Serialize)]
pub struct DroppedEntry {
    /// The entry's digest.
    pub digest: Digest,
    /// The entry's media type.
    pub media_type: String,
    /// The entry's platform, when its descriptor has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Why it was dropped, for humans.
    pub reason: String,
}

/// What [`rebase()`] did (or, with `dry_run`, would do). Serialized for `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct RebaseReport {
    /// The image reference, as given.
    pub image: String,
    /// The old base: the `--from` reference, or the digests of the old bases found through
    /// annotations, comma-separated.
    pub old_base: String,
    /// The new base reference, as given.
    pub new_base: String,
    /// The destination reference, as given.
    pub destination: String,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// The media type of the written root (a manifest or an index).
    pub media_type: String,
    /// The written (or, with --dry-run, planned) manifest or index digest.
    pub digest: Digest,
    /// Every platform's output is byte-identical to its input: the image already sat on the new base.
    pub unchanged: bool,
    /// One report per rebased platform.
    pub platforms: Vec<ImageReport>,
    /// Present when the safety scan ran (`--json`, `--dry-run`, `--strict`, `--safety`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety: Option<Vec<SafetyReport>>,
    /// Why the scan did not run although it was asked for with `--json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_skipped: Option<String>,
    /// Index entries left out of the output (empty for a single manifest).
    pub dropped: Vec<DroppedEntry>,
    /// How many blobs were copied, linked or already present, and their bytes.
    pub blobs: BlobStats,
    /// Compressed bytes read from each source to find package databases, all platforms (also
    /// when none was found; absent with --no-package-db).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_db_bytes_read: Option<pkgdb::BytesRead>,
    /// The destination already held exactly the planned image (its tag pointed at `digest`):
    /// nothing was written. A retried job costs only reads.
    pub up_to_date: bool,
    /// Registry requests this image's run sent (reading the image, checking and writing the
    /// destination); the bases' requests are counted once per run, not here.
    pub requests: u64,
    /// What went wrong on the way without changing the result (a layer-cache entry that was
    /// ignored and read again); also printed on stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Old bases found by digest (`base.digest` annotations), shared by a fleet's images: each
/// is fetched once per run. One lock per digest, so images on different old bases never wait
/// for each other and images on the same one wait for one fetch.
#[derive(Default)]
struct OldBases {
    by_digest: Mutex<HashMap<Digest, fleet::SharedLoad>>,
}

/// Where the old base of one image comes from.
fn find_old_base<'a>(
    image: &Image,
    image_ref: &Reference,
    from: Option<&'a Loaded>,
    resolved: &'a mut BTreeMap<Digest, Arc<Loaded>>,
    bases: &Bases,
    image_src: &dyn Source,
) -> Result<&'a Image> {
    let new_src = bases.new_src.as_ref();
    let platform = image.platform();
    let no_match = |which: &'static str, base: Option<String>| Error::NoPlatform {
        which,
        base,
        platform: platform.to_string(),
        image: image_ref.to_string(),
    };
    if let Some(from) = from {
        return from
            .for_platform(platform)
            .ok_or_else(|| no_match("the old base (--from)", None));
    }
    let Some(digest) = image
        .manifest
        .annotations()
        .get(ANNOTATION_BASE_DIGEST)
        .cloned()
    else {
        return Err(Error::needs_flag(
            image_ref,
            MissingInput::BaseDigest {
                platform: platform.to_string(),
            },
        ));
    };
    let digest: Digest = digest.parse().map_err(|source| {
        Error::needs_flag(image_ref, MissingInput::InvalidBaseDigest { source })
    })?;
    if !resolved.contains_key(&digest) {
        let cell = bases
            .old_bases
            .by_digest
            .lock()
            .expect("no panics while holding the lock")
            .entry(digest.clone())
            .or_default()
            .clone();
        let mut cell = cell.lock().unwrap_or_else(|p| p.into_inner());
        if cell.is_none() {
            // The new base's layout or repository is where the previous base usually still
            // is; the image's own is the next best place.
            let mut found = None;
            for src in [new_src, image_src] {
                if let Some(desc) = src.descriptor_for_digest(&digest)? {
                    found = Some(load(src, &desc)?);
                    break;
                }
            }
            let loaded = found.ok_or_else(|| {
                Error::needs_flag(
                    image_ref,
                    MissingInput::OldBase {
                        digest: digest.clone(),
                        searched: new_src.reference().to_string(),
                    },
                )
            })?;
            *cell = Some(Arc::new(loaded));
        }
        let loaded = cell.clone().expect("filled just above");
        resolved.insert(digest.clone(), loaded);
    }
    // An annotation naming an index (some tools record that) still resolves per platform.
    resolved[&digest]
        .for_platform(platform)
        .ok_or_else(|| no_match("the old base", Some(digest.to_string())))
}

/// The rebase, planned; nothing written yet.
struct Planned {
    image: Loaded,
    plans: Vec<Option<ImagePlan>>,
    index: Option<plan::IndexPlan>,
    root: Descriptor,
    old_base: String,
    safety: Vec<SafetyReport>,
    /// The package-database layers this run built.
    built: MemorySource,
    /// What finding the package databases cost (`None`: --no-package-db).
    db_bytes: Option<pkgdb::BytesRead>,
}

/// The bases of a rebase, opened and read once: a fleet shares them between its images.
pub struct Bases {
    new_src: Box<dyn Source>,
    new_base: Loaded,
    from: Option<Loaded>,
    /// What each layer holds of the package databases, shared by a fleet's images.
    layer_cache: LayerSummaries,
    /// Old bases found by digest, shared by a fleet's images.
    old_bases: OldBases,
}

impl Bases {
    /// Opens and reads the new base (and `from`, the old base, when given) once. Errors when a
    /// reference cannot be opened or its manifests or configs are invalid.
    pub fn open(
        onto: &Reference,
        from: Option<&Reference>,
        registry: &RegistryOptions,
        package_db: &PackageDbOptions,
    ) -> Result<Bases> {
        let new_src = open_source(onto, registry)?;
        let new_base = load(new_src.as_ref(), &new_src.root()?)?;
        let from = match from {
            Some(r) => {
                let src = open_source(r, registry)?;
                let root = src.root()?;
                Some(load(src.as_ref(), &root)?)
            }
            None => None,
        };
        Ok(Bases {
            new_src,
            new_base,
            from,
            layer_cache: LayerSummaries::new(package_db.cache_dir.clone()),
            old_bases: OldBases::default(),
        })
    }

    /// Reads every layer blob of the new base once and checks its digest and size, in
    /// parallel; returns the digests checked.
    fn verify_layers(&self) -> Result<HashSet<Digest>> {
        let mut layers: Vec<&Descriptor> = self
            .new_base
            .images()
            .into_iter()
            .flat_map(|i| &i.manifest.layers)
            .filter(|l| {
                // Unreadable counts as absent: a foreign layer is only checked when stored.
                !absent_foreign_layer(self.new_src.as_ref(), l).unwrap_or(true)
            })
            .collect();
        layers.sort_by(|a, b| a.digest.cmp(&b.digest));
        layers.dedup_by(|a, b| a.digest == b.digest);
        let src = self.new_src.as_ref();
        let checked = engine::map_biggest_first(
            &layers,
            |l| l.size,
            |l| {
                let result = engine::digest_stream(src.open_blob(&l.digest)?, None, None);
                check_blob(src, l, result).map(|_| l.digest.clone())
            },
        );
        checked.into_iter().collect()
    }
}

/// `scan`: run the safety analysis for each image (decided once by `scan_safety`).
fn plan_all(
    opts: &RebaseOptions,
    image_src: &dyn Source,
    bases: &Bases,
    scan: bool,
) -> Result<Planned> {
    let image = load(image_src, &image_src.root()?)?;
    let (new_src, new_base, from) = (bases.new_src.as_ref(), &bases.new_base, &bases.from);
    // Only a name that means the same on every machine (reproducible digests, and `check` from
    // anywhere): --base-name, or a registry reference.
    let base_name = opts.base_name.clone().or_else(|| opts.onto.portable_name());
    let mut resolved = BTreeMap::new();
    let mut old_bases = Vec::new();
    let mut safety = Vec::new();

    let built = MemorySource::new("(layers built by ocipatch)")?;
    let mut db_bytes = pkgdb::BytesRead::default();
    let mut plan_one = |img: &Image| -> Result<ImagePlan> {
        let platform = img.platform();
        let old = find_old_base(
            img,
            &opts.image,
            from.as_ref(),
            &mut resolved,
            bases,
            image_src,
        )?;
        old_bases.push(old.descriptor.digest.to_string());
        let new = new_base
            .for_platform(platform)
            .ok_or_else(|| Error::NoPlatform {
                which: "the new base",
                base: Some(opts.onto.to_string()),
                platform: platform.to_string(),
                image: opts.image.to_string(),
            })?;
        let base_len = old.config.diff_ids.len().min(img.manifest.layers.len());
        // An earlier rebase's package-database layer is replaced, never stacked.
        let replaces_top = opts.package_db.enabled && has_package_db_layer_on_top(img);
        let stripped = if replaces_top {
            Some(without_top_layer(img, &opts.image)?)
        } else {
            None
        };
        let planned_from = stripped.as_ref().unwrap_or(img);
        let mut db_findings = Vec::new();
        let mut db_files = Vec::new();
        let mut p = plan::plan_image(
            planned_from.parts(),
            old.parts(),
            new.parts(),
            base_name.as_deref(),
        )
        .map_err(|source| Error::Plan {
            context: PlanContext::Rebase {
                image: opts.image.to_string(),
                platform: platform.to_string(),
                from: opts
                    .from
                    .as_ref()
                    .map_or_else(|| old.descriptor.digest.to_string(), |f| f.to_string()),
                onto: opts.onto.to_string(),
            },
            source: Box::new(source),
        })?;
        if opts.package_db.enabled {
            let input = DbInput {
                image_src,
                image_layers: &img.manifest.layers,
                base_len,
                replaces_top,
                new_src,
                new_layers: &new.manifest.layers,
                read_all: scan,
            };
            let rec = dbops::reconcile(&input, &bases.layer_cache)?;
            db_bytes.image += rec.bytes_read.image;
            db_bytes.new_base += rec.bytes_read.new_base;
            db_findings = rec.findings;
            db_files = rec.files.clone();
            if let Some(mut report) = rec.report {
                if !rec.files.is_empty() {
                    let mut blob = Vec::new();
                    let layer = build_files_layer(&rec.files, LayerCompression::Gzip, &mut blob)
                        .map_err(|source| Error::Layer {
                            reference: opts.image.to_string(),
                            digest: None,
                            context: LayerContext::PackageDb {
                                platform: platform.to_string(),
                            },
                            source: Box::new(source),
                        })?;
                    built.add(blob);
                    p = append_package_db_layer(p, img, &layer, &opts.image)?;
                    report.layer = Some(DbLayer {
                        digest: layer.digest,
                        diff_id: layer.diff_id,
                        size: layer.size,
                    });
                }
                p.report.package_db = Some(report);
            }
        } else if scan {
            p.report.notes.push(
                "--no-package-db: package databases were not reconciled; scanners see the versions in the application's copy".into(),
            );
        }
        p.report.manifest_before = img.manifest.digest();
        p.report.unchanged = p.manifest == img.manifest.bytes;
        // A registry rebase whose package-database step already read every layer: the
        // verdict costs no download, so it runs.
        let all_read = || {
            img.manifest
                .layers
                .iter()
                .chain(&new.manifest.layers)
                .all(|l| bases.layer_cache.has(&l.digest))
        };
        if scan || (opts.safety == SafetyScan::Auto && all_read()) {
            let input = safety::VerdictInput {
                image_src,
                image: img,
                base_len,
                old_base: old,
                new_src,
                new_base: new,
                db_files: &db_files,
                abi: opts.abi_check,
            };
            let mut report = safety::analyze(&input, &bases.layer_cache)?;
            classify_findings(&mut report, p.report.package_db.as_ref());
            report.findings.extend(db_findings);
            safety.push(report);
        } else {
            p.report.notes.extend(
                db_findings
                    .into_iter()
                    .map(|f| format!("{}: {}", f.path, f.detail)),
            );
        }
        Ok(p)
    };

    let (plans, index, root) = match &image {
        Loaded::Single(img) => {
            let p = plan_one(img)?;
            // The entry that pointed at the image keeps its platform (hosts pick Windows
            // images by os.version), with the rebased config's os.version.
            let mut root = p.manifest_descriptor.clone();
            root.copy_platform_from(&img.descriptor);
            if let Some(v) = os_version_change(img, &p) {
                root.set_platform_os_version(v.as_deref());
            }
            (vec![Some(p)], None, root)
        }
        Loaded::Multi { index, entries, .. } => {
            let plans = entries
                .iter()
                .map(|e| e.image().map(&mut plan_one).transpose())
                .collect::<Result<Vec<_>>>()?;
            if plans.iter().all(Option::is_none) {
                return Err(Error::NoImages {
                    image: opts.image.to_string(),
                    wanted: "images to rebase",
                });
            }
            let os_versions: Vec<Option<String>> = plans
                .iter()
                .map(|p| p.as_ref().and_then(|p| config_os_version(&p.config)))
                .collect();
            let entries: Vec<Option<plan::NewEntry>> = plans
                .iter()
                .zip(&os_versions)
                .map(|(p, v)| {
                    p.as_ref().map(|p| plan::NewEntry {
                        manifest: &p.manifest_descriptor,
                        os_version: v.as_deref(),
                    })
                })
                .collect();
            let ip = plan::rewrite_index(index, &entries);
            let root = ip.descriptor.clone();
            (plans, Some(ip), root)
        }
    };
    old_bases.dedup();
    let old_base = match &opts.from {
        Some(f) => f.to_string(),
        None => old_bases.join(", "),
    };
    Ok(Planned {
        image,
        plans,
        index,
        root,
        old_base,
        safety,
        built,
        db_bytes: opts.package_db.enabled.then_some(db_bytes),
    })
}

/// Copies what the plan needs from where the plan says, then writes the new JSON blobs and
/// commits.
fn write(
    planned: &Planned,
    sink: &dyn Sink,
    image_src: &dyn Source,
    new_src: &dyn Source,
    shared: Option<(&SharedCopies, &HashSet<Digest>)>,
    progress: &dyn Progress,
) -> Result<BlobStats> {
    // Written back into its own repository, the image's blobs are there already: a new-base
    // layer the image has too is read "from the image", so the sink knows without asking.
    let own_repository = image_src.registry_repository().is_some()
        && image_src.registry_repository() == registry_repository(sink.reference());
    let in_image: HashSet<&Digest> = if own_repository {
        planned
            .image
            .images()
            .into_iter()
            .flat_map(|i| &i.manifest.layers)
            .map(|l| &l.digest)
            .collect()
    } else {
        HashSet::new()
    };
    let copies = planned
        .plans
        .iter()
        .flatten()
        .flat_map(|p| &p.copies)
        .map(|c| {
            let from_image = c.origin == Origin::NewBase && in_image.contains(&c.descriptor.digest);
            BlobCopy {
                src: match c.origin {
                    Origin::Image => image_src,
                    Origin::NewBase if from_image => image_src,
                    Origin::NewBase => new_src,
                    Origin::Built => &planned.built,
                },
                descriptor: &c.descriptor,
                verified: c.origin == Origin::NewBase
                    && !from_image
                    && shared.is_some_and(|(_, v)| v.contains(&c.descriptor.digest)),
            }
        })
        .collect();
    let mut json: Vec<(&Descriptor, &[u8])> = Vec::new();
    for p in planned.plans.iter().flatten() {
        json.push((&p.config_descriptor, &p.config));
        json.push((&p.manifest_descriptor, &p.manifest));
    }
    if let Some(ip) = &planned.index {
        json.push((&ip.descriptor, &ip.bytes));
    }
    write_image(
        sink,
        copies,
        &json,
        &planned.root,
        shared.map(|(s, _)| s),
        progress,
    )
}

/// The registry and repository a registry reference names.
fn registry_repository(reference: &Reference) -> Option<(String, String)> {
    match &reference.location {
        Location::Registry {
            host, repository, ..
        } => Some((host.clone(), repository.clone())),
        _ => None,
    }
}

/// What a registry destination's tag points at now (`None`: no such tag yet). Other
/// destinations are written as before (a layout or archive rewrite is local and cheap).
fn registry_destination_now(opts: &RebaseOptions, image: &Loaded) -> Result<Option<Digest>> {
    if registry_repository(&opts.dest).is_none() {
        return Ok(None);
    }
    // Rebased in place (same repository and tag): the image was just read from there.
    if opts.dest.place() == opts.image.place() && opts.dest.tag() == opts.image.tag() {
        if let Location::Registry {
            selector: crate::model::Selector::Tag(_),
            ..
        } = &opts.image.location
        {
            return Ok(Some(image.descriptor().digest.clone()));
        }
    }
    let dest = open_source(&opts.dest, &opts.registry)?;
    match dest.root() {
        Ok(root) => Ok(Some(root.digest)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

fn scan_safety(opts: &RebaseOptions, image_src: &dyn Source, new_src: &dyn Source) -> bool {
    match opts.safety {
        _ if opts.strict => true,
        SafetyScan::On => true,
        SafetyScan::Off => false,
        SafetyScan::Auto => {
            image_src.registry_repository().is_none() && new_src.registry_repository().is_none()
        }
    }
}

/// The top-level `os.version` of a config we planned (the new base's, after the merge).
fn config_os_version(config: &[u8]) -> Option<String> {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(config).ok()?;
    v.get("os.version")?.as_str().map(str::to_string)
}

/// `Some(new)` when the rebase changes the image's os.version (`Some(None)`: removes it).
fn os_version_change(img: &Image, p: &ImagePlan) -> Option<Option<String>> {
    let before = img.config.platform.os_version.clone();
    let after = config_os_version(&p.config);
    (before.is_some() || after.is_some()).then_some(after)
}

/// Whether the image's top layer is a package-database layer of an earlier rebase: the last
/// history entry made it, and history and layers line up.
fn has_package_db_layer_on_top(img: &Image) -> bool {
    let history = &img.config.history;
    let layered = history
        .iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .count();
    layered == img.manifest.layers.len()
        && history.last().is_some_and(|h| {
            !h.empty_layer().unwrap_or(false)
                && h.created_by().as_deref() == Some(pkgdb::CREATED_BY)
        })
}

/// The image without its top layer (and that layer's diff ID and history entry).
fn without_top_layer(img: &Image, reference: &Reference) -> Result<Image> {
    let bad = |step: &'static str, source: FormatError| Error::Rewrite {
        reference: reference.to_string(),
        step,
        source,
    };
    const CONFIG: &str = "removing the earlier package-database layer: config";
    const MANIFEST: &str = "removing the earlier package-database layer: manifest";
    let mut manifest = img.manifest.json.clone();
    if let Some(serde_json::Value::Array(layers)) = manifest.get_mut("layers") {
        layers.pop();
    }
    let mut config = img.config.json.clone();
    if let Some(serde_json::Value::Array(ids)) =
        config.get_mut("rootfs").and_then(|r| r.get_mut("diff_ids"))
    {
        ids.pop();
    }
    if let Some(serde_json::Value::Array(h)) = config.get_mut("history") {
        h.pop();
    }
    let config_bytes =
        serde_json::to_vec(&config).map_err(|e| bad(CONFIG, FormatError::Json(e)))?;
    let config = Config::parse(&config_bytes).map_err(|e| bad(CONFIG, e))?;
    let mut config_desc = img.manifest.config.clone();
    config_desc.digest = Digest::of(&config_bytes);
    config_desc.size = config_bytes.len() as u64;
    manifest.insert("config".into(), config_desc.to_json());
    let manifest_bytes =
        serde_json::to_vec(&manifest).map_err(|e| bad(MANIFEST, FormatError::Json(e)))?;
    let manifest = Manifest::parse(&manifest_bytes, Some(&img.manifest.media_type))
        .map_err(|e| bad(MANIFEST, e))?;
    let mut descriptor = img.descriptor.clone();
    descriptor.digest = Digest::of(&manifest_bytes);
    descriptor.size = manifest_bytes.len() as u64;
    Ok(Image {
        descriptor,
        manifest,
        config,
    })
}

/// Appends the package-database layer to a planned rebase. JSON equal to the original image's
/// keeps the original bytes, so a rebase onto the current base stays a byte-identical no-op.
fn append_package_db_layer(
    mut p: ImagePlan,
    original: &Image,
    layer: &crate::layer::BuiltLayer,
    reference: &Reference,
) -> Result<ImagePlan> {
    let bad = |source: FormatError| Error::Rewrite {
        reference: reference.to_string(),
        step: "adding the package-database layer",
        source,
    };
    let manifest =
        Manifest::parse(&p.manifest, Some(&p.manifest_descriptor.media_type)).map_err(bad)?;
    let config = Config::parse(&p.config).map_err(bad)?;
    let mut entry = serde_json::Map::new();
    if let Some(created) = config.json.get("created") {
        entry.insert("created".into(), created.clone());
    }
    entry.insert("created_by".into(), pkgdb::CREATED_BY.into());
    let new_layer = plan::NewLayer {
        digest: layer.digest.clone(),
        diff_id: layer.diff_id.clone(),
        size: layer.size,
        zstd: false,
    };
    let ap = plan::plan_append(
        plan::Parts {
            manifest: &manifest,
            config: &config,
        },
        &new_layer,
        serde_json::Value::Object(entry),
        None,
    )
    .map_err(|source| Error::Plan {
        context: PlanContext::PackageDbLayer {
            image: reference.to_string(),
        },
        source: Box::new(source),
    })?;

    let (mut config_bytes, mut manifest_bytes) = (ap.config, ap.manifest);
    let same_json = |bytes: &[u8], original: &serde_json::Map<String, serde_json::Value>| {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
            .is_ok_and(|v| &v == original)
    };
    let mut config_desc = ap.config_descriptor;
    if config_bytes != original.config.bytes && same_json(&config_bytes, &original.config.json) {
        config_bytes = original.config.bytes.clone();
        config_desc.digest = Digest::of(&config_bytes);
        config_desc.size = config_bytes.len() as u64;
        let mut m: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&manifest_bytes).map_err(|e| bad(FormatError::Json(e)))?;
        m.insert("config".into(), config_desc.to_json());
        manifest_bytes = serde_json::to_vec(&m).map_err(|e| bad(FormatError::Json(e)))?;
    }
    if manifest_bytes != original.manifest.bytes
        && same_json(&manifest_bytes, &original.manifest.json)
    {
        manifest_bytes = original.manifest.bytes.clone();
    }
    let mut manifest_desc = p.manifest_descriptor.clone();
    manifest_desc.digest = Digest::of(&manifest_bytes);
    manifest_desc.size = manifest_bytes.len() as u64;

    p.copies.push(plan::BlobCopy {
        descriptor: ap.layer,
        origin: Origin::Built,
    });
    p.config = config_bytes;
    p.config_descriptor = config_desc;
    p.manifest = manifest_bytes;
    p.report.manifest_after = manifest_desc.digest.clone();
    p.manifest_descriptor = manifest_desc;
    Ok(p)
}

/// Safety findings at a database this run reconciled become notes; the packages the
/// application pins over the new base's become findings of their own.
fn classify_findings(report: &mut SafetyReport, db: Option<&pkgdb::PackageDbReport>) {
    let Some(db) = db else { return };
    let reconciled = |path: &str| {
        db.databases.iter().any(|d| {
            (d.path == path || d.resolved.as_deref() == Some(path))
                && matches!(
                    d.action,
                    pkgdb::DbAction::Reconciled | pkgdb::DbAction::Unchanged
                )
        })
    };
    for f in &mut report.findings {
        if reconciled(&f.path) {
            f.class = FindingClass::PackageDb;
        }
    }
    // rpm BerkeleyDB/NDB that the new base changed: a stale database must never pass silently
    // (header-only analysis may not see the change, so it is stated here).
    for d in &db.databases {
        if d.action == pkgdb::DbAction::NotReconciled
            && !report
                .findings
                .iter()
                .any(|f| f.path == d.path && f.class == FindingClass::Real)
        {
            report.findings.push(crate::layer::Finding::new(crate::layer::FindingKind::AppOverwritesChangedFile, FindingClass::Real, d.path.clone(), "the application's rpm database (BerkeleyDB/NDB, not reconciled) hides the new base's: scanners and rpm will see the old base's versions"));
        }
    }
    for pin in &db.pinned {
        report.findings.push(crate::layer::Finding::new(
            crate::layer::FindingKind::AppPinsPackage,
            FindingClass::Real,
            pin.package.clone(),
            pin.to_string(),
        ));
    }
}

/// `--strict`: any safety finding fails the rebase before anything is written (the error
/// carries the verdict; its message names the first finding).
fn refuse_unsafe(opts: &RebaseOptions, reports: &[SafetyReport]) -> Result<()> {
    if reports.iter().all(SafetyReport::is_clean) {
        return Ok(());
    }
    Err(Error::Strict {
        image: opts.image.to_string(),
        reports: reports.to_vec(),
    })
}

/// `--base-name` goes into the image's annotations, pushed with it wherever it goes: a name
/// that holds what may be a password (`user:pass@host/repo`) is refused, as in a reference.
fn check_base_name(opts: &RebaseOptions) -> Result<()> {
    match &opts.base_name {
        Some(name) if reference::secret_part(name).is_some() => {
            Err(UsageError::BaseNameCredentials {
                name: reference::redact(name).into_owned(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// The safety verdict a rebase of `image` onto `onto` would give, per platform: a
/// `rebase --dry-run` (old base from the image's base.digest annotation, package databases
/// reconciled) that writes nothing.
pub fn preview(
    image: &Reference,
    onto: &Reference,
    registry: &RegistryOptions,
) -> Result<Vec<SafetyReport>> {
    let opts = RebaseOptions {
        image: image.clone(),
        onto: onto.clone(),
        from: None,
        dest: image.clone(),
        base_name: None,
        dry_run: true,
        safety: SafetyScan::On,
        strict: false,
        abi_check: true,
        registry: registry.clone(),
        package_db: PackageDbOptions::default(),
        write: WriteOptions::default(),
    };
    Ok(rebase(&opts, &Silent)?.safety.unwrap_or_default())
}

/// Rebases one image; `progress` hears about the blobs copied.
pub fn rebase(opts: &RebaseOptions, progress: &dyn Progress) -> Result<RebaseReport> {
    check_base_name(opts)?;
    let bases = Bases::open(
        &opts.onto,
        opts.from.as_ref(),
        &opts.registry,
        &opts.package_db,
    )?;
    rebase_on(opts, &bases, None, progress)
}

/// One image of a fleet: its result, and the registry requests it sent.
pub struct FleetImage {
    /// The image's report, or why it failed (other images are not affected).
    pub result: Result<RebaseReport>,
    /// Registry requests sent for this image.
    pub requests: u64,
}

/// A fleet run: every image's outcome, in the jobs' order, and the request counts.
pub struct FleetRun {
    /// One entry per job, in the jobs' order.
    pub images: Vec<FleetImage>,
    /// The run's request counts.
    pub requests: fleet::Requests,
}

/// Rebases many images onto the same bases in one run (`opts.image`/`opts.dest` are replaced
/// by each job's). The bases are read once and the new base's blobs checked once; blobs shared
/// between images are copied once per destination; images run in parallel (`jobs` at once
/// when a registry is involved, see `fleet::run`), and one image's failure does not stop the
/// others. Only a failure of the bases themselves fails the run.
pub fn rebase_fleet(
    opts: &RebaseOptions,
    jobs: &[(Reference, Reference)],
    workers: usize,
) -> Result<FleetRun> {
    check_base_name(opts)?;
    super::fleet::check_destinations(jobs)?;
    let session = &opts.registry.session;
    let base_registry = RegistryOptions {
        session: session.counted(),
        ..opts.registry.clone()
    };
    let bases = Bases::open(
        &opts.onto,
        opts.from.as_ref(),
        &base_registry,
        &opts.package_db,
    )?;
    // Checking the new base's layers up front pays when sinks can then link them; a registry
    // base is mounted or streamed (and checked on the way) instead, never read twice.
    let verified = if opts.dry_run || bases.new_src.registry_repository().is_some() {
        HashSet::new()
    } else {
        bases.verify_layers()?
    };
    let shared = SharedCopies::default();
    let network = [&opts.onto]
        .into_iter()
        .chain(&opts.from)
        .chain(jobs.iter().flat_map(|(i, d)| [i, d]))
        .any(|r| registry_repository(r).is_some());
    let images = fleet::run(jobs, network, workers, |(image, dest)| {
        let job = RebaseOptions {
            image: image.clone(),
            dest: dest.clone(),
            registry: RegistryOptions {
                session: session.counted(),
                ..opts.registry.clone()
            },
            ..opts.clone()
        };
        // Images run in parallel: one byte counter would mix them; the summary says it all.
        let result = rebase_on(&job, &bases, Some((&shared, &verified)), &Silent);
        FleetImage {
            result,
            requests: job.registry.session.requests(),
        }
    });
    let requests = fleet::Requests::new(
        session.total_requests(),
        base_registry.session.requests(),
        jobs.len(),
    );
    Ok(FleetRun { images, requests })
}

fn rebase_on(
    opts: &RebaseOptions,
    bases: &Bases,
    shared: Option<(&SharedCopies, &HashSet<Digest>)>,
    progress: &dyn Progress,
) -> Result<RebaseReport> {
    let image_src = open_source(&opts.image, &opts.registry)?;
    let scan = scan_safety(opts, image_src.as_ref(), bases.new_src.as_ref());
    let planned = plan_all(opts, image_src.as_ref(), bases, scan)?;
    if opts.strict {
        refuse_unsafe(opts, &planned.safety)?;
    }

    let up_to_date = !opts.dry_run
        && registry_destination_now(opts, &planned.image)?.as_ref() == Some(&planned.root.digest);
    let blobs = if opts.dry_run || up_to_date {
        BlobStats::default()
    } else {
        let sink = open_sink_with(&opts.dest, &opts.registry, opts.write)?;
        write(
            &planned,
            sink.as_ref(),
            image_src.as_ref(),
            bases.new_src.as_ref(),
            shared,
            progress,
        )
        .inspect_err(|_| sink.abort())?
    };

    let platforms: Vec<ImageReport> = planned
        .plans
        .iter()
        .flatten()
        .map(|p| p.report.clone())
        .collect();
    let dropped = match &planned.image {
        Loaded::Single(_) => Vec::new(),
        Loaded::Multi { entries, .. } => entries
            .iter()
            .filter_map(|e| match e {
                Entry::Other(o) => Some(o),
                Entry::Image(_) => None,
            })
            .map(|o| DroppedEntry {
                digest: o.descriptor.digest.clone(),
                media_type: o.descriptor.media_type.clone(),
                platform: o.descriptor.platform(),
                reason: o.why.clone(),
            })
            .collect(),
    };
    Ok(RebaseReport {
        image: opts.image.to_string(),
        old_base: planned.old_base.clone(),
        new_base: opts.onto.to_string(),
        destination: opts.dest.to_string(),
        dry_run: opts.dry_run,
        media_type: planned.root.media_type.clone(),
        digest: planned.root.digest.clone(),
        unchanged: planned.root.digest == planned.image.descriptor().digest,
        platforms,
        safety: (!planned.safety.is_empty()).then(|| planned.safety.clone()),
        safety_skipped: (opts.safety == SafetyScan::Auto && planned.safety.is_empty()).then(|| {
            "the image or the new base is in a registry, and the verdict would download every layer; pass --safety to compute it".to_string()
        }),
        dropped,
        blobs,
        package_db_bytes_read: planned.db_bytes.clone(),
        up_to_date,
        requests: opts.registry.session.requests(),
        warnings: bases.layer_cache.take_warnings(),
    })
}
