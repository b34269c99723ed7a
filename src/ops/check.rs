//! `ocipatch check`: is the image's base outdated? Compared per platform, like with like: the
//! image's recorded base manifest digest against the base's current manifest for the same
//! platform, and, when those differ (or nothing was recorded), the layers themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::fleet;
use super::load::{load, Loaded};
use super::pkgdb::{base_upgrades, default_cache_dir};
use super::progress::{Progress, Silent};
use super::summaries::LayerSummaries;
use crate::error::{Error, MissingInput, Result};
use crate::model::{reference, Digest, Platform, Reference, Shard};
use crate::pkgdb::PackageChange;
use crate::plan::rebase::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME};
use crate::transport::{open_source, RegistryOptions, Source};

/// Whether an image is on its base's current version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// The image's layers start with the current base's (or its annotation names the current
    /// manifest).
    Current,
    /// The base has moved on: a rebase would change the image.
    Outdated,
}

/// The verdict for one platform.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformCheck {
    /// The platform of the image's config.
    pub platform: Platform,
    /// Current or outdated.
    pub status: Status,
    /// The image's `base.digest` annotation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_base: Option<String>,
    /// The base's manifest for this platform, now.
    pub current_base: Digest,
    /// How the verdict was reached: `digest` (annotation equals the current manifest) or
    /// `layers` (the base's diff IDs are, or are not, a prefix of the image's).
    pub compared_by: &'static str,
    /// Diff IDs of the current base's layers that the image does not have, in order.
    pub missing_layers: Vec<Digest>,
    /// When outdated: the packages (dpkg, apk) whose version the current base would change, as
    /// the image's package database lists them now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub package_upgrades: Vec<PackageChange>,
}

/// What [`check()`] found. Serialized for `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// The checked reference, as given.
    pub image: String,
    /// The base compared against: `--base`, or the reference the `base.name` annotation names.
    pub base: String,
    /// At least one platform is outdated.
    pub outdated: bool,
    /// One verdict per platform of the image.
    pub platforms: Vec<PlatformCheck>,
}

/// The base to compare against: `--base`, else the `base.name` annotation (a reference in our
/// syntax, or a plain registry name as builders write it: `docker.io/library/debian:12`).
fn base_reference(
    explicit: Option<&Reference>,
    name: Option<&String>,
    image: &Reference,
) -> Result<Reference> {
    if let Some(r) = explicit {
        return Ok(r.clone());
    }
    let name = name.ok_or_else(|| Error::needs_flag(image, MissingInput::BaseName))?;
    // The annotation comes from the image: quoted redacted, as any reference.
    Reference::from_base_name(name).map_err(|source| {
        Error::needs_flag(
            image,
            MissingInput::InvalidBaseName {
                name: reference::redact(name).into_owned(),
                source: Box::new(source),
            },
        )
    })
}

/// Tells whether an image's base is outdated, per platform: `base`, else the base its
/// `org.opencontainers.image.base.name` annotation names (which may be a registry).
///
/// ```
/// use ocipatch::{model::Reference, ops};
///
/// let app = Reference::parse("oci:testdata/images:app")?;
/// let base_v2 = Reference::parse("oci:testdata/images:base-v2")?;
/// let report = ops::check(&app, Some(&base_v2), &Default::default())?;
/// assert!(report.outdated, "the app is still on base-v1");
/// # Ok::<(), ocipatch::Error>(())
/// ```
pub fn check(
    image_ref: &Reference,
    base: Option<&Reference>,
    registry: &RegistryOptions,
) -> Result<CheckReport> {
    check_with(
        image_ref,
        base,
        registry,
        &BaseCache::new(registry),
        &Silent,
    )
}

/// [`check()`], telling `progress` (its [`Progress::note`]) before it contacts a registry the
/// caller did not name: the one the image's `base.name` annotation names when `base` is `None`.
pub fn check_noting(
    image_ref: &Reference,
    base: Option<&Reference>,
    registry: &RegistryOptions,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    check_with(
        image_ref,
        base,
        registry,
        &BaseCache::new(registry),
        progress,
    )
}

