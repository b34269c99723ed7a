//! `ocipatch rebase` on OCI layouts: the rules and every error path.

use std::fs;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::*;

#[test]
fn rebase_onto_updated_base_splices_layers_and_merges_config() {
    let s = scenario();
    let dest = s.path("out");
    let before = snapshot(&s.layout.dir);
    let out = ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("oci:{}:app", dest.display()),
    ]);
    // inputs must not change
    assert_same_tree("inputs before", &before, "after", &snapshot(&s.layout.dir));

    let digest = last_line(&out);
    let out_layout = Layout { dir: dest.clone() };
    assert_eq!(out_layout.tagged("app").as_deref(), Some(digest));
    let manifest = out_layout.read_json(digest);
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    // new base's two layers, then the app's two, byte-for-byte the same blobs
    let v2 = s.layout.read_json(&s.layout.tagged("base-v2").unwrap());
    let app = s.layout.read_json(&s.layout.tagged("app").unwrap());
    assert_eq!(
        layers[..2],
        [
            v2["layers"][0]["digest"].as_str().unwrap(),
            v2["layers"][1]["digest"].as_str().unwrap()
        ]
    );
    assert_eq!(
        layers[2..],
        [
            app["layers"][1]["digest"].as_str().unwrap(),
            app["layers"][2]["digest"].as_str().unwrap()
        ]
    );
    for l in &layers {
        assert_eq!(sha256(&fs::read(out_layout.blob_path(l)).unwrap()), *l);
    }
    assert_eq!(manifest["layers"][3]["mediaType"], OCI_LAYER);
    assert_eq!(
        manifest["annotations"][ANN_BASE_DIGEST],
        s.layout.tagged("base-v2").unwrap()
    );
    // A layout path means nothing on another machine (and would make digests depend on the
    // working directory): no base.name unless --base-name says one.
    assert!(manifest["annotations"].get(ANN_BASE_NAME).is_none());

    let config = out_layout.read_json(manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        config["config"]["Env"],
        json!([
            "PATH=/usr/bin:/bin",
            "JAVA_HOME=/opt/jdk2",
            "BASE=2",
            "APP_ENV=prod"
        ])
    );
    assert_eq!(config["created"], "2024-05-01T00:00:00Z");
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "ADD rootfs",
            "RUN apt-get upgrade",
            "COPY server /app/",
            "COPY config.yaml /app/"
        ]
    );
    let expect_diff_ids: Vec<String> = s
        .base_v2
        .layers
        .iter()
        .chain(&s.app.layers[1..])
        .map(Layer::diff_id)
        .collect();
    assert_eq!(config["rootfs"]["diff_ids"], json!(expect_diff_ids));
}

#[test]
fn chain_of_rebases_finds_the_old_base_by_annotation() {
    let s = scenario();
    let dest = format!("oci:{}", s.layout.dir.display());
    ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("{dest}:app-v2"),
    ]);
    // no --from: the annotation names base-v2, found in the --onto layout
    let out = ok(&[
        "rebase",
        &s.oci("app-v2"),
        "--onto",
        &s.oci("base-v2-fresh"),
        "-o",
        &format!("{dest}:app-fresh"),
    ]);
    let m = s.layout.read_json(last_line(&out));
    assert_eq!(m["layers"].as_array().unwrap().len(), 3, "{m}");
    assert_eq!(
        m["annotations"][ANN_BASE_DIGEST],
        s.layout.tagged("base-v2-fresh").unwrap()
    );
}

#[test]
fn rebase_onto_the_current_base_is_a_no_op() {
    let s = scenario();
    let dest = format!("oci:{}", s.layout.dir.display());
    let first = ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("{dest}:once"),
    ]);
    let second = ok(&[
        "rebase",
        &s.oci("once"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("{dest}:twice"),
    ]);
    assert_eq!(last_line(&first), last_line(&second));
}

