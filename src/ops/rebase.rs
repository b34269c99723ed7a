//! `ocipatch rebase`: open the sources, plan, copy the blobs the plan needs, commit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::attest::{self as attest_ops, AttestOptions, Attestation, WrittenImage};
use super::fleet::{self, Job};
use super::load::{load, Entry, Image, Loaded};
use super::pkgdb::{self as dbops, DbInput, PackageDbOptions};
use super::progress::{Progress, Silent};
use super::safety::{self, SafetyReport};
use super::summaries::LayerSummaries;
use super::write::{write_image, BlobCopy, BlobStats, SharedCopies};
use crate::engine;
use crate::error::{Error, LayerContext, MissingInput, PlanContext, Result, UsageError};
use crate::layer::{build_files_layer, FindingClass, LayerCompression};
use crate::model::{reference, Descriptor, Digest, Location, Platform, Reference};
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

/// What a rebase run shares across its images: the bases, the flags, the registry session and
/// the caches. One run rebases one image ([`rebase()`]) or a fleet ([`rebase_fleet`]); each
/// image is a [`Job`].
#[derive(Clone)]
pub struct RebaseRun {
    /// The new base (`--onto`).
    pub onto: Reference,
    /// The old base (`--from`); `None` finds it through each image's
    /// `org.opencontainers.image.base.digest` annotation, in the image's own source or the new
    /// base's.
    pub from: Option<Reference>,
    /// `org.opencontainers.image.base.name` to record; the `--onto` reference when unset (and
    /// it names a registry).
    pub base_name: Option<String>,
    /// Plan and report only: nothing is written.
    pub dry_run: bool,
    /// When the safety verdict is computed.
    pub safety: SafetyScan,
    /// Refuse a rebase (write nothing) when its verdict has any real finding.
    pub strict: bool,
    /// Check that the application's binaries still load on the new base (the default;
    /// `--no-abi-check` turns it off).
    pub abi_check: bool,
    /// Credentials, TLS and the registry session of the run.
    pub registry: RegistryOptions,
    /// Package-database reconciliation (`--no-package-db`, `--cache-dir`).
    pub package_db: PackageDbOptions,
    /// How destinations write blobs (`--copy`).
    pub write: WriteOptions,
    /// The documents to make about each written image (`--sbom`, `--provenance`).
    pub attest: AttestOptions,
}

impl RebaseRun {
    /// A run onto `onto` with every default: the old base from annotations, the verdict
    /// computed where it costs no download, package databases reconciled, written for real.
    pub fn new(onto: Reference) -> RebaseRun {
        RebaseRun {
            onto,
            from: None,
            base_name: None,
            dry_run: false,
            safety: SafetyScan::Auto,
            strict: false,
            abi_check: true,
            registry: RegistryOptions::default(),
            package_db: PackageDbOptions::default(),
            write: WriteOptions::default(),
            attest: AttestOptions::default(),
        }
    }
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
    /// The image's OCI 1.1 referrers (SBOMs, signatures, attestations attached to its index or
    /// platform manifests) in its source: they describe the old digests, so they are never
    /// copied to the destination; each is named here and in a warning.
    pub not_carried: Vec<super::referrers::Referrer>,
    /// What went wrong on the way without changing the result (a layer-cache entry that was
    /// ignored and read again); also printed on stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The SBOM of every written platform image and the provenance of the image, when asked
    /// for (`RebaseRun::attest`); made once the image is written (with `dry_run`, of the
    /// planned image).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<Attestation>,
}

/// Old bases found by digest (`base.digest` annotations), shared by a fleet's images: each
/// is fetched once per run. One lock per digest, so images on different old bases never wait
/// for each other and images on the same one wait for one fetch.
#[derive(Default)]
struct OldBases {
    by_digest: Mutex<HashMap<Digest, fleet::SharedLoad>>,
}

