//! Interop tests for `append`, `check`, the safety report and fleets, on images made by umoci
//! and skopeo, with the results handed back to umoci, skopeo and oci-image-tool.
//! A missing tool fails the test; nothing is skipped. Run as root (umoci unpack).

use std::fs;
use std::path::Path;

use crate::util::*;

/// oci-image-tool validates the layout (every ref, every blob) and skopeo copies the image
/// (verifying each blob's digest on the way).
fn validate_with_clients(fx: &Fixture, layout: &Path, tag: &str) {
    run_ok(
        cmd("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(layout),
    );
    let copy = fx.path(&format!("skopeo-copy-{tag}"));
    run_ok(
        cmd("skopeo")
            .args(["copy", "--quiet"])
            .arg(oci_ref(layout, tag))
            .arg(oci_ref(&copy, tag)),
    );
}

/// Builds, with umoci, an image on base-v1 that carries its own copy of a file the update patches.
fn umoci_app_bundling_libfoo(fx: &Fixture) -> String {
    let bundle = fx.path("risky-bundle");
    run_ok(
        cmd("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(umoci_ref(&fx.images, "base-v1"))
            .arg(&bundle),
    );
    fs::write(
        bundle.join("rootfs/usr/lib/libfoo.so.1"),
        b"vendored libfoo, never patched\n",
    )
    .unwrap();
    run_ok(
        cmd("umoci")
            .arg("repack")
            .arg("--image")
            .arg(umoci_ref(&fx.images, "risky"))
            .arg(&bundle),
    );
    fx.image("risky")
}

#[test]
fn append_on_a_umoci_image_unpacks_with_umoci_to_the_patched_tree() {
    let fx = Fixture::new();
    let patch = fx.path("patch");
    fs::create_dir_all(patch.join("etc/ssl")).unwrap();
    fs::write(patch.join("etc/ssl/openssl.cnf"), b"[patched]\n").unwrap();
    let out = fx.path("out");
    let r = run_ok(
        ocipatch()
            .args(["append", &fx.image("app"), "--layer"])
            .arg(&patch)
            .args(["--delete", "usr/share/doc/foo/README", "-o"])
            .arg(oci_ref(&out, "patched")),
    );
    assert_eq!(r.last_line(), index_digest(&out, "patched"));
    validate_with_clients(&fx, &out, "patched");

    let before = fx.unpack_tree(&fx.images, "app");
    let after = fx.unpack_tree(&out, "patched");
    assert!(before.contains_key("usr/share/doc/foo/README"));
    assert!(
        !after.contains_key("usr/share/doc/foo/README"),
        "the whiteout removed it"
    );
    match &after["etc/ssl/openssl.cnf"].kind {
        Kind::File { size, .. } => assert_eq!(*size, 10),
        other => panic!("{other:?}"),
    }
    // everything else is untouched (the layer's own directories aside)
    for (path, entry) in &before {
        if path == "usr/share/doc/foo/README"
            || path.starts_with("etc")
            || path == "usr/share/doc/foo"
        {
            continue;
        }
        assert_eq!(after.get(path), Some(entry), "{path} changed");
    }
    run_ok(ocipatch().arg("verify").arg(oci_ref(&out, "patched")));
}

#[test]
fn append_to_a_skopeo_zstd_copy_and_verify() {
    let fx = Fixture::new();
    let z = fx.path("zstd");
    run_ok(
        cmd("skopeo")
            .args(["copy", "--quiet", "--dest-compress-format", "zstd"])
            .arg(fx.image("app"))
            .arg(oci_ref(&z, "app")),
    );
    let patch = fx.path("patch");
    fs::create_dir_all(patch.join("opt")).unwrap();
    fs::write(patch.join("opt/hotfix"), b"1").unwrap();
    run_ok(
        ocipatch()
            .args(["append", &oci_ref(&z, "app"), "--layer"])
            .arg(&patch)
            .args(["--compression", "zstd", "-o", &oci_ref(&z, "fixed")]),
    );
    run_ok(ocipatch().arg("verify").arg(oci_ref(&z, "fixed")));
    // oci-image-tool 1.0.0-rc1 predates the zstd layer type and refuses skopeo's own zstd copy
    // too, so here only skopeo checks the result (every blob's digest, on copy).
    let copy = fx.path("zstd-copy");
    run_ok(
        cmd("skopeo")
            .args(["copy", "--quiet"])
            .arg(oci_ref(&z, "fixed"))
            .arg(oci_ref(&copy, "fixed")),
    );
    // umoci 0.4.7 cannot unpack zstd either: let skopeo recompress (it decompresses our zstd
    // layer, a real client reading it) and unpack the gzip copy with umoci.
    let gz = fx.path("gz");
    run_ok(
        cmd("skopeo")
            .args(["copy", "--quiet", "--dest-compress-format", "gzip"])
            .arg(oci_ref(&z, "fixed"))
            .arg(oci_ref(&gz, "fixed")),
    );
    let tree = fx.unpack_tree(&gz, "fixed");
    assert!(tree.contains_key("opt/hotfix"));
}

#[test]
fn check_on_umoci_images_before_and_after_a_rebase() {
    let fx = Fixture::new();
    let current = run(ocipatch().args(["check", &fx.image("app"), "--base", &fx.image("base-v1")]));
    assert!(current.success(), "{current}");
    let outdated = run(ocipatch().args([
        "check",
        &fx.image("app"),
        "--base",
        &fx.image("base-v2"),
        "--json",
    ]));
    assert_eq!(outdated.status.code(), Some(3), "{outdated}");
    let v: serde_json::Value = serde_json::from_str(&outdated.stdout()).unwrap();
    assert_eq!(
        v["platforms"][0]["missing_layers"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{v:#}"
    );
    // after a rebase onto a layout, the base is recorded by digest only (a path means nothing
    // on another machine): check asks for --base...
    let out = fx.path("out");
    run_ok(ocipatch().args([
        "rebase",
        &fx.image("app"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &oci_ref(&out, "app"),
    ]));
    let unnamed = run(ocipatch().args(["check", &oci_ref(&out, "app")]));
    assert_eq!(unnamed.status.code(), Some(1), "{unnamed}");
    assert!(unnamed.stderr().contains("pass --base"), "{unnamed}");
    let after = run(ocipatch().args([
        "check",
        &oci_ref(&out, "app"),
        "--base",
        &fx.image("base-v2"),
    ]));
    assert!(after.success(), "{after}");
    // ...unless --base-name recorded one: then the annotations are enough
    run_ok(ocipatch().args([
        "rebase",
        &fx.image("app"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &oci_ref(&out, "named"),
        "--base-name",
        &fx.image("base-v2"),
    ]));
    let after = run(ocipatch().args(["check", &oci_ref(&out, "named")]));
    assert!(after.success(), "{after}");
}

#[test]
fn safety_report_flags_a_umoci_app_that_hides_the_update() {
    let fx = Fixture::new();
    let risky = umoci_app_bundling_libfoo(&fx);
    let dry = run_ok(ocipatch().args([
        "rebase",
        &risky,
        "--from",
        &fx.image("base-v1"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &fx.image("x"),
        "--dry-run",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&dry.stdout()).unwrap();
    let findings = v["safety"][0]["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["path"] == "usr/lib/libfoo.so.1"
                && f["kind"] == "app-overwrites-changed-file"),
        "{v:#}"
    );
    let strict = run_fail(ocipatch().args([
        "rebase",
        &risky,
        "--from",
        &fx.image("base-v1"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &fx.image("x"),
        "--strict",
    ]));
    assert!(strict.stderr().contains("usr/lib/libfoo.so.1"), "{strict}");
    assert!(
        !read_json(&fx.images.join("index.json"))
            .to_string()
            .contains("\"x\""),
        "no tag written"
    );
    // the umoci-built example app touches nothing the update changed
    let clean = run_ok(ocipatch().args([
        "rebase",
        &fx.image("app"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &fx.image("y"),
        "--strict",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&clean.stdout()).unwrap();
    assert_eq!(v["safety"][0]["findings"], serde_json::json!([]), "{v:#}");
}

#[test]
fn fleet_of_umoci_images_is_valid_for_every_client() {
    let fx = Fixture::new();
    let risky = umoci_app_bundling_libfoo(&fx);
    let out = fx.path("fleet");
    let r = run_ok(ocipatch().args([
        "rebase",
        "--from",
        &fx.image("base-v1"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &oci_ref(&out, "{tag}-v2"),
        &fx.image("app"),
        &risky,
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["rebased"], 2, "{v:#}");
    for tag in ["app-v2", "risky-v2"] {
        validate_with_clients(&fx, &out, tag);
    }
    // the fleet's app equals umoci's own rebuild of it on base-v2
    let rebuilt = fx.unpack_tree(&fx.images, "app-rebuilt-v2");
    let ours = fx.unpack_tree(&out, "app-v2");
    assert_same_tree("app-rebuilt-v2", &rebuilt, "fleet app-v2", &ours);
}

/// A patch layer keeps a file's capabilities: `setcap cap_net_raw+ep` on the patched binary
/// (from a directory) and `tar --xattrs` of the same tree (from a tar) both reach the image, and
/// `umoci unpack` gives a file `getcap` reads back as `cap_net_raw=ep`. Dropping them breaks
/// binaries like `ping` for every non-root user of the image.
#[test]
fn append_keeps_file_capabilities_for_umoci_and_getcap() {
    require_tools(&["setcap", "getcap", "tar"]);
    let fx = Fixture::new();
    let patch = fx.path("caps");
    fs::create_dir_all(patch.join("usr/bin")).unwrap();
    let ping = patch.join("usr/bin/ping");
    fs::write(&ping, b"#!/bin/sh\necho patched ping\n").unwrap();
    run_ok(cmd("chmod").arg("0755").arg(&ping));
    run_ok(cmd("setcap").arg("cap_net_raw+ep").arg(&ping));
    fs::write(patch.join("usr/bin/plain"), b"no capabilities\n").unwrap();
    let tar = fx.path("caps.tar");
    run_ok(
        cmd("tar")
            .args(["--xattrs", "--xattrs-include=security.capability", "-C"])
            .arg(&patch)
            .arg("-cf")
            .arg(&tar)
            .arg("usr"),
    );

    let mut digests = Vec::new();
    for (name, layer) in [("from-dir", &patch), ("from-tar", &tar)] {
        let out = fx.path(name);
        let r = run_ok(
            ocipatch()
                .args(["append", &fx.image("app"), "--layer"])
                .arg(layer)
                .arg("-o")
                .arg(oci_ref(&out, "patched")),
        );
        digests.push(r.last_line().to_string());
        validate_with_clients(&fx, &out, "patched");
        let bundle = fx.path(&format!("{name}-bundle"));
        run_ok(
            cmd("umoci")
                .arg("unpack")
                .arg("--image")
                .arg(umoci_ref(&out, "patched"))
                .arg(&bundle),
        );
        let rootfs = bundle.join("rootfs");
        let caps = run_ok(
            cmd("getcap")
                .arg(rootfs.join("usr/bin/ping"))
                .arg(rootfs.join("usr/bin/plain")),
        );
        let out = caps.stdout();
        assert!(
            out.contains("usr/bin/ping cap_net_raw=ep") && !out.contains("plain"),
            "{name}: getcap says {out:?}"
        );
    }
}