#[test]
fn output_is_reproducible_across_directories() {
    let s = scenario();
    let a = s.path("a");
    let b = s.path("nested/b");
    let run = |d: &std::path::Path| {
        ok(&[
            "rebase",
            &s.oci("app"),
            "--from",
            &s.oci("base-v1"),
            "--onto",
            &s.oci("base-v2"),
            "-o",
            &format!("oci:{}:app", d.display()),
        ])
    };
    assert_eq!(last_line(&run(&a)), last_line(&run(&b)));
    assert_same_contents("a", &snapshot(&a), "nested/b", &snapshot(&b));
}

#[test]
fn json_report_and_dry_run() {
    let s = scenario();
    let dest = s.path("out");
    let out = ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("oci:{}:app", dest.display()),
        "--dry-run",
        "--json",
    ]);
    assert!(!dest.exists(), "--dry-run must write nothing");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["dry_run"], true);
    let p = &r["platforms"][0];
    assert_eq!(p["layers_removed"].as_array().unwrap().len(), 1);
    assert_eq!(p["layers_added"].as_array().unwrap().len(), 2);
    assert_eq!(p["layers_kept"].as_array().unwrap().len(), 2);
    assert!(p["config_changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str().unwrap().starts_with("Env.JAVA_HOME")));
    // the planned digest is the one a real run writes
    let real = ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("oci:{}:app", dest.display()),
    ]);
    assert_eq!(r["digest"], last_line(&real));
}

#[test]
fn existing_destination_keeps_other_tags_and_replaces_its_own() {
    let s = scenario();
    let dest = s.layout.oci("app");
    let other_tags: Vec<String> = ["base-v1", "base-v2", "base-v2-fresh"]
        .iter()
        .map(|t| s.layout.tagged(t).unwrap())
        .collect();
    let out = ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &dest,
    ]);
    assert_eq!(s.layout.tagged("app").as_deref(), Some(last_line(&out)));
    for (t, d) in ["base-v1", "base-v2", "base-v2-fresh"]
        .iter()
        .zip(other_tags)
    {
        assert_eq!(s.layout.tagged(t), Some(d));
    }
    assert_eq!(s.layout.index()["manifests"].as_array().unwrap().len(), 4);
}