/// The image (or index) the old base of `image` is: `--from`, else the one its `base.digest`
/// annotation names, found in the new base's source or the image's own (read once per run).
fn old_base_of(
    image: &Image,
    image_ref: &Reference,
    bases: &Bases,
    image_src: &dyn Source,
) -> Result<Arc<Loaded>> {
    if let Some(from) = &bases.from {
        return Ok(from.clone());
    }
    let platform = image.platform();
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
    let cell = bases
        .old_bases
        .by_digest
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(digest.clone())
        .or_default()
        .clone();
    let mut cell = cell.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(loaded) = cell.as_ref() {
        return Ok(loaded.clone());
    }
    // The new base's layout or repository is where the previous base usually still is; the
    // image's own is the next best place.
    let new_src = bases.new_src.as_ref();
    for src in [new_src, image_src] {
        if let Some(desc) = src.descriptor_for_digest(&digest)? {
            let loaded = Arc::new(load(src, &desc)?);
            *cell = Some(loaded.clone());
            return Ok(loaded);
        }
    }
    Err(Error::needs_flag(
        image_ref,
        MissingInput::OldBase {
            digest,
            searched: new_src.reference().to_string(),
        },
    ))
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
    from: Option<Arc<Loaded>>,
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
                Some(Arc::new(load(src.as_ref(), &root)?))
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

/// One image of a run, while it is planned.
struct ImageJob<'a> {
    run: &'a RebaseRun,
    job: &'a Job,
    bases: &'a Bases,
    image_src: &'a dyn Source,
    /// `org.opencontainers.image.base.name` to record.
    base_name: Option<String>,
    /// Whether the verdict is computed whatever it costs.
    scan: bool,
}

/// One platform, planned.
struct PlatformPlan {
    plan: ImagePlan,
    /// The old base's manifest digest.
    old_base: String,
    safety: Option<SafetyReport>,
    /// The package-database layer's blob, when one is added.
    built: Option<Vec<u8>>,
    db_bytes: pkgdb::BytesRead,
}

