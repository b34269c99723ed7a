//! Interop tests: feed ocipatch's output to real tools nobody here wrote and judge it by what
//! they say. Slow (real registries, debootstrap'ed fixtures) and run as root (umoci unpack
//! without --rootless, chroot, mount); a missing tool fails the test, nothing is skipped.
//! `cargo test --test integration interop::` runs them, `-- --skip interop::` the others.
//!
//! The tests here: the OCI clients (skopeo, umoci, oci-image-tool) on ocipatch's output, and
//! the rebased image's file tree against a rebuild made by umoci. Inputs are a private copy of
//! `testdata/images` (built by `scripts/make-testdata.sh`, see `testdata/README.md`) in a temp
//! dir per test ([`Fixture`]); nothing is written below `testdata/`. The modules: one per
//! subject (archives, buildah, a full disk, fleets, the loader, append/check/safety, package
//! databases, registries, relations, rpm, the verdict, versions).

mod archive;
mod attach;
mod attest;
mod buildah;
mod faults;
mod fleet;
mod ldso;
mod patch;
mod pkgdb;
mod referrers;
mod registry;
mod relations;
mod rpm;
mod verdict;
mod versions;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::util::*;

/// `ocipatch rebase IMAGE --onto ONTO [--from FROM] -o oci:DEST:TAG [extra...]`; asserts success,
/// that the last stdout line is a digest and that it is the digest tagged TAG in DEST/index.json.
/// Returns that digest.
#[track_caller]
fn rebase(
    image: &str,
    onto: &str,
    from: Option<&str>,
    dest: &Path,
    tag: &str,
    extra: &[&str],
) -> String {
    let mut c = ocipatch();
    c.arg("rebase").arg(image).arg("--onto").arg(onto);
    if let Some(from) = from {
        c.arg("--from").arg(from);
    }
    c.arg("-o")
        .arg(oci_ref(dest, tag))
        .args(extra)
        .show_dir(dest);
    let r = run_ok(&mut c);
    let printed = r.last_line();
    assert!(
        is_sha256_digest(&printed),
        "last stdout line of rebase is not a sha256 digest: {printed:?}\n{r}"
    );
    let indexed = index_digest(dest, tag);
    assert_eq!(
        printed,
        indexed,
        "printed digest differs from the manifest digest tagged {tag:?} in {}/index.json\n{r}",
        dest.display()
    );
    printed
}

/// Hand `dest:tag` to the real clients: oci-image-tool validates the layout, skopeo inspects it
/// and copies it (skopeo verifies every blob's digest while copying).
fn check_with_clients(fx: &Fixture, dest: &Path, tag: &str) {
    let digest = index_digest(dest, tag);

    // oci-image-tool 1.0.0-rc1: `--type imageLayout` is "unimplemented"; `--type image DIR`
    // autodetects a layout and validates every ref (digests and sizes of all blobs).
    run_ok(
        cmd("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(dest),
    );
    // ... and `--ref name=TAG` selects one ref. Its filter removes from a slice while
    // advancing the index (skips the entry after each removal), so with more than two refs it
    // can wrongly answer "not unique"/"not match"; with at most two it is exact.
    let refs = read_json(&dest.join("index.json"))["manifests"]
        .as_array()
        .map_or(0, |a| a.len());
    if refs <= 2 {
        run_ok(
            cmd("oci-image-tool")
                .args(["validate", "--type", "image", "--ref"])
                .arg(format!("name={tag}"))
                .arg(dest),
        );
    }

    let inspect = run_ok(cmd("skopeo").arg("inspect").arg(oci_ref(dest, tag)));
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout())
        .unwrap_or_else(|e| panic!("skopeo inspect output is not JSON: {e}\n{inspect}"));
    assert_eq!(v["Digest"], digest.as_str(), "skopeo inspect: {v:#}");
    run_ok(
        cmd("skopeo")
            .args(["inspect", "--config"])
            .arg(oci_ref(dest, tag)),
    );

    let other = tempfile::tempdir_in(fx.dir.path()).expect("tempdir");
    let other = other.path().join("copy");
    run_ok(
        cmd("skopeo")
            .args(["copy", "--quiet"])
            .arg(oci_ref(dest, tag))
            .arg(oci_ref(&other, tag)),
    );
    assert_eq!(
        index_digest(&other, tag),
        digest,
        "skopeo copy oci->oci changed the manifest digest"
    );
}

