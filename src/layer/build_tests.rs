//! Builder tests on real trees in temp dirs.
#![allow(clippy::disallowed_macros)] // a test says why it skipped

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use tar::EntryType;

use super::*;
use crate::model::Digest;

const CLAMP: i64 = 1_600_000_000;

fn opts(compression: LayerCompression) -> BuildOptions {
    BuildOptions {
        mtime: CLAMP,
        keep_owners: false,
        deletes: Vec::new(),
        allow_devices: false,
        allow_escaping_symlinks: false,
        compression,
    }
}

fn build(input: &LayerInput, opts: &BuildOptions) -> Result<(Vec<u8>, BuiltLayer), LayerError> {
    build_with(input, opts, None)
}

fn build_with(
    input: &LayerInput,
    opts: &BuildOptions,
    lower: Option<&Tree>,
) -> Result<(Vec<u8>, BuiltLayer), LayerError> {
    let mut out = Vec::new();
    let built = build_layer(input, opts, lower, &mut out)?;
    Ok((out, built))
}

fn decompress(bytes: &[u8], compression: LayerCompression) -> Vec<u8> {
    let mut plain = Vec::new();
    match compression {
        LayerCompression::Gzip => flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .unwrap(),
        LayerCompression::Zstd => zstd::Decoder::new(bytes)
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap(),
    };
    plain
}

#[derive(Debug, PartialEq)]
struct Listed {
    name: String,
    kind: EntryType,
    mode: u32,
    uid: u64,
    mtime: u64,
    link: Option<String>,
    data: Vec<u8>,
}

/// Every entry of a plain tar, with the names exactly as stored.
fn list(tar: &[u8]) -> Vec<Listed> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        let h = entry.header();
        out.push(Listed {
            name: String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            mtime: h.mtime().unwrap(),
            link: entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned()),
            data,
        });
    }
    out
}

fn names(tar: &[u8]) -> Vec<String> {
    list(tar).into_iter().map(|e| e.name).collect()
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn set_mtime(p: &Path, secs: u64) {
    File::open(p)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// The same logical tree, created in a different order with a different "umask" (permission
/// bits) and different, recent, mtimes depending on `variant`.
fn write_tree(root: &Path, variant: u32) {
    let (dir_mode, file_mode, exec_mode) = if variant == 0 {
        (0o755, 0o644, 0o755)
    } else {
        (0o700, 0o600, 0o700)
    };
    let long_dir = format!("opt/{}", "d".repeat(110));
    let mut dirs = vec!["bin", "etc", "etc/empty", "opt", long_dir.as_str()];
    if variant == 1 {
        dirs.reverse();
        dirs.sort_by_key(|d| d.len());
    }
    for d in &dirs {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let files: [(&str, &[u8], u32); 3] = [
        ("etc/app.conf", b"key = value\n", file_mode),
        ("bin/tool", b"#!/bin/sh\necho hi\n", exec_mode),
        ("etc/suid", b"x", 0o4000 | exec_mode),
    ];
    for (p, data, mode) in files {
        fs::write(root.join(p), data).unwrap();
        chmod(&root.join(p), mode);
    }
    fs::write(root.join(&long_dir).join("file"), b"long").unwrap();
    fs::hard_link(root.join("etc/app.conf"), root.join("bin/app.conf")).unwrap();
    symlink("tool", root.join("bin/tool-link")).unwrap();
    symlink("/etc/app.conf", root.join("etc/abs-link")).unwrap();
    // An old file keeps its mtime; everything else is newer than the clamp.
    fs::write(root.join("etc/old"), b"old").unwrap();
    set_mtime(&root.join("etc/old"), 1_000_000);
    for d in &dirs {
        chmod(&root.join(d), dir_mode);
    }
    if variant == 1 {
        set_mtime(&root.join("etc/app.conf"), 1_700_000_000);
    }
}

#[test]
fn same_tree_in_different_dirs_gives_identical_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(a.path(), 0);
    write_tree(b.path(), 1);
    for compression in [LayerCompression::Gzip, LayerCompression::Zstd] {
        let (bytes_a, built_a) =
            build(&LayerInput::Dir(a.path().into()), &opts(compression)).unwrap();
        let (bytes_b, built_b) =
            build(&LayerInput::Dir(b.path().into()), &opts(compression)).unwrap();
        assert_eq!(built_a, built_b, "{compression:?}");
        assert!(bytes_a == bytes_b, "{compression:?} output differs");
    }
}

#[test]
fn digest_diff_id_and_size_describe_the_output() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), 0);
    for compression in [LayerCompression::Gzip, LayerCompression::Zstd] {
        let (bytes, built) =
            build(&LayerInput::Dir(dir.path().into()), &opts(compression)).unwrap();
        assert_eq!(built.digest, Digest::of(&bytes));
        assert_eq!(built.size, bytes.len() as u64);
        assert_eq!(built.diff_id, Digest::of(&decompress(&bytes, compression)));
    }
}