impl ImageJob<'_> {
    fn plan_context(&self, platform: &Platform, old: &Image) -> PlanContext {
        PlanContext::Rebase {
            image: self.job.image.to_string(),
            platform: platform.to_string(),
            from: self
                .run
                .from
                .as_ref()
                .map_or_else(|| old.descriptor.digest.to_string(), |f| f.to_string()),
            onto: self.run.onto.to_string(),
        }
    }

    /// Plans one platform: the old base, the splice onto the new one, the package-database
    /// layer on top, and the verdict.
    fn platform(&self, img: &Image) -> Result<PlatformPlan> {
        let (run, bases, image_src) = (self.run, self.bases, self.image_src);
        let new_src = bases.new_src.as_ref();
        let platform = img.platform();
        let old_loaded = old_base_of(img, &self.job.image, bases, image_src)?;
        let old = old_loaded
            .for_platform(platform)
            .ok_or_else(|| Error::NoPlatform {
                which: if run.from.is_some() {
                    "the old base (--from)"
                } else {
                    "the old base"
                },
                base: run
                    .from
                    .is_none()
                    .then(|| old_loaded.descriptor().digest.to_string()),
                platform: platform.to_string(),
                image: self.job.image.to_string(),
            })?;
        let new = bases
            .new_base
            .for_platform(platform)
            .ok_or_else(|| Error::NoPlatform {
                which: "the new base",
                base: Some(run.onto.to_string()),
                platform: platform.to_string(),
                image: self.job.image.to_string(),
            })?;
        let plan_error = |source| Error::Plan {
            context: self.plan_context(platform, old),
            source: Box::new(source),
        };
        let base_len = old.config.diff_ids.len().min(img.manifest.layers.len());
        // An earlier rebase's package-database layer is replaced, never stacked.
        let replaces_top = run.package_db.enabled && has_package_db_layer_on_top(img);
        let stripped = if replaces_top {
            Some(plan::without_top_layer(img.parts(), &img.descriptor).map_err(plan_error)?)
        } else {
            None
        };
        let planned_parts = match &stripped {
            Some(s) => plan::Parts {
                manifest: &s.manifest,
                config: &s.config,
            },
            None => img.parts(),
        };
        let mut p = plan::plan_image(
            planned_parts,
            old.parts(),
            new.parts(),
            self.base_name.as_deref(),
        )
        .map_err(plan_error)?;

        let mut db_bytes = pkgdb::BytesRead::default();
        let mut db_findings = Vec::new();
        let mut db_files = Vec::new();
        let mut built = None;
        if run.package_db.enabled {
            let input = DbInput {
                image_src,
                image_layers: &img.manifest.layers,
                base_len,
                replaces_top,
                new_src,
                new_layers: &new.manifest.layers,
                read_all: self.scan,
            };
            let rec = dbops::reconcile(&input, &bases.layer_cache)?;
            db_bytes = rec.bytes_read;
            db_findings = rec.findings;
            if let Some(mut report) = rec.report {
                if !rec.files.is_empty() {
                    let mut blob = Vec::new();
                    let layer = build_files_layer(&rec.files, LayerCompression::Gzip, &mut blob)
                        .map_err(|source| Error::Layer {
                            reference: self.job.image.to_string(),
                            digest: None,
                            context: LayerContext::PackageDb {
                                platform: platform.to_string(),
                            },
                            source: Box::new(source),
                        })?;
                    let new_layer = plan::NewLayer {
                        digest: layer.digest.clone(),
                        diff_id: layer.diff_id.clone(),
                        size: layer.size,
                        zstd: false,
                    };
                    p = plan::with_layer_on_top(p, img.parts(), &new_layer, pkgdb::CREATED_BY)
                        .map_err(|source| Error::Plan {
                            context: PlanContext::PackageDbLayer {
                                image: self.job.image.to_string(),
                            },
                            source: Box::new(source),
                        })?;
                    report.layer = Some(DbLayer {
                        digest: layer.digest,
                        diff_id: layer.diff_id,
                        size: layer.size,
                    });
                    built = Some(blob);
                }
                p.report.package_db = Some(report);
            }
            db_files = rec.files;
        } else if self.scan {
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
        let safety = if self.scan || (run.safety == SafetyScan::Auto && all_read()) {
            let input = safety::VerdictInput {
                image_src,
                image: img,
                base_len,
                old_base: old,
                new_src,
                new_base: new,
                db_files: &db_files,
                abi: run.abi_check,
            };
            let mut report = safety::analyze(&input, &bases.layer_cache)?;
            classify_findings(&mut report, p.report.package_db.as_ref());
            report.findings.extend(db_findings);
            Some(report)
        } else {
            p.report.notes.extend(
                db_findings
                    .into_iter()
                    .map(|f| format!("{}: {}", f.path, f.detail)),
            );
            None
        };
        Ok(PlatformPlan {
            plan: p,
            old_base: old.descriptor.digest.to_string(),
            safety,
            built,
            db_bytes,
        })
    }

    /// Plans every platform and folds them into the rebase: the index rewrite for a
    /// multi-platform image, the built layers, the verdicts, what reading cost.
    fn plan(&self) -> Result<Planned> {
        let image = load(self.image_src, &self.image_src.root()?)?;
        let built = MemorySource::new("(layers built by ocipatch)")?;
        let mut old_bases: Vec<String> = Vec::new();
        let mut safety = Vec::new();
        let mut db_bytes = pkgdb::BytesRead::default();
        let mut fold = |pp: PlatformPlan| -> ImagePlan {
            if !old_bases.contains(&pp.old_base) {
                old_bases.push(pp.old_base);
            }
            safety.extend(pp.safety);
            if let Some(blob) = pp.built {
                built.add(blob);
            }
            db_bytes.image += pp.db_bytes.image;
            db_bytes.new_base += pp.db_bytes.new_base;
            pp.plan
        };
        let (plans, index, root) = match &image {
            Loaded::Single(img) => {
                let p = fold(self.platform(img)?);
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
                    .map(|e| {
                        e.image()
                            .map(|img| self.platform(img).map(&mut fold))
                            .transpose()
                    })
                    .collect::<Result<Vec<_>>>()?;
                if plans.iter().all(Option::is_none) {
                    return Err(Error::NoImages {
                        image: self.job.image.to_string(),
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
        let old_base = match &self.run.from {
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
            db_bytes: self.run.package_db.enabled.then_some(db_bytes),
        })
    }
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
        && image_src.registry_repository() == sink.reference().registry_repository();
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

/// What a registry destination's tag points at now (`None`: no such tag yet). Other
/// destinations are written as before (a layout or archive rewrite is local and cheap).
fn registry_destination_now(run: &RebaseRun, job: &Job, image: &Loaded) -> Result<Option<Digest>> {
    if !job.dest.is_registry() {
        return Ok(None);
    }
    // Rebased in place (same repository and tag): the image was just read from there.
    if job.dest.place() == job.image.place() && job.dest.tag() == job.image.tag() {
        if let Location::Registry {
            selector: crate::model::Selector::Tag(_),
            ..
        } = &job.image.location
        {
            return Ok(Some(image.descriptor().digest.clone()));
        }
    }
    let dest = open_source(&job.dest, &run.registry)?;
    match dest.root() {
        Ok(root) => Ok(Some(root.digest)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the verdict is computed whatever it costs (`--safety`, `--strict`, `--dry-run`, or
/// nothing in a registry); under `Auto` it may still run when it costs no download.
fn scan_safety(run: &RebaseRun, image_src: &dyn Source, new_src: &dyn Source) -> bool {
    match run.safety {
        _ if run.strict => true,
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
fn refuse_unsafe(job: &Job, reports: &[SafetyReport]) -> Result<()> {
    if reports.iter().all(SafetyReport::is_clean) {
        return Ok(());
    }
    Err(Error::Strict {
        image: job.image.to_string(),
        reports: reports.to_vec(),
    })
}

/// `--base-name` goes into the image's annotations, pushed with it wherever it goes: a name
/// that holds what may be a password (`user:pass@host/repo`) is refused, as in a reference.
fn check_base_name(run: &RebaseRun) -> Result<()> {
    match &run.base_name {
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
    let run = RebaseRun {
        dry_run: true,
        safety: SafetyScan::On,
        registry: registry.clone(),
        ..RebaseRun::new(onto.clone())
    };
    let job = Job {
        image: image.clone(),
        dest: image.clone(),
    };
    Ok(rebase(&run, &job, &Silent)?.safety.unwrap_or_default())
}

/// Rebases one image; `progress` hears about the blobs copied.
pub fn rebase(run: &RebaseRun, job: &Job, progress: &dyn Progress) -> Result<RebaseReport> {
    check_base_name(run)?;
    if !run.dry_run {
        run.attest.check_destination(&job.dest)?;
    }
    let bases = Bases::open(&run.onto, run.from.as_ref(), &run.registry, &run.package_db)?;
    rebase_on(run, job, &bases, None, progress)
}

/// Rebases many images onto the same bases in one run. The bases are read once and the new
/// base's blobs checked once; blobs shared between images are copied once per destination;
/// images run in parallel (`workers` at once when a registry is involved, see `fleet::run`),
/// and one image's failure does not stop the others: it is its entry's. Only a failure of the
/// bases themselves fails the run. `jobs` come from [`fleet::jobs`] (destinations checked);
/// `shard` is reported as given.
pub fn rebase_fleet(
    run: &RebaseRun,
    jobs: &[Job],
    shard: Option<crate::model::Shard>,
    workers: usize,
) -> Result<fleet::Report> {
    if jobs.is_empty() {
        // A shard that holds none of the images: an empty, successful run.
        return Ok(fleet::Report::new(
            jobs,
            Vec::new(),
            shard,
            fleet::Requests::default(),
        ));
    }
    check_base_name(run)?;
    fleet::check_destinations(jobs)?;
    if !run.dry_run {
        for job in jobs {
            run.attest.check_destination(&job.dest)?;
        }
    }
    let session = &run.registry.session;
    let base_registry = RegistryOptions {
        session: session.counted(),
        ..run.registry.clone()
    };
    let bases = Bases::open(
        &run.onto,
        run.from.as_ref(),
        &base_registry,
        &run.package_db,
    )?;
    // Checking the new base's layers up front pays when sinks can then link them; a registry
    // base is mounted or streamed (and checked on the way) instead, never read twice.
    let verified = if run.dry_run || bases.new_src.registry_repository().is_some() {
        HashSet::new()
    } else {
        bases.verify_layers()?
    };
    let shared = SharedCopies::default();
    let network = [&run.onto]
        .into_iter()
        .chain(&run.from)
        .chain(jobs.iter().flat_map(|j| [&j.image, &j.dest]))
        .any(Reference::is_registry);
    let results = fleet::run(jobs, network, workers, |job| {
        let own = RebaseRun {
            registry: RegistryOptions {
                session: session.counted(),
                ..run.registry.clone()
            },
            ..run.clone()
        };
        // Images run in parallel: one byte counter would mix them; the summary says it all.
        let result = rebase_on(&own, job, &bases, Some((&shared, &verified)), &Silent);
        (result, own.registry.session.requests())
    });
    let requests = fleet::Requests::new(
        session.total_requests(),
        base_registry.session.requests(),
        jobs.len(),
    );
    Ok(fleet::Report::new(jobs, results, shard, requests))
}

fn rebase_on(
    run: &RebaseRun,
    job: &Job,
    bases: &Bases,
    shared: Option<(&SharedCopies, &HashSet<Digest>)>,
    progress: &dyn Progress,
) -> Result<RebaseReport> {
    let image_src = open_source(&job.image, &run.registry)?;
    let planner = ImageJob {
        run,
        job,
        bases,
        image_src: image_src.as_ref(),
        // Only a name that means the same on every machine (reproducible digests, and `check`
        // from anywhere): --base-name, or a registry reference.
        base_name: run.base_name.clone().or_else(|| run.onto.portable_name()),
        scan: scan_safety(run, image_src.as_ref(), bases.new_src.as_ref()),
    };
    let planned = planner.plan()?;
    if run.strict {
        refuse_unsafe(job, &planned.safety)?;
    }

    // Listed before anything is written: what the source had attached to the old digests.
    let not_carried = super::referrers::of_image(image_src.as_ref(), &planned.image)?;
    let up_to_date = !run.dry_run
        && registry_destination_now(run, job, &planned.image)?.as_ref()
            == Some(&planned.root.digest);
    let blobs = if run.dry_run || up_to_date {
        BlobStats::default()
    } else {
        let sink = open_sink_with(&job.dest, &run.registry, run.write)?;
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

    let docker_archive = matches!(job.dest.location, Location::DockerArchive { .. });
    let platforms: Vec<ImageReport> = planned
        .plans
        .iter()
        .flatten()
        .map(|p| {
            let mut r = p.report.clone();
            if docker_archive && !run.dry_run {
                // The format stores no manifest: every reader makes one up, so the digest
                // tools agree on is the config's (Docker's image ID).
                r.notes.push(format!(
                    "image ID (config digest) {}: what docker load and docker images show. A docker-archive stores no manifest, so manifest digests differ from tool to tool (README: One image, three digests)",
                    p.config_descriptor.digest
                ));
            }
            r
        })
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
    let mut report = RebaseReport {
        image: job.image.to_string(),
        old_base: planned.old_base.clone(),
        new_base: run.onto.to_string(),
        destination: job.dest.to_string(),
        dry_run: run.dry_run,
        media_type: planned.root.media_type.clone(),
        digest: planned.root.digest.clone(),
        unchanged: planned.root.digest == planned.image.descriptor().digest,
        platforms,
        safety: (!planned.safety.is_empty()).then(|| planned.safety.clone()),
        safety_skipped: (run.safety == SafetyScan::Auto && planned.safety.is_empty()).then(|| {
            "the image or the new base is in a registry, and the verdict would download every layer; pass --safety to compute it".to_string()
        }),
        dropped,
        blobs,
        package_db_bytes_read: planned.db_bytes.clone(),
        up_to_date,
        requests: run.registry.session.requests(),
        warnings: Vec::new(),
        attestations: Vec::new(),
        not_carried,
    };
    if run.attest.any() {
        report.attestations = attestations(run, job, bases, image_src.as_ref(), &planned)?;
        if !run.dry_run {
            // The image is written (or already was: attaching again changes nothing).
            run.attest
                .attach(&job.dest, &run.registry, &mut report.attestations)?;
        }
    }
    report.warnings = bases.layer_cache.take_warnings();
    report.warnings.extend(wrong_base_warnings(&report));
    report.warnings.extend(report.not_carried.iter().map(|r| {
        format!(
            "not carried: {} {} describes the old digest {}",
            r.artifact_type.as_deref().unwrap_or("(no artifact type)"),
            r.digest,
            r.subject
        )
    }));
    Ok(report)
}

/// The documents `run.attest` asks for about the image `planned` wrote: one SBOM per
/// platform (its packages read from the result's layers), then the provenance.
fn attestations(
    run: &RebaseRun,
    job: &Job,
    bases: &Bases,
    image_src: &dyn Source,
    planned: &Planned,
) -> Result<Vec<Attestation>> {
    let sde = run.attest.source_date_epoch;
    let new_root = bases.new_base.descriptor().digest.clone();
    let mut out = Vec::new();
    if let Some(format) = run.attest.sbom {
        let base = crate::attest::BaseImage {
            name: run
                .base_name
                .clone()
                .unwrap_or_else(|| run.onto.to_string()),
            digest: new_root.clone(),
        };
        for p in planned.plans.iter().flatten() {
            let layers = p
                .copies
                .iter()
                .map(|c| {
                    let (src, role): (&dyn Source, _) = match c.origin {
                        Origin::Image => (image_src, crate::attest::LayerRole::Application),
                        Origin::NewBase => (bases.new_src.as_ref(), crate::attest::LayerRole::Base),
                        Origin::Built => {
                            (&planned.built, crate::attest::LayerRole::PackageDatabase)
                        }
                    };
                    (src, c.descriptor.clone(), role)
                })
                .collect();
            let img = WrittenImage {
                name: job.dest.to_string(),
                manifest: p.manifest_descriptor.clone(),
                config: &p.config,
                layers,
                base: Some(base.clone()),
            };
            let facts = attest_ops::image_facts(&img, &bases.layer_cache)?;
            out.push(attest_ops::sbom(format, &facts, sde));
        }
    }
    if run.attest.provenance {
        use crate::attest::provenance::{Dependency, Run, Subject, REBASE_BUILD_TYPE};
        let name = job.dest.to_string();
        let mut subjects: Vec<Subject> = planned
            .plans
            .iter()
            .flatten()
            .map(|p| Subject {
                name: name.clone(),
                digest: p.manifest_descriptor.digest.clone(),
            })
            .collect();
        if let Some(ip) = &planned.index {
            subjects.push(Subject {
                name: name.clone(),
                digest: ip.descriptor.digest.clone(),
            });
        }
        let mut dependencies = vec![Dependency {
            name: "image".into(),
            uri: Some(job.image.to_string()),
            digest: planned.image.descriptor().digest.clone(),
        }];
        match (&run.from, &bases.from) {
            (Some(r), Some(loaded)) => dependencies.push(Dependency {
                name: "old-base".into(),
                uri: Some(r.to_string()),
                digest: loaded.descriptor().digest.clone(),
            }),
            _ => {
                let mut seen = HashSet::new();
                for p in planned.plans.iter().flatten() {
                    if seen.insert(p.report.old_base.clone()) {
                        dependencies.push(Dependency {
                            name: "old-base".into(),
                            uri: None,
                            digest: p.report.old_base.clone(),
                        });
                    }
                }
            }
        }
        dependencies.push(Dependency {
            name: "new-base".into(),
            uri: Some(run.onto.to_string()),
            digest: new_root,
        });
        let mut params = serde_json::Map::new();
        params.insert("operation".into(), "rebase".into());
        params.insert("image".into(), job.image.to_string().into());
        params.insert("onto".into(), run.onto.to_string().into());
        if let Some(f) = &run.from {
            params.insert("from".into(), f.to_string().into());
        }
        params.insert("destination".into(), name.clone().into());
        if let Some(b) = &run.base_name {
            params.insert("base_name".into(), b.clone().into());
        }
        params.insert("package_db".into(), run.package_db.enabled.into());
        let statement = Run {
            build_type: REBASE_BUILD_TYPE,
            subjects,
            external_parameters: params,
            dependencies,
        };
        out.push(attest_ops::provenance(&statement, &planned.root, sde));
    }
    Ok(out)
}

/// Warnings for a rebase that is probably onto the wrong base, judged on diff IDs (layer
/// contents), per platform:
/// - the new base shares no layer with the old one: not a newer build of the same base, or a
///   base rebuilt from scratch (then the warning can be ignored);
/// - the new base already contains the application's own layers: `--onto` names an
///   application image (or an earlier rebase of this one), so its layers would be there twice.
pub fn wrong_base_warnings(report: &RebaseReport) -> Vec<String> {
    let mut out = Vec::new();
    for p in report.platforms.iter().filter(|p| !p.unchanged) {
        let new_ids: Vec<_> = p.layers_added.iter().map(|l| &l.diff_id).collect();
        let app_in_new = p
            .layers_kept
            .iter()
            .filter(|l| new_ids.contains(&&l.diff_id))
            .count();
        if app_in_new > 0 {
            out.push(format!(
                "{}: the new base {} already contains {app_in_new} of the application's {} layer(s); \
they are now in the image twice. Is --onto an application image instead of its base?",
                p.platform,
                report.new_base,
                p.layers_kept.len()
            ));
        } else if !p.layers_removed.is_empty()
            && !p
                .layers_removed
                .iter()
                .any(|l| new_ids.contains(&&l.diff_id))
        {
            out.push(format!(
                "{}: the new base {} shares no layer with the old base {}; check that --onto is a \
newer build of the same base (a base rebuilt from scratch looks like this too)",
                p.platform, report.new_base, report.old_base
            ));
        }
    }
    out
}
