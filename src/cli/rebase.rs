//! `ocipatch rebase IMAGE --onto NEW_BASE [--from OLD_BASE] -o DEST [--base-name NAME] [--dry-run] [--json]`
//! and the fleet form `ocipatch rebase --onto NEW_BASE --from OLD_BASE -o DEST_PATTERN IMAGE...`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::progress::Bar;
use super::{exit, human_bytes, print_json};
use ocipatch::model::Reference;
use ocipatch::ops::{self, rebase::SafetyScan, RebaseOptions, RebaseReport};

#[derive(Args, Debug)]
pub struct RebaseArgs {
    /// The image(s) to rebase; several (or --images-from) rebase a fleet in one run
    #[arg(required_unless_present = "images_from", value_name = "IMAGE")]
    pub images: Vec<Reference>,
    /// A file of image references, one per line (blank lines and # comments ignored)
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<PathBuf>,
    /// The new base to put under the image's own layers
    #[arg(long, value_name = "NEW_BASE")]
    pub onto: Reference,
    /// The image's current base (default: found via the image's base.digest annotation)
    #[arg(long, value_name = "OLD_BASE")]
    pub from: Option<Reference>,
    /// Where to write the rebased image. For a fleet, a pattern: {name} (layout directory,
    /// archive or repository name), {tag}, {repo} (repository path) and {index} (position,
    /// from 1) are replaced per image, e.g. oci:rebased:{name}-{tag}
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    pub dest: String,
    /// Value for the org.opencontainers.image.base.name annotation (default: NEW_BASE as written)
    #[arg(long, value_name = "NAME")]
    pub base_name: Option<String>,
    /// Decide everything, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a machine-readable report on stdout instead of the digest
    #[arg(long)]
    pub json: bool,
    /// Refuse the rebase when the safety report finds anything (files the app overwrites that
    /// the new base changed, whiteouts of changed paths, app files under removed paths,
    /// platform changes)
    #[arg(long)]
    pub strict: bool,
    /// Compute the safety report (on by default with --dry-run and --strict, and with --json
    /// unless the image or new base is in a registry, where it downloads every layer)
    #[arg(long)]
    pub safety: bool,
    /// No summary on stderr
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

fn read_images_file(path: &PathBuf) -> anyhow::Result<Vec<Reference>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| Reference::parse(l).with_context(|| format!("{}:{}", path.display(), i + 1)))
        .collect()
}

