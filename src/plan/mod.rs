//! Pure rebase planning: manifests and configs in, a plan out. No I/O happens here, so every
//! rule is unit-tested without files, and `--dry-run` is the plan without the copying.

pub mod append;
pub mod config;
pub mod history;
pub mod index;
pub mod rebase;

pub use append::{plan_append, AppendPlan, NewLayer};
pub use index::{rewrite_index, IndexPlan, NewEntry};
pub use rebase::{plan_image, BlobCopy, ImagePlan, ImageReport, LayerSummary, Origin, Parts};

use crate::model::Digest;

/// Why a rebase cannot be planned. The operation layer adds which references were involved.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("platform {image} of the image does not match platform {base} of the {which}")]
    PlatformMismatch {
        image: String,
        base: String,
        which: &'static str,
    },
    #[error("the {which} is inconsistent: its manifest lists {layers} layers but its config lists {diff_ids} diff IDs")]
    LayerCountMismatch {
        which: &'static str,
        layers: usize,
        diff_ids: usize,
    },
    #[error("the image does not sit on the old base: layer {layer} differs (image diff ID {image_diff_id}, old base diff ID {base_diff_id})")]
    NotOnBase {
        layer: usize,
        image_diff_id: String,
        base_diff_id: Digest,
    },
    #[error(
        "the image's history does not start with the old base's history (entry {index}: {detail})"
    )]
    HistoryMismatch { index: usize, detail: String },
    #[error("layer {digest} has media type {media_type}, which has no Docker schema 2 equivalent; the image's manifest is Docker schema 2")]
    NoDockerName { digest: Digest, media_type: String },
}
