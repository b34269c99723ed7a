//! The image model: digests, references, media types, descriptors.

pub mod digest;

pub use digest::Digest;