pub fn run(args: RebaseArgs) -> anyhow::Result<i32> {
    let mut images = args.images.clone();
    if let Some(file) = &args.images_from {
        images.extend(read_images_file(file)?);
    }
    let jobs = images
        .iter()
        .enumerate()
        .map(|(i, img)| Ok((img.clone(), Reference::expand(&args.dest, img, i + 1)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut seen = std::collections::HashMap::new();
    for (img, dest) in &jobs {
        if let Some(other) = seen.insert(dest.to_string(), img.to_string()) {
            anyhow::bail!(
                "{other} and {img} would both be written to {dest}; use {{name}}, {{tag}} or {{index}} in -o"
            );
        }
    }
    // An archive is rewritten whole by each writer: two images into one archive would race.
    let mut archives = std::collections::HashMap::new();
    for (img, dest) in &jobs {
        if matches!(dest.transport(), "oci-archive" | "docker-archive") {
            if let Some(other) = archives.insert(dest.place(), img.to_string()) {
                anyhow::bail!(
                    "{other} and {img} would both be written into the archive {}; a fleet writes one image per archive (use {{name}} in the file name, or an oci: layout)",
                    dest.place()
                );
            }
        }
    }
    let (image, dest) = jobs[0].clone();
    let opts = RebaseOptions {
        image,
        onto: args.onto.clone(),
        from: args.from.clone(),
        dest,
        base_name: args.base_name.clone(),
        dry_run: args.dry_run,
        registry: args.registry.options(),
        safety: if args.safety || args.dry_run || args.strict {
            SafetyScan::On
        } else if args.json {
            SafetyScan::Auto
        } else {
            SafetyScan::Off
        },
        strict: args.strict,
    };
    if jobs.len() == 1 && args.images_from.is_none() {
        return single(&args, &opts);
    }
    fleet(&args, &opts, &jobs)
}

fn single(args: &RebaseArgs, opts: &RebaseOptions) -> anyhow::Result<i32> {
    let report = ops::rebase(opts, &Bar::new(args.quiet))?;
    if args.json {
        print_json(&report)?;
    } else {
        if !args.quiet {
            eprint!("{}", summary(&report));
        }
        println!("{}", report.digest);
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
struct FleetEntry {
    image: String,
    destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<RebaseReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct FleetReport {
    rebased: usize,
    failed: usize,
    images: Vec<FleetEntry>,
}

fn fleet(
    args: &RebaseArgs,
    opts: &RebaseOptions,
    jobs: &[(Reference, Reference)],
) -> anyhow::Result<i32> {
    let results = ops::rebase_fleet(opts, jobs)?;
    let images: Vec<FleetEntry> = jobs
        .iter()
        .zip(results)
        .map(|((img, dest), r)| {
            let (report, error) = match r {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            };
            FleetEntry {
                image: img.to_string(),
                destination: dest.to_string(),
                report,
                error,
            }
        })
        .collect();
    let failed = images.iter().filter(|e| e.error.is_some()).count();
    let report = FleetReport {
        rebased: images.len() - failed,
        failed,
        images,
    };
    if args.json {
        print_json(&report)?;
    } else {
        let w = |f: fn(&FleetEntry) -> &str| {
            report.images.iter().map(|e| f(e).len()).max().unwrap_or(0)
        };
        let (wi, wd) = (w(|e| &e.image).max(5), w(|e| &e.destination).max(11));
        println!("{:wi$}  {:wd$}  RESULT", "IMAGE", "DESTINATION");
        for e in &report.images {
            let result = match (&e.report, &e.error) {
                (Some(r), _) if r.dry_run => format!("{} (dry run)", r.digest),
                (Some(r), _) => r.digest.to_string(),
                (None, Some(err)) => format!("FAILED: {err}"),
                (None, None) => unreachable!("an entry has a report or an error"),
            };
            println!("{:wi$}  {:wd$}  {result}", e.image, e.destination);
        }
        if !args.quiet {
            eprintln!("{} rebased, {} failed", report.rebased, report.failed);
        }
    }
    Ok(if failed == 0 { exit::OK } else { exit::ERROR })
}

fn summary(r: &RebaseReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let verb = if r.dry_run { "Would rebase" } else { "Rebased" };
    let _ = writeln!(s, "{verb} {} onto {}", r.image, r.new_base);
    let _ = writeln!(s, "  old base: {}", r.old_base);
    for p in &r.platforms {
        let _ = writeln!(
            s,
            "  {}: {} base layer(s) removed, {} added, {} application layer(s) kept{}",
            p.platform,
            p.layers_removed.len(),
            p.layers_added.len(),
            p.layers_kept.len(),
            if p.unchanged { " (unchanged)" } else { "" }
        );
        for c in &p.config_changes {
            let _ = writeln!(s, "    config {c}");
        }
        for n in &p.notes {
            let _ = writeln!(s, "    note: {n}");
        }
    }
    for sr in r.safety.iter().flatten() {
        if sr.is_clean() {
            let _ = writeln!(
                s,
                "  safety ({}): nothing the new base changed is hidden or removed under the app",
                sr.platform
            );
        }
        for f in &sr.findings {
            let _ = writeln!(s, "  safety ({}): {}: {}", sr.platform, f.path, f.detail);
        }
        for c in &sr.platform_changes {
            let _ = writeln!(s, "  safety ({}): platform {c}", sr.platform);
        }
    }
    for d in &r.dropped {
        let _ = writeln!(s, "  dropped index entry {} ({})", d.digest, d.reason);
    }
    if !r.dry_run {
        let b = &r.blobs;
        let _ = writeln!(
            s,
            "  blobs: {} copied, {} linked, {} mounted, {} already present, {} foreign; {} digest-checked",
            b.copied,
            b.linked,
            b.mounted,
            b.present,
            b.foreign,
            human_bytes(b.bytes_checked)
        );
        let _ = writeln!(s, "  written to {} ({})", r.destination, r.media_type);
    }
    s
}