fn env_map(config: &serde_json::Value) -> BTreeMap<String, String> {
    config["config"]["Env"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let s = e.as_str().expect("Env entry is a string");
                    let (k, v) = s.split_once('=').unwrap_or((s, ""));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// fixture and harness sanity: these pass without ocipatch and prove the comparisons can fail

#[test]
fn tree_snapshot_records_what_it_claims_and_detects_differences() {
    let fx = Fixture::new();
    let app = fx.unpack_tree(&fx.images, "app");
    let app_again = fx.unpack_tree(&fx.images, "app");
    assert_same_tree("app", &app, "app (second unpack)", &app_again);

    let get = |p: &str| {
        app.get(p)
            .unwrap_or_else(|| panic!("{p} missing from app tree"))
    };
    // hard link group
    assert_eq!(
        get("app/bin/server").link_group.as_deref(),
        Some("app/bin/server")
    );
    assert_eq!(
        get("app/bin/server-hard").link_group.as_deref(),
        Some("app/bin/server")
    );
    assert_eq!(get("app/config.yaml").link_group, None);
    // symlinks
    assert_eq!(
        get("app/current").kind,
        Kind::Symlink {
            target: "bin".into()
        }
    );
    assert_eq!(
        get("usr/lib/libfoo.so").kind,
        Kind::Symlink {
            target: "libfoo.so.1".into()
        }
    );
    // owner and modes
    let secret = get("app/secret.key");
    assert_eq!((secret.mode, secret.uid, secret.gid), (0o600, 1000, 1000));
    assert_eq!(get("tmp").mode, 0o1777);
    assert_eq!(get("root").mode, 0o700);
    assert_eq!(get("usr/bin/tool").mode, 0o755);
    // whiteout in the app's second layer removed a base file
    assert!(!app.contains_key("etc/ssl/openssl.cnf"));
    assert!(app.contains_key("usr/share/doc/foo/README"));
    assert_eq!(get("etc/os-release").mtime, 1_700_000_000);
    assert_eq!(get("etc/ssl").mtime, 1_700_000_000);

    // app (on base v1) vs its rebuild on base v2 must differ exactly where the bases differ
    let rebuilt = fx.unpack_tree(&fx.images, "app-rebuilt-v2");
    let diff = tree_diff(&app, &rebuilt);
    let text = diff.join("\n");
    for p in [
        "etc/os-release",
        "usr/lib/libfoo.so.1",
        "etc/ssl/certs/new.pem",
        "usr/share/doc/foo/README",
    ] {
        assert!(
            text.contains(p),
            "expected {p} among the differences:\n{text}"
        );
    }
    assert_eq!(diff.len(), 5, "unexpected differences:\n{text}"); // + etc/ssl/certs dir

    // every recorded field is compared
    let mut t = app.clone();
    t.get_mut("app/secret.key").unwrap().mode = 0o644;
    assert_eq!(tree_diff(&app, &t).len(), 1);
    let mut t = app.clone();
    t.get_mut("app/secret.key").unwrap().uid = 0;
    assert_eq!(tree_diff(&app, &t).len(), 1);
    let mut t = app.clone();
    t.get_mut("app/bin/server-hard").unwrap().link_group = None;
    assert_eq!(tree_diff(&app, &t).len(), 1);
    let mut t = app.clone();
    t.get_mut("app/bin/server").unwrap().mtime = 0;
    assert_eq!(tree_diff(&app, &t).len(), 1);
    let mut t = app.clone();
    t.remove("app/config.yaml");
    assert_eq!(tree_diff(&app, &t).len(), 1);
}

#[test]
fn fixture_rebuilds_agree_with_each_other() {
    let fx = Fixture::new();
    let v2 = fx.unpack_tree(&fx.images, "base-v2");
    let v2_fresh = fx.unpack_tree(&fx.images, "base-v2-fresh");
    assert_same_tree("base-v2", &v2, "base-v2-fresh", &v2_fresh);
    let app_v2 = fx.unpack_tree(&fx.images, "app-rebuilt-v2");
    let app_v2_fresh = fx.unpack_tree(&fx.images, "app-rebuilt-v2-fresh");
    assert_same_tree(
        "app-rebuilt-v2",
        &app_v2,
        "app-rebuilt-v2-fresh",
        &app_v2_fresh,
    );

    // layer structure the rebase tests rely on
    let v1 = layer_digests(&fx.images, "base-v1");
    let v2l = layer_digests(&fx.images, "base-v2");
    let fresh = layer_digests(&fx.images, "base-v2-fresh");
    let app = layer_digests(&fx.images, "app");
    assert_eq!((v1.len(), v2l.len(), fresh.len(), app.len()), (1, 2, 1, 3));
    assert_eq!(v2l[0], v1[0], "base-v2 must extend base-v1");
    assert!(
        !v1.contains(&fresh[0]),
        "base-v2-fresh must share no layer with v1"
    );
    assert_eq!(app[0], v1[0], "app must be built on base-v1");
    // umoci replays the app layers byte-identically, so a layer swap can match a rebuild exactly
    assert_eq!(layer_digests(&fx.images, "app-rebuilt-v2")[2..], app[1..]);
    assert_eq!(
        layer_digests(&fx.images, "app-rebuilt-v2-fresh")[1..],
        app[1..]
    );
    // the app carries the base annotations a builder would write
    let m = manifest(&fx.images, "app");
    assert_eq!(
        m["annotations"][ANN_BASE_DIGEST],
        index_digest(&fx.images, "base-v1").as_str()
    );
}

#[test]
fn testdata_is_valid_and_regenerates_identically() {
    let fx = Fixture::new();
    run_ok(
        cmd("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(&fx.images),
    );
    for tag in TAGS {
        run_ok(cmd("skopeo").arg("inspect").arg(fx.image(tag)));
    }
    let regen = fx.path("regenerated");
    run_ok(
        cmd("bash")
            .arg(repo_root().join("scripts/make-testdata.sh"))
            .arg(&regen),
    );
    let committed = contents(&snapshot(&testdata_images()));
    let fresh = contents(&snapshot(&regen));
    let names = |m: &BTreeMap<String, Kind>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&committed),
        names(&fresh),
        "scripts/make-testdata.sh no longer reproduces testdata/images: regenerate and commit it"
    );
    assert!(
        committed == fresh,
        "scripts/make-testdata.sh no longer reproduces testdata/images byte for byte"
    );
}

// ---------------------------------------------------------------------------------------------
// rebase

fn rebase_and_compare(onto: &str, rebuilt: &str) {
    let fx = Fixture::new();
    let dest = fx.path("out");
    let digest = rebase(
        &fx.image("app"),
        &fx.image(onto),
        Some(&fx.image("base-v1")),
        &dest,
        "app",
        &[],
    );
    check_with_clients(&fx, &dest, "app");

    let got = fx.unpack_tree(&dest, "app");
    let want = fx.unpack_tree(&fx.images, rebuilt);
    assert_same_tree(&format!("rebased onto {onto}"), &got, rebuilt, &want);

    // a layer swap: new base's layers, then the app's own layers, unchanged
    let mut expect_layers = layer_digests(&fx.images, onto);
    expect_layers.extend_from_slice(&layer_digests(&fx.images, "app")[1..]);
    assert_eq!(layer_digests(&dest, "app"), expect_layers);

    let m = read_blob_json(&dest, &digest);
    assert_eq!(
        m["annotations"][ANN_BASE_DIGEST],
        index_digest(&fx.images, onto).as_str(),
        "rebased manifest must record its new base: {m:#}"
    );
}

#[test]
fn rebase_app_onto_base_v2_matches_umoci_rebuild() {
    rebase_and_compare("base-v2", "app-rebuilt-v2");
}

#[test]
fn rebase_app_onto_fresh_base_matches_umoci_rebuild() {
    rebase_and_compare("base-v2-fresh", "app-rebuilt-v2-fresh");
}

#[test]
fn rebased_config_follows_new_base() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    rebase(
        &fx.image("app"),
        &fx.image("base-v2"),
        Some(&fx.image("base-v1")),
        &dest,
        "app",
        &["--base-name", "example.com/ocipatch/base:v2"],
    );
    let m = manifest(&dest, "app");
    assert_eq!(
        m["annotations"][ANN_BASE_NAME], "example.com/ocipatch/base:v2",
        "--base-name must land in the manifest: {m:#}"
    );
    let got = config(&dest, "app");
    let want = config(&fx.images, "app-rebuilt-v2");
    // inherited PATH/BASE_VERSION/JAVA_HOME follow the new base, APP_ENV stays
    assert_eq!(env_map(&got), env_map(&want), "Env\n{got:#}");
    assert_eq!(got["config"]["Labels"], want["config"]["Labels"], "Labels");
    assert_eq!(got["config"]["Cmd"], want["config"]["Cmd"], "Cmd");
    assert_eq!(got["rootfs"], want["rootfs"], "rootfs.diff_ids");
    assert_eq!(got["architecture"], want["architecture"]);
    assert_eq!(got["os"], want["os"]);
}

