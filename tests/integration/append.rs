//! `ocipatch append`: a reproducible update layer on top of an image.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use serde_json::Value;

use crate::util::*;

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
    run_ok(
        cmd("find")
            .arg(root)
            .args(["-exec", "touch", "-h", "-d", mtime, "{}", "+"]),
    );
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
    outcome(&args)
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
    assert_eq!(new["mediaType"], OCI_LAYER_GZIP);
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
    let r = run_ok(
        ocipatch()
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
            .env("SOURCE_DATE_EPOCH", "1000000000"),
    )
    .json();
    assert_eq!(r["layer"]["mtime"], 1_000_000_000);
    assert_eq!(r["layer"]["media_type"], OCI_LAYER_ZSTD);
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
    run_ok(
        cmd("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    );
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
    run_ok(cmd("mkfifo").arg(dev.join("pipe")));
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
    let err = fails_usage(&[
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
    assert_eq!(m["layers"][1]["mediaType"], DOCKER_LAYER_GZIP);
}

/// Issue 10 item 7: a manifest or config file already in the destination was trusted by its
/// name: a corrupt one stayed (exit 0), and `verify` of the written tag then failed. Each is
/// planted corrupt at the address the append writes, then must be replaced.
#[test]
fn corrupt_files_already_in_the_destination_are_replaced() {
    let s = scenario();
    let p = s.path("patch");
    write_patch(&p, 0o644, "2024-01-01 10:00:00");
    // What the append writes (reproducible): learned from a scratch destination.
    let scratch = Layout::new(s.path("scratch"));
    let (code, _, err) = run_append(&s.oci("app"), &p, &scratch.oci("x"), &[]);
    assert_eq!(code, 0, "{err}");
    let manifest = scratch.tagged("x").unwrap();
    let config = scratch.read_json(&manifest)["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    for planted in [&manifest, &config] {
        let dest = Layout::new(s.path(&format!("dest-{}", &planted[7..19])));
        fs::write(dest.blob_path(planted), b"{\"corrupt\": true}").unwrap();
        let (code, _, err) = run_append(&s.oci("app"), &p, &dest.oci("x"), &[]);
        assert_eq!(code, 0, "{err}");
        ok(&["verify", &dest.oci("x")]);
        assert_eq!(
            fs::read(dest.blob_path(planted)).unwrap(),
            fs::read(scratch.blob_path(planted)).unwrap()
        );
    }
}

/// Issue 10 item 9: Ctrl-C left `$TMPDIR/ocipatch-append-*` behind. The layer is read from a
/// FIFO the test keeps open and silent, so the run is held right after making its staging
/// layout; SIGINT must remove it and exit 130.
#[test]
fn an_interrupted_append_removes_its_staging_layout() {
    let s = scenario();
    let tmpdir = s.path("tmpdir");
    fs::create_dir(&tmpdir).unwrap();
    let fifo = s.path("layer.fifo");
    run_ok(cmd("mkfifo").arg(&fifo));
    let dest = s.oci("appended");
    let w = ocipatch()
        .args([
            "append",
            &s.oci("app"),
            "--layer",
            fifo.to_str().unwrap(),
            "-o",
            &dest,
        ])
        .env("TMPDIR", &tmpdir)
        .spawn();
    // Opening the FIFO for writing waits for ocipatch to open it for reading.
    let writer = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    wait_for("the staging layout", || {
        fs::read_dir(&tmpdir).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("ocipatch-append-")
        })
    });
    w.signal("INT");
    let (code, _, err) = w.finish().parts();
    drop(writer);
    assert_eq!(code, 130, "{err}");
    assert_eq!(
        fs::read_dir(&tmpdir).unwrap().count(),
        0,
        "staging left behind"
    );
    assert!(s.layout.tagged("appended").is_none());
}

/// A gzip tar whose first member is a GNU long name of `mib` MiB: about 1 kB of gzip per MiB,
/// made of concatenated gzip members (one compressed MiB of name, repeated).
fn long_name_bomb(mib: u64) -> Vec<u8> {
    use std::io::Write;
    let gz = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    let header = |kind: tar::EntryType, name: &str, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h.as_bytes().to_vec()
    };
    let mut out = gz(&header(
        tar::EntryType::GNULongName,
        "././@LongLink",
        mib << 20,
    ));
    let chunk = gz(&vec![b'a'; 1 << 20]);
    for _ in 0..mib {
        out.extend_from_slice(&chunk);
    }
    let mut tail = header(tar::EntryType::Regular, "x", 0);
    tail.extend([0u8; 1024]);
    out.extend(gz(&tail));
    out
}

