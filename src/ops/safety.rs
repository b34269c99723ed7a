//! The rebase safety report: what swapping the base changes under the application.
//!
//! Headers only (no file contents), every layer in parallel: the old base's files (the image's
//! own base layers, which are the old base's by diff ID), the new base's, and the application's
//! layers go to the pure analysis in `layer::safety_findings`; platform differences between the
//! two bases are added here.

use serde::Serialize;

use super::layers::scan_layers;
use super::load::Image;
use crate::error::Result;
use crate::layer::{safety_findings, Finding, Tree};
use crate::model::Platform;
use crate::transport::Source;

/// The rebase safety report of one platform: what the swap of bases changes under the application.
#[derive(Clone, Debug, Serialize)]
pub struct SafetyReport {
    /// The platform of the image's config.
    pub platform: Platform,
    /// What changes under the application, in path order.
    pub findings: Vec<Finding>,
    /// os.version / os.features / variant differences between the old and new base.
    pub platform_changes: Vec<String>,
}

impl SafetyReport {
    /// No real finding (notes on reconciled package databases and volatile state do not count).
    pub fn is_clean(&self) -> bool {
        self.findings
            .iter()
            .all(|f| f.class != crate::layer::FindingClass::Real)
            && self.platform_changes.is_empty()
    }
}

/// `image` sits on its first `base_len` layers (the old base); `new_base` replaces them.
pub fn analyze(
    image_src: &dyn Source,
    image: &Image,
    base_len: usize,
    old_base: &Image,
    new_src: &dyn Source,
    new_base: &Image,
) -> Result<SafetyReport> {
    let (image_layers, new_layers) = rayon::join(
        || scan_layers(image_src, &image.manifest.layers),
        || scan_layers(new_src, &new_base.manifest.layers),
    );
    let (image_layers, new_layers) = (image_layers?, new_layers?);
    let mut old_tree = Tree::new();
    for l in &image_layers[..base_len] {
        old_tree.apply(l);
    }
    let mut new_tree = Tree::new();
    for l in &new_layers {
        new_tree.apply(l);
    }
    let findings = safety_findings(&old_tree, &new_tree, &image_layers[base_len..]);

    let mut platform_changes = Vec::new();
    let field = |c: &Image, k: &str| c.config.json.get(k).cloned().unwrap_or_default();
    for key in ["os.version", "os.features", "variant"] {
        let (a, b) = (field(old_base, key), field(new_base, key));
        if a != b {
            platform_changes.push(format!("{key}: {a} -> {b}"));
        }
    }
    Ok(SafetyReport {
        platform: image.platform().clone(),
        findings,
        platform_changes,
    })
}

/// Findings at a package database path ocipatch reconciles become notes: a rebase writes the
/// merged database on top (see `ops::pkgdb`).
pub fn mark_package_databases(report: &mut SafetyReport) {
    for f in &mut report.findings {
        if crate::pkgdb::Format::for_path(&f.path).is_some() {
            f.class = crate::layer::FindingClass::PackageDb;
        }
    }
}