#[test]
fn rebase_without_from_uses_base_annotation() {
    let fx = Fixture::new();
    let with_from = rebase(
        &fx.image("app"),
        &fx.image("base-v2"),
        Some(&fx.image("base-v1")),
        &fx.path("a"),
        "app",
        &[],
    );
    // `app` carries base.digest = base-v1, found in the --onto layout
    let without = rebase(
        &fx.image("app"),
        &fx.image("base-v2"),
        None,
        &fx.path("b"),
        "app",
        &[],
    );
    assert_eq!(with_from, without);
}

#[test]
fn rebase_chain_via_annotation_then_noop() {
    let fx = Fixture::new();
    let step1 = fx.path("step1");
    rebase(
        &fx.image("app"),
        &fx.image("base-v2"),
        Some(&fx.image("base-v1")),
        &step1,
        "app",
        &[],
    );
    // onward without --from: the old base (base-v2) is found from step1's annotation
    let step2 = fx.path("step2");
    let d2 = rebase(
        &oci_ref(&step1, "app"),
        &fx.image("base-v2-fresh"),
        None,
        &step2,
        "app",
        &[],
    );
    check_with_clients(&fx, &step2, "app");
    let got = fx.unpack_tree(&step2, "app");
    let want = fx.unpack_tree(&fx.images, "app-rebuilt-v2-fresh");
    assert_same_tree("app rebased twice", &got, "app-rebuilt-v2-fresh", &want);

    // onto the base it already has: nothing changes
    let step3 = fx.path("step3");
    let d3 = rebase(
        &oci_ref(&step2, "app"),
        &fx.image("base-v2-fresh"),
        None,
        &step3,
        "app",
        &[],
    );
    assert_eq!(d3, d2, "rebase onto the current base must be a no-op");
}