#[test]
fn concurrent_writers_keep_each_others_tags() {
    let s = scenario();
    let dest = s.path("shared");
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let args: Vec<String> = vec![
                "rebase".into(),
                s.oci("app"),
                "--from".into(),
                s.oci("base-v1"),
                "--onto".into(),
                s.oci("base-v2"),
                "-o".into(),
                format!("oci:{}:t{i}", dest.display()),
                "-q".into(),
            ];
            std::thread::spawn(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                ok(&a)
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let l = Layout { dir: dest };
    for i in 0..6 {
        assert!(
            l.tagged(&format!("t{i}")).is_some(),
            "tag t{i} lost: {}",
            l.index()
        );
    }
}

#[test]
fn multi_platform_index_is_rebased_per_platform_and_attestations_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let mk = |arch: &str, v: &[u8]| {
        Image::new(
            vec![Layer::files(&[("etc/v", v), ("arch", arch.as_bytes())])],
            &["base"],
        )
        .arch(arch)
    };
    let (b1a, b1r) = (mk("amd64", b"1"), mk("arm64", b"1"));
    let (b2a, b2r) = (mk("amd64", b"2"), mk("arm64", b"2"));
    let app_layer = Layer::files(&[("app", b"x")]);
    let (aa, ar) = (
        Image::on(&b1a, vec![app_layer.clone()], &["app"]),
        Image::on(&b1r, vec![app_layer], &["app"]),
    );
    let e = |img: &Image| l.put_image(img);
    l.add_index("b1", vec![e(&b1a), e(&b1r)]);
    l.add_index("b2", vec![e(&b2r), e(&b2a)]);
    let (att, _) = l.write_blob(b"{}");
    l.add_index("app", vec![
        e(&aa), e(&ar),
        json!({"mediaType": OCI_MANIFEST, "digest": att, "size": 2, "platform": {"os": "unknown", "architecture": "unknown"}}),
    ]);
    let out = ok(&[
        "rebase",
        &l.oci("app"),
        "--from",
        &l.oci("b1"),
        "--onto",
        &l.oci("b2"),
        "-o",
        &l.oci("rebased"),
        "--json",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["platforms"].as_array().unwrap().len(), 2);
    assert_eq!(r["dropped"].as_array().unwrap().len(), 1);
    let idx = l.read_json(r["digest"].as_str().unwrap());
    assert_eq!(idx["mediaType"], OCI_INDEX);
    assert_eq!(idx["annotations"]["org.example.index"], "kept");
    let entries = idx["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for (entry, base) in entries.iter().zip([&b2a, &b2r]) {
        let m = l.read_json(entry["digest"].as_str().unwrap());
        let c = l.read_json(m["config"]["digest"].as_str().unwrap());
        assert_eq!(c["architecture"], entry["platform"]["architecture"]);
        assert_eq!(c["rootfs"]["diff_ids"][0], base.layers[0].diff_id());
    }
    assert_eq!(l.tagged("rebased").as_deref(), r["digest"].as_str());

    // a platform the new base lacks is named in the error
    l.add_index("b2-amd64-only", vec![e(&b2a)]);
    let err = fails(&[
        "rebase",
        &l.oci("app"),
        "--from",
        &l.oci("b1"),
        "--onto",
        &l.oci("b2-amd64-only"),
        "-o",
        &l.oci("x"),
    ]);
    assert!(err.contains("linux/arm64"), "{err}");
    assert!(l.tagged("x").is_none());
}

#[test]
fn docker_manifest_keeps_docker_media_types_and_refuses_zstd() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let b1 = Image::new(vec![Layer::files(&[("a", b"1")])], &["b1"]).docker();
    let app = Image::on(&b1, vec![Layer::files(&[("app", b"x")])], &["app"]);
    l.add("b1", &b1);
    l.add("app", &app);
    l.add(
        "b2-oci",
        &Image::new(vec![Layer::files(&[("a", b"2")])], &["b2"]),
    );
    l.add(
        "b2-zstd",
        &Image::new(vec![Layer::files(&[("a", b"3")]).with(Comp::Zstd)], &["b2"]),
    );
    let out = ok(&[
        "rebase",
        &l.oci("app"),
        "--from",
        &l.oci("b1"),
        "--onto",
        &l.oci("b2-oci"),
        "-o",
        &l.oci("out"),
    ]);
    let m = l.read_json(last_line(&out));
    assert_eq!(m["mediaType"], DOCKER_MANIFEST);
    assert_eq!(m["config"]["mediaType"], DOCKER_CONFIG);
    for layer in m["layers"].as_array().unwrap() {
        assert_eq!(layer["mediaType"], DOCKER_LAYER_GZIP);
    }
    let err = fails(&[
        "rebase",
        &l.oci("app"),
        "--from",
        &l.oci("b1"),
        "--onto",
        &l.oci("b2-zstd"),
        "-o",
        &l.oci("out2"),
    ]);
    assert!(err.contains("zstd") && err.contains("Docker"), "{err}");
}

#[test]
fn foreign_layers_without_blobs_keep_their_urls() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let b1 = Image::new(vec![Layer::files(&[("a", b"1")])], &["b1"]);
    let app = Image::on(&b1, vec![Layer::files(&[("app", b"x")])], &["app"]);
    l.add("b1", &b1);
    l.add("app", &app);
    // a Windows-style new base: a foreign layer whose blob is not in the layout
    let foreign = Layer::files(&[("Windows/System32/x", b"base")]);
    let b2 = Image::new(vec![foreign.clone()], &["servercore"]);
    let mut desc = l.put_image(&b2);
    let mut m = l.read_json(desc["digest"].as_str().unwrap());
    let blob_digest = m["layers"][0]["digest"].as_str().unwrap().to_string();
    fs::remove_file(l.blob_path(&blob_digest)).unwrap();
    m["layers"][0]["mediaType"] =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into();
    m["layers"][0]["urls"] = json!(["https://mcr.example/blob"]);
    let (d, s) = l.write_blob(&serde_json::to_vec(&m).unwrap());
    desc["digest"] = d.into();
    desc["size"] = s.into();
    l.tag("b2", desc);
    let dest = tmp.path().join("out");
    let out = ok(&[
        "rebase",
        &l.oci("app"),
        "--from",
        &l.oci("b1"),
        "--onto",
        &l.oci("b2"),
        "-o",
        &format!("oci:{}:app", dest.display()),
        "--json",
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["blobs"]["foreign"], 1);
    let ol = Layout { dir: dest };
    let m = ol.read_json(r["digest"].as_str().unwrap());
    assert_eq!(m["layers"][0]["urls"], json!(["https://mcr.example/blob"]));
    assert!(!ol.blob_path(&blob_digest).exists());
}

