//! Archive interop: skopeo writes the oci-archive and docker-archive inputs, ocipatch rebases
//! between them, skopeo reads the outputs back, umoci unpacks them, and the file tree must be
//! the one of the image rebuilt on the new base (`app-rebuilt-v2`).
//!
//! Inputs come from a private copy of `testdata/images` (see interop/mod.rs). A missing tool
//! fails the test; nothing is skipped. Run as root (umoci unpack).

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::util::*;

fn skopeo_copy(from: &str, to: &str) {
    run_ok(cmd("skopeo").args(["copy", "--quiet", from, to]));
}

fn oci_archive(file: &Path, tag: &str) -> String {
    if tag.is_empty() {
        format!("oci-archive:{}", file.display())
    } else {
        format!("oci-archive:{}:{tag}", file.display())
    }
}

fn docker_archive(file: &Path, name: &str) -> String {
    if name.is_empty() {
        format!("docker-archive:{}", file.display())
    } else {
        format!("docker-archive:{}:{name}", file.display())
    }
}

/// `ocipatch rebase IMAGE --from FROM --onto ONTO -o DEST`; returns the printed digest.
#[track_caller]
fn rebase(image: &str, from: &str, onto: &str, dest: &str) -> String {
    let r = run_ok(ocipatch().args(["rebase", image, "--from", from, "--onto", onto, "-o", dest]));
    let d = r.last_line();
    assert!(is_sha256_digest(&d), "not a digest: {d:?}\n{r}");
    d
}

/// A member of a tar file, whole.
fn tar_member(file: &Path, name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(fs::File::open(file).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("{name} not in {}", file.display());
}

/// The rebased image, copied by skopeo into a layout, unpacks to the rebuild's tree.
fn assert_tree_is_rebuilt(fx: &Fixture, layout: &Path, tag: &str) {
    let got = fx.unpack_tree(layout, tag);
    let want = fx.unpack_tree(&fx.images, "app-rebuilt-v2");
    assert_same_tree("rebased", &got, "app-rebuilt-v2", &want);
}

#[test]
fn oci_archive_round_trip_with_skopeo() {
    let fx = Fixture::new();
    let (a, b, c) = (fx.path("A.tar"), fx.path("B.tar"), fx.path("C.tar"));
    skopeo_copy(&fx.image("app"), &oci_archive(&a, "app"));
    skopeo_copy(&fx.image("base-v1"), &oci_archive(&b, "base-v1"));
    skopeo_copy(&fx.image("base-v2"), &oci_archive(&c, "base-v2"));
    let out = fx.path("OUT.tar");
    let (app, from, onto) = (
        oci_archive(&a, "app"),
        oci_archive(&b, "base-v1"),
        oci_archive(&c, "base-v2"),
    );
    let digest = rebase(&app, &from, &onto, &oci_archive(&out, "app"));

    // the same rebase into a layout: the same manifest (the transport does not change bytes)
    let layout = fx.path("layout");
    let same = rebase(&app, &from, &onto, &oci_ref(&layout, "app"));
    assert_eq!(digest, same);

    // skopeo reads what we wrote, and keeps the digest
    let inspect = run_ok(cmd("skopeo").arg("inspect").arg(oci_archive(&out, "app")));
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout()).unwrap();
    assert_eq!(v["Digest"], digest.as_str(), "{v:#}");
    let x = fx.path("X");
    skopeo_copy(&oci_archive(&out, "app"), &oci_ref(&x, "app"));
    assert_eq!(index_digest(&x, "app"), digest);
    assert_eq!(manifest(&x, "app"), manifest(&layout, "app"));
    assert_tree_is_rebuilt(&fx, &x, "app");
}

