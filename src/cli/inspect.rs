//! `ocipatch inspect IMAGE [--base REF] [--json]`

use clap::Args;

use super::text::push_line;
use super::{exit, human_bytes, print_json};
use ocipatch::model::Reference;
use ocipatch::ops::{self, inspect::Role, InspectReport};

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The image to describe
    #[arg(value_parser = super::secrets::reference())]
    pub image: Reference,
    /// A base to compare the image with: when the image is built on it, its layers are told
    /// apart as the base's and the application's; otherwise it is a candidate new base, the
    /// layers are told apart by the image's recorded base, and the safety verdict of a rebase
    /// onto it is previewed (default: the base the base.digest annotation names, when found)
    #[arg(long, value_name = "REF", value_parser = super::secrets::reference())]
    pub base: Option<Reference>,
    /// Print a machine-readable report on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: super::registry::RegistryArgs,
}

pub fn run(args: InspectArgs) -> anyhow::Result<i32> {
    let report = ops::inspect(&args.image, args.base.as_ref(), &args.registry.options()?)?;
    if args.json {
        print_json(&report)?;
    } else {
        super::text::out(&human(&report));
    }
    Ok(exit::OK)
}

fn human(r: &InspectReport) -> String {
    let mut s = String::new();
    push_line!(s, "{}  {}  {}", r.image, r.digest, r.media_type);
    for p in &r.platforms {
        s.push('\n');
        push_line!(
            s,
            "{}  manifest {}  ({})",
            p.platform,
            p.manifest,
            p.media_type
        );
        push_line!(s, "  config   {}", p.config);
        if let Some(c) = &p.created {
            push_line!(s, "  created  {c}");
        }
        if let Some(d) = &p.base_digest_annotation {
            push_line!(
                s,
                "  base     {d}  {}",
                p.base_name_annotation.as_deref().unwrap_or("")
            );
        }
        match &p.base {
            Some(b) if b.matches => {
                push_line!(
                    s,
                    "  base found via {}: {} ({} layer(s))",
                    b.found_via,
                    b.manifest,
                    b.layers
                );
            }
            Some(b) => {
                push_line!(
                    s,
                    "  base found via {}: {}: not this image's base, a candidate new base (the image's own base is not known here)",
                    b.found_via,
                    b.manifest
                );
            }
            None => {}
        }
        if let Some(sr) = &p.rebase_safety {
            let real = sr
                .findings
                .iter()
                .filter(|f| f.class == ocipatch::ops::FindingClass::Real);
            push_line!(
                s,
                "  rebase onto --base (a candidate new base): {} safety finding(s){}",
                real.clone().count() + sr.platform_changes.len(),
                if sr.is_clean() { "" } else { ":" }
            );
            for f in real {
                push_line!(s, "    {}: {}", f.path, f.detail);
            }
            for f in &sr.findings {
                let note = match f.class {
                    ocipatch::ops::FindingClass::PackageDb => {
                        "package database, reconciled by the rebase"
                    }
                    ocipatch::ops::FindingClass::Volatile => "volatile state (logs, caches, locks)",
                    // Real, or a class newer than this code: listed above with the findings.
                    _ => continue,
                };
                push_line!(s, "    note: {}: {note}", f.path);
            }
            for c in &sr.platform_changes {
                push_line!(s, "    platform {c}");
            }
        }
        push_line!(
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
                #[allow(unreachable_patterns)] // non-exhaustive: a role newer than this code
                _ => "    ",
            };
            let kind = l.media_type.rsplit(['.', '+']).next().unwrap_or("");
            push_line!(
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
        s.push('\n');
        push_line!(s, "other index entry: {o}");
    }
    for f in &r.referrers {
        push_line!(
            s,
            "referrer: {} {} ({} bytes) describes {}",
            f.artifact_type.as_deref().unwrap_or("(no artifact type)"),
            f.digest,
            f.size,
            f.subject
        );
    }
    for n in &r.notes {
        push_line!(s, "note: {n}");
    }
    s
}
