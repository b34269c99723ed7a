//! oci-archive and docker-archive: rebase between archives and layouts, verify and inspect,
//! and every way a bad archive or a failed write must be reported (no partial archive left).
//! The archives are built here with the tar crate; interop::archive uses skopeo's.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::util::*;

/// A tar of a whole layout directory, names `./`-prefixed as `tar -C DIR .` writes them.
fn oci_archive_of(layout: &Path, out: &Path) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    b.append_dir_all(".", layout).unwrap();
    b.finish().unwrap();
}

/// The archive's regular members: name → bytes.
fn members(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut a = tar::Archive::new(fs::File::open(archive).unwrap());
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let name = e.path().unwrap().display().to_string();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            out.insert(name.trim_start_matches("./").to_string(), v);
        }
    }
    out
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// `docker save` layouts: the old one (`<id>/layer.tar`, `<hex>.json`) or Docker ≥ 25's
/// (`blobs/sha256/<hex>`).
#[derive(Clone, Copy, PartialEq)]
enum Style {
    Legacy,
    Blobs,
}

/// A docker-archive with `images` (image, RepoTags), layers stored uncompressed.
fn docker_archive_of(out: &Path, images: &[(&Image, &[&str])], style: Style) {
    let raw: Vec<RawImage> = images
        .iter()
        .map(|(img, tags)| {
            let layers = img.layers.iter().map(|l| l.tar.clone()).collect();
            (img.config_json(), layers, *tags)
        })
        .collect();
    docker_archive_raw(out, &raw, style);
}

/// An image as a docker-archive stores it: config, layer tars, RepoTags.
type RawImage<'a> = (Value, Vec<Vec<u8>>, &'a [&'a str]);

/// A docker-archive from configs and layer tars as given (which need not agree).
fn docker_archive_raw(out: &Path, images: &[RawImage], style: Style) {
    let mut b = tar::Builder::new(fs::File::create(out).unwrap());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, bytes).unwrap();
    };
    let hex = |bytes: &[u8]| sha256(bytes)["sha256:".len()..].to_string();
    let mut list = Vec::new();
    let mut repositories = serde_json::Map::new();
    for (config, layer_tars, tags) in images {
        let config = serde_json::to_vec(config).unwrap();
        let config_name = match style {
            Style::Legacy => format!("{}.json", hex(&config)),
            Style::Blobs => format!("blobs/sha256/{}", hex(&config)),
        };
        add(&config_name, &config);
        let mut layers = Vec::new();
        for (i, tar) in layer_tars.iter().enumerate() {
            let name = match style {
                Style::Legacy => format!("{}{i}/layer.tar", &hex(tar)[..8]),
                Style::Blobs => format!("blobs/sha256/{}", hex(tar)),
            };
            add(&name, tar);
            layers.push(name);
        }
        for t in *tags {
            let (repo, tag) = t.rsplit_once(':').unwrap();
            repositories.insert(repo.into(), json!({ tag: "x" }));
        }
        list.push(json!({"Config": config_name, "RepoTags": tags, "Layers": layers}));
    }
    add("manifest.json", &serde_json::to_vec(&list).unwrap());
    add("repositories", &serde_json::to_vec(&repositories).unwrap());
    b.finish().unwrap();
}

/// Files in `dir` (to prove no temp file or partial archive is left).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn rebase(image: &str, from: &str, onto: &str, dest: &str) -> String {
    let out = ok(&["rebase", image, "--from", from, "--onto", onto, "-o", dest]);
    last_line(&out).to_string()
}

struct Archives {
    s: Scenario,
    /// The whole scenario layout as one oci-archive.
    oci: PathBuf,
}

impl Archives {
    fn new() -> Archives {
        let s = scenario();
        let oci = s.path("images.tar");
        oci_archive_of(&s.layout.dir, &oci);
        Archives { s, oci }
    }

