//! ocipatch: a daemonless OCI image patcher, as a library.
//!
//! When a base image is patched, every application image built on it keeps the old layers
//! until it is rebuilt. ocipatch fixes that at the layer level, with no daemon and no build
//! context: it **rebases** an application's own layers onto a new base, **appends** a
//! reproducible patch layer, **verifies** every digest and diff ID, **inspects** layers and
//! their base, and **checks** whether an image's base is outdated. The `ocipatch` binary is a
//! thin command line over the functions below.
//!
//! # The one-page API
//!
//! | operation | function | options | report |
//! | --- | --- | --- | --- |
//! | rebase onto a new base | [`ops::rebase()`] (one image), [`ops::rebase_fleet`] (many, jobs from [`ops::fleet::jobs`]) | [`ops::RebaseRun`] (per run) + [`ops::Job`] (per image) | [`ops::RebaseReport`], [`ops::fleet::Report`] |
//! | append a layer | [`ops::append()`], [`ops::append::append_scratch`] (onto an empty image) | [`ops::AppendOptions`] | [`ops::AppendReport`] |
//! | verify every blob | [`ops::verify()`] | [`transport::RegistryOptions`] | [`ops::VerifyReport`] |
//! | inspect layers and base | [`ops::inspect()`] | an optional candidate base | [`ops::InspectReport`] |
//! | is the base outdated? | [`ops::check()`] | an optional base | [`ops::CheckReport`] |
//!
//! Every operation takes [`model::Reference`]s in skopeo's syntax; the transport is chosen by
//! the prefix, and any transport works for any argument:
//!
//! | reference | where the image is |
//! | --- | --- |
//! | `oci:DIR[:TAG]` | an OCI image layout directory |
//! | `oci-archive:FILE[:TAG]` | a tar of an OCI layout |
//! | `docker-archive:FILE[:NAME:TAG]` | what `docker save` writes |
//! | `docker://HOST[:PORT]/REPO[:TAG\|@DIGEST]` | a registry (distribution API) |
//!
//! Reports are plain data (`serde::Serialize`; the CLI prints them with `--json`, see
//! `docs/json.md`). Long operations take a [`ops::Progress`]; [`ops::Silent`] reports nothing.
//! Errors are one [`Error`] enum whose messages name the reference, blob or file at fault.
//! Nothing in the library prints.
//!
//! # Example: rebase, then verify
//!
//! ```
//! use ocipatch::model::Reference;
//! use ocipatch::ops::{self, Job, RebaseRun};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dest = format!("oci:{}:app", tmp.path().join("rebased").display());
//! // What the run shares: the new base and the flags (the old base is found through each
//! // image's base.digest annotation; `write: .copy_blobs(true)` gives no hard links).
//! let run = RebaseRun::new(Reference::parse("oci:testdata/images:base-v2")?);
//! // One image and where it goes.
//! let job = Job {
//!     image: Reference::parse("oci:testdata/images:app")?,
//!     dest: Reference::parse(&dest)?, // e.g. "oci:/tmp/rebased:app"
//! };
//! let report = ops::rebase(&run, &job, &ops::Silent)?;
//! println!("{} -> {}", report.destination, report.digest);
//! assert!(report.safety.iter().flatten().all(|s| s.is_clean()));
//! let check = ops::verify(&job.dest, &Default::default(), &ops::Silent)?;
//! assert!(check.problems.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! Runnable versions are in `examples/` (`cargo run --example rebase_layouts`,
//! `cargo run --example verify_registry -- docker://HOST/REPO:TAG`).
//!
//! # Layers of the code
//!
//! Arrows only point down: [`ops`] (one function per user operation) → `plan` (pure
//! decisions), `engine` (parallel blob hashing and copying), [`transport`] (where images
//! live), `pkgdb` (package databases) → [`model`] (references, digests, media types,
//! descriptors). `layer` builds and reads layer tarballs; `verdict` holds the pure checks
//! of the rebase safety verdict (version order and package relations, per package manager).
//! The API is [`ops`], [`transport`], [`model`], [`error`] and [`attest`] (the SBOM and
//! provenance documents of a written image); the other modules are building
//! blocks, and what the API hands out of them is re-exported from [`ops`] and [`error`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attest;
pub mod error;
pub mod model;
pub mod ops;
pub mod transport;

// The building blocks below are public only for the binary, the benchmarks, the fuzz targets
// and the interop tests; they are not API (hidden from the docs, no stability promise). What
// the documented API hands out of them is re-exported from `ops` and `error`.
#[doc(hidden)]
pub mod cleanup;
#[doc(hidden)]
pub mod engine;
#[doc(hidden)]
pub mod layer;
#[doc(hidden)]
pub mod pkgdb;
#[doc(hidden)]
pub mod plan;
#[doc(hidden)]
pub mod verdict;

pub use error::{Error, Result};
