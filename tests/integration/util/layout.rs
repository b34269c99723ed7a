//! Test harness: build small deterministic OCI layouts in code, run the real binary.
#![allow(dead_code)] // not every helper is used by every test module

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Runs ocipatch with `args`; returns (exit code, stdout, stderr).
pub fn ocipatch(args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_ocipatch"))
        .args(args)
        .output()
        .expect("run ocipatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs ocipatch with `args`, killed after `limit` (a hang fails the test instead of blocking
/// the run); returns (exit code, stdout, stderr).
pub fn ocipatch_within(args: &[&str], limit: Duration) -> (i32, String, String) {
    let out_path = tempfile::NamedTempFile::new().unwrap();
    let err_path = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocipatch"))
        .args(args)
        .stdout(out_path.reopen().unwrap())
        .stderr(err_path.reopen().unwrap())
        .spawn()
        .expect("run ocipatch");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ocipatch {args:?} still ran after {limit:?} (killed)\nstderr:\n{}",
                fs::read_to_string(err_path.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        fs::read_to_string(out_path.path()).unwrap(),
        fs::read_to_string(err_path.path()).unwrap(),
    )
}

/// Runs ocipatch and asserts success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = ocipatch(args);
    assert_eq!(
        code, 0,
        "ocipatch {args:?} failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// Runs ocipatch and asserts a usage error: exit code 2 and a one-line error; returns stderr.
pub fn fails_usage(args: &[&str]) -> String {
    let (code, out, err) = ocipatch(args);
    assert_eq!(
        code, 2,
        "ocipatch {args:?} should be a usage error\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(err.starts_with("ocipatch: error: "), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    err
}

/// Runs ocipatch and asserts failure with exit code 1 and a one-line error; returns stderr.
pub fn fails(args: &[&str]) -> String {
    let (code, out, err) = ocipatch(args);
    assert_eq!(
        code, 1,
        "ocipatch {args:?} should fail\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(err.starts_with("ocipatch: error: "), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    err
}

pub fn last_line(s: &str) -> &str {
    s.trim_end().lines().last().unwrap_or("")
}

/// A snapshot of every file under `dir` (relative path → sha256), to prove nothing changed.
pub fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, sha256(&fs::read(&p).unwrap()));
            }
        }
    }
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

/// One entry of [`Layer::nodes`].
#[derive(Clone, Copy, Debug)]
pub enum Node<'a> {
    /// path, contents, mode
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    /// path, target as written
    Symlink(&'a str, &'a str),
    /// path, target path
    HardLink(&'a str, &'a str),
}

/// A layer: files (path, contents) and deletions (whiteouts).
#[derive(Clone, Debug)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub comp: Comp,
}

impl Layer {
    pub fn files(files: &[(&str, &[u8])]) -> Layer {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_path(path).unwrap();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        Layer {
            tar: b.into_inner().unwrap(),
            comp: Comp::Gzip,
        }
    }

    /// A layer of any entries, in order (links and directories included).
    pub fn nodes(nodes: &[Node]) -> Layer {
        let mut b = tar::Builder::new(Vec::new());
        for node in nodes {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_700_000_000);
            match node {
                Node::File(path, data, mode) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(data.len() as u64);
                    b.append_data(&mut h, path, *data).unwrap();
                }
                Node::Dir(path) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    b.append_data(&mut h, path, std::io::empty()).unwrap();
                }
                Node::Symlink(path, target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    b.append_link(&mut h, path, target).unwrap();
                }
                Node::HardLink(path, target) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_mode(0o644);
                    h.set_size(0);
                    b.append_link(&mut h, path, target).unwrap();
                }
            }
        }
        Layer {
            tar: b.into_inner().unwrap(),
            comp: Comp::Gzip,
        }
    }

    pub fn with(mut self, comp: Comp) -> Layer {
        self.comp = comp;
        self
    }

    pub fn diff_id(&self) -> String {
        sha256(&self.tar)
    }

    pub fn blob(&self) -> Vec<u8> {
        match self.comp {
            Comp::None => self.tar.clone(),
            Comp::Gzip => {
                let mut e = flate2::GzBuilder::new()
                    .mtime(0)
                    .write(Vec::new(), flate2::Compression::fast());
                e.write_all(&self.tar).unwrap();
                e.finish().unwrap()
            }
            Comp::Zstd => zstd::encode_all(&self.tar[..], 3).unwrap(),
        }
    }

    pub fn media_type(&self, docker: bool) -> &'static str {
        match (self.comp, docker) {
            (Comp::None, false) => "application/vnd.oci.image.layer.v1.tar",
            (Comp::Gzip, false) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (Comp::Zstd, _) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (Comp::None, true) => "application/vnd.docker.image.rootfs.diff.tar",
            (Comp::Gzip, true) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    }
}