#[test]
fn gzip_header_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("f"), b"x").unwrap();
    let (bytes, _) = build(
        &LayerInput::Dir(dir.path().into()),
        &opts(LayerCompression::Gzip),
    )
    .unwrap();
    // magic, CM=deflate, FLG=0 (no name/comment/extra), MTIME=0, XFL=0, OS=255
    assert_eq!(bytes[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
}

#[test]
fn entries_are_sorted_relative_normalised_and_clamped() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), 1);
    let (bytes, _) = build(
        &LayerInput::Dir(dir.path().into()),
        &opts(LayerCompression::Gzip),
    )
    .unwrap();
    let entries = list(&decompress(&bytes, LayerCompression::Gzip));
    let long = format!("opt/{}/", "d".repeat(110));
    let got: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        got,
        [
            "bin/",
            "bin/app.conf",
            "bin/tool",
            "bin/tool-link",
            "etc/",
            "etc/abs-link",
            "etc/app.conf",
            "etc/empty/",
            "etc/old",
            "etc/suid",
            "opt/",
            long.as_str(),
            &format!("{long}file"),
        ]
    );
    let by_name = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
    assert!(entries.iter().all(|e| e.uid == 0));
    assert_eq!(by_name("bin/").mode, 0o755);
    assert_eq!(by_name("etc/app.conf").mode, 0o644);
    assert_eq!(by_name("bin/tool").mode, 0o755);
    assert_eq!(by_name("etc/suid").mode, 0o4755);
    assert_eq!(by_name("bin/tool-link").mode, 0o777);
    assert_eq!(by_name("etc/old").mtime, 1_000_000);
    assert_eq!(by_name("etc/app.conf").mtime, CLAMP as u64);
    // Hard link: the first path in sorted order carries the data, the other links to it.
    let first = by_name("bin/app.conf");
    assert_eq!(
        (first.kind, first.data.as_slice()),
        (EntryType::Regular, &b"key = value\n"[..])
    );
    let second = by_name("etc/app.conf");
    assert_eq!(
        (second.kind, second.link.as_deref()),
        (EntryType::Link, Some("bin/app.conf"))
    );
    assert_eq!(
        by_name("etc/abs-link").link.as_deref(),
        Some("/etc/app.conf")
    );
}

#[test]
fn keep_owners_keeps_exact_modes() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("secret"), b"s").unwrap();
    chmod(&dir.path().join("secret"), 0o640);
    let o = BuildOptions {
        keep_owners: true,
        ..opts(LayerCompression::Zstd)
    };
    let (bytes, _) = build(&LayerInput::Dir(dir.path().into()), &o).unwrap();
    let entries = list(&decompress(&bytes, LayerCompression::Zstd));
    assert_eq!(entries[0].mode, 0o640);
    let me = fs::metadata(dir.path().join("secret")).unwrap();
    assert_eq!(
        entries[0].uid,
        u64::from(std::os::unix::fs::MetadataExt::uid(&me))
    );
}

