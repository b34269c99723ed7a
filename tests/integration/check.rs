//! `ocipatch check`: exit 0 current, 3 outdated, 1 error; per platform, like with like.

use serde_json::{json, Value};

use crate::util::*;

#[test]
fn outdated_and_current_by_annotation_and_by_layers() {
    let s = scenario();
    // no annotation, explicit --base: layer-prefix comparison
    let (code, out, _) = outcome(&["check", &s.oci("app"), "--base", &s.oci("base-v1")]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = outcome(&[
        "check",
        &s.oci("app"),
        "--base",
        &s.oci("base-v2"),
        "--json",
    ]);
    assert_eq!(code, 3, "{out}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["outdated"], true);
    assert_eq!(
        r["platforms"][0]["missing_layers"],
        json!([s.base_v2.layers[1].diff_id()])
    );

    // A layout base is not recorded by name (it is a path on this machine): check asks for --base.
    ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("unnamed"),
    ]);
    let err = fails(&["check", &s.oci("unnamed")]);
    assert!(err.contains("pass --base"), "{err}");

    // with --base-name the annotations say where the base is: the tag base-v2 is current...
    ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("rebased"),
        "--base-name",
        &s.oci("base-v2"),
    ]);
    let (code, out, _) = outcome(&["check", &s.oci("rebased"), "--json"]);
    assert_eq!(code, 0, "{out}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["platforms"][0]["compared_by"], "digest");
    // ...until the base tag moves on
    let v3 = Image::on(
        &s.base_v2,
        vec![Layer::files(&[("etc/os-release", b"VERSION=3\n")])],
        &["RUN upgrade again"],
    );
    s.layout.add("base-v2", &v3);
    let (code, out, _) = outcome(&["check", &s.oci("rebased")]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("OUTDATED"), "{out}");
}

#[test]
fn an_index_digest_annotation_is_compared_per_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let mk = |arch: &str, v: &[u8]| {
        Image::new(
            vec![Layer::files(&[("v", v), ("arch", arch.as_bytes())])],
            &["b"],
        )
        .arch(arch)
    };
    let (amd, arm) = (mk("amd64", b"1"), mk("arm64", b"1"));
    let base_index = l.add_index("base", vec![l.put_image(&amd), l.put_image(&arm)]);
    // the app records the base *index* digest (as some builders do) and is amd64 only
    let mut app = Image::on(&amd, vec![Layer::files(&[("app", b"x")])], &["app"]);
    app.annotations = Some(json!({
        ANN_BASE_DIGEST: base_index,
        ANN_BASE_NAME: l.oci("base"),
    }));
    l.add("app", &app);
    // only the arm64 image of the base changes: the index digest changes, amd64 is current
    let arm2 = mk("arm64", b"2");
    l.add_index("base", vec![l.put_image(&amd), l.put_image(&arm2)]);
    let (code, out, err) = outcome(&["check", &l.oci("app"), "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["platforms"][0]["status"], "current");
    assert_eq!(r["platforms"][0]["compared_by"], "layers");
}

#[test]
fn errors_exit_1() {
    let s = scenario();
    let err = fails(&["check", &s.oci("app")]);
    assert!(err.contains("--base"), "{err}");
    let err = fails(&["check", &s.oci("app"), "--base", &s.oci("missing")]);
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn an_index_without_images_is_an_error_not_a_panic() {
    let s = scenario();
    s.layout.add_index("empty", vec![]);
    // An index whose only entry is not an image (an artifact manifest).
    let (d, size) = s.layout.write_blob(
        json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": sha256(b"{}"), "size": 2},
            "layers": []
        })
        .to_string()
        .as_bytes(),
    );
    s.layout.write_blob(b"{}");
    s.layout.add_index(
        "sbom-only",
        vec![json!({"mediaType": OCI_MANIFEST,
                    "digest": d, "size": size, "artifactType": "application/vnd.example.sbom"})],
    );
    for tag in ["empty", "sbom-only"] {
        let err = fails(&["check", &s.oci(tag), "--base", &s.oci("base-v1")]);
        assert!(err.contains(tag), "{err}");
    }
}

#[test]
fn a_fleet_check_gives_one_line_per_image_and_exit_3_when_any_is_outdated() {
    let s = scenario();
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
    let list = s.path("images.txt");
    std::fs::write(
        &list,
        format!("# fleet\n{}\n\n{}\n", s.oci("app"), s.oci("rebased")),
    )
    .unwrap();
    let base = s.oci("base-v2");
    let (code, out, err) = outcome(&[
        "check",
        "--images-from",
        list.to_str().unwrap(),
        "--base",
        &base,
    ]);
    assert_eq!(code, 3, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[1].starts_with(&s.oci("app")) && lines[1].contains("outdated"),
        "{out}"
    );
    assert!(
        lines[2].starts_with(&s.oci("rebased")) && lines[2].contains("current"),
        "{out}"
    );
    assert!(err.contains("1 current, 1 outdated, 0 error(s)"), "{err}");

    // all current: exit 0
    let (code, out, _) = outcome(&[
        "check",
        &s.oci("rebased"),
        &s.oci("rebased"),
        "--base",
        &base,
    ]);
    assert_eq!(code, 0, "{out}");

    // one image that cannot be checked: its own line, the others still checked, exit 1
    let (code, out, _) = outcome(&[
        "check",
        "--images-from",
        list.to_str().unwrap(),
        &s.oci("no-such-tag"),
        "--base",
        &base,
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            r["current"].clone(),
            r["outdated"].clone(),
            r["errors"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    let images = r["images"].as_array().unwrap();
    assert_eq!(images[0]["status"], "error", "{r:#}");
    assert!(
        images[0]["error"].as_str().unwrap().contains("no-such-tag"),
        "{r:#}"
    );
    assert_eq!(images[1]["status"], "outdated");
    assert_eq!(images[2]["status"], "current");
    assert_eq!(images[2]["report"]["platforms"][0]["compared_by"], "digest");

    // shards split the same list as rebase does: together, each image once
    let mut seen = Vec::new();
    for i in 0..2 {
        let (code, out, _) = outcome(&[
            "check",
            "--images-from",
            list.to_str().unwrap(),
            "--base",
            &base,
            "--shard",
            &format!("{i}/2"),
            "--json",
        ]);
        assert!(code == 0 || code == 3, "{out}");
        let r: Value = serde_json::from_str(&out).unwrap();
        for e in r["images"].as_array().unwrap() {
            seen.push(e["image"].as_str().unwrap().to_string());
        }
    }
    seen.sort();
    let mut all = vec![s.oci("app"), s.oci("rebased")];
    all.sort();
    assert_eq!(seen, all);
}
