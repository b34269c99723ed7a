//! OCI layouts: built in code (small, deterministic: [`Layer`], [`Image`], [`Layout`], the
//! standard [`scenario`]) and read back (index, manifests, configs, blobs of any layout).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::media::*;
use super::sha256;

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
            (Comp::None, false) => OCI_LAYER,
            (Comp::Gzip, false) => OCI_LAYER_GZIP,
            (Comp::Zstd, _) => OCI_LAYER_ZSTD,
            (Comp::None, true) => DOCKER_LAYER,
            (Comp::Gzip, true) => DOCKER_LAYER_GZIP,
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
        blob_path(&self.dir, digest)
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
        manifests.retain(|m| m["annotations"][ANN_REF_NAME] != tag);
        desc["annotations"] = json!({ ANN_REF_NAME: tag });
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
        read_blob_json(&self.dir, digest)
    }

    /// The manifest tagged `tag`.
    pub fn manifest(&self, tag: &str) -> Value {
        manifest(&self.dir, tag)
    }

    /// The config of the manifest tagged `tag`.
    pub fn config(&self, tag: &str) -> Value {
        config(&self.dir, tag)
    }

    pub fn index(&self) -> Value {
        read_json(&self.dir.join("index.json"))
    }

    /// The manifest digest the tag points at.
    pub fn tagged(&self, tag: &str) -> Option<String> {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"][ANN_REF_NAME] == tag)
            .map(|m| m["digest"].as_str().unwrap().to_string())
    }

    pub fn oci(&self, tag: &str) -> String {
        oci_ref(&self.dir, tag)
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

// ---------------------------------------------------------------------------------------------
// reading any layout (one made by a test, by ocipatch or by skopeo and umoci)

/// `oci:DIR:TAG`, for skopeo and ocipatch.
pub fn oci_ref(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// `DIR:TAG`, the image argument of umoci.
pub fn umoci_ref(dir: &Path, tag: &str) -> String {
    format!("{}:{tag}", dir.display())
}

pub fn read_json(path: &Path) -> Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The descriptor in `layout/index.json` whose ref.name annotation is `tag` (exactly one).
pub fn index_descriptor(layout: &Path, tag: &str) -> Value {
    let index = read_json(&layout.join("index.json"));
    let found: Vec<&Value> = index["manifests"]
        .as_array()
        .expect("index.json has manifests[]")
        .iter()
        .filter(|d| d["annotations"][ANN_REF_NAME] == tag)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one descriptor tagged {tag:?} in {}/index.json:\n{index:#}",
        layout.display()
    );
    found[0].clone()
}

/// Digest (`sha256:...`) of the manifest tagged `tag` in `layout`.
pub fn index_digest(layout: &Path, tag: &str) -> String {
    index_descriptor(layout, tag)["digest"]
        .as_str()
        .expect("descriptor digest is a string")
        .to_string()
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
    layout.join("blobs/sha256").join(hex)
}

pub fn read_blob_json(layout: &Path, digest: &str) -> Value {
    read_json(&blob_path(layout, digest))
}

/// The manifest tagged `tag` (must be an image manifest, not an index).
pub fn manifest(layout: &Path, tag: &str) -> Value {
    read_blob_json(layout, &index_digest(layout, tag))
}

/// The config of the manifest tagged `tag`.
pub fn config(layout: &Path, tag: &str) -> Value {
    let m = manifest(layout, tag);
    read_blob_json(
        layout,
        m["config"]["digest"].as_str().expect("config digest"),
    )
}

/// Layer digests of the manifest tagged `tag`, in order.
pub fn layer_digests(layout: &Path, tag: &str) -> Vec<String> {
    manifest(layout, tag)["layers"]
        .as_array()
        .expect("manifest layers[]")
        .iter()
        .map(|l| l["digest"].as_str().expect("layer digest").to_string())
        .collect()
}
