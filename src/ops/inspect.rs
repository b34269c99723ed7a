//! `ocipatch inspect`: what a person needs to know before a rebase.

use serde::Serialize;

use super::load::{load, Image, Loaded};
use super::safety::SafetyReport;
use crate::error::Result;
use crate::model::{reference, Digest, Platform, Reference};
use crate::plan::rebase::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME};
use crate::transport::{open_source, RegistryOptions, Source};

/// Where a layer comes from, as far as the known base tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Part of the base image.
    Base,
    /// Added by the application on top of the base.
    App,
    /// The base is not known, so neither is the layer's role.
    Unknown,
}

/// One layer of an inspected image.
#[derive(Clone, Debug, Serialize)]
pub struct LayerInfo {
    /// The stored blob's digest.
    pub digest: Digest,
    /// The layer's media type.
    pub media_type: String,
    /// The stored blob's size in bytes.
    pub size: u64,
    /// The layer's diff ID from the config; `None` when the config lists fewer diff IDs than the
    /// manifest has layers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// `created_by` of the history entry that made the layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Base or application layer (`Unknown` when no base was found).
    pub role: Role,
}

/// The base an inspected image was compared with.
#[derive(Clone, Debug, Serialize)]
pub struct BaseInfo {
    /// How the base was found: `--base` or `annotation`.
    pub found_via: &'static str,
    /// The base's manifest digest for this platform.
    pub manifest: Digest,
    /// Number of the image's layers that are the base's.
    pub layers: usize,
    /// False when the image's layers do not start with the base's (the base was rebuilt, or
    /// this is not the image's base).
    pub matches: bool,
}

/// One platform (one manifest) of an inspected image.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformInfo {
    /// The platform of the image's config.
    pub platform: Platform,
    /// The manifest's digest.
    pub manifest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The config's digest.
    pub config: Digest,
    /// The config's `created` time, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The manifest's `org.opencontainers.image.base.digest` annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_digest_annotation: Option<String>,
    /// The manifest's `org.opencontainers.image.base.name` annotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_name_annotation: Option<String>,
    /// The base it was compared with; `None` when none was given or found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseInfo>,
    /// The layers, base first.
    pub layers: Vec<LayerInfo>,
    /// The sum of the layers' stored sizes, in bytes.
    pub total_size: u64,
    /// When `--base` is not the image's base but the recorded base is known: what a rebase
    /// from the recorded base onto `--base` would change under the application.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebase_safety: Option<SafetyReport>,
}

/// What [`inspect()`] found. Serialized for `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    /// The inspected reference, as given.
    pub image: String,
    /// The digest of the image's root: its manifest, or its index.
    pub digest: Digest,
    /// The root's media type.
    pub media_type: String,
    /// One entry per image in the index (one for a single manifest).
    pub platforms: Vec<PlatformInfo>,
    /// Index entries that are not images (attestations, artifacts).
    pub other_entries: Vec<String>,
    /// The image's OCI 1.1 referrers (manifests whose `subject` is its index or one of its
    /// platform manifests): SBOMs, signatures, attestations attached to it.
    pub referrers: Vec<super::referrers::Referrer>,
    /// Why a base was not found or does not fit, for humans.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// For each layer, the `created_by` of the non-empty history entry that made it.
fn layer_history(image: &Image) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = image
        .config
        .history
        .iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .map(|h| h.created_by().clone())
        .collect();
    out.resize(image.manifest.layers.len(), None);
    out
}

/// Finds the image's base: `--base` when given, else the base.digest annotation looked up in
/// the image's own source, else the base.name annotation when it is a reference we can open.
/// The base the image records in its annotations, looked up in `sources` (the image's own,
/// `--base`'s) and at the `base.name` reference when that is one we can open.
fn annotated_base(
    image: &Image,
    sources: &[&dyn Source],
    registry: &RegistryOptions,
    notes: &mut Vec<String>,
) -> Option<Loaded> {
    let annotations = image.manifest.annotations();
    let d = annotations
        .get(ANNOTATION_BASE_DIGEST)
        .and_then(|d| d.parse::<Digest>().ok())?;
    for src in sources {
        if let Ok(Some(desc)) = src.descriptor_for_digest(&d) {
            if let Ok(l) = load(*src, &desc) {
                return Some(l);
            }
        }
    }
    if let Some(name) = annotations.get(ANNOTATION_BASE_NAME) {
        if let Ok(r) = Reference::from_base_name(name) {
            if let Ok(s) = open_source(&r, registry) {
                if let Ok(Some(desc)) = s.descriptor_for_digest(&d) {
                    if let Ok(l) = load(s.as_ref(), &desc) {
                        return Some(l);
                    }
                }
            }
        }
    }
    notes.push(format!(
        "base {d} (from the {ANNOTATION_BASE_DIGEST} annotation) is not available here; pass --base REF to classify layers"
    ));
    None
}

fn resolve_base(
    image: &Image,
    explicit: Option<&Loaded>,
    src: &dyn Source,
    registry: &RegistryOptions,
    notes: &mut Vec<String>,
) -> Option<(Loaded, &'static str)> {
    if let Some(b) = explicit {
        return Some((b.clone(), "--base"));
    }
    annotated_base(image, &[src], registry, notes).map(|l| (l, "annotation"))
}

