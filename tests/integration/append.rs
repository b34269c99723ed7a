//! `ocipatch append`: a reproducible update layer on top of an image.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::*;

/// Writes the same patch tree under `root`, with the given permission bits and mtime.
fn write_patch(root: &Path, file_mode: u32, mtime: &str) {
    fs::create_dir_all(root.join("etc/ssl")).unwrap();
    fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    fs::write(root.join("etc/ssl/openssl.cnf"), b"[fixed]\n").unwrap();
    fs::write(
        root.join("usr/local/bin/tool"),
        b"#!/bin/sh\necho patched\n",
    )
    .unwrap();
    fs::set_permissions(
        root.join("etc/ssl/openssl.cnf"),
        fs::Permissions::from_mode(file_mode),
    )
    .unwrap();
    fs::set_permissions(
        root.join("usr/local/bin/tool"),
        fs::Permissions::from_mode(file_mode | 0o100),
    )
    .unwrap();
    let _ = symlink("tool", root.join("usr/local/bin/tool-link"));
    let st = Command::new("find")
        .arg(root)
        .args(["-exec", "touch", "-h", "-d", mtime, "{}", "+"])
        .status()
        .unwrap();
    assert!(st.success());
}

fn run_append(image: &str, layer: &Path, dest: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "append",
        image,
        "--layer",
        layer.to_str().unwrap(),
        "-o",
        dest,
    ];
    args.extend_from_slice(extra);
    ocipatch(&args)
}

#[test]
fn append_is_reproducible_across_directories_umasks_and_mtimes() {
    let s = scenario();
    let a = s.path("work-a/patch");
    let b = s.path("elsewhere/deeper/patch");
    // Different umasks and mtimes; both newer than the image's created (2024-05-01), which is
    // the clamp when SOURCE_DATE_EPOCH is unset, as it is for files made for a patch.
    write_patch(&a, 0o644, "2024-06-01 10:00:00");
    write_patch(&b, 0o664, "2025-06-30 23:59:59");
    let (ca, oa, ea) = run_append(
        &s.oci("app"),
        &a,
        &s.oci("patched-a"),
        &["--delete", "usr/lib/libfoo.so.1"],
    );
    let (cb, ob, eb) = run_append(
        &s.oci("app"),
        &b,
        &s.oci("patched-b"),
        &["--delete", "usr/lib/libfoo.so.1"],
    );
    assert_eq!((ca, cb), (0, 0), "{ea}{eb}");
    assert_eq!(last_line(&oa), last_line(&ob));

    let m = s.layout.read_json(last_line(&oa));
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), s.app.layers.len() + 1);
    let new = &layers[layers.len() - 1];
    assert_eq!(
        new["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let config = s.layout.read_json(m["config"]["digest"].as_str().unwrap());
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["created_by"], "ocipatch append");
    // the diff ID is the sha256 of the decompressed blob, and the tar holds what we asked
    let blob = fs::read(s.layout.blob_path(new["digest"].as_str().unwrap())).unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        &sha256(&tar)
    );
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        let e = e.unwrap();
        names.push((
            e.path().unwrap().display().to_string(),
            e.header().mtime().unwrap(),
            e.header().uid().unwrap(),
        ));
    }
    let paths: Vec<&str> = names.iter().map(|(p, _, _)| p.as_str()).collect();
    assert!(paths.contains(&"usr/lib/.wh.libfoo.so.1"), "{paths:?}");
    assert!(paths.contains(&"etc/ssl/openssl.cnf"), "{paths:?}");
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "entries are sorted");
    // mtimes clamped to the image's created (2024-05-01), owners normalised
    assert!(
        names
            .iter()
            .all(|(_, mtime, uid)| *mtime == 1_714_521_600 && *uid == 0),
        "{names:?}"
    );
    ok(&["verify", &s.oci("patched-a")]);
}

