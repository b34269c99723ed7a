//! Fleet rebase: many images onto one base in one run.

use std::fs;

use serde_json::Value;

use crate::harness::*;

fn fleet_scenario(n: usize) -> (Scenario, Vec<String>) {
    let s = scenario();
    let mut tags = Vec::new();
    for i in 0..n {
        let body = format!("service {i}");
        let app = Image::on(
            &s.base_v1,
            vec![Layer::files(&[("srv/app", body.as_bytes())])],
            &["COPY app"],
        );
        let tag = format!("svc{i}");
        s.layout.add(&tag, &app);
        tags.push(tag);
    }
    (s, tags)
}

#[test]
fn fleet_results_equal_single_runs_and_failures_stay_isolated() {
    let (s, tags) = fleet_scenario(5);
    // one image that is not built on base-v1
    s.layout.add(
        "stranger",
        &Image::new(vec![Layer::files(&[("x", b"y")])], &["other"]),
    );
    let out_dir = s.path("out");
    let mut args: Vec<String> = vec![
        "rebase".into(),
        "--from".into(),
        s.oci("base-v1"),
        "--onto".into(),
        s.oci("base-v2"),
        "-o".into(),
        format!("oci:{}:{{tag}}-v2", out_dir.display()),
        "--json".into(),
    ];
    args.extend(tags.iter().map(|t| s.oci(t)));
    args.push(s.oci("stranger"));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = ocipatch(&a);
    assert_eq!(code, 1, "one image failed: {err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["rebased"], 5);
    assert_eq!(r["failed"], 1);
    let entries = r["images"].as_array().unwrap();
    assert!(entries[5]["error"]
        .as_str()
        .unwrap()
        .contains("does not sit on the old base"));

    let l = Layout {
        dir: out_dir.clone(),
    };
    for (i, t) in tags.iter().enumerate() {
        let fleet_digest = entries[i]["report"]["digest"].as_str().unwrap();
        assert_eq!(l.tagged(&format!("{t}-v2")).as_deref(), Some(fleet_digest));
        // the same image rebased alone gives the same bytes
        let single = ok(&[
            "rebase",
            &s.oci(t),
            "--from",
            &s.oci("base-v1"),
            "--onto",
            &s.oci("base-v2"),
            "-o",
            &s.oci(&format!("{t}-single")),
        ]);
        assert_eq!(last_line(&single), fleet_digest);
    }
    assert!(l.tagged("stranger-v2").is_none());
    ok(&["verify", &l.oci("svc3-v2")]);
}

#[test]
fn images_from_a_file_and_a_human_table() {
    let (s, tags) = fleet_scenario(3);
    let list = s.path("images.txt");
    let mut text = String::from("# the services\n\n");
    for t in &tags {
        text.push_str(&format!("{}\n", s.oci(t)));
    }
    fs::write(&list, text).unwrap();
    let out = ok(&[
        "rebase",
        "--images-from",
        list.to_str().unwrap(),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.layout.oci("{tag}-rebased"),
    ]);
    assert!(out.starts_with("IMAGE"), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");
    for t in &tags {
        assert!(s.layout.tagged(&format!("{t}-rebased")).is_some());
    }
}

#[test]
fn colliding_destinations_are_refused_before_anything_runs() {
    let (s, tags) = fleet_scenario(2);
    let err = fails(&[
        "rebase",
        &s.oci(&tags[0]),
        &s.oci(&tags[1]),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.layout.oci("same"),
    ]);
    assert!(err.contains("would both be written"), "{err}");
    assert!(s.layout.tagged("same").is_none());
}
