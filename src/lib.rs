//! ocipatch: a daemonless OCI image patcher.
//!
//! Layers, top to bottom (arrows only point down): `ops` (one function per user operation) →
//! `plan` (pure decisions), `engine` (parallel blob hashing and copying), `transport` (where
//! images live) → `model` (references, digests, media types, descriptors). `layer` builds and
//! reads layer tarballs. Nothing here prints; the binary in `main.rs`/`cli` does.

pub mod engine;
pub mod error;
pub mod layer;
pub mod model;
pub mod ops;
pub mod plan;
pub mod transport;

pub use error::{Error, Result};
