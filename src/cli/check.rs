//! `ocipatch check IMAGE [--base REF] [--json]` and the fleet form
//! `ocipatch check --images-from FILE [--base REF] [--shard I/N] [--json]`.

use std::path::PathBuf;

use clap::Args;

use super::text::errln;
use super::text::outln;
use super::{exit, print_json};
use ocipatch::model::{Reference, Shard};
use ocipatch::ops::{self, check::FleetStatus, check::Status};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The image whose base to check (several, or --images-from, check a fleet)
    #[arg(required_unless_present = "images_from", value_name = "IMAGE",
          value_parser = super::secrets::reference())]
    pub images: Vec<Reference>,
    /// A file of image references, one per line (blank lines and # comments ignored)
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<PathBuf>,
    /// The base to compare with (default: the image's base.name annotation)
    #[arg(long, value_name = "REF", value_parser = super::secrets::reference())]
    pub base: Option<Reference>,
    /// Fleet: check only the I-th of N parts of the image list (I from 0); the same split as
    /// `rebase --shard`
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Fleet: images in flight at once when a registry is involved
    #[arg(long, value_name = "N", default_value_t = ops::fleet::DEFAULT_JOBS as u16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub jobs: u16,
    /// Print a machine-readable report on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    if args.images.len() == 1 && args.images_from.is_none() && args.shard.is_none() {
        return single(&args, &args.images[0]);
    }
    fleet(&args)
}

fn single(args: &CheckArgs, image: &Reference) -> anyhow::Result<i32> {
    let registry = args.registry.options()?;
    let report = ops::check::check_noting(image, args.base.as_ref(), &registry, &Notes)?;
    if args.json {
        print_json(&report)?;
    } else {
        for p in &report.platforms {
            match p.status {
                Status::Current => outln!(
                    "{}: up to date with {} ({})",
                    p.platform,
                    report.base,
                    p.current_base
                ),
                Status::Outdated => {
                    outln!(
                        "{}: OUTDATED: {} is now {}; the image lacks {} of its layer(s)",
                        p.platform,
                        report.base,
                        p.current_base,
                        p.missing_layers.len()
                    );
                    for u in &p.package_upgrades {
                        outln!("  {} {} -> {}", u.package, u.from, u.to);
                    }
                }
                // A verdict newer than this code (the enum is non-exhaustive).
                #[allow(unreachable_patterns)]
                other => outln!("{}: {other:?}", p.platform),
            }
        }
    }
    Ok(if report.outdated {
        exit::OUTDATED
    } else {
        exit::OK
    })
}

/// One line per image (`IMAGE  current|outdated|error  detail`); exit 1 when any image could
/// not be checked, else 3 when any is outdated, else 0. The JSON report has every verdict
/// whatever the exit code.
fn fleet(args: &CheckArgs) -> anyhow::Result<i32> {
    let mut images = args.images.clone();
    if let Some(file) = &args.images_from {
        images.extend(super::rebase::read_images_file(file)?);
    }
    let report = ops::check::check_fleet(
        &images,
        args.shard,
        args.base.as_ref(),
        &args.registry.options()?,
        args.jobs.into(),
    );
    if args.json {
        print_json(&report)?;
    } else {
        let wi = report
            .images
            .iter()
            .map(|e| e.image.len())
            .max()
            .unwrap_or(0)
            .max(5);
        outln!("{:wi$}  {:8}  DETAIL", "IMAGE", "STATUS");
        for e in &report.images {
            let (status, detail) = match (e.status, &e.report, &e.error) {
                (FleetStatus::Error, _, Some(err)) => ("error", err.clone()),
                (FleetStatus::Current, Some(r), _) => ("current", format!("base {}", r.base)),
                (FleetStatus::Outdated, Some(r), _) => {
                    let missing: usize = r.platforms.iter().map(|p| p.missing_layers.len()).sum();
                    (
                        "outdated",
                        format!("base {} changed; {missing} base layer(s) missing", r.base),
                    )
                }
                _ => unreachable!("an entry has a report or an error"),
            };
            outln!("{:wi$}  {status:8}  {detail}", e.image);
        }
        let shard = args
            .shard
            .map(|s| format!(" (shard {s})"))
            .unwrap_or_default();
        errln!(
            "{} current, {} outdated, {} error(s){shard}",
            report.current,
            report.outdated,
            report.errors
        );
    }
    Ok(if report.errors > 0 {
        exit::ERROR
    } else if report.outdated > 0 {
        exit::OUTDATED
    } else {
        exit::OK
    })
}

/// Prints the library's notes (what is about to happen that the user may not expect) on stderr.
struct Notes;

impl ops::Progress for Notes {
    fn note(&self, text: &str) {
        errln!("ocipatch: note: {text}");
    }
}