#[test]
fn source_date_epoch_sets_created_and_the_clamp() {
    let s = scenario();
    let p = s.path("patch");
    write_patch(&p, 0o644, "2024-01-01 10:00:00");
    let out = Command::new(env!("CARGO_BIN_EXE_ocipatch"))
        .args([
            "append",
            &s.oci("app"),
            "--layer",
            p.to_str().unwrap(),
            "-o",
            &s.oci("sde"),
            "--compression",
            "zstd",
            "--json",
        ])
        .env("SOURCE_DATE_EPOCH", "1000000000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["layer"]["mtime"], 1_000_000_000);
    assert_eq!(
        r["layer"]["media_type"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let m = s.layout.read_json(r["digest"].as_str().unwrap());
    let c = s.layout.read_json(m["config"]["digest"].as_str().unwrap());
    assert_eq!(c["created"], "2001-09-09T01:46:40Z");
    ok(&["verify", &s.oci("sde")]);
}

#[test]
fn a_tar_file_works_as_the_layer() {
    let s = scenario();
    let dir = s.path("patch");
    write_patch(&dir, 0o644, "2024-01-01 10:00:00");
    let tarball = s.path("patch.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let (c1, o1, e1) = run_append(&s.oci("app"), &tarball, &s.oci("from-tar"), &[]);
    let (c2, o2, e2) = run_append(&s.oci("app"), &dir, &s.oci("from-dir"), &[]);
    assert_eq!((c1, c2), (0, 0), "{e1}{e2}");
    assert_eq!(
        last_line(&o1),
        last_line(&o2),
        "same files, same layer, whatever tool made the tar"
    );
}

#[test]
fn every_platform_of_an_index_gets_the_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let a = Image::new(vec![Layer::files(&[("a", b"1")])], &["a"]).arch("amd64");
    let r = Image::new(vec![Layer::files(&[("a", b"2")])], &["a"]).arch("arm64");
    let (da, dr) = (l.put_image(&a), l.put_image(&r));
    l.add_index("multi", vec![da, dr]);
    let p = tmp.path().join("patch");
    write_patch(&p, 0o644, "2024-01-01 10:00:00");
    let (code, out, err) = run_append(&l.oci("multi"), &p, &l.oci("patched"), &["--json"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let idx = l.read_json(r["digest"].as_str().unwrap());
    for e in idx["manifests"].as_array().unwrap() {
        let m = l.read_json(e["digest"].as_str().unwrap());
        assert_eq!(
            m["layers"].as_array().unwrap().last().unwrap()["digest"],
            r["layer"]["digest"]
        );
    }
    ok(&["verify", &l.oci("patched")]);
}

#[test]
fn unsafe_inputs_are_refused_unless_allowed() {
    let s = scenario();
    // a relative symlink escaping the root
    let esc = s.path("escape");
    fs::create_dir_all(esc.join("etc")).unwrap();
    symlink("../../../../host/secret", esc.join("etc/link")).unwrap();
    let (code, _, err) = run_append(&s.oci("app"), &esc, &s.oci("x"), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("etc/link"), "{err}");
    let (code, _, err) = run_append(
        &s.oci("app"),
        &esc,
        &s.oci("x"),
        &["--allow-escaping-symlinks"],
    );
    assert_eq!(code, 0, "{err}");

    // a fifo (device-like file)
    let dev = s.path("dev");
    fs::create_dir_all(&dev).unwrap();
    assert!(Command::new("mkfifo")
        .arg(dev.join("pipe"))
        .status()
        .unwrap()
        .success());
    let (code, _, err) = run_append(&s.oci("app"), &dev, &s.oci("y"), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("pipe"), "{err}");
    assert!(s.layout.tagged("y").is_none());
    let (code, _, err) = run_append(&s.oci("app"), &dev, &s.oci("y"), &["--allow-devices"]);
    assert_eq!(code, 0, "{err}");

    // a tar whose member climbs out with ..
    let evil = s.path("evil.tar");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"../etc/passwd");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    fs::write(&evil, b.into_inner().unwrap()).unwrap();
    let (code, _, err) = run_append(&s.oci("app"), &evil, &s.oci("z"), &[]);
    assert_eq!(code, 1);
    assert!(err.contains("..") && err.contains("passwd"), "{err}");

    // a --delete of a path the image does not have, and a missing --layer path
    let ok_dir = s.path("okdir");
    write_patch(&ok_dir, 0o644, "2024-01-01 10:00:00");
    let err = fails(&[
        "append",
        &s.oci("app"),
        "--layer",
        ok_dir.to_str().unwrap(),
        "--delete",
        "no/such/file",
        "-o",
        &s.oci("w"),
    ]);
    assert!(err.contains("no/such/file"), "{err}");
    let err = fails(&[
        "append",
        &s.oci("app"),
        "--layer",
        "/nonexistent/patch",
        "-o",
        &s.oci("w"),
    ]);
    assert!(err.contains("/nonexistent/patch"), "{err}");
    assert!(s.layout.tagged("w").is_none());
}

#[test]
fn zstd_cannot_go_into_a_docker_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    l.add(
        "d",
        &Image::new(vec![Layer::files(&[("a", b"1")])], &["a"]).docker(),
    );
    let p = tmp.path().join("patch");
    write_patch(&p, 0o644, "2024-01-01 10:00:00");
    let (code, _, err) = run_append(&l.oci("d"), &p, &l.oci("z"), &["--compression", "zstd"]);
    assert_eq!(code, 1);
    assert!(err.contains("Docker"), "{err}");
    let out = ok(&[
        "append",
        &l.oci("d"),
        "--layer",
        p.to_str().unwrap(),
        "-o",
        &l.oci("g"),
    ]);
    let m = l.read_json(last_line(&out));
    assert_eq!(
        m["layers"][1]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
}