/// `check`, reading the base through `bases` (a fleet reads each base once). A failure with a
/// base taken from the annotation says so and names `--base`.
fn check_with(
    image_ref: &Reference,
    base: Option<&Reference>,
    registry: &RegistryOptions,
    bases: &BaseCache,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let mut implicit = None;
    check_inner(image_ref, base, registry, bases, progress, &mut implicit).map_err(|e| {
        match implicit {
            Some(base) => Error::ImplicitBase {
                base,
                source: Box::new(e),
            },
            None => e,
        }
    })
}

fn check_inner(
    image_ref: &Reference,
    base: Option<&Reference>,
    registry: &RegistryOptions,
    bases: &BaseCache,
    progress: &dyn Progress,
    implicit: &mut Option<String>,
) -> Result<CheckReport> {
    let src = open_source(image_ref, registry)?;
    let image = load(src.as_ref(), &src.root()?)?;
    let first = *image.images().first().ok_or_else(|| Error::NoImages {
        image: image_ref.to_string(),
        wanted: "image manifest (its index lists none); nothing to check",
    })?;
    let annotations = first.manifest.annotations();
    let base_ref = base_reference(base, annotations.get(ANNOTATION_BASE_NAME), image_ref)?;
    if base.is_none() {
        *implicit = Some(base_ref.to_string());
        if base_ref.is_registry() {
            progress.note(&format!(
                "no --base given: comparing with {base_ref}, named by the image's {ANNOTATION_BASE_NAME} annotation; this contacts that registry (pass --base REF to compare with another copy, e.g. --base oci:DIR:TAG)"
            ));
        }
    }
    let OpenBase {
        loaded: current,
        src: base_src,
    } = bases.get(&base_ref)?;

    let mut platforms = Vec::new();
    for img in image.images() {
        let platform = img.platform();
        let now = current
            .for_platform(platform)
            .ok_or_else(|| Error::NoPlatform {
                which: "the base",
                base: Some(base_ref.to_string()),
                platform: platform.to_string(),
                image: image_ref.to_string(),
            })?;
        let recorded = img
            .manifest
            .annotations()
            .get(ANNOTATION_BASE_DIGEST)
            .cloned();
        let now_digest = now.descriptor.digest.to_string();
        let base_ids = &now.config.diff_ids;
        let (status, compared_by) = if recorded.as_deref() == Some(now_digest.as_str()) {
            (Status::Current, "digest")
        } else if img.config.diff_ids.starts_with(base_ids) {
            // Same base content: the annotation may name an index or a rebuilt-but-equal base.
            (Status::Current, "layers")
        } else {
            (Status::Outdated, "layers")
        };
        let missing_layers = if status == Status::Outdated {
            base_ids
                .iter()
                .filter(|d| !img.config.diff_ids.contains(d))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let package_upgrades = if status == Status::Outdated {
            base_upgrades(
                src.as_ref(),
                &img.manifest.layers,
                base_src.as_ref(),
                &now.manifest.layers,
                &bases.layers,
            )?
        } else {
            Vec::new()
        };
        platforms.push(PlatformCheck {
            platform: platform.clone(),
            status,
            recorded_base: recorded,
            current_base: now.descriptor.digest.clone(),
            compared_by,
            missing_layers,
            package_upgrades,
        });
    }
    Ok(CheckReport {
        image: image_ref.to_string(),
        base: base_ref.to_string(),
        outdated: platforms.iter().any(|p| p.status == Status::Outdated),
        platforms,
    })
}

/// The bases a run compares with, each read once (by canonical reference), with their own
/// request count. One lock per base: images on different bases never wait for each other.
struct BaseCache {
    registry: RegistryOptions,
    loaded: Mutex<HashMap<String, Arc<Mutex<Option<OpenBase>>>>>,
    /// What each layer holds of the package databases, for every image of the run.
    layers: LayerSummaries,
}

/// A base read once: its graph, and the source its layers are read from (for the package
/// upgrades of an outdated image).
#[derive(Clone)]
struct OpenBase {
    loaded: Arc<Loaded>,
    src: Arc<dyn Source>,
}

impl BaseCache {
    fn new(registry: &RegistryOptions) -> BaseCache {
        BaseCache {
            registry: registry.clone(),
            loaded: Mutex::default(),
            layers: LayerSummaries::new(default_cache_dir()),
        }
    }

    fn get(&self, base: &Reference) -> Result<OpenBase> {
        let cell = self
            .loaded
            .lock()
            .expect("no panics while holding the lock")
            .entry(base.canonical())
            .or_default()
            .clone();
        let mut cell = cell.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = cell.as_ref() {
            return Ok(open.clone());
        }
        let src: Arc<dyn Source> = Arc::from(open_source(base, &self.registry)?);
        let loaded = Arc::new(load(src.as_ref(), &src.root()?)?);
        let open = OpenBase { loaded, src };
        *cell = Some(open.clone());
        Ok(open)
    }
}

/// One line of a fleet check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetStatus {
    /// Every platform is current.
    Current,
    /// At least one platform is outdated.
    Outdated,
    /// The check failed (unreadable image or base); see the entry's `error`.
    Error,
}

