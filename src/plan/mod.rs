//! Pure rebase planning: manifests and configs in, a plan out. No I/O happens here, so every
//! rule is unit-tested without files, and `--dry-run` is the plan without the copying.

pub mod append;
pub mod config;
pub mod history;
pub mod index;
pub mod rebase;
pub mod top_layer;

pub use append::{plan_append, AppendPlan, NewLayer};
pub use index::{rewrite_index, IndexPlan, NewEntry};
pub use rebase::{plan_image, BlobCopy, ImagePlan, ImageReport, LayerSummary, Origin, Parts};
pub use top_layer::{with_layer_on_top, without_top_layer, Stripped};

use crate::model::Digest;

/// Why a rebase cannot be planned. The operation layer adds which references were involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The image and a base are built for different platforms.
    #[error("platform {image} of the image does not match platform {base} of the {which}")]
    PlatformMismatch {
        /// The image's platform.
        image: String,
        /// The base's platform.
        base: String,
        /// Which base (`"old base"` or `"new base"`).
        which: &'static str,
    },
    /// A manifest and its config disagree on the number of layers.
    #[error("the {which} is inconsistent: its manifest lists {layers} layers but its config lists {diff_ids} diff IDs")]
    LayerCountMismatch {
        /// Which image (`"image"`, `"old base"`, `"new base"`).
        which: &'static str,
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// The image's layers do not start with the old base's.
    #[error("the image does not sit on the old base: layer {layer} differs (image diff ID {image_diff_id}, old base diff ID {base_diff_id})")]
    NotOnBase {
        /// Index of the first differing layer, from 0.
        layer: usize,
        /// The image's diff ID there (or a note that the image has fewer layers).
        image_diff_id: String,
        /// The old base's diff ID there.
        base_diff_id: Digest,
    },
    #[error(
        "the image's history does not start with the old base's history (entry {index}: {detail})"
    )]
    /// The image's history does not start with the old base's.
    HistoryMismatch {
        /// Index of the first differing history entry, from 0.
        index: usize,
        /// What differs.
        detail: String,
    },
    /// JSON the plan rewrote does not read back (an image whose manifest or config only just
    /// parsed); `what` names which.
    #[error("the rewritten {what} does not parse: {source}")]
    Rewrite {
        /// `manifest`, `config`, `planned manifest`…
        what: &'static str,
        /// Why.
        #[source]
        source: Box<crate::model::image::FormatError>,
    },
    /// A layer of the new base cannot be written into a Docker schema 2 manifest.
    #[error("layer {digest} has media type {media_type}, which has no Docker schema 2 equivalent; the image's manifest is Docker schema 2")]
    NoDockerName {
        /// The layer's digest.
        digest: Digest,
        /// Its (OCI-only) media type, e.g. zstd.
        media_type: String,
    },
}