#[test]
fn rebase_is_reproducible() {
    let fx = Fixture::new();
    let a = fx.path("a");
    let b = fx.path("b");
    let args = (
        fx.image("app"),
        fx.image("base-v2-fresh"),
        fx.image("base-v1"),
    );
    let da = rebase(&args.0, &args.1, Some(&args.2), &a, "app", &[]);
    let db = rebase(&args.0, &args.1, Some(&args.2), &b, "app", &[]);
    assert_eq!(da, db);
    let (ta, tb) = (snapshot(&a), snapshot(&b));
    assert_eq!(
        ta.keys().collect::<Vec<_>>(),
        tb.keys().collect::<Vec<_>>(),
        "the two output layouts hold different files"
    );
    assert_same_contents("first rebase", &ta, "second rebase", &tb);
}

#[test]
fn rebase_dry_run_writes_nothing() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    let r = run_ok(
        ocipatch()
            .arg("rebase")
            .arg(fx.image("app"))
            .arg("--onto")
            .arg(fx.image("base-v2"))
            .arg("--from")
            .arg(fx.image("base-v1"))
            .arg("-o")
            .arg(oci_ref(&dest, "app"))
            .arg("--dry-run"),
    );
    assert!(
        !dest.join("index.json").exists(),
        "--dry-run wrote {}\n{r}",
        dest.display()
    );
}