#[test]
fn deletes_become_whiteouts_with_parents() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    fs::write(dir.path().join("etc/new"), b"n").unwrap();
    let o = BuildOptions {
        deletes: vec![
            "usr/share/doc/foo".into(),
            "/etc/motd".into(),
            "./top/".into(),
        ],
        ..opts(LayerCompression::Gzip)
    };
    let (bytes, _) = build(&LayerInput::Dir(dir.path().into()), &o).unwrap();
    let entries = list(&decompress(&bytes, LayerCompression::Gzip));
    let got: Vec<(&str, EntryType, usize)> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.data.len()))
        .collect();
    assert_eq!(
        got,
        [
            (".wh.top", EntryType::Regular, 0),
            ("etc/", EntryType::Directory, 0),
            ("etc/.wh.motd", EntryType::Regular, 0),
            ("etc/new", EntryType::Regular, 1),
            ("usr/", EntryType::Directory, 0),
            ("usr/share/", EntryType::Directory, 0),
            ("usr/share/doc/", EntryType::Directory, 0),
            ("usr/share/doc/.wh.foo", EntryType::Regular, 0),
        ]
    );
    assert_eq!(entries[4].mode, 0o755);
    assert_eq!(entries[4].mtime, CLAMP as u64);
}

#[test]
fn whiteout_parents_copy_the_lower_tree() {
    let dir = tempfile::tempdir().unwrap();
    let lower: Tree =
        [scan_headers(&dir_tar(&[("var/", 0o1777, 0), ("var/log/", 0o750, 4)])[..]).unwrap()]
            .into_iter()
            .collect();
    let o = BuildOptions {
        deletes: vec!["var/log/old.log".into()],
        ..opts(LayerCompression::Gzip)
    };
    let (bytes, _) = build_with(&LayerInput::Dir(dir.path().into()), &o, Some(&lower)).unwrap();
    let entries = list(&decompress(&bytes, LayerCompression::Gzip));
    assert_eq!(
        (entries[0].name.as_str(), entries[0].mode, entries[0].uid),
        ("var/", 0o1777, 0)
    );
    assert_eq!(
        (entries[1].name.as_str(), entries[1].mode, entries[1].uid),
        ("var/log/", 0o750, 4)
    );
    assert_eq!(entries[1].mtime, 1_000);
}

/// A plain tar of directories `(name, mode, uid)`, mtime 1000.
fn dir_tar(dirs: &[(&str, u32, u64)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, mode, uid) in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_mode(*mode);
        h.set_uid(*uid);
        h.set_gid(0);
        h.set_size(0);
        h.set_mtime(1_000);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn delete_of_an_added_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    fs::write(dir.path().join("etc/motd"), b"m").unwrap();
    for delete in ["etc/motd", "etc", "/etc/"] {
        let o = BuildOptions {
            deletes: vec![delete.into()],
            ..opts(LayerCompression::Gzip)
        };
        let err = build(&LayerInput::Dir(dir.path().into()), &o).unwrap_err();
        assert!(
            matches!(err, LayerError::DeleteAlsoAdded { .. }),
            "{delete}: {err}"
        );
        assert!(err.to_string().contains("etc"), "{err}");
    }
    for delete in ["../etc", "a/../b", "/", "x/.wh.y"] {
        let o = BuildOptions {
            deletes: vec![delete.into()],
            ..opts(LayerCompression::Gzip)
        };
        let err = build(&LayerInput::Dir(dir.path().into()), &o).unwrap_err();
        assert!(
            matches!(err, LayerError::UnsafePath { .. }),
            "{delete}: {err}"
        );
    }
}

#[test]
fn escaping_symlinks_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("lib")).unwrap();
    symlink("../etc/ok", dir.path().join("lib/fine")).unwrap();
    symlink("/../../etc/shadow", dir.path().join("lib/absolute")).unwrap();
    symlink("../../etc/shadow", dir.path().join("lib/evil")).unwrap();
    let input = LayerInput::Dir(dir.path().into());
    let err = build(&input, &opts(LayerCompression::Gzip)).unwrap_err();
    assert!(matches!(err, LayerError::EscapingSymlink { .. }), "{err}");
    assert!(err.to_string().contains("lib/evil"), "{err}");
    let allowed = BuildOptions {
        allow_escaping_symlinks: true,
        ..opts(LayerCompression::Gzip)
    };
    build(&input, &allowed).unwrap();
}