fn platform_info(image: &Image, base: Option<(&Image, &'static str)>) -> PlatformInfo {
    let history = layer_history(image);
    let base_info = base.map(|(b, via)| {
        let n = b.config.diff_ids.len();
        let matches =
            image.config.diff_ids.len() >= n && image.config.diff_ids[..n] == b.config.diff_ids[..];
        BaseInfo {
            found_via: via,
            manifest: b.descriptor.digest.clone(),
            layers: if matches { n } else { 0 },
            matches,
        }
    });
    let layers = image
        .manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerInfo {
            digest: l.digest.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
            diff_id: image.config.diff_ids.get(i).cloned(),
            created_by: history[i].clone(),
            role: match &base_info {
                Some(b) if b.matches && i < b.layers => Role::Base,
                Some(b) if b.matches => Role::App,
                _ => Role::Unknown,
            },
        })
        .collect();
    let annotations = image.manifest.annotations();
    PlatformInfo {
        platform: image.platform().clone(),
        manifest: image.descriptor.digest.clone(),
        media_type: image.manifest.media_type.clone(),
        config: image.manifest.config.digest.clone(),
        created: image
            .config
            .json
            .get("created")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        base_digest_annotation: annotations.get(ANNOTATION_BASE_DIGEST).cloned(),
        // As written by whoever built the image, but never what may be a password in it.
        base_name_annotation: annotations
            .get(ANNOTATION_BASE_NAME)
            .map(|n| reference::redact(n).into_owned()),
        base: base_info,
        total_size: image.manifest.layers.iter().map(|l| l.size).sum(),
        layers,
        rebase_safety: None,
    }
}

/// Describes an image: platforms, layers, the history entry that made each, and which layers
/// are the base's. With `base`, also previews what a rebase onto it would change.
///
/// ```
/// use ocipatch::{model::Reference, ops};
///
/// let image = Reference::parse("oci:testdata/images:app")?;
/// let report = ops::inspect(&image, None, &Default::default())?;
/// assert_eq!(report.platforms[0].layers.len(), 3);
/// # Ok::<(), ocipatch::Error>(())
/// ```
pub fn inspect(
    reference: &Reference,
    base: Option<&Reference>,
    registry: &RegistryOptions,
) -> Result<InspectReport> {
    let src = open_source(reference, registry)?;
    let root = src.root()?;
    let loaded = load(src.as_ref(), &root)?;
    let explicit = match base {
        Some(b) => {
            let bs = open_source(b, registry)?;
            let d = bs.root()?;
            Some(load(bs.as_ref(), &d)?)
        }
        None => None,
    };
    let mut notes = Vec::new();
    let mut platforms = Vec::new();
    let mut candidate_for_some = false;
    for image in loaded.images() {
        let resolved = resolve_base(image, explicit.as_ref(), src.as_ref(), registry, &mut notes);
        let base_image = resolved
            .as_ref()
            .and_then(|(l, via)| l.for_platform(image.platform()).map(|b| (b, *via)));
        if resolved.is_some() && base_image.is_none() {
            notes.push(format!(
                "the base has no image for platform {}",
                image.platform()
            ));
        }
        let mut info = platform_info(image, base_image);
        if info.base.as_ref().is_some_and(|b| !b.matches) {
            // --base is not what the image is built on: a candidate new base. The layers are
            // told apart by the image's recorded base, and the rebase onto --base is previewed.
            candidate_for_some = true;
            let recorded = annotated_base(image, &[src.as_ref()], registry, &mut notes);
            let recorded_image = recorded
                .as_ref()
                .and_then(|l| l.for_platform(image.platform()));
            let by_recorded = recorded_image.map(|b| platform_info(image, Some((b, "annotation"))));
            match by_recorded {
                Some(i) if i.base.as_ref().is_some_and(|b| b.matches) => info = i,
                // No recorded base to tell the layers apart: `base` says --base is not it.
                _ => {}
            }
            notes.push(format!(
                "{}: --base is not this image's base (its layers do not start with the {} of --base): previewing a rebase onto it",
                image.platform(),
                base_image.map_or(0, |(b, _)| b.config.diff_ids.len())
            ));
        }
        platforms.push(info);
    }
    // --base is a candidate new base: preview what a rebase onto it would say, exactly as
    // `rebase --dry-run` says it (package databases reconciled, the whole verdict).
    if let Some(candidate) = base {
        if candidate_for_some {
            match super::rebase::preview(reference, candidate, registry) {
                Ok(reports) => {
                    for r in reports {
                        if let Some(p) = platforms.iter_mut().find(|p| p.platform == r.platform) {
                            p.rebase_safety = Some(r);
                        }
                    }
                }
                Err(e) => notes.push(format!("no preview of a rebase onto {candidate}: {e}")),
            }
        }
    }
    notes.dedup();
    let other_entries = match &loaded {
        Loaded::Single(_) => vec![],
        Loaded::Multi { entries, .. } => entries
            .iter()
            .filter_map(|e| match e {
                super::load::Entry::Other(o) => {
                    Some(format!("{} ({})", o.descriptor.digest, o.why))
                }
                super::load::Entry::Image(_) => None,
            })
            .collect(),
    };
    Ok(InspectReport {
        image: reference.to_string(),
        digest: root.digest,
        media_type: root.media_type,
        platforms,
        other_entries,
        referrers: super::referrers::of_image(src.as_ref(), &loaded)?,
        notes,
    })
}
