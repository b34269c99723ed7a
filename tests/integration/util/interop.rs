//! Harness for the interop tests: run commands loudly, copy the example layout into a temp dir,
//! read index.json/blobs, and snapshot unpacked file trees for comparison.
//!
//! Nothing here writes below `testdata/`: every test works in its own `tempfile::TempDir`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::{Digest as _, Sha256};

/// Tools the interop tests drive. Missing ones fail the test (never a silent skip).
pub const TOOLS: &[&str] = &["skopeo", "umoci", "oci-image-tool"];

/// The example layout's tags (see testdata/README.md).
pub const TAGS: &[&str] = &[
    "base-v1",
    "base-v2",
    "base-v2-fresh",
    "app",
    "app-rebuilt-v2",
    "app-rebuilt-v2-fresh",
];

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn testdata_images() -> PathBuf {
    repo_root().join("testdata/images")
}

pub fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Panic with an actionable message unless every tool is on PATH.
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_in_path(t).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "interop test needs these tools on PATH, missing: {}.\n\
         Install them (Debian/Ubuntu, as root: apt-get install -y skopeo umoci oci-image-tool) \
         or run scripts/test.sh, which installs them when run as root.",
        missing.join(", ")
    );
    // umoci unpack/repack without --rootless and files owned by uid 1000 need root.
    assert!(
        is_root(),
        "interop tests unpack images with umoci and must run as root"
    );
}

/// Effective uid is 0 (read from /proc/self/status: `Uid: real effective saved fs`).
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Result of a finished command, with the command line kept for messages.
pub struct Run {
    pub cmdline: String,
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub fn success(&self) -> bool {
        self.output.status.success()
    }
    /// The last non-empty line of stdout, trimmed.
    pub fn last_line(&self) -> String {
        self.stdout()
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string()
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.cmdline,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }
}

