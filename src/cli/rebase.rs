//! `ocipatch rebase IMAGE --onto NEW_BASE [--from OLD_BASE] -o DEST [--base-name NAME] [--dry-run] [--json]`
//! and the fleet form `ocipatch rebase --onto NEW_BASE --from OLD_BASE -o DEST_PATTERN IMAGE...`.

use std::path::PathBuf;

use clap::Args;

use super::progress::Bar;
use super::text::{errln, outln, push_line};
use super::{exit, human_bytes, print_json, usage};
use ocipatch::model::{Reference, Shard};
use ocipatch::ops::fleet::{Entry, Status as FleetStatus};
use ocipatch::ops::FindingClass;
use ocipatch::ops::{self, rebase::SafetyScan, Job, RebaseReport, RebaseRun};
use ocipatch::ops::{DbAction, PackageDbReport};
use ocipatch::transport::WriteOptions;

#[derive(Args, Debug)]
pub struct RebaseArgs {
    /// The image(s) to rebase; several (or --images-from) rebase a fleet in one run
    #[arg(required_unless_present = "images_from", value_name = "IMAGE",
          value_parser = super::secrets::reference())]
    pub images: Vec<Reference>,
    /// A file of image references, one per line (blank lines and # comments ignored)
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<PathBuf>,
    /// The new base to put under the image's own layers
    #[arg(long, value_name = "NEW_BASE", value_parser = super::secrets::reference())]
    pub onto: Reference,
    /// The image's current base (default: found via the image's base.digest annotation)
    #[arg(long, value_name = "OLD_BASE", value_parser = super::secrets::reference())]
    pub from: Option<Reference>,
    /// Where to write the rebased image. For a fleet, a pattern: {name} (layout directory,
    /// archive or repository name), {tag}, {repo} (repository path) and {index} (position,
    /// from 1) are replaced per image, e.g. oci:rebased:{name}-{tag}
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    pub dest: String,
    /// Value for the org.opencontainers.image.base.name annotation (default: NEW_BASE's
    /// HOST/REPO:TAG for a registry base; none for an oci:, oci-archive: or docker-archive: base)
    #[arg(long, value_name = "NAME")]
    pub base_name: Option<String>,
    /// Decide everything, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a machine-readable report on stdout instead of the digest
    #[arg(long)]
    pub json: bool,
    /// Refuse the rebase (write nothing, exit 1) when the safety verdict has a real finding:
    /// app files the swap hides or removes, a release change, package relations the rebase
    /// breaks, app binaries that no longer load, a platform change
    /// (routine changes, such as files with identical contents, are not findings)
    #[arg(long)]
    pub strict: bool,
    /// Compute the safety verdict even where it is not computed by default (a registry
    /// rebase computes it when the package-database step reads every layer anyway; this flag
    /// downloads what it needs). Local rebases, --dry-run and --strict always compute it
    #[arg(long)]
    pub safety: bool,
    /// Do not reconcile package databases (dpkg status, apt extended_states, apk installed and
    /// world, rpm's rpmdb.sqlite) that the application's layers carry: scanners will then see the application's
    /// stale copy with the old base's package versions
    #[arg(long)]
    pub no_package_db: bool,
    /// Where to cache what each layer holds of the package databases, by layer digest
    /// (default: $XDG_CACHE_HOME/ocipatch or ~/.cache/ocipatch)
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Give an oci: destination its own copy of every blob instead of hard links to the
    /// source layout's blob files (for tools that edit blobs in place); a link an earlier run
    /// made is replaced by a copy
    #[arg(long)]
    pub copy: bool,
    /// Do not check that the application's binaries still load on the new base (the sonames
    /// and symbol versions each ELF file needs); the verdict then says it was not checked
    #[arg(long)]
    pub no_abi_check: bool,
    /// No summary on stderr
    #[arg(short, long)]
    pub quiet: bool,
    /// Fleet: take only the I-th of N parts of the image list (I from 0), by a hash of each
    /// image's canonical reference: N processes given the same list rebase every image once
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Fleet: images in flight at once when a registry is involved
    #[arg(long, value_name = "N", default_value_t = ops::fleet::DEFAULT_JOBS as u16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: u16,
    #[command(flatten)]
    pub attest: super::attest::AttestArgs,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