/// One image of a fleet check.
#[derive(Clone, Debug, Serialize)]
pub struct FleetCheckEntry {
    /// The image reference, as listed.
    pub image: String,
    /// Its verdict.
    pub status: FleetStatus,
    /// Registry requests this image's check sent (its bases are counted once per run).
    pub requests: u64,
    /// The image's report; `None` when the check failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<CheckReport>,
    /// Why the check failed; `None` when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The failure's [`Error::kind`]; `None` when the check succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
}

/// What a fleet check found: counts, then one entry per image, in the list's order.
#[derive(Clone, Debug, Serialize)]
pub struct FleetCheckReport {
    /// The shard this run took, `I/N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Images whose every platform is current.
    pub current: usize,
    /// Outdated images.
    pub outdated: usize,
    /// Images whose check failed.
    pub errors: usize,
    /// The run's registry request counts.
    pub requests: fleet::Requests,
    /// One entry per image.
    pub images: Vec<FleetCheckEntry>,
}

/// Checks many images (`ocipatch check --images-from`): each base is read once, images run
/// `jobs` at once when a registry is involved, and one image's error is its own line.
pub fn check_fleet(
    images: &[Reference],
    shard: Option<Shard>,
    base: Option<&Reference>,
    registry: &RegistryOptions,
    jobs: usize,
) -> FleetCheckReport {
    let images = fleet::select(images.to_vec(), shard, |r| r);
    let images = images.as_slice();
    let session = &registry.session;
    let bases = BaseCache::new(&RegistryOptions {
        session: session.counted(),
        ..registry.clone()
    });
    let network = images.iter().chain(base).any(Reference::is_registry);
    let entries = fleet::run(images, network, jobs, |image| {
        let own = RegistryOptions {
            session: session.counted(),
            ..registry.clone()
        };
        let result = check_with(image, base, &own, &bases, &Silent);
        let requests = own.session.requests();
        match result {
            Ok(r) => FleetCheckEntry {
                image: image.to_string(),
                status: if r.outdated {
                    FleetStatus::Outdated
                } else {
                    FleetStatus::Current
                },
                requests,
                report: Some(r),
                error: None,
                error_kind: None,
            },
            Err(e) => FleetCheckEntry {
                image: image.to_string(),
                status: FleetStatus::Error,
                requests,
                report: None,
                error: Some(e.to_string()),
                error_kind: Some(e.kind()),
            },
        }
    });
    let count = |s: FleetStatus| entries.iter().filter(|e| e.status == s).count();
    FleetCheckReport {
        shard: shard.map(|s| s.to_string()),
        current: count(FleetStatus::Current),
        outdated: count(FleetStatus::Outdated),
        errors: count(FleetStatus::Error),
        requests: fleet::Requests::new(
            session.total_requests(),
            bases.registry.session.requests(),
            images.len(),
        ),
        images: entries,
    }
}