#[test]
fn a_gzip_tar_with_a_128_mib_name_is_refused() {
    let s = scenario();
    let bomb = s.path("bomb.tar.gz");
    fs::write(&bomb, long_name_bomb(128)).unwrap();
    assert!(fs::metadata(&bomb).unwrap().len() < 200_000);
    let (code, _, err) = run_append(&s.oci("app"), &bomb, &s.oci("bombed"), &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bomb.tar.gz") && err.contains("GNU long name") && err.contains("4097"),
        "{err}"
    );
    assert_eq!(s.layout.tagged("bombed"), None);
}

#[test]
fn empty_and_cut_short_tar_layers_are_refused() {
    let s = scenario();
    let empty = s.path("empty.tar");
    fs::write(&empty, b"").unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, "etc/a", &b"data"[..]).unwrap();
    let whole = b.into_inner().unwrap();
    let cut = s.path("cut.tar");
    fs::write(&cut, &whole[..1024]).unwrap();
    for input in [empty.as_path(), Path::new("/dev/null"), cut.as_path()] {
        let (code, _, err) = run_append(&s.oci("app"), input, &s.oci("out"), &[]);
        assert_eq!(code, 1, "{}: {err}", input.display());
        assert!(
            err.contains(&input.display().to_string())
                && (err.contains("empty") || err.contains("cut short")),
            "{err}"
        );
    }
    assert_eq!(s.layout.tagged("out"), None);
}

#[test]
fn whiteouts_of_dot_and_dotdot_in_a_tar_layer_are_refused() {
    let s = scenario();
    for (i, name) in ["etc/.wh..", "etc/.wh..."].into_iter().enumerate() {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, std::io::empty()).unwrap();
        let input = s.path(&format!("wh{i}.tar"));
        fs::write(&input, b.into_inner().unwrap()).unwrap();
        let (code, _, err) = run_append(&s.oci("app"), &input, &s.oci("out"), &[]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains(name) && err.contains("whiteout"), "{err}");
    }
    assert_eq!(s.layout.tagged("out"), None);
}

#[test]
fn append_scratch_starts_from_an_empty_image() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("rootfs");
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    let run = |out: &str, platform: &[&str]| {
        let dest = format!("oci:{}:v1", tmp.path().join(out).display());
        let mut args = vec!["append", "scratch", "--layer", root.to_str().unwrap()];
        args.extend(platform);
        args.extend(["-o", &dest, "--json", "-q"]);
        let report: Value = serde_json::from_str(&ok(&args)).unwrap();
        (report, Layout::new(tmp.path().join(out)))
    };
    let (report, layout) = run("a", &[]);
    assert_eq!(report["image"], "scratch");
    assert_eq!(report["platforms"], serde_json::json!(["linux/amd64"]));
    let manifest = layout.read_json(&layout.tagged("v1").unwrap());
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        1,
        "{manifest}"
    );
    let config = layout.read_json(manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([report["layer"]["diff_id"]])
    );
    assert_eq!(config["history"][0]["created_by"], "ocipatch append");
    assert_eq!(
        config["created"], "1970-01-01T00:00:00Z",
        "no clock without SOURCE_DATE_EPOCH"
    );
    ok(&["verify", &layout.oci("v1")]);

    // Reproducible: the same files give the same digest; --platform sets os/arch/variant.
    let (again, _) = run("b", &[]);
    assert_eq!(again["digest"], report["digest"]);
    let (arm, layout) = run("c", &["--platform", "linux/arm64/v8"]);
    assert_eq!(arm["platforms"], serde_json::json!(["linux/arm64/v8"]));
    let manifest = layout.read_json(&layout.tagged("v1").unwrap());
    let config = layout.read_json(manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["variant"], "v8");

    let err = fails_usage(&[
        "append",
        "scratch",
        "--layer",
        root.to_str().unwrap(),
        "--platform",
        "amd64",
        "-o",
        &format!("oci:{}:x", tmp.path().join("d").display()),
    ]);
    assert!(
        err.contains("--platform \"amd64\": expected OS/ARCH"),
        "{err}"
    );
}

#[test]
fn build_image_script_is_byte_identical_across_two_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let script = repo_root().join("scripts/build-image.sh");
    let build = |name: &str| {
        let dest = format!("oci:{}:latest", tmp.path().join(name).display());
        run_ok(
            cmd("bash")
                .arg(&script)
                .arg("--binary")
                .arg(bin())
                .arg(&dest),
        );
        snapshot(&tmp.path().join(name))
    };
    let (a, b) = (build("a"), build("b"));
    assert!(!a.is_empty());
    // two builds of the image must not differ
    assert_same_contents("first build", &a, "second build", &b);
    let layout = Layout::new(tmp.path().join("a"));
    ok(&["verify", &layout.oci("latest")]);
    let manifest = layout.read_json(&layout.tagged("latest").unwrap());
    assert_eq!(
        manifest["layers"].as_array().unwrap().len(),
        1,
        "{manifest}"
    );
}
