//! `ocipatch rebase`: open the sources, plan, copy the blobs the plan needs, commit.

use std::collections::{BTreeMap, HashSet};

use rayon::prelude::*;

use serde::Serialize;

use super::load::{load, Entry, Image, Loaded};
use super::progress::{Progress, Silent};
use super::safety::{self, SafetyReport};
use super::write::{write_image, BlobCopy, BlobStats, SharedCopies};
use crate::engine;
use crate::error::{Error, Result};
use crate::model::media;
use crate::model::{Descriptor, Digest, Platform, Reference};
use crate::plan::{self, rebase::ANNOTATION_BASE_DIGEST, ImagePlan, ImageReport, Origin};
use crate::transport::{check_blob, open_sink, open_source, RegistryOptions, Sink, Source};

/// When the safety report is computed. It reads (decompresses) every layer of the image and of
/// the new base: cheap on disk, a download of every layer from a registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SafetyScan {
    Off,
    /// On, unless the image or the new base is in a registry (a registry-to-registry rebase
    /// moves no layer bytes; the report then says the scan was skipped and why).
    Auto,
    On,
}

#[derive(Clone)]
pub struct RebaseOptions {
    pub image: Reference,
    pub onto: Reference,
    pub from: Option<Reference>,
    pub dest: Reference,
    /// `org.opencontainers.image.base.name` to record; the `--onto` reference when unset.
    pub base_name: Option<String>,
    pub dry_run: bool,
    /// Whether to scan layer headers for the safety report (what the swap changes under the app).
    pub safety: SafetyScan,
    /// Refuse the rebase (write nothing) when the safety report has any finding.
    pub strict: bool,
    /// Credentials and TLS for registry references.
    pub registry: RegistryOptions,
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
    /// Present when the safety scan ran (`--json`, `--dry-run`, `--strict`, `--safety`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety: Option<Vec<SafetyReport>>,
    /// Why the scan did not run although it was asked for with `--json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_skipped: Option<String>,
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
    safety: Vec<SafetyReport>,
}

/// The bases of a rebase, opened and read once: a fleet shares them between its images.
pub struct Bases {
    new_src: Box<dyn Source>,
    new_base: Loaded,
    from: Option<Loaded>,
}

impl Bases {
    pub fn open(
        onto: &Reference,
        from: Option<&Reference>,
        registry: &RegistryOptions,
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
                !media::is_foreign_layer(&l.media_type)
                    || self.new_src.has_blob(&l.digest).unwrap_or(false)
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
    let base_name = opts
        .base_name
        .clone()
        .unwrap_or_else(|| opts.onto.to_string());
    let mut resolved = BTreeMap::new();
    let mut old_bases = Vec::new();
    let mut safety = Vec::new();

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
        if scan {
            let base_len = old.config.diff_ids.len().min(img.manifest.layers.len());
            safety.push(safety::analyze(
                image_src, img, base_len, old, new_src, new,
            )?);
        }
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
            let entries: Vec<Option<plan::NewEntry>> = plans
                .iter()
                .map(|p| {
                    p.as_ref().map(|p| plan::NewEntry {
                        manifest: &p.manifest_descriptor,
                        os_version: p.report.platform.os_version.as_deref(),
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
    let copies = planned
        .plans
        .iter()
        .flatten()
        .flat_map(|p| &p.copies)
        .map(|c| BlobCopy {
            src: match c.origin {
                Origin::Image => image_src,
                Origin::NewBase => new_src,
            },
            descriptor: &c.descriptor,
            verified: c.origin == Origin::NewBase
                && shared.is_some_and(|(_, v)| v.contains(&c.descriptor.digest)),
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

/// `--strict`: any safety finding fails the rebase before anything is written.
fn refuse_unsafe(opts: &RebaseOptions, reports: &[SafetyReport]) -> Result<()> {
    let findings: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            let findings = r
                .findings
                .iter()
                .map(move |f| format!("{} {}: {}", r.platform, f.path, f.detail));
            let platform = r
                .platform_changes
                .iter()
                .map(move |c| format!("{} {c}", r.platform));
            findings.chain(platform)
        })
        .collect();
    match findings.first() {
        None => Ok(()),
        Some(first) => Err(Error::Rebase(format!(
            "rebase of {} refused by --strict: {} safety finding(s), first: {first}",
            opts.image,
            findings.len()
        ))),
    }
}

/// Rebases one image; `progress` hears about the blobs copied.
pub fn rebase(opts: &RebaseOptions, progress: &dyn Progress) -> Result<RebaseReport> {
    let bases = Bases::open(&opts.onto, opts.from.as_ref(), &opts.registry)?;
    rebase_on(opts, &bases, None, progress)
}

/// Rebases many images onto the same bases in one run (`opts.image`/`opts.dest` are replaced
/// by each job's). The bases are read once and the new base's blobs checked once; blobs shared
/// between images are copied once per destination; images run in parallel, and one image's
/// failure does not stop the others. Only a failure of the bases themselves fails the run.
pub fn rebase_fleet(
    opts: &RebaseOptions,
    jobs: &[(Reference, Reference)],
) -> Result<Vec<Result<RebaseReport>>> {
    let bases = Bases::open(&opts.onto, opts.from.as_ref(), &opts.registry)?;
    // Checking the new base's layers up front pays when sinks can then link them; a registry
    // base is mounted or streamed (and checked on the way) instead, never read twice.
    let verified = if opts.dry_run || bases.new_src.registry_repository().is_some() {
        HashSet::new()
    } else {
        bases.verify_layers()?
    };
    let shared = SharedCopies::default();
    Ok(jobs
        .par_iter()
        .map(|(image, dest)| {
            let job = RebaseOptions {
                image: image.clone(),
                dest: dest.clone(),
                ..opts.clone()
            };
            // Images run in parallel: one byte counter would mix them; the summary says it all.
            rebase_on(&job, &bases, Some((&shared, &verified)), &Silent)
        })
        .collect())
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

    let blobs = if opts.dry_run {
        BlobStats::default()
    } else {
        let sink = open_sink(&opts.dest, &opts.registry)?;
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
        safety: scan.then(|| planned.safety.clone()),
        safety_skipped: (opts.safety == SafetyScan::Auto && !scan).then(|| {
            "the image or the new base is in a registry, and scanning layer headers would download every layer; pass --safety to scan".to_string()
        }),
        dropped,
        blobs,
    })
}
