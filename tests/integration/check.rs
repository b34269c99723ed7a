//! `ocipatch check`: exit 0 current, 3 outdated, 1 error; per platform, like with like.

use serde_json::{json, Value};

use crate::harness::*;

#[test]
fn outdated_and_current_by_annotation_and_by_layers() {
    let s = scenario();
    // no annotation, explicit --base: layer-prefix comparison
    let (code, out, _) = ocipatch(&["check", &s.oci("app"), "--base", &s.oci("base-v1")]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = ocipatch(&[
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

    // after a rebase the annotations say where the base is: the tag base-v2 is current...
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
    let (code, out, _) = ocipatch(&["check", &s.oci("rebased"), "--json"]);
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
    let (code, out, _) = ocipatch(&["check", &s.oci("rebased")]);
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
        "org.opencontainers.image.base.digest": base_index,
        "org.opencontainers.image.base.name": l.oci("base"),
    }));
    l.add("app", &app);
    // only the arm64 image of the base changes: the index digest changes, amd64 is current
    let arm2 = mk("arm64", b"2");
    l.add_index("base", vec![l.put_image(&amd), l.put_image(&arm2)]);
    let (code, out, err) = ocipatch(&["check", &l.oci("app"), "--json"]);
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
