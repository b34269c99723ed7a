//! `ocipatch check IMAGE [--base REF] [--json]`

use clap::Args;

use super::{exit, print_json};
use ocipatch::model::Reference;
use ocipatch::ops::{self, check::Status};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The image whose base to check
    pub image: Reference,
    /// The base to compare with (default: the image's base.name annotation)
    #[arg(long, value_name = "REF")]
    pub base: Option<Reference>,
    /// Print a machine-readable report on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let report = ops::check(&args.image, args.base.as_ref(), &args.registry.options())?;
    if args.json {
        print_json(&report)?;
    } else {
        for p in &report.platforms {
            match p.status {
                Status::Current => println!(
                    "{}: up to date with {} ({})",
                    p.platform, report.base, p.current_base
                ),
                Status::Outdated => println!(
                    "{}: OUTDATED: {} is now {}; the image lacks {} of its layer(s)",
                    p.platform,
                    report.base,
                    p.current_base,
                    p.missing_layers.len()
                ),
            }
        }
    }
    Ok(if report.outdated {
        exit::OUTDATED
    } else {
        exit::OK
    })
}