#[test]
fn docker_archive_round_trip_with_skopeo() {
    let fx = Fixture::new();
    let (app, v1, v2) = (fx.path("APP.tar"), fx.path("D1.tar"), fx.path("D2.tar"));
    // skopeo converts to Docker schema 2 with uncompressed layers
    skopeo_copy(&fx.image("app"), &docker_archive(&app, "example/app:1"));
    skopeo_copy(
        &fx.image("base-v1"),
        &docker_archive(&v1, "example/base:v1"),
    );
    skopeo_copy(
        &fx.image("base-v2"),
        &docker_archive(&v2, "example/base:v2"),
    );
    let out = fx.path("OUT.tar");
    rebase(
        &docker_archive(&app, "example/app:1"),
        &docker_archive(&v1, ""),
        &docker_archive(&v2, "docker.io/example/base:v2"),
        &docker_archive(&out, "example/app:2"),
    );

    let raw = run_ok(
        cmd("skopeo")
            .args(["inspect", "--raw"])
            .arg(docker_archive(&out, "")),
    );
    let m: serde_json::Value = serde_json::from_str(&raw.stdout()).unwrap();
    assert_eq!(m["mediaType"], DOCKER_MANIFEST, "{m:#}");
    assert_eq!(m["layers"].as_array().unwrap().len(), 4);
    let list: serde_json::Value =
        serde_json::from_slice(&tar_member(&out, "manifest.json")).unwrap();
    assert_eq!(list[0]["RepoTags"], serde_json::json!(["example/app:2"]));
    // skopeo finds it by name too
    run_ok(
        cmd("skopeo")
            .arg("inspect")
            .arg(docker_archive(&out, "example/app:2")),
    );

    let y = fx.path("Y");
    skopeo_copy(&docker_archive(&out, ""), &oci_ref(&y, "app"));
    assert_tree_is_rebuilt(&fx, &y, "app");

    // ocipatch reads it back as Docker schema 2 and verifies it
    let r = run_ok(
        ocipatch()
            .args(["inspect", "--json"])
            .arg(docker_archive(&out, "example/app:2")),
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["media_type"], DOCKER_MANIFEST);
    run_ok(
        ocipatch()
            .arg("verify")
            .arg(docker_archive(&out, "example/app:2")),
    );
}

#[test]
fn oci_image_written_as_docker_archive_is_read_by_skopeo() {
    let fx = Fixture::new();
    let out = fx.path("d.tar");
    rebase(
        &fx.image("app"),
        &fx.image("base-v1"),
        &fx.image("base-v2"),
        &docker_archive(&out, "example/app:2"),
    );
    let y = fx.path("Y");
    skopeo_copy(&docker_archive(&out, "example/app:2"), &oci_ref(&y, "app"));
    assert_tree_is_rebuilt(&fx, &y, "app");
}

/// App in an oci-archive, old base in an oci-archive, new base in a docker-archive made by
/// skopeo from the same OCI base (other layer digests, same diff IDs), output to a layout.
#[test]
fn mixed_archives_into_a_layout() {
    let fx = Fixture::new();
    let (a, b, d) = (fx.path("A.tar"), fx.path("B.tar"), fx.path("D2.tar"));
    skopeo_copy(&fx.image("app"), &oci_archive(&a, "app"));
    skopeo_copy(&fx.image("base-v1"), &oci_archive(&b, "base-v1"));
    skopeo_copy(&fx.image("base-v2"), &docker_archive(&d, "example/base:v2"));
    let z = fx.path("Z");
    let digest = rebase(
        &oci_archive(&a, "app"),
        &oci_archive(&b, "base-v1"),
        &docker_archive(&d, "example/base:v2"),
        &oci_ref(&z, "app"),
    );
    assert_eq!(index_digest(&z, "app"), digest);
    let inspect = run_ok(cmd("skopeo").arg("inspect").arg(oci_ref(&z, "app")));
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout()).unwrap();
    assert_eq!(v["Digest"], digest.as_str(), "{v:#}");
    // skopeo verifies every blob while copying. (It may swap the uncompressed base layers
    // for gzip ones its blob-info cache knows, so the copy's digest is not compared.)
    skopeo_copy(&oci_ref(&z, "app"), &oci_ref(&fx.path("Z2"), "app"));
    assert_tree_is_rebuilt(&fx, &z, "app");
}

#[test]
fn verify_and_inspect_read_skopeo_archives() {
    let fx = Fixture::new();
    let (a, b) = (fx.path("A.tar"), fx.path("B.tar"));
    skopeo_copy(&fx.image("app"), &oci_archive(&a, "app"));
    skopeo_copy(&fx.image("base-v1"), &docker_archive(&b, "example/base:v1"));
    let d = fx.path("APP.tar");
    skopeo_copy(&fx.image("app"), &docker_archive(&d, "example/app:1"));
    for r in [
        oci_archive(&a, "app"),
        oci_archive(&a, ""),
        docker_archive(&d, "example/app:1"),
        docker_archive(&b, ""),
    ] {
        let out = run_ok(ocipatch().arg("verify").arg(&r));
        assert!(out.stdout().contains("intact"), "{out}");
    }
    // the docker-archive base has other layer digests but the same diff IDs: inspect
    // classifies the app's layers by diff ID
    let r = run_ok(
        ocipatch()
            .args(["inspect", "--json", "--base"])
            .arg(docker_archive(&b, ""))
            .arg(docker_archive(&d, "example/app:1")),
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let roles: Vec<&str> = v["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["base", "app", "app"], "{r}");
}
