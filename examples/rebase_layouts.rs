//! Rebase an application image from one OCI layout onto a base in another, as a library.
//!
//! ```text
//! cargo run --example rebase_layouts -- [IMAGE NEW_BASE DEST]
//! ```
//!
//! With no arguments it rebases the repository's example application
//! (`oci:testdata/images:app`, built on `base-v1`) onto `oci:testdata/images:base-v2` and
//! writes `oci:<temp dir>/rebased:app`. The old base is found through the image's
//! `org.opencontainers.image.base.digest` annotation, in NEW_BASE's layout.
#![allow(clippy::disallowed_macros)] // test and benchmark output is not image text

use ocipatch::model::Reference;
use ocipatch::ops::{self, rebase::SafetyScan, Job, RebaseRun};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tmp = tempfile::tempdir()?;
    let default_dest = format!("oci:{}:app", tmp.path().join("rebased").display());
    // The repository's example images: `cargo run` says where the package is at run time (a
    // binary built from another checkout, e.g. a shared target directory, must not look in
    // that checkout); the build-time directory is the fallback when run directly.
    let repo = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let (image, onto, dest) = match args.as_slice() {
        [] => (
            format!("oci:{repo}/testdata/images:app"),
            format!("oci:{repo}/testdata/images:base-v2"),
            default_dest,
        ),
        [image, onto, dest] => (image.clone(), onto.clone(), dest.clone()),
        _ => return Err("usage: rebase_layouts [IMAGE NEW_BASE DEST]".into()),
    };

    let run = RebaseRun {
        safety: SafetyScan::On, // the verdict even for registry images
        ..RebaseRun::new(Reference::parse(&onto)?)
    };
    let job = Job {
        image: Reference::parse(&image)?,
        dest: Reference::parse(&dest)?,
    };
    let report = ops::rebase(&run, &job, &ops::Silent)?;

    println!("rebased {} onto {}", report.image, report.new_base);
    for p in &report.platforms {
        println!(
            "  {}: {} base layer(s) removed, {} added, {} kept",
            p.platform,
            p.layers_removed.len(),
            p.layers_added.len(),
            p.layers_kept.len()
        );
    }
    for s in report.safety.iter().flatten() {
        for f in &s.findings {
            println!("  safety ({}): {}: {}", s.platform, f.path, f.detail);
        }
    }
    println!("{} -> {}", report.destination, report.digest);

    // Everything written is intact.
    let check = ops::verify(&job.dest, &Default::default(), &ops::Silent)?;
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    Ok(())
}