    fn oci(&self, tag: &str) -> String {
        format!("oci-archive:{}:{tag}", self.oci.display())
    }

    /// A directory for outputs, holding nothing else.
    fn out_dir(&self) -> PathBuf {
        let d = self.s.path("out");
        fs::create_dir_all(&d).unwrap();
        d
    }
}

// ---------------------------------------------------------------------------------------------
// oci-archive

#[test]
fn oci_archive_rebase_writes_the_same_image_as_a_layout_rebase() {
    let a = Archives::new();
    let out = a.out_dir();
    let file = out.join("app.tar");
    let (app, v1, v2) = (a.oci("app"), a.oci("base-v1"), a.oci("base-v2"));
    let digest = rebase(
        &app,
        &v1,
        &v2,
        &format!("oci-archive:{}:app", file.display()),
    );
    let layout = out.join("layout");
    let same = rebase(&app, &v1, &v2, &format!("oci:{}:app", layout.display()));
    assert_eq!(digest, same, "the transport must not change bytes");

    let m = members(&file);
    let index = json_of(&m["index.json"]);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());
    assert_eq!(index["manifests"][0]["annotations"][ANN_REF_NAME], "app");
    assert_eq!(json_of(&m["oci-layout"])["imageLayoutVersion"], "1.0.0");
    // every blob of the layout rebase, byte for byte, and nothing else
    let blobs: BTreeMap<String, Vec<u8>> = m
        .into_iter()
        .filter(|(k, _)| k.starts_with("blobs/"))
        .collect();
    let expected: BTreeMap<String, Vec<u8>> = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                format!("blobs/sha256/{}", e.file_name().to_string_lossy()),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    assert_eq!(blobs, expected);
    // index.json is the last member (readers that stream the tar find blobs first)
    let mut a2 = tar::Archive::new(fs::File::open(&file).unwrap());
    let last = a2.entries().unwrap().last().unwrap().unwrap();
    assert_eq!(last.path().unwrap().to_str(), Some("index.json"));

    // and it reads back: rebase output is a valid source, verify checks every blob
    let back = format!("oci-archive:{}:app", file.display());
    assert!(ok(&["verify", &back]).contains("intact"));
    assert!(
        ok(&["verify", &format!("oci-archive:{}", file.display())]).contains("intact"),
        "no tag: the archive's only image"
    );
}

#[test]
fn oci_archive_output_is_byte_identical_for_identical_input() {
    let a = Archives::new();
    let out = a.out_dir();
    let write = |name: &str| {
        let f = out.join(name);
        rebase(
            &a.oci("app"),
            &a.oci("base-v1"),
            &a.oci("base-v2"),
            &format!("oci-archive:{}:app", f.display()),
        );
        fs::read(f).unwrap()
    };
    assert!(write("one.tar") == write("two.tar"));
    assert_eq!(listing(&out), vec!["one.tar", "two.tar"]);
}

#[test]
fn existing_oci_archive_keeps_other_tags_and_replaces_its_own() {
    let a = Archives::new();
    let file = a.out_dir().join("multi.tar");
    let dest = |tag: &str| format!("oci-archive:{}:{tag}", file.display());
    let first = rebase(
        &a.oci("app"),
        &a.oci("base-v1"),
        &a.oci("base-v2"),
        &dest("app"),
    );
    let fresh = rebase(
        &a.oci("app"),
        &a.oci("base-v1"),
        &a.oci("base-v2-fresh"),
        &dest("fresh"),
    );
    let again = rebase(
        &a.oci("app"),
        &a.oci("base-v1"),
        &a.oci("base-v2"),
        &dest("app"),
    );
    assert_eq!(first, again);
    let index = json_of(&members(&file)["index.json"]);
    let tags: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["annotations"][ANN_REF_NAME].as_str().unwrap().to_string(),
                d["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        tags,
        // The rewritten tag keeps its place (as skopeo's layout writer does).
        vec![("app".to_string(), first), ("fresh".to_string(), fresh)]
    );
    for tag in ["app", "fresh"] {
        assert!(ok(&["verify", &dest(tag)]).contains("intact"));
    }
    // two images and no tag: which one is ambiguous
    let err = fails(&["verify", &format!("oci-archive:{}", file.display())]);
    assert!(
        err.contains(&file.display().to_string()) && err.contains("app, fresh"),
        "{err}"
    );
}

