//! Fleet rebase: many images onto one base in one run.

use std::fs;

use serde_json::Value;

use crate::util::*;

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
    let (code, out, err) = outcome(&a);
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
    let err = fails_usage(&[
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

#[test]
fn a_fleet_into_archives_writes_one_complete_archive_per_image() {
    let (s, tags) = fleet_scenario(3);
    let dir = s.path("archives");
    fs::create_dir_all(&dir).unwrap();
    let pattern = format!("oci-archive:{}/{{tag}}.tar:{{tag}}", dir.display());
    let mut args: Vec<String> = vec![
        "rebase".into(),
        "--from".into(),
        s.oci("base-v1"),
        "--onto".into(),
        s.oci("base-v2"),
        "-o".into(),
        pattern,
    ];
    args.extend(tags.iter().map(|t| s.oci(t)));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a);
    for t in &tags {
        // every archive holds every blob its image needs, shared base layers included
        ok(&[
            "verify",
            &format!("oci-archive:{}/{t}.tar:{t}", dir.display()),
        ]);
    }
    // two images into one archive would race: refused up front
    let one = format!("oci-archive:{}/all.tar:{{tag}}", dir.display());
    let err = fails_usage(&[
        "rebase",
        &s.oci(&tags[0]),
        &s.oci(&tags[1]),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &one,
    ]);
    assert!(err.contains("one image per archive"), "{err}");
}

/// `rebase --shard I/N` over a list file: the shards' JSON reports, in shard order.
fn shard_runs(s: &Scenario, list: &std::path::Path, out: &str, n: u64) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let (code, json, err) = outcome(&[
                "rebase",
                "--images-from",
                list.to_str().unwrap(),
                "--shard",
                &format!("{i}/{n}"),
                "--from",
                &s.oci("base-v1"),
                "--onto",
                &s.oci("base-v2"),
                "-o",
                &format!("oci:{out}:{{tag}}"),
                "--json",
            ]);
            assert_eq!(code, 0, "shard {i}/{n}: {err}");
            let r: Value = serde_json::from_str(&json).unwrap();
            assert_eq!(r["shard"], format!("{i}/{n}"));
            r
        })
        .collect()
}

#[test]
fn shards_rebase_every_image_exactly_once_whatever_the_list_order() {
    let (s, tags) = fleet_scenario(12);
    let refs: Vec<String> = tags.iter().map(|t| s.oci(t)).collect();
    let list = s.path("images.txt");
    fs::write(&list, refs.join("\n")).unwrap();
    let reversed = s.path("reversed.txt");
    let mut rev = refs.clone();
    rev.reverse();
    fs::write(&reversed, rev.join("\n")).unwrap();

    // one run, for reference
    let one = s.path("one");
    let mut args: Vec<String> = vec![
        "rebase".into(),
        "--images-from".into(),
        list.to_str().unwrap().into(),
        "--from".into(),
        s.oci("base-v1"),
        "--onto".into(),
        s.oci("base-v2"),
        "-o".into(),
        format!("oci:{}:{{tag}}", one.display()),
        "--json".into(),
    ];
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r: Value = serde_json::from_str(&ok(&a)).unwrap();
    assert_eq!(r["rebased"], 12);
    args.clear();

    let sharded = s.path("sharded");
    let runs = shard_runs(&s, &list, sharded.to_str().unwrap(), 4);
    let mut owner = std::collections::BTreeMap::new();
    for (i, r) in runs.iter().enumerate() {
        for e in r["images"].as_array().unwrap() {
            assert_eq!(e["status"], "rebased", "{e:#}");
            let image = e["image"].as_str().unwrap().to_string();
            assert!(owner.insert(image, i).is_none(), "an image in two shards");
        }
    }
    assert_eq!(owner.len(), 12, "every image in some shard: {owner:?}");
    assert!(
        owner
            .values()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1,
        "12 images all in one of 4 shards: {owner:?}"
    );
    // the shards together wrote exactly what one run wrote
    let (l1, l4) = (Layout { dir: one }, Layout { dir: sharded });
    for t in &tags {
        assert_eq!(l4.tagged(t), l1.tagged(t), "{t}");
        assert!(l4.tagged(t).is_some());
    }
    // the same shards of the reversed list hold the same images
    let again = s.path("again");
    let runs_rev = shard_runs(&s, &reversed, again.to_str().unwrap(), 4);
    for (a, b) in runs.iter().zip(&runs_rev) {
        let set = |r: &Value| {
            r["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["image"].as_str().unwrap().to_string())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(set(a), set(b));
    }
}

#[test]
fn an_empty_shard_is_a_successful_run_and_bad_shards_are_usage_errors() {
    let (s, tags) = fleet_scenario(1);
    let list = s.path("images.txt");
    fs::write(&list, s.oci(&tags[0])).unwrap();
    let mut empty = 0;
    for i in 0..3 {
        let (code, out, err) = outcome(&[
            "rebase",
            "--images-from",
            list.to_str().unwrap(),
            "--shard",
            &format!("{i}/3"),
            "--from",
            &s.oci("base-v1"),
            "--onto",
            &s.oci("base-v2"),
            "-o",
            &s.layout.oci("{tag}-v2"),
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let r: Value = serde_json::from_str(&out).unwrap();
        if r["images"].as_array().unwrap().is_empty() {
            empty += 1;
        }
    }
    assert_eq!(empty, 2, "one image: exactly one of three shards has it");
    for bad in ["3/3", "1/0", "a/b"] {
        let (code, _, err) = outcome(&[
            "rebase",
            &s.oci(&tags[0]),
            "--shard",
            bad,
            "--onto",
            &s.oci("base-v2"),
            "-o",
            &s.layout.oci("x"),
        ]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("I/N"), "{err}");
    }
}
