//! Interop with buildah, the builder the issue names: an application built by buildah FROM an
//! OCI-layout base stores the base layer recompressed (a new blob digest, same diff ID) and
//! records `base.digest` correctly while mangling `base.name` (`localhost/<path>:latest`).
//! ocipatch must rebase it without `--from`, by digest and diff ID, and the result must equal
//! what buildah builds on the new base. A missing tool fails the test; run as root.

use std::fs;
use std::path::Path;

use crate::util::*;

/// buildah with private storage (vfs: no overlay mounts needed) under `root`.
fn buildah(root: &Path) -> Cmd {
    let mut c = cmd("buildah");
    c.arg("--root")
        .arg(root.join("storage"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args(["--storage-driver", "vfs"]);
    c
}

/// A copy of the fixture images at a lowercase path: buildah turns an `oci:` path into a
/// repository name, which must be lowercase (temp dir names are not). Removed on drop.
struct LowercaseImages(std::path::PathBuf);

impl LowercaseImages {
    fn new(fx: &Fixture) -> LowercaseImages {
        let dir = std::env::temp_dir().join(format!("ocipatch-buildah-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        copy_dir(&fx.images, &dir);
        LowercaseImages(dir)
    }
}

impl Drop for LowercaseImages {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `FROM base` + `COPY hello.txt /app/hello.txt` + `ENV APP=1`, committed to `out:tag`.
fn build_app(fx: &Fixture, images: &Path, base: &str, out: &Path, tag: &str) {
    let root = fx.path(&format!("buildah-{tag}"));
    let ctx = fx.path("context");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("hello.txt"), b"hello from buildah\n").unwrap();
    let from = run_ok(
        buildah(&root)
            .args(["from", "--pull-never"])
            .arg(oci_ref(images, base)),
    );
    let ctr = from.last_line();
    run_ok(
        buildah(&root)
            .args(["copy", &ctr])
            .arg(ctx.join("hello.txt"))
            .arg("/app/hello.txt"),
    );
    run_ok(buildah(&root).args(["config", "--env", "APP=1", &ctr]));
    run_ok(
        buildah(&root)
            .args(["commit", "--quiet", &ctr])
            .arg(oci_ref(out, tag)),
    );
}

/// Path → (kind, mode, uid, gid): what a rebuild must reproduce. Modification times are not
/// compared here: buildah stamps what it creates with the build time.
fn shape(tree: &Tree) -> Vec<(String, String, u32, u32, u32)> {
    tree.iter()
        .map(|(p, e)| (p.clone(), format!("{:?}", e.kind), e.mode, e.uid, e.gid))
        .collect()
}

#[test]
fn buildah_app_rebases_by_base_digest_and_matches_a_buildah_rebuild() {
    require_tools(&["buildah"]);
    let fx = Fixture::new();
    let images = LowercaseImages::new(&fx);
    let built = fx.path("built");
    build_app(&fx, &images.0, "base-v1", &built, "app");

    // what buildah recorded: the right digest, a mangled name, recompressed base layers
    let m = manifest(&built, "app");
    let base_v1 = index_digest(&fx.images, "base-v1");
    assert_eq!(m["annotations"][ANN_BASE_DIGEST], base_v1.as_str(), "{m:#}");
    assert_ne!(
        layer_digests(&built, "app")[0],
        layer_digests(&fx.images, "base-v1")[0]
    );

    // no --from: the annotation's digest is found in the --onto layout
    let out = fx.path("rebased");
    let r = run_ok(ocipatch().args([
        "rebase",
        &oci_ref(&built, "app"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &oci_ref(&out, "app"),
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let notes = report["platforms"][0]["notes"].to_string();
    assert!(notes.contains("recompressed"), "{report:#}");
    run_ok(ocipatch().arg("verify").arg(oci_ref(&out, "app")));
    run_ok(
        cmd("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(&out),
    );

    // the same steps built by buildah on base-v2
    let rebuilt = fx.path("rebuilt");
    build_app(&fx, &images.0, "base-v2", &rebuilt, "app");
    let ours = fx.unpack_tree(&out, "app");
    let theirs = fx.unpack_tree(&rebuilt, "app");
    assert_eq!(shape(&ours), shape(&theirs));
    let cfg = config(&out, "app");
    let env = cfg["config"]["Env"].to_string();
    assert!(
        env.contains("BASE_VERSION=2") && env.contains("APP=1"),
        "{env}"
    );
}