/// The references listed in `path`. A line that is not a reference is a usage error, like a bad
/// reference on the command line itself.
pub(super) fn read_images_file(path: &PathBuf) -> anyhow::Result<Vec<Reference>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ocipatch::Error::argument("--images-from", path, e, false))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            Reference::parse(l).map_err(|e| usage(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

pub fn run(args: RebaseArgs) -> anyhow::Result<i32> {
    let mut images = args.images.clone();
    if let Some(file) = &args.images_from {
        images.extend(read_images_file(file)?);
    }
    if images.is_empty() {
        let file = args
            .images_from
            .as_deref()
            .unwrap_or(std::path::Path::new("-"));
        let e: ocipatch::Error = ocipatch::error::UsageError::NoImagesListed {
            file: file.display().to_string(),
        }
        .into();
        return Err(e.into());
    }
    let jobs = ops::fleet::jobs(&images, &args.dest, args.shard)?;
    if let Some(dir) = &args.cache_dir {
        // The cache is optional; a --cache-dir that cannot be one is a mistake worth saying.
        std::fs::create_dir_all(dir)
            .map_err(|e| ocipatch::Error::argument("--cache-dir", dir, e, true))?;
    }
    let run = RebaseRun {
        from: args.from.clone(),
        base_name: args.base_name.clone(),
        dry_run: args.dry_run,
        registry: args.registry.options()?,
        safety: if args.safety || args.dry_run || args.strict {
            SafetyScan::On
        } else {
            SafetyScan::Auto
        },
        strict: args.strict,
        abi_check: !args.no_abi_check,
        package_db: ops::PackageDbOptions {
            enabled: !args.no_package_db,
            cache_dir: args.cache_dir.clone().or_else(ops::default_cache_dir),
        },
        write: WriteOptions::default().copy_blobs(args.copy),
        attest: args.attest.options()?,
        ..RebaseRun::new(args.onto.clone())
    };
    if args.no_abi_check && !args.quiet {
        errln!(
            "ocipatch: warning: --no-abi-check: whether the application's binaries still load on the new base is not checked"
        );
    }
    if args.no_package_db && !args.quiet {
        errln!(
            "ocipatch: warning: --no-package-db: package databases the application carries are left as they are; scanners will report the old base's package versions"
        );
    }
    match jobs.as_slice() {
        [job] if args.images_from.is_none() && args.shard.is_none() => single(&args, &run, job),
        _ => fleet(&args, &run, &jobs),
    }
}

fn single(args: &RebaseArgs, run: &RebaseRun, job: &Job) -> anyhow::Result<i32> {
    let mut report =
        ops::rebase(run, job, &Bar::new(args.quiet)).map_err(|e| match job.dest.local_path() {
            Some(dest) => e.at_argument("-o", dest, true),
            None => e,
        })?;
    args.attest
        .write(vec![(None, &mut report.attestations)], report.dry_run)?;
    if !args.quiet {
        for w in &report.warnings {
            errln!("ocipatch: warning: {w}");
        }
    }
    if args.json {
        print_json(&report)?;
    } else {
        if !args.quiet {
            summary(&report).lines().for_each(|l| errln!("{l}"));
        }
        outln!("{}", report.digest);
    }
    Ok(exit::OK)
}

fn fleet(args: &RebaseArgs, run: &RebaseRun, jobs: &[Job]) -> anyhow::Result<i32> {
    let mut report = ops::rebase_fleet(run, jobs, args.shard, args.jobs.into())?;
    let docs = report
        .images
        .iter_mut()
        .enumerate()
        .filter_map(|(i, e)| Some((Some(i + 1), &mut e.report.as_mut()?.attestations)))
        .collect();
    args.attest.write(docs, run.dry_run)?;
    if args.json {
        print_json(&report)?;
    } else {
        let w = |f: fn(&Entry) -> &str| report.images.iter().map(|e| f(e).len()).max().unwrap_or(0);
        let (wi, wd) = (w(|e| &e.image).max(5), w(|e| &e.destination).max(11));
        outln!("{:wi$}  {:wd$}  RESULT  SAFETY", "IMAGE", "DESTINATION");
        for e in &report.images {
            let result = match (&e.report, &e.error) {
                (Some(r), _) if r.dry_run => format!("{} (dry run)", r.digest),
                (Some(r), _) if r.up_to_date => format!("{} (unchanged)", r.digest),
                (Some(r), _) => r.digest.to_string(),
                (None, Some(err)) => format!("FAILED: {err}"),
                (None, None) => unreachable!("an entry has a report or an error"),
            };
            let safety = match e.report.as_ref().map(|r| (&r.safety, &r.safety_skipped)) {
                Some((Some(reports), _)) => {
                    let real: usize = reports.iter().map(|r| r.real_count()).sum();
                    if real == 0 {
                        "ok".to_string()
                    } else {
                        format!("{real} real finding(s)")
                    }
                }
                Some((None, Some(_))) => "not checked".to_string(),
                _ => "-".to_string(),
            };
            outln!("{:wi$}  {:wd$}  {result}  {safety}", e.image, e.destination);
        }
    }
    if !args.quiet {
        let shard = args
            .shard
            .map(|s| format!(" (shard {s})"))
            .unwrap_or_default();
        errln!(
            "{} rebased, {} unchanged, {} failed{shard}; {} registry requests ({} per image)",
            report.rebased,
            report.unchanged,
            report.failed,
            report.requests.total,
            report.requests.per_image
        );
        for e in &report.images {
            let mut docs = String::new();
            super::attest::summary(&mut docs, e.report.iter().flat_map(|r| &r.attestations));
            for l in docs.lines() {
                errln!("  {}:{l}", e.image);
            }
        }
        for e in report
            .images
            .iter()
            .filter(|e| e.status == FleetStatus::Failed)
        {
            errln!(
                "  failed: {}: {}",
                e.image,
                e.error.as_deref().unwrap_or_default()
            );
        }
    }
    Ok(if report.failed == 0 {
        exit::OK
    } else {
        exit::ERROR
    })
}

fn summary(r: &RebaseReport) -> String {
    let mut s = String::new();
    let verb = if r.dry_run { "Would rebase" } else { "Rebased" };
    push_line!(s, "{verb} {} onto {}", r.image, r.new_base);
    push_line!(s, "  old base: {}", r.old_base);
    for p in &r.platforms {
        push_line!(
            s,
            "  {}: {} base layer(s) removed, {} added, {} application layer(s) kept{}",
            p.platform,
            p.layers_removed.len(),
            p.layers_added.len(),
            p.layers_kept.len(),
            if p.unchanged { " (unchanged)" } else { "" }
        );
        for c in &p.config_changes {
            push_line!(s, "    config {c}");
        }
        for n in &p.notes {
            push_line!(s, "    note: {n}");
        }
        if let Some(db) = &p.package_db {
            package_summary(&mut s, db);
        }
    }
    for sr in r.safety.iter().flatten() {
        match (&sr.old_release, &sr.new_release) {
            (Some(o), Some(n)) if o.label() == n.label() => {
                push_line!(s, "  release ({}): {}", sr.platform, n.label())
            }
            (Some(o), Some(n)) => push_line!(
                s,
                "  release ({}): {} -> {}",
                sr.platform,
                o.label(),
                n.label()
            ),
            _ => {}
        }
        for f in sr.findings.iter().filter(|f| f.class == FindingClass::Real) {
            if f.detail.starts_with(&f.path) {
                push_line!(s, "  safety ({}): {}", sr.platform, f.detail);
                continue;
            }
            push_line!(s, "  safety ({}): {}: {}", sr.platform, f.path, f.detail);
        }
        for f in sr
            .findings
            .iter()
            .filter(|f| f.class == FindingClass::PackageDb)
        {
            let what = if ops::is_derived(&f.path) {
                "regenerated by a rebuild, reconciled"
            } else {
                "package database, reconciled"
            };
            push_line!(s, "  note ({}): {}: {what}", sr.platform, f.path);
        }
        for f in sr.findings.iter().filter(|f| f.class == FindingClass::Info) {
            push_line!(s, "  info ({}): {}: {}", sr.platform, f.path, f.detail);
        }
        for n in &sr.notes {
            push_line!(s, "  info ({}): {n}", sr.platform);
        }
        let volatile = sr
            .findings
            .iter()
            .filter(|f| f.class == FindingClass::Volatile)
            .count();
        if volatile > 0 {
            push_line!(
                s,
                "  info ({}): {volatile} finding(s) in volatile state (logs, caches, lock files), not a problem",
                sr.platform
            );
        }
        for c in &sr.platform_changes {
            push_line!(s, "  safety ({}): platform {c}", sr.platform);
        }
    }
    for d in &r.dropped {
        push_line!(s, "  dropped index entry {} ({})", d.digest, d.reason);
    }
    if !r.dry_run {
        let b = &r.blobs;
        push_line!(
            s,
            "  blobs: {} copied, {} linked, {} mounted, {} already present, {} foreign; {} digest-checked",
            b.copied,
            b.linked,
            b.mounted,
            b.present,
            b.foreign,
            human_bytes(b.bytes_checked)
        );
        push_line!(s, "  written to {} ({})", r.destination, r.media_type);
    }
    super::attest::summary(&mut s, &r.attestations);
    verdict_lines(&mut s, r);
    s
}

/// The last lines of the summary: one verdict per platform (`safety: ok`, or the count of
/// real findings and the first), or why there is none.
fn verdict_lines(s: &mut String, r: &RebaseReport) {
    match (&r.safety, &r.safety_skipped) {
        (Some(reports), _) => {
            let many = reports.len() > 1;
            for sr in reports {
                let platform = if many {
                    format!(" ({})", sr.platform)
                } else {
                    String::new()
                };
                push_line!(s, "safety{platform}: {}", sr.verdict());
            }
        }
        (None, Some(why)) => push_line!(s, "safety: not checked: {why}"),
        (None, None) => {}
    }
}

fn package_summary(s: &mut String, db: &PackageDbReport) {
    for d in &db.databases {
        let what = match d.action {
            DbAction::Reconciled => "reconciled",
            DbAction::Unchanged => "already current",
            DbAction::DeletedByApplication => "deleted by the application, left deleted",
            DbAction::ReportOnly => "read for the report",
            DbAction::NotReconciled => {
                "NOT reconciled (rpm BerkeleyDB/NDB): scanners will see the application's stale copy"
            }
            DbAction::Unresolvable => {
                "NOT reconciled: a link at its path cannot be followed inside the image (see safety)"
            }
            #[allow(unreachable_patterns)] // non-exhaustive: an action newer than this code
            _ => "handled",
        };
        let count = d
            .packages
            .map(|n| format!(", {n} packages"))
            .unwrap_or_default();
        let at = d
            .resolved
            .as_ref()
            .map(|r| format!(" (at /{r})"))
            .unwrap_or_default();
        let file = if ops::is_derived(&d.path) {
            "file a rebuild regenerates"
        } else {
            "package database"
        };
        push_line!(s, "    {file} /{}{at}: {what}{count}", d.path);
    }
    push_line!(
        s,
        "    packages: {} version change(s), {} added and {} removed by the new base, {} pinned by the application",
        db.changes.len(),
        db.added.len(),
        db.removed.len(),
        db.pinned.len()
    );
    // name:arch only where one name has several architectures (multi-arch).
    let name = |package: &str, arch: &str| {
        let multi = db.changes.iter().filter(|c| c.package == package).count() > 1;
        if arch.is_empty() || !multi {
            package.to_string()
        } else {
            format!("{package}:{arch}")
        }
    };
    for c in &db.changes {
        push_line!(
            s,
            "      {} {} -> {}",
            name(&c.package, &c.arch),
            c.from,
            c.to
        );
    }
    for a in &db.added {
        push_line!(s, "      + {} {}", name(&a.package, &a.arch), a.version);
    }
    for r in &db.removed {
        push_line!(s, "      - {} {}", name(&r.package, &r.arch), r.version);
    }
    for p in &db.pinned {
        push_line!(s, "      pinned: {p}");
    }
    if let Some(l) = &db.layer {
        let replaces = db
            .replaced_layer
            .as_ref()
            .map(|d| format!(", replacing {d}"))
            .unwrap_or_default();
        push_line!(
            s,
            "    package-database layer {} ({}){replaces}",
            l.digest,
            human_bytes(l.size)
        );
    }
}