/// An image to write: layers, config fields, history, manifest annotations.
#[derive(Clone, Debug)]
pub struct Image {
    pub layers: Vec<Layer>,
    pub env: Vec<String>,
    pub labels: Value,
    pub cmd: Value,
    pub history: Vec<String>,
    pub docker: bool,
    pub arch: String,
    pub annotations: Option<Value>,
}

impl Image {
    pub fn new(layers: Vec<Layer>, history: &[&str]) -> Image {
        Image {
            layers,
            env: vec!["PATH=/usr/bin:/bin".into()],
            labels: json!({}),
            cmd: json!(["/bin/sh"]),
            history: history.iter().map(|s| s.to_string()).collect(),
            docker: false,
            arch: "amd64".into(),
            annotations: None,
        }
    }

    /// An image built on `base`: its layers and history, plus more.
    pub fn on(base: &Image, layers: Vec<Layer>, history: &[&str]) -> Image {
        let mut img = base.clone();
        img.layers.extend(layers);
        img.history.extend(history.iter().map(|s| s.to_string()));
        img.annotations = None;
        img
    }

    pub fn env(mut self, env: &[&str]) -> Image {
        self.env = env.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn arch(mut self, arch: &str) -> Image {
        self.arch = arch.into();
        self
    }

    pub fn docker(mut self) -> Image {
        self.docker = true;
        self
    }

    pub fn config_json(&self) -> Value {
        json!({
            "created": "2024-05-01T00:00:00Z",
            "architecture": self.arch,
            "os": "linux",
            "config": {"Env": self.env, "Cmd": self.cmd, "Labels": self.labels},
            "rootfs": {"type": "layers", "diff_ids": self.layers.iter().map(Layer::diff_id).collect::<Vec<_>>()},
            "history": self.history.iter().map(|h| json!({"created": "2024-05-01T00:00:00Z", "created_by": h})).collect::<Vec<_>>(),
        })
    }
}

/// An OCI layout under construction.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        let dir = dir.into();
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        if !dir.join("index.json").exists() {
            fs::write(
                dir.join("index.json"),
                json!({"schemaVersion": 2, "manifests": []}).to_string(),
            )
            .unwrap();
        }
        Layout { dir }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }

    pub fn write_blob(&self, bytes: &[u8]) -> (String, u64) {
        let d = sha256(bytes);
        fs::write(self.blob_path(&d), bytes).unwrap();
        (d, bytes.len() as u64)
    }

    /// Writes the image's blobs; returns its manifest descriptor (not tagged).
    pub fn put_image(&self, img: &Image) -> Value {
        let config = serde_json::to_vec(&img.config_json()).unwrap();
        let (cd, cs) = self.write_blob(&config);
        let layers: Vec<Value> = img
            .layers
            .iter()
            .map(|l| {
                let (d, s) = self.write_blob(&l.blob());
                json!({"mediaType": l.media_type(img.docker), "digest": d, "size": s})
            })
            .collect();
        let (mt, ct) = if img.docker {
            (DOCKER_MANIFEST, DOCKER_CONFIG)
        } else {
            (OCI_MANIFEST, OCI_CONFIG)
        };
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": {"mediaType": ct, "digest": cd, "size": cs},
            "layers": layers,
        });
        if let Some(a) = &img.annotations {
            m["annotations"] = a.clone();
        }
        let bytes = serde_json::to_vec(&m).unwrap();
        let (d, s) = self.write_blob(&bytes);
        json!({"mediaType": mt, "digest": d, "size": s,
               "platform": {"architecture": img.arch, "os": "linux"}})
    }

    pub fn tag(&self, tag: &str, mut desc: Value) -> String {
        let index_path = self.dir.join("index.json");
        let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
        let manifests = index["manifests"].as_array_mut().unwrap();
        manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let digest = desc["digest"].as_str().unwrap().to_string();
        manifests.push(desc);
        fs::write(index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        digest
    }

    /// Writes and tags one image; returns its manifest digest.
    pub fn add(&self, tag: &str, img: &Image) -> String {
        let desc = self.put_image(img);
        self.tag(tag, desc)
    }

    /// Writes an index over manifest descriptors (plus any extra raw entries) and tags it.
    pub fn add_index(&self, tag: &str, entries: Vec<Value>) -> String {
        let idx = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
                         "annotations": {"org.example.index": "kept"}});
        let (d, s) = self.write_blob(&serde_json::to_vec(&idx).unwrap());
        self.tag(tag, json!({"mediaType": OCI_INDEX, "digest": d, "size": s}))
    }

    pub fn read_json(&self, digest: &str) -> Value {
        serde_json::from_slice(&fs::read(self.blob_path(digest)).unwrap()).unwrap()
    }

    pub fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.dir.join("index.json")).unwrap()).unwrap()
    }

    /// The manifest digest the tag points at.
    pub fn tagged(&self, tag: &str) -> Option<String> {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .map(|m| m["digest"].as_str().unwrap().to_string())
    }

    pub fn oci(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}

