//! OCI 1.1 referrers on layouts: attached through the library (the operation a rebase's
//! `--sbom` will call), listed by `inspect`, checked by `verify`, named and not carried by
//! `rebase`.

use std::collections::BTreeMap;
use std::fs;

use ocipatch::model::{Descriptor, Reference};
use ocipatch::ops::referrers;
use ocipatch::transport::RegistryOptions;
use serde_json::Value;

use crate::util::*;

const SPDX: &str = "application/spdx+json";

/// The descriptor `tag` has in the layout's index.json, as the library reads descriptors.
fn subject(l: &Layout, tag: &str) -> Descriptor {
    Descriptor::from_json(&index_descriptor(&l.dir, tag)).unwrap()
}

fn attach(l: &Layout, tag: &str, doc: &[u8]) -> referrers::Attached {
    referrers::attach(
        &Reference::parse(&l.oci(tag)).unwrap(),
        &RegistryOptions::default(),
        &subject(l, tag),
        SPDX,
        doc,
        SPDX,
        &BTreeMap::new(),
    )
    .unwrap()
}

fn entries_with_digest(l: &Layout, digest: &str) -> usize {
    l.index()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["digest"] == digest)
        .count()
}

#[test]
fn attaching_twice_lists_one_entry_and_keeps_the_tags() {
    let s = scenario();
    let before: Vec<Value> = s.layout.index()["manifests"].as_array().unwrap().clone();
    let a = attach(&s.layout, "app", b"{\"spdxVersion\":\"SPDX-2.3\"}");
    let b = attach(&s.layout, "app", b"{\"spdxVersion\":\"SPDX-2.3\"}");
    assert_eq!(a.digest, b.digest, "identical inputs give one manifest");
    let d = a.digest.to_string();
    assert_eq!(entries_with_digest(&s.layout, &d), 1);
    let after = s.layout.index()["manifests"].as_array().unwrap().clone();
    // Every earlier entry kept, in order; the referrer last, with its artifact type.
    assert_eq!(&after[..before.len()], &before[..]);
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[before.len()]["artifactType"], SPDX);
    let m = s.layout.read_json(&d);
    assert_eq!(
        m["subject"]["digest"],
        subject(&s.layout, "app").digest.to_string()
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        m["layers"][0]["digest"],
        sha256(b"{\"spdxVersion\":\"SPDX-2.3\"}")
    );
    // The tags still select their images.
    let tagged = s.layout.tagged("app").unwrap();
    assert_eq!(tagged, subject(&s.layout, "app").digest.to_string());
}

#[test]
fn inspect_lists_a_referrer_and_verify_checks_it() {
    let s = scenario();
    let a = attach(&s.layout, "app", b"{\"sbom\":1}");
    let v = run_ok(ocipatch().args(["inspect", &s.oci("app"), "--json"])).json();
    let listed = v["referrers"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{v}");
    assert_eq!(listed[0]["digest"], a.digest.to_string());
    assert_eq!(listed[0]["artifact_type"], SPDX);
    assert_eq!(
        listed[0]["subject"],
        subject(&s.layout, "app").digest.to_string()
    );
    let human = ok(&["inspect", &s.oci("app")]);
    assert!(
        human.contains(&format!("referrer: {SPDX} {}", a.digest)),
        "{human}"
    );
    // Another image of the layout has no referrer.
    let v = run_ok(ocipatch().args(["inspect", &s.oci("base-v1"), "--json"])).json();
    assert_eq!(v["referrers"], serde_json::json!([]));

    let (code, out, _) = outcome(&["verify", &s.oci("app"), "--json"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["referrers_checked"], 1);

    // The document corrupted: verify fails and names the referrer's blob.
    fs::write(s.layout.blob_path(&a.document.to_string()), b"{\"sbom\":2}").unwrap();
    let (code, out, _) = outcome(&["verify", &s.oci("app"), "--json"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1, "{r}");
    let problems = r["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{r}");
    assert_eq!(problems[0]["digest"], a.document.to_string());
    assert_eq!(problems[0]["error_kind"], "digest-mismatch");
    assert!(
        problems[0]["path"]
            .as_str()
            .unwrap()
            .contains(&format!("referrer {}", a.digest)),
        "{r}"
    );
}

#[test]
fn a_rebase_names_the_referrers_it_does_not_carry() {
    let s = scenario();
    let a = attach(&s.layout, "app", b"{\"sbom\":\"old\"}");
    let dest = s.path("out");
    let out_ref = format!("oci:{}:app", dest.display());
    let run = run_ok(ocipatch().args([
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &out_ref,
        "--json",
    ]));
    let r = run.json();
    let nc = r["not_carried"].as_array().unwrap();
    assert_eq!(nc.len(), 1, "{r}");
    let old = subject(&s.layout, "app").digest.to_string();
    assert_eq!(nc[0]["digest"], a.digest.to_string());
    assert_eq!(nc[0]["subject"], old);
    assert_eq!(nc[0]["artifact_type"], SPDX);
    let warning = format!(
        "not carried: {SPDX} {} describes the old digest {old}",
        a.digest
    );
    assert!(run.stderr().contains(&warning), "{}", run.stderr());
    // The destination has the image and nothing else: no referrer, no blob of it.
    let out = read_json(&dest.join("index.json"));
    assert_eq!(out["manifests"].as_array().unwrap().len(), 1, "{out}");
    assert!(!blob_path(&dest, &a.digest.to_string()).exists());
    assert!(!blob_path(&dest, &a.document.to_string()).exists());
    let v = run_ok(ocipatch().args(["inspect", &out_ref, "--json"])).json();
    assert_eq!(v["referrers"], serde_json::json!([]));
}

#[test]
fn archives_refuse_a_referrer_with_a_typed_error() {
    let s = scenario();
    let tar = s.path("a.tar");
    run_ok(ocipatch().args([
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("docker-archive:{}:app:v1", tar.display()),
    ]));
    let err = referrers::attach(
        &Reference::parse(&format!("docker-archive:{}:app:v1", tar.display())).unwrap(),
        &RegistryOptions::default(),
        &subject(&s.layout, "app"),
        SPDX,
        b"{}",
        SPDX,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), "referrers-unsupported", "{err}");
    assert!(err.to_string().contains("--sbom-file"), "{err}");
}
