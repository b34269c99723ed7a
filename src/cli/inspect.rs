//! `ocipatch inspect IMAGE [--base REF] [--json]`

use clap::Args;

use super::{exit, human_bytes, print_json};
use ocipatch::model::Reference;
use ocipatch::ops::{self, inspect::Role, InspectReport};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The image to describe
    pub image: Reference,
    /// The image's base, to tell base layers from application layers (default: the image's
    /// base.digest annotation, when that base can be found)
    #[arg(long, value_name = "REF")]
    pub base: Option<Reference>,
    /// Print a machine-readable report on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

pub fn run(args: InspectArgs) -> anyhow::Result<i32> {
    let report = ops::inspect(&args.image, args.base.as_ref(), &args.registry.options())?;
    if args.json {
        print_json(&report)?;
    } else {
        print!("{}", human(&report));
    }
    Ok(exit::OK)
}

fn human(r: &InspectReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{}  {}  {}", r.image, r.digest, r.media_type);
    for p in &r.platforms {
        let _ = writeln!(
            s,
            "\n{}  manifest {}  ({})",
            p.platform, p.manifest, p.media_type
        );
        let _ = writeln!(s, "  config   {}", p.config);
        if let Some(c) = &p.created {
            let _ = writeln!(s, "  created  {c}");
        }
        if let Some(d) = &p.base_digest_annotation {
            let _ = writeln!(
                s,
                "  base     {d}  {}",
                p.base_name_annotation.as_deref().unwrap_or("")
            );
        }
        match &p.base {
            Some(b) if b.matches => {
                let _ = writeln!(
                    s,
                    "  base found via {}: {} ({} layer(s))",
                    b.found_via, b.manifest, b.layers
                );
            }
            Some(b) => {
                let _ = writeln!(
                    s,
                    "  base found via {}: {}: the image is NOT built on it",
                    b.found_via, b.manifest
                );
            }
            None => {}
        }
        if let Some(sr) = &p.rebase_safety {
            let _ = writeln!(
                s,
                "  rebase onto --base: {} safety finding(s){}",
                sr.findings.len() + sr.platform_changes.len(),
                if sr.is_clean() { "" } else { ":" }
            );
            for f in &sr.findings {
                let _ = writeln!(s, "    {}: {}", f.path, f.detail);
            }
            for c in &sr.platform_changes {
                let _ = writeln!(s, "    platform {c}");
            }
        }
        let _ = writeln!(
            s,
            "  layers ({}, {}):",
            p.layers.len(),
            human_bytes(p.total_size)
        );
        for (i, l) in p.layers.iter().enumerate() {
            let role = match l.role {
                Role::Base => "base",
                Role::App => "app ",
                Role::Unknown => "    ",
            };
            let kind = l.media_type.rsplit(['.', '+']).next().unwrap_or("");
            let _ = writeln!(
                s,
                "  {i:>3} {role} {} {:>9} {kind:<6} {}",
                l.digest.short(),
                human_bytes(l.size),
                l.created_by
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .take(70)
                    .collect::<String>()
            );
        }
    }
    for o in &r.other_entries {
        let _ = writeln!(s, "\nother index entry: {o}");
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}
