//! The provenance of a rebase or an append: an in-toto Statement v1 whose predicate is SLSA
//! Provenance v1.
//!
//! - `subject`: every written platform manifest and, for a multi-platform image, the index;
//!   each named by the destination reference as given, with its SHA-256.
//! - `buildDefinition.buildType`: [`REBASE_BUILD_TYPE`] or [`APPEND_BUILD_TYPE`].
//! - `externalParameters`: the operation and what the user asked for (references as given,
//!   and the flags that change the output); `internalParameters`: the ocipatch settings that
//!   are not flags but change the output (none yet: absent).
//! - `resolvedDependencies`: the inputs by digest (the application image, the old base, the
//!   new base; for an append the image and the layer).
//! - `runDetails.builder.id`: [`builder_id`]; `runDetails.metadata.startedOn`/`finishedOn`:
//!   only with `SOURCE_DATE_EPOCH` (both that time), so that the statement stays byte-identical
//!   across runs.

use serde_json::{json, Map, Value};

use super::{digest_set, to_canonical_json};
use crate::model::time::format_rfc3339;
use crate::model::Digest;

/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA Provenance v1 predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// `buildType` of a rebase (`externalParameters` documented in docs/json.md).
pub const REBASE_BUILD_TYPE: &str = "https://github.com/ocipatch/ocipatch/rebase/v1";
/// `buildType` of an append.
pub const APPEND_BUILD_TYPE: &str = "https://github.com/ocipatch/ocipatch/append/v1";

/// `https://github.com/ocipatch/ocipatch/releases/tag/v<version>`: ocipatch and its version.
pub fn builder_id() -> String {
    format!(
        "https://github.com/ocipatch/ocipatch/releases/tag/v{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// One subject: a written manifest or index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The destination reference as given.
    pub name: String,
    /// Its digest.
    pub digest: Digest,
}

/// One input of the run, by digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// What it is: `image`, `old-base`, `new-base`, `layer`.
    pub name: String,
    /// Where it was read from: the reference or file as given (`None`: found by digest, e.g.
    /// an old base through the image's `base.digest` annotation).
    pub uri: Option<String>,
    /// Its digest (a manifest's or index's, a layer blob's).
    pub digest: Digest,
}

/// What the statement says.
#[derive(Clone, Debug)]
pub struct Run {
    /// [`REBASE_BUILD_TYPE`] or [`APPEND_BUILD_TYPE`].
    pub build_type: &'static str,
    /// What was written: platform manifests, then the index.
    pub subjects: Vec<Subject>,
    /// The operation and its user parameters (keys sorted on output).
    pub external_parameters: Map<String, Value>,
    /// The inputs by digest.
    pub dependencies: Vec<Dependency>,
}

/// The statement as a JSON value.
pub fn statement(run: &Run, source_date_epoch: Option<i64>) -> Value {
    let subject: Vec<Value> = run
        .subjects
        .iter()
        .map(|s| json!({"name": s.name, "digest": digest_set(&s.digest)}))
        .collect();
    let deps: Vec<Value> = run
        .dependencies
        .iter()
        .map(|d| {
            let mut v = json!({"name": d.name, "digest": digest_set(&d.digest)});
            if let Some(uri) = &d.uri {
                v["uri"] = json!(uri);
            }
            v
        })
        .collect();
    let mut run_details = json!({
        "builder": {
            "id": builder_id(),
            "version": {"ocipatch": env!("CARGO_PKG_VERSION")},
        },
    });
    if let Some(t) = source_date_epoch {
        let t = format_rfc3339(t);
        run_details["metadata"] = json!({"startedOn": t, "finishedOn": t});
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": run.build_type,
                "externalParameters": Value::Object(run.external_parameters.clone()),
                "resolvedDependencies": deps,
            },
            "runDetails": run_details,
        },
    })
}

/// The statement, written as every document is ([`to_canonical_json`]).
pub fn statement_bytes(run: &Run, source_date_epoch: Option<i64>) -> Vec<u8> {
    to_canonical_json(&statement(run, source_date_epoch))
}