// ---------------------------------------------------------------------------------------------
// verify / inspect

#[test]
fn verify_accepts_examples_and_skopeo_zstd_copy() {
    let fx = Fixture::new();
    for tag in TAGS {
        run_ok(ocipatch().arg("verify").arg(fx.image(tag)));
    }

    let z = fx.path("zstd");
    run_ok(
        cmd("skopeo")
            .args(["copy", "--quiet", "--dest-compress-format", "zstd"])
            .arg(fx.image("app"))
            .arg(oci_ref(&z, "app")),
    );
    let m = manifest(&z, "app");
    for l in m["layers"].as_array().expect("layers") {
        assert_eq!(
            l["mediaType"], OCI_LAYER_ZSTD,
            "skopeo did not recompress: {m:#}"
        );
    }
    run_ok(ocipatch().arg("verify").arg(oci_ref(&z, "app")));
    let inspect = run_ok(
        ocipatch()
            .arg("inspect")
            .arg(oci_ref(&z, "app"))
            .arg("--json"),
    );
    serde_json::from_str::<serde_json::Value>(&inspect.stdout())
        .unwrap_or_else(|e| panic!("inspect --json is not JSON: {e}\n{inspect}"));
}

#[test]
fn verify_names_every_bad_blob() {
    let fx = Fixture::new();
    let app_layers = layer_digests(&fx.images, "app");
    // one base layer and the app's top layer, flipped in place (same size)
    let bad = [app_layers[0].clone(), app_layers[2].clone()];
    for d in &bad {
        let p = blob_path(&fx.images, d);
        let mut bytes = fs::read(&p).expect("read blob");
        let i = bytes.len() / 2;
        bytes[i] ^= 0xff;
        fs::write(&p, bytes).expect("write blob");
    }
    // the real client agrees the image is broken
    run_fail(
        cmd("skopeo")
            .arg("copy")
            .arg(fx.image("app"))
            .arg(oci_ref(&fx.path("x"), "app")),
    );

    let r = run_fail(ocipatch().arg("verify").arg(fx.image("app")));
    let all = format!("{}\n{}", r.stdout(), r.stderr());
    for d in &bad {
        let hex = d.strip_prefix("sha256:").unwrap();
        assert!(
            all.contains(&hex[..12]),
            "verify output does not name bad blob {d}\n{r}"
        );
    }
    // intact images in the same layout still verify
    run_ok(ocipatch().arg("verify").arg(fx.image("base-v2-fresh")));
}

#[test]
fn inspect_json_parses_for_examples_and_rebased_output() {
    let fx = Fixture::new();
    let parse = |r: &Run| -> serde_json::Value {
        serde_json::from_str(&r.stdout())
            .unwrap_or_else(|e| panic!("inspect --json is not JSON: {e}\n{r}"))
    };
    for tag in TAGS {
        parse(&run_ok(
            ocipatch().arg("inspect").arg(fx.image(tag)).arg("--json"),
        ));
    }
    parse(&run_ok(
        ocipatch()
            .arg("inspect")
            .arg(fx.image("app"))
            .arg("--base")
            .arg(fx.image("base-v1"))
            .arg("--json"),
    ));
    // plain inspect prints something human-readable
    let plain = run_ok(ocipatch().arg("inspect").arg(fx.image("app")));
    assert!(
        !plain.stdout().trim().is_empty(),
        "inspect printed nothing\n{plain}"
    );

    let dest = fx.path("out");
    rebase(
        &fx.image("app"),
        &fx.image("base-v2"),
        Some(&fx.image("base-v1")),
        &dest,
        "app",
        &[],
    );
    parse(&run_ok(
        ocipatch()
            .arg("inspect")
            .arg(oci_ref(&dest, "app"))
            .arg("--json"),
    ));
    run_ok(ocipatch().arg("verify").arg(oci_ref(&dest, "app")));
}