/// Run a command to completion, capturing stdout and stderr.
pub fn run(cmd: &mut Command) -> Run {
    let cmdline = describe(cmd);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{cmdline}`: {e}"));
    Run { cmdline, output }
}

/// Run a command and panic, showing its output, unless it exits 0.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Run {
    let r = run(cmd);
    assert!(r.success(), "command failed:\n{r}");
    r
}

/// Run a command and panic, showing its output, unless it exits non-zero.
#[track_caller]
pub fn run_fail(cmd: &mut Command) -> Run {
    let r = run(cmd);
    assert!(!r.success(), "command unexpectedly succeeded:\n{r}");
    r
}

pub fn ocipatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ocipatch"))
}

pub fn cmd(program: &str) -> Command {
    Command::new(program)
}

/// `oci:DIR:TAG` reference for skopeo and ocipatch.
pub fn oci_ref(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// `DIR:TAG` image argument for umoci.
pub fn umoci_ref(dir: &Path, tag: &str) -> String {
    format!("{}:{tag}", dir.display())
}

/// Recursively copy a directory of plain files and directories (an OCI layout).
pub fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
    for entry in fs::read_dir(src).unwrap_or_else(|e| panic!("read {}: {e}", src.display())) {
        let entry = entry.expect("dir entry");
        let ty = entry.file_type().expect("file type");
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            copy_dir(&entry.path(), &to);
        } else if ty.is_file() {
            fs::copy(entry.path(), &to)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        } else {
            panic!("unexpected non-file {} in layout", entry.path().display());
        }
    }
}

/// A temp dir holding a private copy of testdata/images at `images`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub images: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        require_tools(TOOLS);
        let src = testdata_images();
        assert!(
            src.join("index.json").is_file(),
            "{} is missing; run scripts/make-testdata.sh",
            src.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("ocipatch-interop.")
            .tempdir()
            .expect("tempdir");
        let images = dir.path().join("images");
        copy_dir(&src, &images);
        Fixture { dir, images }
    }

    /// A path inside this fixture's temp dir (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `oci:<copy of testdata/images>:TAG`
    pub fn image(&self, tag: &str) -> String {
        oci_ref(&self.images, tag)
    }

    /// Unpack `layout:tag` with umoci into a fresh bundle in this temp dir and snapshot it.
    pub fn unpack_tree(&self, layout: &Path, tag: &str) -> Tree {
        let bundle = tempfile::Builder::new()
            .prefix("bundle.")
            .tempdir_in(self.dir.path())
            .expect("bundle tempdir");
        let bundle = bundle.path().join("b");
        run_ok(
            cmd("umoci")
                .arg("unpack")
                .arg("--image")
                .arg(umoci_ref(layout, tag))
                .arg(&bundle),
        );
        snapshot(&bundle.join("rootfs"))
    }
}

// ---------------------------------------------------------------------------------------------
// index.json / blobs

pub fn read_json(path: &Path) -> serde_json::Value {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The descriptor in `layout/index.json` whose ref.name annotation is `tag`.
pub fn index_descriptor(layout: &Path, tag: &str) -> serde_json::Value {
    let index = read_json(&layout.join("index.json"));
    let found: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .expect("index.json has manifests[]")
        .iter()
        .filter(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
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

pub fn read_blob_json(layout: &Path, digest: &str) -> serde_json::Value {
    read_json(&blob_path(layout, digest))
}

/// The manifest tagged `tag` (must be an image manifest, not an index).
pub fn manifest(layout: &Path, tag: &str) -> serde_json::Value {
    read_blob_json(layout, &index_digest(layout, tag))
}

/// The config of the manifest tagged `tag`.
pub fn config(layout: &Path, tag: &str) -> serde_json::Value {
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

pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Every regular file below `dir` (relative path → bytes), for byte-identity checks.
pub fn dir_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// file tree snapshots

/// What we record of one path in an unpacked rootfs.
///
/// Compared: file type, permission bits (incl. setuid/setgid/sticky), uid, gid, size and sha256
/// of regular files, symlink targets, device numbers, hard-link group (the smallest path of all
/// names sharing the inode, for regular files with more than one link), and the mtime (seconds)
/// of every path, directories included: umoci unpack restores a directory's mtime after
/// applying a whiteout or adding an entry below it, so these are stable (the testdata sets all
/// of them to @1700000000). Not compared: atimes/ctimes, xattrs, the rootfs directory itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    /// Smallest path sharing this inode, when nlink > 1.
    pub link_group: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File { size: u64, sha256: String },
    Symlink { target: String },
    CharDev { rdev: u64 },
    BlockDev { rdev: u64 },
    Fifo,
    Socket,
}

/// Relative path (no leading `/` or `./`) → entry.
pub type Tree = BTreeMap<String, Entry>;

fn sha256_file(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// Walk `root` (not following symlinks) and record every path below it.
pub fn snapshot(root: &Path) -> Tree {
    let mut tree = Tree::new();
    let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let md = fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
            let ft = md.file_type();
            let kind = if ft.is_dir() {
                stack.push(path.clone());
                Kind::Dir
            } else if ft.is_file() {
                if md.nlink() > 1 {
                    inodes
                        .entry((md.dev(), md.ino()))
                        .or_default()
                        .push(rel.clone());
                }
                Kind::File {
                    size: md.len(),
                    sha256: sha256_file(&path),
                }
            } else if ft.is_symlink() {
                Kind::Symlink {
                    target: fs::read_link(&path)
                        .expect("readlink")
                        .to_string_lossy()
                        .into_owned(),
                }
            } else if ft.is_char_device() {
                Kind::CharDev { rdev: md.rdev() }
            } else if ft.is_block_device() {
                Kind::BlockDev { rdev: md.rdev() }
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                Kind::Socket
            };
            let mtime = md.mtime();
            tree.insert(
                rel,
                Entry {
                    kind,
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    mtime,
                    link_group: None,
                },
            );
        }
    }
    for names in inodes.into_values() {
        let first = names.iter().min().expect("non-empty").clone();
        for n in names {
            tree.get_mut(&n).expect("recorded").link_group = Some(first.clone());
        }
    }
    tree
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::File { size, sha256 } => write!(f, "file size={size} sha256={sha256}")?,
            Kind::Symlink { target } => write!(f, "symlink -> {target}")?,
            other => write!(f, "{other:?}")?,
        }
        write!(
            f,
            " mode={:04o} uid={} gid={} mtime={}",
            self.mode, self.uid, self.gid, self.mtime
        )?;
        if let Some(g) = &self.link_group {
            write!(f, " hardlink-group={g}")?;
        }
        Ok(())
    }
}

/// Human-readable differences between two trees (empty when equal).
pub fn tree_diff(a: &Tree, b: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (path, ea) in a {
        match b.get(path) {
            None => out.push(format!("only in left:  {path}: {ea}")),
            Some(eb) if ea != eb => {
                out.push(format!("differs: {path}\n   left:  {ea}\n   right: {eb}"))
            }
            Some(_) => {}
        }
    }
    for (path, eb) in b {
        if !a.contains_key(path) {
            out.push(format!("only in right: {path}: {eb}"));
        }
    }
    out
}

#[track_caller]
pub fn assert_same_tree(left_name: &str, left: &Tree, right_name: &str, right: &Tree) {
    let diff = tree_diff(left, right);
    assert!(
        diff.is_empty(),
        "file trees differ (left = {left_name}, right = {right_name}), {} difference(s):\n{}",
        diff.len(),
        diff.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// running an unpacked image

/// Runs `argv` in a chroot of `rootfs` as the image's entrypoint would run: in a private mount
/// namespace (`unshare --mount`, so nothing stays mounted when it ends) with /proc and a small
/// private /dev (null, zero, full, random, urandom, tty), `PATH` of a Debian image, a clean
/// environment. Returns the run whatever its exit code.
pub fn chroot_run(rootfs: &Path, argv: &[&str]) -> Run {
    let r = rootfs.display().to_string();
    let script = r#"set -e
r=$1; shift
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=0755,size=4m ocipatch-dev "$r/dev"
mknod -m 666 "$r/dev/null" c 1 3
mknod -m 666 "$r/dev/zero" c 1 5
mknod -m 666 "$r/dev/full" c 1 7
mknod -m 666 "$r/dev/random" c 1 8
mknod -m 666 "$r/dev/urandom" c 1 9
mknod -m 666 "$r/dev/tty" c 5 0
exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C "$@""#;
    for dir in ["proc", "dev"] {
        fs::create_dir_all(rootfs.join(dir)).expect("mount point");
    }
    run(cmd("unshare")
        .args([
            "--mount",
            "--fork",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            &r,
        ])
        .args(argv))
}