#[test]
fn oci_archive_tag_not_found_lists_the_tags() {
    let a = Archives::new();
    let err = fails(&["inspect", &a.oci("nope")]);
    assert!(
        err.contains(&a.oci("nope")) && err.contains("app, base-v1, base-v2"),
        "{err}"
    );
}

#[test]
fn truncated_compressed_and_foreign_files_are_named() {
    let a = Archives::new();
    let out = a.out_dir();
    let bytes = fs::read(&a.oci).unwrap();

    let cut = out.join("cut.tar");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["verify", &format!("oci-archive:{}:app", cut.display())]);
    assert!(
        err.contains(&cut.display().to_string()) && err.contains("truncated"),
        "{err}"
    );

    let gz = out.join("images.tar.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &bytes).unwrap();
    fs::write(&gz, e.finish().unwrap()).unwrap();
    let err = fails(&["inspect", &format!("oci-archive:{}:app", gz.display())]);
    assert!(
        err.contains("gzip") && err.contains("images.tar.gz"),
        "{err}"
    );

    let missing = out.join("missing.tar");
    let err = fails(&["inspect", &format!("oci-archive:{}", missing.display())]);
    assert!(
        err.contains("missing.tar") && err.contains("not found"),
        "{err}"
    );

    // a docker-archive is not an oci-archive, and the other way round
    let d = out.join("docker.tar");
    docker_archive_of(&d, &[(&a.s.app, &["app:1"])], Style::Blobs);
    let err = fails(&["inspect", &format!("oci-archive:{}", d.display())]);
    assert!(err.contains("not an oci-archive"), "{err}");
    let err = fails(&["inspect", &format!("docker-archive:{}", a.oci.display())]);
    assert!(err.contains("not a docker-archive"), "{err}");
}

/// A corrupt blob fails the copy: no archive, no temp file, and an existing archive intact.
#[test]
fn failed_writes_leave_no_partial_archive() {
    let a = Archives::new();
    let out = a.out_dir();
    // an archive holding base-v1 only; must survive the failed write below
    let file = out.join("keep.tar");
    let only_v1 = Layout::new(a.s.path("only-v1"));
    only_v1.add("base", &a.s.base_v1);
    oci_archive_of(&only_v1.dir, &a.s.path("keep.tar"));
    let before = fs::read(a.s.path("keep.tar")).unwrap();

    let v2 = a.s.layout.read_json(&a.s.layout.tagged("base-v2").unwrap());
    let layer = v2["layers"][1]["digest"].as_str().unwrap().to_string();
    let path = a.s.layout.blob_path(&layer);
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    for dest in [
        format!("oci-archive:{}:app", out.join("o.tar").display()),
        format!("docker-archive:{}:app:2", out.join("d.tar").display()),
    ] {
        let err = fails(&[
            "rebase",
            &a.s.oci("app"),
            "--from",
            &a.s.oci("base-v1"),
            "--onto",
            &a.s.oci("base-v2"),
            "-o",
            &dest,
        ]);
        assert!(err.contains(&layer) && err.contains("corrupt"), "{err}");
        assert_eq!(listing(&out), Vec::<String>::new(), "after {dest}");
    }

    // an existing archive stays as it was
    fs::rename(a.s.path("keep.tar"), &file).unwrap();
    fails(&[
        "rebase",
        &a.s.oci("app"),
        "--from",
        &a.s.oci("base-v1"),
        "--onto",
        &a.s.oci("base-v2"),
        "-o",
        &format!("oci-archive:{}:other", file.display()),
    ]);
    assert_eq!(fs::read(&file).unwrap(), before);
    assert_eq!(listing(&out), vec!["keep.tar"]);
}

