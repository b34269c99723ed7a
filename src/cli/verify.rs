//! `ocipatch verify IMAGE [--json]`

use clap::Args;

use super::progress::Bar;
use super::text::{errln, outln};
use super::{exit, human_bytes, print_json};
use ocipatch::model::Reference;
use ocipatch::ops;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The image to check
    #[arg(value_parser = super::secrets::reference())]
    pub image: Reference,
    /// Print a machine-readable report on stdout
    #[arg(long)]
    pub json: bool,
    /// No progress bar
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<i32> {
    let report = ops::verify(
        &args.image,
        &args.registry.options()?,
        &Bar::new(args.quiet),
    )?;
    if args.json {
        print_json(&report)?;
    } else {
        for p in &report.problems {
            let platforms = if p.platforms.is_empty() {
                String::new()
            } else {
                format!(" [{}]", p.platforms.join(", "))
            };
            outln!(
                "BAD {} {}{platforms} at {}: {}",
                p.kind,
                p.digest,
                p.path,
                p.message
            );
        }
        outln!(
            "{}: {} manifest(s), {} config(s), {} layer(s) ({}) checked{}: {}",
            report.image,
            report.manifests_checked,
            report.configs_checked,
            report.layers_checked,
            human_bytes(report.bytes_checked),
            if report.layers_foreign > 0 {
                format!(", {} foreign layer(s) not stored", report.layers_foreign)
            } else {
                String::new()
            } + &if report.referrers_checked > 0 {
                format!(", {} referrer(s)", report.referrers_checked)
            } else {
                String::new()
            },
            if report.intact() {
                "intact".to_string()
            } else {
                format!("{} problem(s)", report.problems.len())
            }
        );
    }
    if report.intact() {
        Ok(exit::OK)
    } else {
        errln!(
            "ocipatch: error: {} is corrupt: {} problem(s)",
            report.image,
            report.problems.len()
        );
        Ok(exit::ERROR)
    }
}
