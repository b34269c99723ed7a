//! `ocipatch rebase IMAGE --onto NEW_BASE [--from OLD_BASE] -o DEST [--base-name NAME] [--dry-run] [--json]`

use clap::Args;

use super::{exit, human_bytes, print_json};
use ocipatch::model::Reference;
use ocipatch::ops::{self, RebaseOptions, RebaseReport};

#[derive(Args, Debug)]
pub struct RebaseArgs {
    /// The image to rebase
    pub image: Reference,
    /// The new base to put under the image's own layers
    #[arg(long, value_name = "NEW_BASE")]
    pub onto: Reference,
    /// The image's current base (default: found via the image's base.digest annotation)
    #[arg(long, value_name = "OLD_BASE")]
    pub from: Option<Reference>,
    /// Where to write the rebased image
    #[arg(short = 'o', long = "output", value_name = "DEST")]
    pub dest: Reference,
    /// Value for the org.opencontainers.image.base.name annotation (default: NEW_BASE as written)
    #[arg(long, value_name = "NAME")]
    pub base_name: Option<String>,
    /// Decide everything, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a machine-readable report on stdout instead of the digest
    #[arg(long)]
    pub json: bool,
    /// No summary on stderr
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

pub fn run(args: RebaseArgs) -> anyhow::Result<i32> {
    let report = ops::rebase(&RebaseOptions {
        image: args.image,
        onto: args.onto,
        from: args.from,
        dest: args.dest,
        base_name: args.base_name,
        dry_run: args.dry_run,
        registry: args.registry.options(),
    })?;
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
