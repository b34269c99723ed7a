//! The rebase safety report: `rebase --json`, `--dry-run`, `--strict`.

use serde_json::Value;

use crate::util::*;

fn kinds(report: &Value) -> Vec<(String, String)> {
    report["safety"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn findings_name_what_the_swap_changes_under_the_app() {
    let s = scenario();
    // an app that bundles its own copy of the library the update patched, and deletes the
    // os-release the update changed
    let app = Image::on(
        &s.base_v1,
        vec![Layer::files(&[
            ("usr/lib/libfoo.so.1", b"app's bundled copy"),
            ("etc/.wh.os-release", b""),
        ])],
        &["COPY libfoo", "RUN rm /etc/os-release"],
    );
    s.layout.add("risky", &app);
    // headers only: an update is seen by size, mode, owner, mtime or link target, so this one
    // changes the size of os-release (real updates change mtimes too)
    let v2b = Image::on(
        &s.base_v1,
        vec![Layer::files(&[
            ("etc/os-release", b"VERSION=2.1\n"),
            ("usr/lib/libfoo.so.1", b"foo v2 patched"),
        ])],
        &["RUN apt-get upgrade"],
    );
    s.layout.add("base-v2", &v2b);
    let out = ok(&[
        "rebase",
        &s.oci("risky"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("r"),
        "--dry-run",
        "--json",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    let k = kinds(&r);
    assert!(
        k.contains(&(
            "app-overwrites-changed-file".into(),
            "usr/lib/libfoo.so.1".into()
        )),
        "{k:?}"
    );
    assert!(
        k.contains(&(
            "app-whiteout-deletes-changed-path".into(),
            "etc/os-release".into()
        )),
        "{k:?}"
    );

    // --strict refuses and writes no tag
    let err = fails(&[
        "rebase",
        &s.oci("risky"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("r"),
        "--strict",
    ]);
    assert!(
        err.contains("--strict")
            && err.contains("2 safety finding(s)")
            && err.contains("etc/os-release"),
        "{err}"
    );
    assert!(s.layout.tagged("r").is_none());
}

#[test]
fn a_clean_app_has_no_findings_and_strict_passes() {
    let s = scenario();
    let out = ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("r"),
        "--json",
        "--strict",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert!(kinds(&r).is_empty(), "{r:#}");
    assert!(s.layout.tagged("r").is_some());
}

#[test]
fn app_files_under_a_directory_the_new_base_removed_are_reported() {
    let s = scenario();
    let app = Image::on(
        &s.base_v1,
        vec![Layer::files(&[("usr/lib/libfoo.so.1", b"foo v1")])],
        &["touch lib"],
    );
    s.layout.add("dep", &app);
    // a new base without usr/lib/libfoo.so.1 at all
    let fresh = Image::new(
        vec![Layer::files(&[("etc/os-release", b"VERSION=9\n")])],
        &["ADD other"],
    );
    s.layout.add("other", &fresh);
    let out = ok(&[
        "rebase",
        &s.oci("dep"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("other"),
        "-o",
        &s.oci("x"),
        "--dry-run",
        "--json",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert!(
        kinds(&r).contains(&(
            "app-depends-on-removed-path".into(),
            "usr/lib/libfoo.so.1".into()
        )),
        "{:?}",
        kinds(&r)
    );
}

#[test]
fn inspect_with_a_candidate_base_previews_the_rebase() {
    let s = scenario();
    let app = Image::on(
        &s.base_v1,
        vec![Layer::files(&[(
            "usr/lib/libfoo.so.1",
            b"app's bundled copy",
        )])],
        &["COPY libfoo"],
    );
    s.layout.add("bundler", &app);
    // give it the annotation a previous rebase would have written
    ok(&[
        "rebase",
        &s.oci("bundler"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v1"),
        "-o",
        &s.oci("annotated"),
    ]);
    let out = ok(&[
        "inspect",
        &s.oci("annotated"),
        "--base",
        &s.oci("base-v2"),
        "--json",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    let f = &r["platforms"][0]["rebase_safety"]["findings"];
    assert_eq!(f[0]["path"], "usr/lib/libfoo.so.1", "{r:#}");
    // One meaning of --base: a candidate new base does not blank the layer roles; they come
    // from the image's recorded base (issue 19).
    let roles: Vec<&str> = r["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["base", "app"], "{r:#}");
    assert_eq!(
        r["platforms"][0]["base"]["found_via"], "annotation",
        "{r:#}"
    );
    let human = ok(&["inspect", &s.oci("annotated"), "--base", &s.oci("base-v2")]);
    assert!(
        human.contains("rebase onto --base (a candidate new base): 1 safety finding(s)"),
        "{human}"
    );
}
