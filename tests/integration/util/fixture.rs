//! Layouts made by real builders for the interop tests: a private copy of `testdata/images`
//! (`scripts/make-testdata.sh`, see testdata/README.md) or the output of a fixture script
//! (`scripts/make-*-fixture.sh`), in a temp dir of the test's own, and their images unpacked
//! with umoci.
//!
//! Nothing here writes below `testdata/`.

use std::fs;
use std::path::{Path, PathBuf};

use super::{cmd, oci_ref, require_tools, run_ok, sha256, snapshot, umoci_ref, Tree};

/// The OCI clients every [`Fixture::new`] test drives.
const OCI_CLIENTS: &[&str] = &["skopeo", "umoci", "oci-image-tool"];

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

/// A temp dir of a test's own holding a layout at `images`.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub images: PathBuf,
}

impl Fixture {
    /// A private copy of testdata/images.
    pub fn new() -> Fixture {
        require_tools(OCI_CLIENTS);
        let src = testdata_images();
        assert!(
            src.join("index.json").is_file(),
            "{} is missing; run scripts/make-testdata.sh",
            src.display()
        );
        let fx = Fixture::empty("interop");
        copy_dir(&src, &fx.images);
        fx
    }

    /// The layout `scripts/SCRIPT` writes (the script keeps its own cache), needing `tools`.
    pub fn build(script: &str, tools: &[&str]) -> Fixture {
        require_tools(tools);
        let fx = Fixture::empty(script.trim_start_matches("make-").trim_end_matches(".sh"));
        let r = run_ok(
            cmd("bash")
                .arg(repo_root().join("scripts").join(script))
                .arg(&fx.images),
        );
        eprintln!("{}", r.stderr());
        fx
    }

    fn empty(what: &str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ocipatch-{what}."))
            .tempdir()
            .expect("tempdir");
        let images = dir.path().join("images");
        Fixture { dir, images }
    }

    /// A path inside this fixture's temp dir (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `oci:<the fixture layout>:TAG`
    pub fn image(&self, tag: &str) -> String {
        oci_ref(&self.images, tag)
    }

    /// `umoci unpack` of `layout:tag` into a new bundle in this temp dir; its rootfs.
    pub fn unpack(&self, layout: &Path, tag: &str) -> PathBuf {
        unpack_in(self.dir.path(), layout, tag)
    }

    /// Unpacks `layout:tag` like [`Fixture::unpack`], snapshots it, and removes it.
    pub fn unpack_tree(&self, layout: &Path, tag: &str) -> Tree {
        let rootfs = self.unpack(layout, tag);
        let tree = snapshot(&rootfs);
        let bundle = rootfs
            .parent()
            .expect("bundle")
            .parent()
            .expect("bundle dir");
        fs::remove_dir_all(bundle).unwrap_or_else(|e| panic!("rm {}: {e}", bundle.display()));
        tree
    }
}

/// `umoci unpack` of `layout:tag` into a new bundle below `dir`; its rootfs.
pub fn unpack_in(dir: &Path, layout: &Path, tag: &str) -> PathBuf {
    let bundle = tempfile::Builder::new()
        .prefix("bundle.")
        .tempdir_in(dir)
        .expect("bundle tempdir")
        .keep()
        .join("b");
    run_ok(
        cmd("umoci")
            .args(["unpack", "--image"])
            .arg(umoci_ref(layout, tag))
            .arg(&bundle),
    );
    bundle.join("rootfs")
}

/// The layout `scripts/SCRIPT` writes, built (or copied from the script's cache) into cargo's
/// temp dir for integration tests, keyed by the script's digest, and reused by later runs: for a
/// fixture many tests read and none writes. Call it once per process (from a `OnceLock`); a
/// temp dir in a static would never be removed.
pub fn built_once(script: &str, tools: &[&str]) -> PathBuf {
    require_tools(tools);
    let path = repo_root().join("scripts").join(script);
    let digest = sha256(&fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    let name = script.trim_start_matches("make-").trim_end_matches(".sh");
    let hex = &digest["sha256:".len()..];
    let images = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", &hex[..16]))
        .join("images");
    if !images.join("index.json").is_file() {
        let _ = fs::remove_dir_all(&images);
        fs::create_dir_all(images.parent().unwrap()).unwrap();
        let r = run_ok(cmd("bash").arg(&path).arg(&images));
        eprintln!("{}", r.stderr());
    }
    images
}