#[test]
fn fifos_are_refused_unless_allowed_and_sockets_always() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable; skipping");
        return;
    }
    let input = LayerInput::Dir(dir.path().into());
    let err = build(&input, &opts(LayerCompression::Gzip)).unwrap_err();
    assert!(
        matches!(err, LayerError::SpecialFile { kind: "fifo", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("pipe"), "{err}");
    let allowed = BuildOptions {
        allow_devices: true,
        ..opts(LayerCompression::Gzip)
    };
    let (bytes, _) = build(&input, &allowed).unwrap();
    let entries = list(&decompress(&bytes, LayerCompression::Gzip));
    assert_eq!(
        (entries[0].name.as_str(), entries[0].kind),
        ("pipe", EntryType::Fifo)
    );

    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    let err = build(&input, &allowed).unwrap_err();
    assert!(matches!(err, LayerError::Socket { .. }), "{err}");
}

/// A tree as another tool would tar it: `./` prefixes, readdir order, real owners.
fn tar_of_tree(root: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", root).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn tar_input_plain_gzip_or_zstd_gives_the_same_layer_as_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), 1);
    // The tar crate's writer does not detect hard links; drop the one the tree has.
    fs::remove_file(dir.path().join("bin/app.conf")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let plain = tar_of_tree(dir.path());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    let inputs = [
        ("plain.tar", plain.clone()),
        ("layer.tar.gz", gz.finish().unwrap()),
        ("layer.tar.zst", zstd::encode_all(&plain[..], 1).unwrap()),
    ];
    let o = opts(LayerCompression::Gzip);
    let (from_dir, _) = build(&LayerInput::Dir(dir.path().into()), &o).unwrap();
    for (name, bytes) in inputs {
        let path = work.path().join(name);
        fs::write(&path, bytes).unwrap();
        let (from_tar, _) = build(&LayerInput::Tar(path), &o).unwrap();
        assert_eq!(
            names(&decompress(&from_tar, o.compression)),
            names(&decompress(&from_dir, o.compression)),
            "{name}"
        );
        assert!(from_tar == from_dir, "{name}: bytes differ");
    }
}

#[test]
fn tar_input_hard_link_before_its_target_is_reordered() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(4);
    h.set_uid(1000);
    h.set_gid(0);
    h.set_mtime(1_000);
    h.set_username("app").unwrap();
    b.append_data(&mut h, "z/target", &b"data"[..]).unwrap();
    let mut l = tar::Header::new_ustar();
    l.set_entry_type(EntryType::Link);
    l.set_uid(1000);
    l.set_gid(0);
    l.set_mode(0o644);
    l.set_size(0);
    b.append_link(&mut l, "./a/link", "./z/target").unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("in.tar");
    fs::write(&path, b.into_inner().unwrap()).unwrap();

    let o = BuildOptions {
        keep_owners: true,
        ..opts(LayerCompression::Zstd)
    };
    let (bytes, _) = build(&LayerInput::Tar(path), &o).unwrap();
    let entries = list(&decompress(&bytes, LayerCompression::Zstd));
    let got: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.kind,
                e.data.as_slice(),
                e.link.as_deref(),
                e.uid,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a/", EntryType::Directory, &b""[..], None, 0),
            ("a/link", EntryType::Regular, &b"data"[..], None, 1000),
            ("z/", EntryType::Directory, &b""[..], None, 0),
            ("z/target", EntryType::Link, &b""[..], Some("a/link"), 1000),
        ]
    );
}

#[test]
fn tar_input_with_dotdot_or_duplicates_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_size(0);
    h.as_old_mut().name[..9].copy_from_slice(b"a/../../x");
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, std::io::empty()).unwrap();
    let evil = work.path().join("evil.tar");
    fs::write(&evil, b.into_inner().unwrap()).unwrap();
    let err = build(&LayerInput::Tar(evil), &opts(LayerCompression::Gzip)).unwrap_err();
    assert!(matches!(err, LayerError::UnsafePath { .. }), "{err}");
    assert!(err.to_string().contains("a/../../x"), "{err}");

    let mut b = tar::Builder::new(Vec::new());
    for name in ["f", "./f"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    let dup = work.path().join("dup.tar");
    fs::write(&dup, b.into_inner().unwrap()).unwrap();
    let err = build(&LayerInput::Tar(dup), &opts(LayerCompression::Gzip)).unwrap_err();
    assert!(
        matches!(err, LayerError::DuplicatePath { ref path } if path == "f"),
        "{err}"
    );
}