/// The standard scenario: base v1, base v2 (= v1 + update layer), a fresh base v2 (one new
/// layer), and an app built on v1. Returns the layout (one per test, in a temp dir).
pub struct Scenario {
    pub tmp: tempfile::TempDir,
    pub layout: Layout,
    pub base_v1: Image,
    pub base_v2: Image,
    pub app: Image,
}

pub fn scenario() -> Scenario {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(tmp.path().join("images"));
    let base_v1 = Image::new(
        vec![Layer::files(&[
            ("etc/os-release", b"VERSION=1\n"),
            ("usr/lib/libfoo.so.1", b"foo v1"),
        ])],
        &["ADD rootfs"],
    )
    .env(&["PATH=/usr/bin:/bin", "JAVA_HOME=/opt/jdk1", "BASE=1"]);
    let base_v2 = Image::on(
        &base_v1,
        vec![Layer::files(&[
            ("etc/os-release", b"VERSION=2\n"),
            ("usr/lib/libfoo.so.1", b"foo v2 patched"),
        ])],
        &["RUN apt-get upgrade"],
    )
    .env(&["PATH=/usr/bin:/bin", "JAVA_HOME=/opt/jdk2", "BASE=2"]);
    let fresh = Image::new(
        vec![Layer::files(&[
            ("etc/os-release", b"VERSION=2\n"),
            ("usr/lib/libfoo.so.1", b"foo v2 patched"),
        ])],
        &["ADD rootfs v2"],
    )
    .env(&["PATH=/usr/bin:/bin", "JAVA_HOME=/opt/jdk2", "BASE=2"]);
    let app = Image::on(
        &base_v1,
        vec![
            Layer::files(&[("app/server", b"#!/bin/sh\necho hi\n")]),
            Layer::files(&[("app/config.yaml", b"port: 8080\n")]).with(Comp::None),
        ],
        &["COPY server /app/", "COPY config.yaml /app/"],
    )
    .env(&[
        "PATH=/usr/bin:/bin",
        "JAVA_HOME=/opt/jdk1",
        "BASE=1",
        "APP_ENV=prod",
    ]);
    layout.add("base-v1", &base_v1);
    layout.add("base-v2", &base_v2);
    layout.add("base-v2-fresh", &fresh);
    layout.add("app", &app);
    Scenario {
        tmp,
        layout,
        base_v1,
        base_v2,
        app,
    }
}

impl Scenario {
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn oci(&self, tag: &str) -> String {
        self.layout.oci(tag)
    }
}

/// The uncompressed tar members (path, mode, mtime, content) of a gzip layer blob.
pub fn layer_files(layout: &Layout, digest: &str) -> Vec<(String, u32, u64, Vec<u8>)> {
    let blob = std::fs::read(layout.blob_path(digest)).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob.as_slice()));
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                data,
            )
        })
        .collect()
}
