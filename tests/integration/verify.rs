//! `ocipatch verify` and `ocipatch inspect` on good images and on corruptions built from them.

use std::fs;

use serde_json::{json, Value};

use crate::util::*;

/// A layout with one image using every layer compression, Docker and OCI media types.
fn mixed() -> (tempfile::TempDir, Layout, Image) {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 % 7)
        .collect();
    let img = Image::new(
        vec![
            Layer::files(&[("big.bin", &big[..])]),
            Layer::files(&[("z", b"zstd layer")]).with(Comp::Zstd),
            Layer::files(&[("u", b"plain layer")]).with(Comp::None),
        ],
        &["a", "b", "c"],
    );
    l.add("img", &img);
    (tmp, l, img)
}

fn layer_digest(l: &Layout, tag: &str, i: usize) -> String {
    let m = l.read_json(&l.tagged(tag).unwrap());
    m["layers"][i]["digest"].as_str().unwrap().to_string()
}

fn verify_json(reference: &str) -> (i32, Value) {
    let (code, out, err) = outcome(&["verify", reference, "--json"]);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
    (code, v)
}

#[test]
fn intact_image_with_gzip_zstd_and_plain_layers_verifies() {
    let (_t, l, _) = mixed();
    let (code, r) = verify_json(&l.oci("img"));
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["layers_checked"], 3);
    assert_eq!(r["problems"], json!([]));
    let out = ok(&["verify", &l.oci("img")]);
    assert!(out.contains("intact"), "{out}");
}

#[test]
fn docker_media_types_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    l.add(
        "d",
        &Image::new(
            vec![
                Layer::files(&[("a", b"1")]),
                Layer::files(&[("b", b"2")]).with(Comp::None),
            ],
            &["a", "b"],
        )
        .docker(),
    );
    ok(&["verify", &l.oci("d")]);
}

#[test]
fn every_corruption_is_named_in_one_run() {
    let (_t, l, _) = mixed();
    // 1. truncated gzip stream (digest and size now wrong too)
    let gz = layer_digest(&l, "img", 0);
    let p = l.blob_path(&gz);
    let bytes = fs::read(&p).unwrap();
    fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    // 2. zstd frame error, same size
    let zs = layer_digest(&l, "img", 1);
    let p = l.blob_path(&zs);
    let mut bytes = fs::read(&p).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    fs::write(&p, &bytes).unwrap();
    let (code, r) = verify_json(&l.oci("img"));
    assert_eq!(code, 1);
    let problems = r["problems"].as_array().unwrap();
    let named = |d: &str| problems.iter().any(|p| p["digest"] == d);
    assert!(named(&gz) && named(&zs), "{r:#}");
    // the human output names each one too, and the exit code says it failed
    let (code, out, err) = outcome(&["verify", &l.oci("img")]);
    assert_eq!(code, 1);
    assert!(out.contains(&gz) && out.contains(&zs), "{out}");
    assert!(err.contains("corrupt"), "{err}");
}

#[test]
fn a_lying_diff_id_is_caught_while_the_compressed_digest_is_right() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let layer = Layer::files(&[("a", b"1")]);
    let mut img = Image::new(vec![layer], &["a"]);
    let mut cfg = img.config_json();
    let lie = sha256(b"not this tar");
    cfg["rootfs"]["diff_ids"][0] = lie.clone().into();
    // write the image by hand with the lying config
    let mut desc = l.put_image(&img);
    let mut m = l.read_json(desc["digest"].as_str().unwrap());
    let (cd, cs) = l.write_blob(&serde_json::to_vec(&cfg).unwrap());
    m["config"]["digest"] = cd.into();
    m["config"]["size"] = cs.into();
    let (md, ms) = l.write_blob(&serde_json::to_vec(&m).unwrap());
    desc["digest"] = md.into();
    desc["size"] = ms.into();
    l.tag("liar", desc);
    let (code, r) = verify_json(&l.oci("liar"));
    assert_eq!(code, 1);
    let msg = r["problems"][0]["message"].as_str().unwrap();
    assert!(msg.contains("diff ID") && msg.contains(&lie), "{r:#}");
    img.env.clear();
}