/// Pins the exact output for a fixed input, so a compressor or tar-writer change that would
/// break "same input, same digest" across ocipatch builds or machines fails here first.
#[test]
fn golden_digests() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    fs::write(dir.path().join("etc/hello"), "hello world\n".repeat(50)).unwrap();
    symlink("hello", dir.path().join("etc/hi")).unwrap();
    let digests: Vec<String> = [LayerCompression::Gzip, LayerCompression::Zstd]
        .into_iter()
        .map(|c| {
            let (_, built) = build(&LayerInput::Dir(dir.path().into()), &opts(c)).unwrap();
            format!("{} {}", built.diff_id, built.digest)
        })
        .collect();
    assert_eq!(
        digests,
        [
            "sha256:40b926aaed8da0eb100c6515dafa922641805a816c8f4cec50e3e4153ec6b5c8 \
             sha256:b13e2de234a191c327d3807b409cf60d0ee76fbceb0c19a4267d8e9fa8dd9493",
            "sha256:40b926aaed8da0eb100c6515dafa922641805a816c8f4cec50e3e4153ec6b5c8 \
             sha256:986a01c9b3445534e675274caced9c5aca5d26141518ffe59efe8b174b6c1549",
        ]
    );
}

fn header(kind: EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h
}

#[test]
fn tar_input_through_a_symlink_or_with_a_dangling_hard_link_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_link(&mut header(EntryType::Symlink), "lib", "usr/lib")
        .unwrap();
    b.append_data(
        &mut header(EntryType::Regular),
        "lib/evil.so",
        std::io::empty(),
    )
    .unwrap();
    let through = work.path().join("through.tar");
    fs::write(&through, b.into_inner().unwrap()).unwrap();
    let err = build(&LayerInput::Tar(through), &opts(LayerCompression::Gzip)).unwrap_err();
    assert!(
        matches!(err, LayerError::NotADirectory { ref parent, ref path } if parent == "lib" && path == "lib/evil.so"),
        "{err}"
    );

    let mut b = tar::Builder::new(Vec::new());
    b.append_link(&mut header(EntryType::Link), "bin/sh", "bin/busybox")
        .unwrap();
    let dangling = work.path().join("dangling.tar");
    fs::write(&dangling, b.into_inner().unwrap()).unwrap();
    let err = build(&LayerInput::Tar(dangling), &opts(LayerCompression::Gzip)).unwrap_err();
    assert!(matches!(err, LayerError::BadHardLink { .. }), "{err}");
    assert!(err.to_string().contains("bin/busybox"), "{err}");
}

/// One file entry written with its name bytes as given (no checks), as a hostile producer would.
fn raw_entry(name: &[u8]) -> tar::Header {
    let mut h = header(EntryType::Regular);
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    h
}

