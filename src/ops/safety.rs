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

#[derive(Clone, Debug, Serialize)]
pub struct SafetyReport {
    pub platform: Platform,
    pub findings: Vec<Finding>,
    /// os.version / os.features / variant differences between the old and new base.
    pub platform_changes: Vec<String>,
}

impl SafetyReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.platform_changes.is_empty()
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