#[test]
fn wrong_size_and_missing_config_are_named() {
    let (_t, l, img) = mixed();
    // a descriptor that claims the wrong size for an intact blob
    let mut desc = l.put_image(&img);
    let mut m = l.read_json(desc["digest"].as_str().unwrap());
    let plain = m["layers"][2]["digest"].as_str().unwrap().to_string();
    m["layers"][2]["size"] = 1.into();
    // and a config that is not there
    let missing = sha256(b"no such config");
    m["config"]["digest"] = missing.clone().into();
    let (md, ms) = l.write_blob(&serde_json::to_vec(&m).unwrap());
    desc["digest"] = md.into();
    desc["size"] = ms.into();
    l.tag("bad", desc);
    let (code, r) = verify_json(&l.oci("bad"));
    assert_eq!(code, 1);
    assert!(
        r["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["digest"] == missing.as_str() && p["kind"] == "config"),
        "{r:#}"
    );
    let _ = plain;
    // the size lie alone
    let mut desc = l.put_image(&img);
    let mut m = l.read_json(desc["digest"].as_str().unwrap());
    m["layers"][2]["size"] = 1.into();
    let (md, ms) = l.write_blob(&serde_json::to_vec(&m).unwrap());
    desc["digest"] = md.into();
    desc["size"] = ms.into();
    l.tag("badsize", desc);
    let (code, r) = verify_json(&l.oci("badsize"));
    assert_eq!(code, 1);
    let msg = r["problems"][0]["message"].as_str().unwrap();
    assert!(
        r["problems"][0]["digest"] == plain.as_str() && msg.contains("descriptor says 1"),
        "{r:#}"
    );
}

#[test]
fn shared_layers_of_a_multi_platform_index_are_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let shared = Layer::files(&[("shared", b"same bytes on every platform")]);
    let a = Image::new(
        vec![shared.clone(), Layer::files(&[("a", b"amd")])],
        &["s", "a"],
    )
    .arch("amd64");
    let b = Image::new(vec![shared, Layer::files(&[("b", b"arm")])], &["s", "b"]).arch("arm64");
    let (da, db) = (l.put_image(&a), l.put_image(&b));
    l.add_index("multi", vec![da, db]);
    let (code, r) = verify_json(&l.oci("multi"));
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["platforms"], json!(["linux/amd64", "linux/arm64"]));
    assert_eq!(r["manifests_checked"], 2);
    assert_eq!(r["layers_checked"], 3, "the shared layer counts once");
}

#[test]
fn inspect_classifies_base_and_app_layers() {
    let s = scenario();
    let r: Value = serde_json::from_str(&ok(&[
        "inspect",
        &s.oci("app"),
        "--base",
        &s.oci("base-v1"),
        "--json",
    ]))
    .unwrap();
    let roles: Vec<&str> = r["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["base", "app", "app"]);
    assert_eq!(
        r["platforms"][0]["layers"][1]["created_by"],
        "COPY server /app/"
    );
    // after a rebase the annotation is enough
    ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("rebased"),
    ]);
    let r: Value = serde_json::from_str(&ok(&["inspect", &s.oci("rebased"), "--json"])).unwrap();
    let p = &r["platforms"][0];
    assert_eq!(p["base"]["found_via"], "annotation");
    let roles: Vec<&str> = p["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["base", "base", "app", "app"]);
    // a base the image is not built on is said so
    let r: Value = serde_json::from_str(&ok(&[
        "inspect",
        &s.oci("app"),
        "--base",
        &s.oci("base-v2-fresh"),
        "--json",
    ]))
    .unwrap();
    assert_eq!(r["platforms"][0]["base"]["matches"], false);
    let human = ok(&["inspect", &s.oci("app"), "--base", &s.oci("base-v1")]);
    assert!(human.contains("base") && human.contains("app "), "{human}");
}

