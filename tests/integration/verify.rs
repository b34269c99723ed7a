//! `ocipatch verify` and `ocipatch inspect` on good images and on corruptions built from them.

use std::fs;

use serde_json::{json, Value};

use crate::harness::*;

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
    let (code, out, err) = ocipatch(&["verify", reference, "--json"]);
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
    let (code, out, err) = ocipatch(&["verify", &l.oci("img")]);
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