// ---- errors: non-zero exit, one line naming the culprit, nothing written ----

fn rebase_into_new_dir(s: &Scenario, image: &str, from: Option<&str>, onto: &str) -> String {
    let dest = s.path("dest");
    let mut args = vec![
        "rebase".to_string(),
        image.to_string(),
        "--onto".into(),
        onto.to_string(),
    ];
    if let Some(f) = from {
        args.extend(["--from".to_string(), f.to_string()]);
    }
    args.extend(["-o".to_string(), format!("oci:{}:app", dest.display())]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = fails(&a);
    assert!(
        !dest.exists(),
        "a failed run must leave no destination behind"
    );
    err
}

#[test]
fn missing_tag_lists_the_available_ones() {
    let s = scenario();
    let err = rebase_into_new_dir(
        &s,
        &s.oci("nope"),
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(
        err.contains("tag \"nope\" not found") && err.contains("base-v1, base-v2"),
        "{err}"
    );
}

#[test]
fn missing_blob_is_named() {
    let s = scenario();
    let app = s.layout.read_json(&s.layout.tagged("app").unwrap());
    let layer = app["layers"][2]["digest"].as_str().unwrap();
    fs::remove_file(s.layout.blob_path(layer)).unwrap();
    let err = rebase_into_new_dir(
        &s,
        &s.oci("app"),
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(err.contains(layer) && err.contains("missing"), "{err}");
}

#[test]
fn corrupt_blob_fails_the_copy_and_writes_no_tag() {
    let s = scenario();
    let v2 = s.layout.read_json(&s.layout.tagged("base-v2").unwrap());
    let layer = v2["layers"][1]["digest"].as_str().unwrap();
    let path = s.layout.blob_path(layer);
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&path, &bytes).unwrap();
    let err = rebase_into_new_dir(
        &s,
        &s.oci("app"),
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(err.contains(layer) && err.contains("corrupt"), "{err}");

    // into an existing layout: the tag is not written, the other tags are intact
    let before = s.layout.index();
    fails(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("app-new"),
    ]);
    assert_eq!(s.layout.index(), before);
}

#[test]
fn blob_with_wrong_size_is_named() {
    let s = scenario();
    let mut desc = s.layout.put_image(&s.app);
    let mut m = s.layout.read_json(desc["digest"].as_str().unwrap());
    let layer = m["layers"][2]["digest"].as_str().unwrap().to_string();
    m["layers"][2]["size"] = (m["layers"][2]["size"].as_u64().unwrap() + 7).into();
    let (d, size) = s.layout.write_blob(&serde_json::to_vec(&m).unwrap());
    desc["digest"] = d.into();
    desc["size"] = size.into();
    s.layout.tag("app-badsize", desc);
    let err = rebase_into_new_dir(
        &s,
        &s.oci("app-badsize"),
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(err.contains(&layer) && err.contains("bytes"), "{err}");
}

#[test]
fn truncated_index_json_is_named() {
    let s = scenario();
    let index = s.layout.dir.join("index.json");
    let bytes = fs::read(&index).unwrap();
    fs::write(&index, &bytes[..bytes.len() / 2]).unwrap();
    let err = rebase_into_new_dir(
        &s,
        &s.oci("app"),
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(
        err.contains("index.json") && err.contains("invalid JSON"),
        "{err}"
    );
}

#[test]
fn invalid_manifest_and_config_are_named() {
    let s = scenario();
    // a manifest that is not JSON, correctly addressed
    let (d, size) = s.layout.write_blob(b"{\"schemaVersion\": 2, \"config\": ");
    s.layout.tag(
        "broken",
        json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size}),
    );
    let err = rebase_into_new_dir(
        &s,
        &s.oci("broken"),
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(
        err.contains(&d) && err.contains("manifest") && err.contains("invalid JSON"),
        "{err}"
    );

    // a config without rootfs
    let mut desc = s.layout.put_image(&s.app);
    let mut m = s.layout.read_json(desc["digest"].as_str().unwrap());
    let (cd, cs) = s
        .layout
        .write_blob(br#"{"architecture":"amd64","os":"linux"}"#);
    m["config"]["digest"] = cd.clone().into();
    m["config"]["size"] = cs.into();
    let (md, ms) = s.layout.write_blob(&serde_json::to_vec(&m).unwrap());
    desc["digest"] = md.into();
    desc["size"] = ms.into();
    s.layout.tag("badconfig", desc);
    let err = rebase_into_new_dir(
        &s,
        &s.oci("badconfig"),
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(
        err.contains(&cd) && err.contains("config") && err.contains("rootfs"),
        "{err}"
    );

    // a manifest blob whose bytes do not match its digest
    let app = s.layout.tagged("app").unwrap();
    let path = s.layout.blob_path(&app);
    let mut bytes = fs::read(&path).unwrap();
    bytes[10] = b' ';
    fs::write(&path, bytes).unwrap();
    let err = rebase_into_new_dir(
        &s,
        &s.oci("app"),
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(err.contains(&app) && err.contains("corrupt"), "{err}");
}

#[test]
fn from_that_is_not_the_base_names_the_first_differing_layer() {
    let s = scenario();
    let err = rebase_into_new_dir(
        &s,
        &s.oci("app"),
        Some(&s.oci("base-v2-fresh")),
        &s.oci("base-v2"),
    );
    assert!(
        err.contains("does not sit on the old base") && err.contains("layer 0"),
        "{err}"
    );
}

#[test]
fn without_from_or_annotation_asks_for_from() {
    let s = scenario();
    let err = rebase_into_new_dir(&s, &s.oci("app"), None, &s.oci("base-v2"));
    assert!(err.contains("--from"), "{err}");
}

#[test]
fn missing_archive_and_unknown_transport() {
    let s = scenario();
    let err = rebase_into_new_dir(
        &s,
        "oci-archive:/nonexistent/app.tar:1",
        Some(&s.oci("base-v1")),
        &s.oci("base-v2"),
    );
    assert!(
        err.contains("oci-archive:/nonexistent/app.tar:1") && err.contains("/nonexistent/app.tar"),
        "{err}"
    );
    let (code, _, err) = outcome(&[
        "rebase",
        "ftp:x",
        "--onto",
        &s.oci("base-v2"),
        "-o",
        "oci:y",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown transport \"ftp\""), "{err}");
}

#[test]
fn unwritable_destination_is_named() {
    let s = scenario();
    let file = s.path("a-file");
    fs::write(&file, b"x").unwrap();
    let dest = format!("oci:{}/sub:app", file.display());
    let err = fails(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &dest,
    ]);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[test]
fn destination_that_is_not_a_layout_is_refused() {
    let s = scenario();
    let dir = s.path("stuff");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("notes.txt"), b"mine").unwrap();
    let err = fails(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("oci:{}:app", dir.display()),
    ]);
    assert!(err.contains("not an OCI image layout"), "{err}");
    assert_eq!(snapshot(&dir).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Hostile layouts and interruptions (issue 10 items 2, 4, 9)

fn rebase_to(s: &Scenario, image: &str, dest: &str) -> Vec<String> {
    vec![
        "rebase".into(),
        s.oci(image),
        "--from".into(),
        s.oci("base-v1"),
        "--onto".into(),
        s.oci("base-v2"),
        "-o".into(),
        dest.into(),
        "-q".into(),
    ]
}

/// Issue 10 item 2: temp files in a layout were `.ocipatch-tmp-NAME-PID-N`, opened with
/// `File::create`: a symlink planted there was written through. The run is started stopped to
/// learn its PID; symlinks are planted at every name the old code could use (blob temp files
/// in `blobs/sha256`, the `index.json` temp file); none may be followed.
#[test]
fn symlinks_planted_at_guessable_temp_names_in_a_layout_are_not_followed() {
    let s = scenario();
    let victim = s.path("victim");
    fs::write(&victim, b"precious").unwrap();
    // What the run writes (its output is reproducible): learned from a scratch run.
    let scratch = s.path("scratch");
    ok(&strs(&rebase_to(
        &s,
        "app",
        &format!("oci:{}:x", scratch.display()),
    )));
    let hexes: Vec<String> = fs::read_dir(scratch.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let dest = Layout::new(s.path("dest"));
    let p = ocipatch()
        .args(rebase_to(&s, "app", &dest.oci("x")))
        .spawn_stopped();
    let blobs = dest.dir.join("blobs/sha256");
    for n in 0..48 {
        let pid = p.pid;
        for hex in &hexes {
            let planted = blobs.join(format!(".ocipatch-tmp-{hex}-{pid}-{n}"));
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        let planted = dest.dir.join(format!(".ocipatch-tmp-index.json-{pid}-{n}"));
        std::os::unix::fs::symlink(&victim, planted).unwrap();
    }
    p.signal("CONT");
    let (code, _, err) = p.finish().parts();
    assert_eq!(code, 0, "{err}");
    assert!(
        fs::read(&victim).unwrap() == b"precious",
        "the file outside was written through a planted symlink"
    );
    for hex in &hexes {
        let meta = fs::symlink_metadata(blobs.join(hex)).unwrap();
        assert!(
            meta.file_type().is_file(),
            "blob {hex} is not a regular file"
        );
    }
    assert!(fs::symlink_metadata(dest.dir.join("index.json"))
        .unwrap()
        .file_type()
        .is_file());
    ok(&["verify", &dest.oci("x")]);
}

/// Runs ocipatch; a run that has not ended after a long while is killed and reported (the
/// old code read `/dev/zero` forever).
fn bounded_run(args: &[&str]) -> (i32, String, String) {
    run(ocipatch().args(args).timeout(Duration::from_secs(120))).parts()
}

/// Issue 10 item 4: `index.json`, a blob selected by digest, or a layer blob that is a
/// symlink to `/dev/zero` was read without end (memory past 1 GB, verify never ending, a copy
/// filling the disk). Each must fail at once, naming the file.
#[test]
fn layout_files_that_are_devices_are_refused_not_read_forever() {
    // index.json -> /dev/zero
    let s = scenario();
    let bad = Layout::new(s.path("bad-index"));
    fs::remove_file(bad.dir.join("index.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", bad.dir.join("index.json")).unwrap();
    for args in [
        vec!["verify".to_string(), bad.oci("x")],
        rebase_to(&s, "app", &bad.oci("x")),
    ] {
        let (code, _, err) = bounded_run(&strs(&args));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("index.json") && err.contains("not a regular file"),
            "{args:?}: {err}"
        );
    }

    // A layer blob -> /dev/zero: verify and rebase (copy) both refuse it.
    let app = s.layout.read_json(&s.layout.tagged("app").unwrap());
    let layer = app["layers"][1]["digest"].as_str().unwrap().to_string();
    let path = s.layout.blob_path(&layer);
    let saved = fs::read(&path).unwrap();
    fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    let (code, out, err) = bounded_run(&["verify", &s.oci("app")]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains(&layer) && out.contains("not a regular file"),
        "{out}{err}"
    );
    let dest = s.path("out");
    let (code, _, err) = bounded_run(&strs(&rebase_to(
        &s,
        "app",
        &format!("oci:{}:x", dest.display()),
    )));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&layer) && err.contains("not a regular file"),
        "{err}"
    );
    assert!(!dest.exists(), "a failed run leaves no destination");
    fs::remove_file(&path).unwrap();
    fs::write(&path, saved).unwrap();

    // A manifest selected by digest (not tagged) -> /dev/zero.
    let untagged = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    std::os::unix::fs::symlink("/dev/zero", s.layout.blob_path(untagged)).unwrap();
    let reference = format!("oci:{}:{untagged}", s.layout.dir.display());
    let (code, _, err) = bounded_run(&["inspect", &reference]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// Issue 10 item 4: a source blob that is a symlink (here to a file outside the layout) was
/// hard-linked into the destination as that symlink. Its content is copied and checked.
#[test]
fn a_source_blob_that_is_a_symlink_is_copied_not_linked() {
    let s = scenario();
    let app = s.layout.read_json(&s.layout.tagged("app").unwrap());
    let layer = app["layers"][1]["digest"].as_str().unwrap().to_string();
    let path = s.layout.blob_path(&layer);
    let outside = s.path("outside-blob");
    fs::rename(&path, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &path).unwrap();
    let dest = Layout { dir: s.path("out") };
    ok(&strs(&rebase_to(&s, "app", &dest.oci("x"))));
    let copied = dest.blob_path(&layer);
    assert!(
        fs::symlink_metadata(&copied).unwrap().file_type().is_file(),
        "the destination's blob is a link to somewhere else"
    );
    assert_eq!(fs::read(&copied).unwrap(), fs::read(&outside).unwrap());
    ok(&["verify", &dest.oci("x")]);
}

/// Issue 10 item 9: Ctrl-C left a half-made destination layout with no `index.json`. The
/// writer is caught while the test holds the new layout's lock (it waits there to prepare or
/// to commit), then interrupted: the layout it created goes, and it exits 130.
#[test]
fn an_interrupted_rebase_removes_the_layout_it_created() {
    let s = scenario();
    // A big layer keeps the writer busy (checking it) between making the layout and committing.
    let big = vec![7u8; 48 << 20];
    let img = Image::on(
        &s.base_v1,
        vec![Layer::files(&[("big", &big)]).with(Comp::None)],
        &["ADD big"],
    );
    s.layout.add("big", &img);
    for attempt in 0..5 {
        let dest = s.path(&format!("new-{attempt}"));
        let w = ocipatch()
            .args(rebase_to(&s, "big", &format!("oci:{}:x", dest.display())))
            .spawn();
        wait_for("the destination to appear", || {
            dest.exists() || {
                // Ended before making it: a failure, reported below.
                fs::read_to_string(format!("/proc/{}/stat", w.pid))
                    .map_or(true, |st| st.contains(") Z"))
            }
        });
        let lock = fs::File::open(&dest).ok();
        if let Some(l) = &lock {
            l.lock().unwrap();
        }
        if lock.is_none() || dest.join("index.json").exists() {
            // The writer committed before the test caught it: not what this test is about.
            drop(lock);
            let (code, _, err) = w.finish().parts();
            assert_eq!(code, 0, "{err}");
            continue;
        }
        w.signal("INT");
        // The clean-up waits for the lock the test holds (a commit might be under way).
        drop(lock);
        let (code, _, err) = w.finish().parts();
        assert_eq!(code, 130, "{err}");
        assert!(!dest.exists(), "the half-made layout is left");
        assert_eq!(
            fs::read_dir(s.tmp.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect::<Vec<_>>(),
            Vec::<String>::new()
        );
        return;
    }
    panic!("the writer always committed before it could be interrupted");
}

#[test]
fn the_same_rebase_from_another_directory_gives_the_same_digest() {
    let s = scenario();
    let here = run_ok(ocipatch().current_dir(s.tmp.path()).args([
        "rebase",
        "oci:images:app",
        "--from",
        "oci:images:base-v1",
        "--onto",
        "oci:images:base-v2",
        "-o",
        "oci:out1:x",
    ]));
    // Same images, reached through another working directory and a longer relative path.
    std::fs::create_dir(s.path("sub")).unwrap();
    let there = run_ok(ocipatch().current_dir(s.path("sub")).args([
        "rebase",
        "oci:../images:app",
        "--from",
        "oci:../images:base-v1",
        "--onto",
        "oci:../images:base-v2",
        "-o",
        "oci:../out2:x",
    ]));
    assert_eq!(here.stdout().trim(), there.stdout().trim());
}

#[test]
fn a_single_image_keeps_its_index_entry_platform_and_os_version() {
    let s = scenario();
    // A Windows-style entry: hosts pick images by os.version.
    let mut index = s.layout.index();
    for m in index["manifests"].as_array_mut().unwrap() {
        if m["annotations"][ANN_REF_NAME] == "app" {
            m["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux", "os.version": "10.0.20348.2227"});
        }
    }
    std::fs::write(
        s.layout.dir.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let out = Layout::new(s.path("out"));
    ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &out.oci("x"),
    ]);
    let entry = out.index()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][ANN_REF_NAME] == "x")
        .cloned()
        .unwrap();
    assert_eq!(
        entry["platform"]["os.version"], "10.0.20348.2227",
        "{entry}"
    );
    assert_eq!(entry["platform"]["architecture"], "amd64");
}

/// The blobs of `dest` that are the very files of the scenario's source layout (hard links).
fn shared_with_source(s: &Scenario, dest: &Layout) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let blobs = dest.dir.join("blobs/sha256");
    let mut shared: Vec<String> = fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| {
            let ours = fs::symlink_metadata(blobs.join(name)).unwrap();
            fs::symlink_metadata(s.layout.blob_path(&format!("sha256:{name}")))
                .is_ok_and(|theirs| (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()))
        })
        .collect();
    shared.sort();
    shared
}

/// Issue 13: output blobs are hard links to the source layout's files, which a tool that edits
/// blobs in place would change in both. `--copy` gives the destination files of its own, and
/// replaces the links an earlier run made there; the image is the same.
#[test]
fn copy_gives_the_destination_its_own_blob_files() {
    let s = scenario();
    let dest = Layout { dir: s.path("out") };
    let args = rebase_to(&s, "app", &dest.oci("x"));
    let digest = last_line(&ok(&strs(&args))).to_string();
    let linked = shared_with_source(&s, &dest);
    assert!(!linked.is_empty(), "a same-filesystem rebase links blobs");

    let mut copying = args.clone();
    copying.retain(|a| a != "-q");
    copying.push("--copy".into());
    let (code, out, err) = outcome(&strs(&copying));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        last_line(&out),
        digest,
        "--copy changes no byte of the image"
    );
    assert_eq!(shared_with_source(&s, &dest), Vec::<String>::new(), "{err}");
    assert!(err.contains(" 0 linked"), "{err}");
    ok(&["verify", &dest.oci("x")]);

    // A fresh destination, and append: nothing linked either.
    let fresh = Layout {
        dir: s.path("fresh"),
    };
    let copying = rebase_to(&s, "app", &fresh.oci("x"));
    let mut copying = strs(&copying);
    copying.push("--copy");
    assert_eq!(last_line(&ok(&copying)), digest);
    assert_eq!(shared_with_source(&s, &fresh), Vec::<String>::new());
    let patch = s.path("patch");
    fs::create_dir_all(&patch).unwrap();
    fs::write(patch.join("motd"), b"patched\n").unwrap();
    let appended = Layout {
        dir: s.path("appended"),
    };
    ok(&[
        "append",
        &s.oci("app"),
        "--layer",
        patch.to_str().unwrap(),
        "-o",
        &appended.oci("x"),
        "--copy",
        "-q",
    ]);
    assert_eq!(shared_with_source(&s, &appended), Vec::<String>::new());
    ok(&["verify", &appended.oci("x")]);
}