/// An index as `docker buildx` and `skopeo copy --all` see it: an amd64 image, a nested index
/// holding an arm64 image, and a BuildKit attestation manifest (platform unknown/unknown, an
/// in-toto layer). Returns the layout and the digests of (nested index, arm64 layer 0,
/// attestation manifest, in-toto blob).
fn index_with_nested_index_and_attestation() -> (tempfile::TempDir, Layout, [String; 4]) {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let amd = l.put_image(&Image::new(vec![Layer::files(&[("a", b"amd")])], &["a"]));
    let arm_img = Image::new(vec![Layer::files(&[("b", b"arm")])], &["b"]).arch("arm64");
    let arm = l.put_image(&arm_img);
    let arm_layer = l.read_json(arm["digest"].as_str().unwrap())["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [arm],
    }))
    .unwrap();
    let (nd, ns) = l.write_blob(&nested);
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2"}"#;
    let (sd, ss) = l.write_blob(statement);
    let att_config = serde_json::to_vec(&json!({
        "architecture": "unknown", "os": "unknown", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sd]},
    }))
    .unwrap();
    let (cd, cs) = l.write_blob(&att_config);
    let att = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": sd, "size": ss,
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}],
    }))
    .unwrap();
    let (ad, asz) = l.write_blob(&att);
    let amd_digest = amd["digest"].as_str().unwrap().to_string();
    l.add_index(
        "multi",
        vec![
            amd,
            json!({"mediaType": OCI_INDEX, "digest": nd, "size": ns}),
            json!({"mediaType": OCI_MANIFEST, "digest": ad, "size": asz,
                   "platform": {"architecture": "unknown", "os": "unknown"},
                   "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                   "vnd.docker.reference.digest": amd_digest}}),
        ],
    );
    (tmp, l, [nd, arm_layer, ad, sd])
}

/// Issue 10, item 10: `verify` said "intact" while the nested index and the attestation were
/// missing (only first-level image entries were followed); `skopeo copy --all` failed on it.
#[test]
fn nested_indexes_and_attestations_are_verified_with_their_path() {
    let (_t, l, [nested, arm_layer, attestation, statement]) =
        index_with_nested_index_and_attestation();
    let (code, r) = verify_json(&l.oci("multi"));
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(
        r["platforms"],
        json!(["linux/amd64", "linux/arm64"]),
        "{r:#}"
    );
    assert_eq!(r["indexes_checked"], 2, "{r:#}");
    assert_eq!(r["manifests_checked"], 3, "{r:#}");
    assert_eq!(
        r["layers_checked"], 3,
        "two image layers and the in-toto one: {r:#}"
    );

    // A corrupt layer inside the nested index, and a corrupt in-toto statement.
    for d in [&arm_layer, &statement] {
        let p = l.blob_path(d);
        let mut bytes = fs::read(&p).unwrap();
        bytes[2] ^= 0x20;
        fs::write(&p, bytes).unwrap();
    }
    let (code, r) = verify_json(&l.oci("multi"));
    assert_eq!(code, 1, "{r:#}");
    let find = |d: &str| {
        r["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["digest"] == d)
            .unwrap_or_else(|| panic!("{d} not reported: {r:#}"))
            .clone()
    };
    let p = find(&arm_layer);
    assert_eq!(
        p["path"], "index → manifests[1] (index) → manifests[0] (linux/arm64) → layers[0]",
        "{r:#}"
    );
    let p = find(&statement);
    assert_eq!(
        p["path"], "index → manifests[2] (attestation) → layers[0]",
        "{r:#}"
    );
    assert!(p["message"].as_str().unwrap().contains("corrupt"), "{r:#}");

    // The nested index and the attestation manifest gone: each named, with its path; the
    // human output says where too.
    fs::remove_file(l.blob_path(&nested)).unwrap();
    fs::remove_file(l.blob_path(&attestation)).unwrap();
    let (code, r) = verify_json(&l.oci("multi"));
    assert_eq!(code, 1, "{r:#}");
    let problems = r["problems"].as_array().unwrap();
    // (The corrupt blobs below them are no longer reachable.)
    assert_eq!(problems.len(), 2, "{r:#}");
    let find = |d: &str| problems.iter().find(|p| p["digest"] == d).cloned();
    let p = find(&nested).unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(
        (p["kind"].as_str(), p["path"].as_str()),
        (Some("index"), Some("index → manifests[1] (index)"))
    );
    let p = find(&attestation).unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(p["kind"], "manifest", "{r:#}");
    assert_eq!(p["path"], "index → manifests[2] (attestation)", "{r:#}");
    let (code, out, _) = outcome(&["verify", &l.oci("multi")]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&nested) && out.contains("at index → manifests[1] (index)"),
        "{out}"
    );
}