#[test]
fn a_file_that_is_not_an_archive_is_not_overwritten() {
    let a = Archives::new();
    let file = a.out_dir().join("notes.txt");
    fs::write(&file, b"mine").unwrap();
    for dest in [
        format!("oci-archive:{}:app", file.display()),
        format!("docker-archive:{}:app:1", file.display()),
    ] {
        let err = fails(&[
            "rebase",
            &a.oci("app"),
            "--from",
            &a.oci("base-v1"),
            "--onto",
            &a.oci("base-v2"),
            "-o",
            &dest,
        ]);
        assert!(err.contains("refusing to overwrite"), "{err}");
        assert_eq!(fs::read(&file).unwrap(), b"mine");
    }
}

// ---------------------------------------------------------------------------------------------
// docker-archive

/// The manifest a docker-archive source synthesizes, via `inspect --json`.
fn inspect_json(reference: &str) -> Value {
    serde_json::from_str(&ok(&["inspect", reference, "--json"])).unwrap()
}

fn docker_round_trip(style: Style) {
    let a = Archives::new();
    let out = a.out_dir();
    let (app, v1, v2) = (out.join("app.tar"), out.join("v1.tar"), out.join("v2.tar"));
    docker_archive_of(&app, &[(&a.s.app, &["example/app:1"])], style);
    docker_archive_of(&v1, &[(&a.s.base_v1, &["example/base:v1"])], style);
    docker_archive_of(&v2, &[(&a.s.base_v2, &["example/base:v2"])], style);
    let file = out.join("rebased.tar");
    let dest = format!("docker-archive:{}:example/app:2", file.display());
    rebase(
        &format!("docker-archive:{}:example/app:1", app.display()),
        &format!("docker-archive:{}", v1.display()),
        &format!("docker-archive:{}:docker.io/example/base:v2", v2.display()),
        &dest,
    );

    let m = members(&file);
    let list = json_of(&m["manifest.json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["RepoTags"], json!(["example/app:2"]));
    assert_eq!(
        json_of(&m["repositories"])["example/app"]["2"]
            .as_str()
            .map(str::len),
        Some(64)
    );
    // layers are the plain tars of base v2 then the app's own, named by their digests
    let expected: Vec<String> = a.s.base_v2.layers[..]
        .iter()
        .chain(&a.s.app.layers[1..])
        .map(|l| format!("blobs/sha256/{}", &l.diff_id()["sha256:".len()..]))
        .collect();
    assert_eq!(list[0]["Layers"], json!(expected));
    for name in &expected {
        assert_eq!(format!("blobs/sha256/{}", &sha256(&m[name])[7..]), *name);
    }
    let config = json_of(&m[list[0]["Config"].as_str().unwrap()]);
    assert_eq!(
        config["rootfs"]["diff_ids"],
        json!(expected
            .iter()
            .map(|n| format!("sha256:{}", &n["blobs/sha256/".len()..]))
            .collect::<Vec<_>>())
    );

    // read back: Docker schema 2, uncompressed layers, verifies
    let v = inspect_json(&dest);
    assert_eq!(v["media_type"], DOCKER_MANIFEST);
    for l in v["platforms"][0]["layers"].as_array().unwrap() {
        assert_eq!(l["media_type"], DOCKER_LAYER);
        assert_eq!(l["digest"], l["diff_id"]);
    }
    assert!(ok(&["verify", &dest]).contains("intact"));
    // by the other spellings of the name, and with no name (the only image)
    for name in ["docker.io/example/app:2", ""] {
        let r = if name.is_empty() {
            format!("docker-archive:{}", file.display())
        } else {
            format!("docker-archive:{}:{name}", file.display())
        };
        assert_eq!(inspect_json(&r)["digest"], v["digest"]);
    }
}

#[test]
fn docker_archive_round_trip_legacy_layout() {
    docker_round_trip(Style::Legacy);
}

#[test]
fn docker_archive_round_trip_blobs_layout() {
    docker_round_trip(Style::Blobs);
}

#[test]
fn docker_archive_synthesized_manifest_is_deterministic_and_digest_addressed() {
    let a = Archives::new();
    let f = a.out_dir().join("app.tar");
    docker_archive_of(&f, &[(&a.s.app, &["app:1"])], Style::Legacy);
    let r = format!("docker-archive:{}:app:1", f.display());
    let one = inspect_json(&r);
    assert_eq!(one, inspect_json(&r));
    // the layers' digests are the diff IDs (uncompressed members), checked by verify
    let diff_ids: Vec<String> = a.s.app.layers.iter().map(Layer::diff_id).collect();
    let digests: Vec<&str> = one["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, diff_ids);
    let v: Value = serde_json::from_str(&outcome(&["verify", &r, "--json"]).1).unwrap();
    assert_eq!(v["problems"], json!([]));
    assert_eq!(v["layers_checked"], 3);
}

#[test]
fn oci_image_into_docker_archive_decompresses_its_layers() {
    let a = Archives::new();
    let file = a.out_dir().join("d.tar");
    let dest = format!("docker-archive:{}:app:2", file.display());
    rebase(
        &a.s.oci("app"),
        &a.s.oci("base-v1"),
        &a.s.oci("base-v2"),
        &dest,
    );
    let m = members(&file);
    let list = json_of(&m["manifest.json"]);
    assert_eq!(list[0]["RepoTags"], json!(["app:2"]));
    for name in list[0]["Layers"].as_array().unwrap() {
        let bytes = &m[name.as_str().unwrap()];
        assert_ne!(&bytes[..2], &[0x1f, 0x8b], "{name} is still gzip");
    }
    assert!(ok(&["verify", &dest]).contains("intact"));
}

#[test]
fn existing_docker_archive_keeps_other_images_and_moves_its_tag() {
    let a = Archives::new();
    let out = a.out_dir();
    let file = out.join("d.tar");
    docker_archive_of(
        &file,
        &[
            (&a.s.base_v1, &["example/base:v1"]),
            (&a.s.app, &["app:1", "app:latest"]),
        ],
        Style::Legacy,
    );
    rebase(
        &format!("docker-archive:{}:app:1", file.display()),
        &format!("docker-archive:{}:example/base:v1", file.display()),
        &a.s.oci("base-v2"),
        &format!("docker-archive:{}:app:latest", file.display()),
    );
    let list = json_of(&members(&file)["manifest.json"]);
    let tags: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["RepoTags"])
        .collect();
    assert_eq!(
        tags,
        vec![
            &json!(["example/base:v1"]),
            &json!(["app:1"]),
            &json!(["app:latest"])
        ]
    );
    for name in ["example/base:v1", "app:1", "app:latest"] {
        assert!(ok(&[
            "verify",
            &format!("docker-archive:{}:{name}", file.display())
        ])
        .contains("intact"));
    }
    assert_eq!(listing(&out), vec!["d.tar"]);
}

#[test]
fn docker_archive_with_two_images_needs_a_name() {
    let a = Archives::new();
    let out = a.out_dir();
    let file = out.join("two.tar");
    docker_archive_of(
        &file,
        &[(&a.s.base_v1, &["base:1"]), (&a.s.app, &["app:1"])],
        Style::Blobs,
    );
    let r = format!("docker-archive:{}", file.display());
    let err = fails_usage(&[
        "rebase",
        &r,
        "--from",
        &a.s.oci("base-v1"),
        "--onto",
        &a.s.oci("base-v2"),
        "-o",
        &format!("docker-archive:{}:x:1", out.join("x.tar").display()),
    ]);
    assert!(
        err.contains(&r) && err.contains("2 images") && err.contains("base:1, app:1"),
        "{err}"
    );
    let err = fails(&["inspect", &format!("{r}:app:2")]);
    assert!(
        err.contains("\"app:2\" not found") && err.contains("app:1"),
        "{err}"
    );
    assert_eq!(listing(&out), vec!["two.tar"]);
}

#[test]
fn docker_archive_problems_are_named() {
    let a = Archives::new();
    let out = a.out_dir();
    // a layer listed but absent
    let file = out.join("bad.tar");
    {
        let mut b = tar::Builder::new(fs::File::create(&file).unwrap());
        let list = json!([{"Config": "c.json", "RepoTags": ["a:1"], "Layers": ["gone/layer.tar"]}]);
        for (name, bytes) in [
            ("manifest.json", serde_json::to_vec(&list).unwrap()),
            (
                "c.json",
                serde_json::to_vec(&a.s.base_v1.config_json()).unwrap(),
            ),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, &bytes[..]).unwrap();
        }
        b.finish().unwrap();
    }
    let err = fails(&["inspect", &format!("docker-archive:{}", file.display())]);
    assert!(
        err.contains("bad.tar")
            && err.contains("gone/layer.tar")
            && err.contains("not in the archive"),
        "{err}"
    );
    // a layer whose bytes do not match the config's diff ID: verify says which
    let file = out.join("lying.tar");
    let mut layers: Vec<Vec<u8>> = a.s.app.layers.iter().map(|l| l.tar.clone()).collect();
    let other = Layer::files(&[("other", b"x")]);
    layers[2] = other.tar.clone();
    docker_archive_raw(
        &file,
        &[(a.s.app.config_json(), layers, &["liar:1"])],
        Style::Legacy,
    );
    let (code, stdout, _) = outcome(&[
        "verify",
        &format!("docker-archive:{}", file.display()),
        "--json",
    ]);
    assert_eq!(code, 1, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["problems"][0]["digest"], other.diff_id());
    assert!(
        v["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("diff ID mismatch"),
        "{v}"
    );
    // ... and a rebase into a docker-archive refuses to write it
    let err = fails(&[
        "rebase",
        &format!("docker-archive:{}", file.display()),
        "--from",
        &a.s.oci("base-v1"),
        "--onto",
        &a.s.oci("base-v2"),
        "-o",
        &format!("docker-archive:{}", out.join("never.tar").display()),
    ]);
    assert!(err.contains("diff ID"), "{err}");
    assert!(!out.join("never.tar").exists());
    // invalid names are reference errors (exit 2)
    let (code, _, err) = outcome(&["inspect", "docker-archive:x.tar:Bad:1"]);
    assert_eq!(code, 2, "{err}");
}

// ---------------------------------------------------------------------------------------------
// mixed transports

/// The app in an oci-archive, its old base in the same archive, the new base in a
/// docker-archive (plain layers: other digests, same diff IDs), written to a layout.
#[test]
fn mixed_archive_transports_into_a_layout() {
    let a = Archives::new();
    let out = a.out_dir();
    let v2 = out.join("v2.tar");
    docker_archive_of(&v2, &[(&a.s.base_v2, &["example/base:v2"])], Style::Legacy);
    let layout = out.join("layout");
    let digest = rebase(
        &a.oci("app"),
        &a.oci("base-v1"),
        &format!("docker-archive:{}", v2.display()),
        &format!("oci:{}:app", layout.display()),
    );
    let l = Layout { dir: layout };
    assert_eq!(l.tagged("app").as_deref(), Some(digest.as_str()));
    let m = l.read_json(&digest);
    let config = l.read_json(m["config"]["digest"].as_str().unwrap());
    let expected: Vec<String> = a.s.base_v2.layers[..]
        .iter()
        .chain(&a.s.app.layers[1..])
        .map(Layer::diff_id)
        .collect();
    assert_eq!(config["rootfs"]["diff_ids"], json!(expected));
    assert!(ok(&["verify", &l.oci("app")]).contains("intact"));
    // and inspect finds the base layers when given the docker-archive base
    let v: Value = serde_json::from_str(&ok(&[
        "inspect",
        &l.oci("app"),
        "--base",
        &format!("docker-archive:{}", v2.display()),
        "--json",
    ]))
    .unwrap();
    let roles: Vec<&str> = v["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["base", "base", "app", "app"]);
}

#[test]
fn verify_reports_a_corrupt_blob_inside_an_archive() {
    let a = Archives::new();
    let out = a.out_dir();
    let file = out.join("c.tar");
    fs::copy(&a.oci, &file).unwrap();
    // flip a byte in the middle of the app's plain layer, in place in the tar
    let plain = &a.s.app.layers[2].tar;
    let mut bytes = fs::read(&file).unwrap();
    let at = bytes
        .windows(plain.len())
        .position(|w| w == &plain[..])
        .expect("the plain layer is stored as is");
    bytes[at + 600] ^= 0xff;
    fs::write(&file, &bytes).unwrap();
    let (code, out, _) = outcome(&[
        "verify",
        &format!("oci-archive:{}:app", file.display()),
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["problems"][0]["kind"], "layer");
    assert_eq!(v["problems"][0]["digest"], a.s.app.layers[2].diff_id());
}

// ---------------------------------------------------------------------------------------------
// Hostile directories, concurrent writers, interruptions (issue 10 items 2, 8, 9)

/// Holds `FILE.lock`, the lock archive writers take to commit: a writer started meanwhile
/// stages its blobs and then waits, so a test can act while it is mid-run.
fn hold_archive_lock(archive: &Path) -> fs::File {
    let mut name = archive.file_name().unwrap().to_os_string();
    name.push(".lock");
    let f = fs::File::create(archive.with_file_name(name)).unwrap();
    f.lock().unwrap();
    f
}

fn release_archive_lock(archive: &Path, lock: fs::File) {
    let mut name = archive.file_name().unwrap().to_os_string();
    name.push(".lock");
    fs::remove_file(archive.with_file_name(name)).unwrap();
    drop(lock);
}

/// Staging directories of writers of `archive` (`.NAME.ocipatch-tmp-*.d`).
fn staging_dirs(archive: &Path) -> Vec<PathBuf> {
    let prefix = format!(
        ".{}.ocipatch-tmp-",
        archive.file_name().unwrap().to_string_lossy()
    );
    fs::read_dir(archive.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(&prefix) && n.ends_with(".d")
        })
        .collect()
}

fn rebase_args(a: &Archives, dest: &str) -> Vec<String> {
    vec![
        "rebase".into(),
        a.s.oci("app"),
        "--from".into(),
        a.s.oci("base-v1"),
        "--onto".into(),
        a.s.oci("base-v2"),
        "-o".into(),
        dest.into(),
        "-q".into(),
    ]
}

/// Issue 10 item 2: the temp tar was `.NAME.ocipatch-tmp-PID-N.tar`, opened with
/// `File::create`: a symlink planted there (the PID is guessable) was written through, and the
/// rename then made the archive itself that symlink.
#[test]
fn symlinks_planted_at_guessable_temp_names_are_not_followed_by_archive_writers() {
    let a = Archives::new();
    let out = a.out_dir();
    let victim = a.s.path("victim");
    fs::write(&victim, b"precious").unwrap();
    for (file, dest) in [
        (
            "o.tar",
            format!("oci-archive:{}:app", out.join("o.tar").display()),
        ),
        (
            "d.tar",
            format!("docker-archive:{}:app:2", out.join("d.tar").display()),
        ),
    ] {
        let p = ocipatch().args(rebase_args(&a, &dest)).spawn_stopped();
        for n in 0..64 {
            let planted = out.join(format!(".{file}.ocipatch-tmp-{}-{n}.tar", p.pid));
            std::os::unix::fs::symlink(&victim, planted).unwrap();
        }
        p.signal("CONT");
        let (code, _, err) = p.finish().parts();
        assert_eq!(code, 0, "{dest}: {err}");
        assert!(
            fs::read(&victim).unwrap() == b"precious",
            "{dest}: the file outside was written through a planted symlink"
        );
        let archive = out.join(file);
        assert!(
            fs::symlink_metadata(&archive)
                .unwrap()
                .file_type()
                .is_file(),
            "{dest}: the archive is not a regular file"
        );
        ok(&["verify", &dest]);
    }
}

/// Issue 10 item 8: two writers of one oci-archive each read it at open and renamed their own
/// version over it; the last rename dropped the other's tag. Both are made to overlap (they
/// wait for the lock the test holds until both are at work); then both tags must be there.
#[test]
fn two_writers_of_one_archive_keep_both_tags() {
    let a = Archives::new();
    let out = a.out_dir();
    for (file, dests) in [
        (
            "o.tar",
            [
                format!("oci-archive:{}:one", out.join("o.tar").display()),
                format!("oci-archive:{}:two", out.join("o.tar").display()),
            ],
        ),
        (
            "d.tar",
            [
                format!("docker-archive:{}:app:one", out.join("d.tar").display()),
                format!("docker-archive:{}:app:two", out.join("d.tar").display()),
            ],
        ),
    ] {
        let archive = out.join(file);
        let lock = hold_archive_lock(&archive);
        let writers: Vec<Running> = dests
            .iter()
            .map(|d| ocipatch().args(rebase_args(&a, d)).spawn())
            .collect();
        wait_for("both writers to stage", || {
            staging_dirs(&archive).len() == 2
        });
        release_archive_lock(&archive, lock);
        for (w, d) in writers.into_iter().zip(&dests) {
            let (code, _, err) = w.finish().parts();
            assert_eq!(code, 0, "{d}: {err}");
        }
        for d in &dests {
            ok(&["verify", d]);
        }
    }
    assert_eq!(listing(&out), vec!["d.tar", "o.tar"]);
}

/// Issue 10 item 9: SIGINT or SIGTERM killed a writer mid-run and left its staging directory
/// (a full copy of the blobs) and temp files beside the archive. The writer is caught while
/// it waits to commit, with everything staged.
#[test]
fn an_interrupted_archive_writer_leaves_nothing_behind() {
    let a = Archives::new();
    let out = a.out_dir();
    let source_before = fs::read(&a.oci).unwrap();
    for (signal, code_wanted, dest) in [
        (
            "INT",
            130,
            format!("oci-archive:{}:app", out.join("x.tar").display()),
        ),
        (
            "TERM",
            143,
            format!("docker-archive:{}:app:2", out.join("x.tar").display()),
        ),
    ] {
        let archive = out.join("x.tar");
        let lock = hold_archive_lock(&archive);
        let w = ocipatch().args(rebase_args(&a, &dest)).spawn();
        // Staged blobs: the config is put after every layer was copied.
        wait_for("the writer to stage its blobs", || {
            staging_dirs(&archive)
                .first()
                .is_some_and(|d| fs::read_dir(d).map(|r| r.count()).unwrap_or(0) >= 3)
        });
        w.signal(signal);
        let (code, _, err) = w.finish().parts();
        assert_eq!(code, code_wanted, "{dest}: {err}");
        // Only the test's own lock file is left.
        assert_eq!(listing(&out), vec!["x.tar.lock"], "{dest}");
        release_archive_lock(&archive, lock);
    }
    assert_eq!(fs::read(&a.oci).unwrap(), source_before);
}
