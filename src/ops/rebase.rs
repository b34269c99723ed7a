//! `ocipatch rebase`: open the sources, plan, copy the blobs the plan needs, commit.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::load::{load, Entry, Image, Loaded};
use crate::error::{Error, Result};
use crate::model::{Descriptor, Digest, Platform, Reference};
use crate::plan::{self, rebase::ANNOTATION_BASE_DIGEST, ImagePlan, ImageReport, Origin};
use crate::transport::{open_sink, open_source, CopyOutcome, RegistryOptions, Sink, Source};

pub struct RebaseOptions {
    pub image: Reference,
    pub onto: Reference,
    pub from: Option<Reference>,
    pub dest: Reference,
    /// `org.opencontainers.image.base.name` to record; the `--onto` reference when unset.
    pub base_name: Option<String>,
    pub dry_run: bool,
    /// Credentials and TLS for registry references.
    pub registry: RegistryOptions,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BlobStats {
    /// Blobs streamed into the destination (digest checked on the way).
    pub copied: usize,
    /// Blobs hard-linked from the source (digest checked after linking).
    pub linked: usize,
    /// Blobs a registry mounted from the source's repository (no bytes moved through us).
    pub mounted: usize,
    /// Blobs the destination already had.
    pub present: usize,
    /// Foreign layers referenced by URL only.
    pub foreign: usize,
    /// Bytes in the copied and linked blobs (all read once to check them).
    pub bytes_checked: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DroppedEntry {
    pub digest: Digest,
    pub media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RebaseReport {
    pub image: String,
    pub old_base: String,
    pub new_base: String,
    pub destination: String,
    pub dry_run: bool,
    pub media_type: String,
    /// The written (or, with --dry-run, planned) manifest or index digest.
    pub digest: Digest,
    pub unchanged: bool,
    pub platforms: Vec<ImageReport>,
    pub dropped: Vec<DroppedEntry>,
    pub blobs: BlobStats,
}

/// Where the old base of one image comes from.
fn find_old_base<'a>(
    image: &Image,
    image_ref: &Reference,
    from: Option<&'a Loaded>,
    resolved: &'a mut BTreeMap<Digest, Loaded>,
    new_src: &dyn Source,
    image_src: &dyn Source,
) -> Result<&'a Image> {
    let platform = image.platform();
    let no_match = |what: &str| {
        Error::Rebase(format!(
            "{what} has no image for platform {platform} of {image_ref}"
        ))
    };
    if let Some(from) = from {
        return from
            .for_platform(platform)
            .ok_or_else(|| no_match("the old base (--from)"));
    }
    let Some(digest) = image
        .manifest
        .annotations()
        .get(ANNOTATION_BASE_DIGEST)
        .cloned()
    else {
        return Err(Error::Rebase(format!(
            "{image_ref} ({platform}) has no {ANNOTATION_BASE_DIGEST} annotation, so its old base is unknown; pass --from OLD_BASE"
        )));
    };
    let digest: Digest = digest.parse().map_err(|e| {
        Error::Rebase(format!(
            "{image_ref}: invalid {ANNOTATION_BASE_DIGEST} annotation: {e}; pass --from OLD_BASE"
        ))
    })?;
    if !resolved.contains_key(&digest) {
        // The new base's layout or repository is where the previous base usually still is;
        // the image's own is the next best place.
        let mut found = None;
        for src in [new_src, image_src] {
            if let Some(desc) = src.descriptor_for_digest(&digest)? {
                found = Some(load(src, &desc)?);
                break;
            }
        }
        let loaded = found.ok_or_else(|| {
            Error::Rebase(format!(
                "the old base {digest} of {image_ref} (its {ANNOTATION_BASE_DIGEST} annotation) is neither in {} nor in {image_ref}; pass --from OLD_BASE",
                new_src.reference()
            ))
        })?;
        resolved.insert(digest.clone(), loaded);
    }
    // An annotation naming an index (some tools record that) still resolves per platform.
    resolved[&digest]
        .for_platform(platform)
        .ok_or_else(|| no_match(&format!("the old base {digest}")))
}

/// The rebase, planned; nothing written yet.
struct Planned {
    image: Loaded,
    plans: Vec<Option<ImagePlan>>,
    index: Option<plan::IndexPlan>,
    root: Descriptor,
    old_base: String,
}

fn plan_all(
    opts: &RebaseOptions,
    image_src: &dyn Source,
    new_src: &dyn Source,
    from_src: Option<&dyn Source>,
) -> Result<Planned> {
    let image = load(image_src, &image_src.root()?)?;
    let new_base = load(new_src, &new_src.root()?)?;
    let from = from_src
        .map(|s| s.root().and_then(|d| load(s, &d)))
        .transpose()?;
    let base_name = opts
        .base_name
        .clone()
        .unwrap_or_else(|| opts.onto.to_string());
    let mut resolved = BTreeMap::new();
    let mut old_bases = Vec::new();

    let mut plan_one = |img: &Image| -> Result<ImagePlan> {
        let platform = img.platform();
        let old = find_old_base(
            img,
            &opts.image,
            from.as_ref(),
            &mut resolved,
            new_src,
            image_src,
        )?;
        old_bases.push(old.descriptor.digest.to_string());
        let new = new_base.for_platform(platform).ok_or_else(|| {
            Error::Rebase(format!(
                "the new base {} has no image for platform {platform} of {}",
                opts.onto, opts.image
            ))
        })?;
        plan::plan_image(img.parts(), old.parts(), new.parts(), &base_name).map_err(|source| {
            Error::Plan {
                context: format!(
                    "cannot rebase {} ({platform}) from {} onto {}",
                    opts.image,
                    opts.from
                        .as_ref()
                        .map_or_else(|| old.descriptor.digest.to_string(), |f| f.to_string()),
                    opts.onto
                ),
                source: Box::new(source),
            }
        })
    };

    let (plans, index, root) = match &image {
        Loaded::Single(img) => {
            let p = plan_one(img)?;
            let root = p.manifest_descriptor.clone();
            (vec![Some(p)], None, root)
        }
        Loaded::Multi { index, entries, .. } => {
            let plans = entries
                .iter()
                .map(|e| e.image().map(&mut plan_one).transpose())
                .collect::<Result<Vec<_>>>()?;
            if plans.iter().all(Option::is_none) {
                return Err(Error::Rebase(format!(
                    "{} has no images to rebase",
                    opts.image
                )));
            }
            let refs: Vec<Option<&ImagePlan>> = plans.iter().map(Option::as_ref).collect();
            let ip = plan::rewrite_index(index, &refs);
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
    })
}

/// Copies what the plan needs, then the new JSON blobs, then commits. Blobs are copied in
/// parallel; the first failure (in plan order) is reported.
fn write(
    planned: &Planned,
    sink: &dyn Sink,
    image_src: &dyn Source,
    new_src: &dyn Source,
) -> Result<BlobStats> {
    let mut seen = std::collections::HashSet::new();
    let copies: Vec<_> = planned
        .plans
        .iter()
        .flatten()
        .flat_map(|p| &p.copies)
        .filter(|c| seen.insert(c.descriptor.digest.clone()))
        .collect();
    let outcomes: Vec<Result<CopyOutcome>> = copies
        .par_iter()
        .map(|c| {
            let src = match c.origin {
                Origin::Image => image_src,
                Origin::NewBase => new_src,
            };
            sink.copy_blob(src, &c.descriptor)
        })
        .collect();
    let mut stats = BlobStats::default();
    for (c, outcome) in copies.iter().zip(outcomes) {
        match outcome? {
            CopyOutcome::Present => stats.present += 1,
            CopyOutcome::Mounted => stats.mounted += 1,
            CopyOutcome::Foreign => stats.foreign += 1,
            CopyOutcome::Linked => {
                stats.linked += 1;
                stats.bytes_checked += c.descriptor.size;
            }
            CopyOutcome::Copied => {
                stats.copied += 1;
                stats.bytes_checked += c.descriptor.size;
            }
        }
    }
    for p in planned.plans.iter().flatten() {
        sink.put_bytes(&p.config_descriptor, &p.config)?;
        sink.put_bytes(&p.manifest_descriptor, &p.manifest)?;
    }
    if let Some(ip) = &planned.index {
        sink.put_bytes(&ip.descriptor, &ip.bytes)?;
    }
    sink.commit(&planned.root)?;
    Ok(stats)
}

pub fn rebase(opts: &RebaseOptions) -> Result<RebaseReport> {
    let image_src = open_source(&opts.image, &opts.registry)?;
    let new_src = open_source(&opts.onto, &opts.registry)?;
    let from_src = opts
        .from
        .as_ref()
        .map(|f| open_source(f, &opts.registry))
        .transpose()?;
    let planned = plan_all(
        opts,
        image_src.as_ref(),
        new_src.as_ref(),
        from_src.as_deref(),
    )?;

    let blobs = if opts.dry_run {
        BlobStats::default()
    } else {
        let sink = open_sink(&opts.dest, &opts.registry)?;
        write(
            &planned,
            sink.as_ref(),
            image_src.as_ref(),
            new_src.as_ref(),
        )
        .inspect_err(|_| {
            sink.abort();
        })?
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
        dropped,
        blobs,
    })
}
