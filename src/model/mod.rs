//! The image model: digests, references, media types, descriptors, manifests, configs.

pub mod digest;
pub mod image;
pub mod media;
pub mod reference;
pub mod time;

pub use digest::Digest;
pub use image::{Config, Descriptor, Index, Manifest, Platform};
pub use reference::{Location, Reference, Selector, Shard};