#[test]
fn tar_input_whiteout_of_dot_or_dotdot_or_an_overlong_name_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let long = format!("etc/{}", "n".repeat(300));
    let cases: [(&str, &[u8]); 3] = [
        ("whiteout", b"etc/.wh.."),
        ("whiteout", b"etc/.wh..."),
        ("255 bytes", long.as_bytes()),
    ];
    for (i, (want, name)) in cases.into_iter().enumerate() {
        let mut b = tar::Builder::new(Vec::new());
        if name.len() <= 100 {
            b.append(&raw_entry(name), std::io::empty()).unwrap();
        } else {
            let mut h = header(EntryType::Regular);
            b.append_data(&mut h, std::str::from_utf8(name).unwrap(), std::io::empty())
                .unwrap();
        }
        let tar = work.path().join(format!("{i}.tar"));
        fs::write(&tar, b.into_inner().unwrap()).unwrap();
        let err = build(&LayerInput::Tar(tar), &opts(LayerCompression::Gzip)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LayerError::UnsafePath { .. }), "{msg}");
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn empty_or_cut_short_tar_input_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for name in ["etc/a", "etc/b"] {
        let mut h = header(EntryType::Regular);
        h.set_size(4);
        b.append_data(&mut h, name, &b"data"[..]).unwrap();
    }
    let whole = b.into_inner().unwrap();
    // Cut between the two members (each is one header and one data block), and inside one.
    let between = work.path().join("between.tar");
    fs::write(&between, &whole[..1024]).unwrap();
    let inside = work.path().join("inside.tar");
    fs::write(&inside, &whole[..1024 + 512 + 2]).unwrap();
    let empty = work.path().join("empty.tar");
    fs::write(&empty, b"").unwrap();
    let empty_gz = work.path().join("empty.tar.gz");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    fs::write(&empty_gz, gz.finish().unwrap()).unwrap();
    for (input, want) in [
        (between.as_path(), "cut short"),
        (inside.as_path(), "\"etc/b\" is cut short"),
        (empty.as_path(), "empty"),
        (empty_gz.as_path(), "empty"),
        (Path::new("/dev/null"), "empty"),
    ] {
        let Err(err) = build(
            &LayerInput::Tar(input.into()),
            &opts(LayerCompression::Gzip),
        ) else {
            panic!("{} was accepted", input.display());
        };
        let msg = err.to_string();
        assert!(msg.contains(want), "{msg}");
    }

    // An empty tar that is complete (only its end-of-archive blocks) is still a valid input.
    let complete = work.path().join("complete.tar");
    fs::write(
        &complete,
        tar::Builder::new(Vec::new()).into_inner().unwrap(),
    )
    .unwrap();
    build(&LayerInput::Tar(complete), &opts(LayerCompression::Gzip)).unwrap();
}

/// A file's capabilities (`setcap cap_net_raw+ep`, as `tar --xattrs` records them) survive into
/// the layer as the same pax record; other xattrs (a host's SELinux label, a browser's
/// `user.xdg.origin.url`) do not, and a directory's record is not carried either.
#[test]
fn tar_input_keeps_file_capabilities_and_only_them() {
    // struct vfs_cap_data, revision 2: magic_etc, then permitted/inheritable (lo, hi).
    let cap: &[u8] = &[0, 0, 0, 2, 0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let work = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.security.capability", cap)])
        .unwrap();
    let mut h = header(EntryType::Directory);
    h.set_mode(0o755);
    b.append_data(&mut h, "bin/", std::io::empty()).unwrap();
    b.append_pax_extensions([
        ("SCHILY.xattr.security.capability", cap),
        (
            "SCHILY.xattr.security.selinux",
            b"system_u:object_r:bin_t:s0".as_slice(),
        ),
        (
            "SCHILY.xattr.user.xdg.origin.url",
            b"https://example.com/".as_slice(),
        ),
    ])
    .unwrap();
    let mut h = header(EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(4);
    b.append_data(&mut h, "bin/ping", &b"ELF!"[..]).unwrap();
    let mut h = header(EntryType::Regular);
    h.set_size(2);
    b.append_data(&mut h, "bin/plain", &b"hi"[..]).unwrap();
    let path = work.path().join("caps.tar");
    fs::write(&path, b.into_inner().unwrap()).unwrap();

    for keep_owners in [false, true] {
        let o = BuildOptions {
            keep_owners,
            ..opts(LayerCompression::Gzip)
        };
        let (bytes, _) = build(&LayerInput::Tar(path.clone()), &o).unwrap();
        let tar = decompress(&bytes, LayerCompression::Gzip);
        let mut records = Vec::new();
        let mut archive = tar::Archive::new(&tar[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if let Some(exts) = entry.pax_extensions().unwrap() {
                for r in exts {
                    let r = r.unwrap();
                    records.push((
                        name.clone(),
                        r.key().unwrap().to_string(),
                        r.value_bytes().to_vec(),
                    ));
                }
            }
        }
        assert_eq!(
            records,
            [(
                "bin/ping".to_string(),
                "SCHILY.xattr.security.capability".to_string(),
                cap.to_vec()
            )],
            "keep_owners {keep_owners}"
        );
    }
}
