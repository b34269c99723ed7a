//! `ocipatch check`: is the image's base outdated? Compared per platform, like with like: the
//! image's recorded base manifest digest against the base's current manifest for the same
//! platform, and, when those differ (or nothing was recorded), the layers themselves.

use serde::Serialize;

use super::load::load;
use crate::error::{Error, Result};
use crate::model::{Digest, Platform, Reference};
use crate::plan::rebase::{ANNOTATION_BASE_DIGEST, ANNOTATION_BASE_NAME};
use crate::transport::{open_source, RegistryOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Current,
    Outdated,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlatformCheck {
    pub platform: Platform,
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
}

#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub image: String,
    pub base: String,
    pub outdated: bool,
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
    let name = name.ok_or_else(|| {
        Error::Rebase(format!(
            "{image} has no {ANNOTATION_BASE_NAME} annotation; pass --base REF"
        ))
    })?;
    Reference::parse(name)
        .or_else(|_| Reference::parse(&format!("docker://{name}")))
        .map_err(|e| {
            Error::Rebase(format!(
                "{image}: its {ANNOTATION_BASE_NAME} annotation {name:?} is not a usable reference ({}); pass --base REF",
                e.reason
            ))
        })
}

pub fn check(
    image_ref: &Reference,
    base: Option<&Reference>,
    registry: &RegistryOptions,
) -> Result<CheckReport> {
    let src = open_source(image_ref, registry)?;
    let image = load(src.as_ref(), &src.root()?)?;
    let first = image.images()[0];
    let annotations = first.manifest.annotations();
    let base_ref = base_reference(base, annotations.get(ANNOTATION_BASE_NAME), image_ref)?;
    let base_src = open_source(&base_ref, registry)?;
    let base_root = base_src.root()?;
    let current = load(base_src.as_ref(), &base_root)?;

    let mut platforms = Vec::new();
    for img in image.images() {
        let platform = img.platform();
        let now = current.for_platform(platform).ok_or_else(|| {
            Error::Rebase(format!(
                "the base {base_ref} has no image for platform {platform} of {image_ref}"
            ))
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
        platforms.push(PlatformCheck {
            platform: platform.clone(),
            status,
            recorded_base: recorded,
            current_base: now.descriptor.digest.clone(),
            compared_by,
            missing_layers,
        });
    }
    Ok(CheckReport {
        image: image_ref.to_string(),
        base: base_ref.to_string(),
        outdated: platforms.iter().any(|p| p.status == Status::Outdated),
        platforms,
    })
}
