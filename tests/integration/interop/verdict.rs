//! The rebase safety verdict on real images, judged by the tools that decide: `apt-get check`
//! and `dpkg --audit` inside the unpacked result, `ldconfig -p`, and the image's own command run
//! in a chroot of it.
//!
//! Fixtures: `scripts/make-verdict-fixture.sh` (debootstrap bookworm and trixie minbases, apps
//! made with apt-get, useradd and ldconfig in a chroot; see testdata/README.md). The cases:
//! - a same-release security update of an app that ran `apt-get install`, wrote its apt sources
//!   again, added a user and ran ldconfig: `--strict` passes and the result runs;
//! - the bookworm app onto a trixie minbase: the release change and apt's unmet relations are
//!   named, `--strict` refuses and writes nothing;
//! - a new base that lost libraries the app links, and an app binary that needs a newer glibc
//!   symbol version than the new base defines: each named, and the chroot run fails exactly as
//!   the finding says.
//!
//! Root, umoci, chroot, unshare, apt and the Debian mirror (first build) are needed; a missing
//! tool fails the test.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::util::*;

const TOOLS: &[&str] = &[
    "umoci",
    "skopeo",
    "debootstrap",
    "chroot",
    "unshare",
    "dpkg-query",
];

/// The fixture layout, built (or copied from the script's cache) once.
fn fixture() -> &'static Path {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT.get_or_init(|| built_once("make-verdict-fixture.sh", TOOLS))
}

fn image(tag: &str) -> String {
    oci_ref(fixture(), tag)
}

/// A private work dir for one test.
fn workdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ocipatch-verdict-case.")
        .tempdir()
        .expect("tempdir")
}

/// `ocipatch rebase APP --from FROM --onto ONTO -o DEST EXTRA...` with a private cache.
fn rebase(work: &Path, app: &str, from: &str, onto: &str, dest: &str, extra: &[&str]) -> Run {
    run(ocipatch()
        .args([
            "rebase",
            &image(app),
            "--from",
            &image(from),
            "--onto",
            &image(onto),
        ])
        .args(["-o", dest, "--cache-dir"])
        .arg(work.join("cache"))
        .args(extra))
}

/// The real findings of the one platform of a `--json` report.
fn real_findings(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["safety"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no safety report: {report:#}"))
        .iter()
        .filter(|f| f["class"] == "real")
        .cloned()
        .collect()
}

/// The image's command (config Cmd), as the runtime would run it.
fn image_cmd(layout: &Path, tag: &str) -> Vec<String> {
    config(layout, tag)["config"]["Cmd"]
        .as_array()
        .expect("the fixture images have a Cmd")
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn run_image(rootfs: &Path, layout: &Path, tag: &str) -> Run {
    let argv = image_cmd(layout, tag);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    chroot_run(rootfs, &argv)
}

#[test]
fn a_same_release_update_passes_strict_and_the_result_runs_as_a_rebuild() {
    let w = workdir();
    let out = w.path().join("out");
    let r = rebase(
        w.path(),
        "app-tidy",
        "base-v1",
        "base-v2",
        &oci_ref(&out, "a"),
        &["--strict"],
    );
    assert!(r.success(), "--strict refused a routine update:\n{r}");
    assert!(r.stderr().lines().any(|l| l == "safety: ok"), "{r}");

    let rootfs = unpack_in(w.path(), &out, "a");
    let rebuilt = unpack_in(w.path(), fixture(), "rebuilt-tidy");
    let ran = run_image(&rootfs, &out, "a");
    assert!(ran.success() && ran.stdout().starts_with("ok "), "{ran}");
    let check = chroot_run(&rootfs, &["apt-get", "check"]);
    assert!(check.success(), "{check}");
    let audit = chroot_run(&rootfs, &["dpkg", "--audit"]);
    assert!(
        audit.success() && audit.stdout().trim().is_empty(),
        "{audit}"
    );
    // What the loader lists is what a rebuild's lists.
    let ldconfig = |root: &Path| {
        let r = chroot_run(root, &["ldconfig", "-p"]);
        assert!(r.success(), "{r}");
        let mut lines: Vec<String> = r.stdout().lines().skip(1).map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(ldconfig(&rootfs), ldconfig(&rebuilt));
    // The user the app added is there, with the new base's users.
    for f in ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"] {
        assert_eq!(
            std::fs::read(rootfs.join(f)).unwrap(),
            std::fs::read(rebuilt.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn bookworm_app_onto_trixie_names_the_release_and_apts_unmet_relations() {
    let w = workdir();
    let never = w.path().join("never");
    let r = rebase(
        w.path(),
        "app",
        "base-v1",
        "trixie",
        &oci_ref(&never, "b"),
        &["--strict"],
    );
    assert!(!r.success(), "{r}");
    assert!(r.stderr().contains("refused by --strict"), "{r}");
    assert!(!never.exists(), "--strict wrote nothing");

    let r = rebase(
        w.path(),
        "app",
        "base-v1",
        "trixie",
        &oci_ref(&w.path().join("dry"), "b"),
        &["--dry-run", "--json"],
    );
    assert!(r.success(), "{r}");
    let report = r.json();
    let real = real_findings(&report);
    let release = real
        .iter()
        .find(|f| f["kind"] == "release-change")
        .unwrap_or_else(|| panic!("{real:#?}"));
    assert_eq!(
        release["detail"],
        "Debian 12 (bookworm) → Debian 13 (trixie): the application's packages were built for 12"
    );
    assert_eq!(release["release"]["from"]["series"], "12");
    assert_eq!(release["release"]["to"]["codename"], "trixie");

    // Rebase without --strict and let apt judge the result.
    let out = w.path().join("out");
    let r = rebase(
        w.path(),
        "app",
        "base-v1",
        "trixie",
        &oci_ref(&out, "b"),
        &[],
    );
    assert!(r.success(), "{r}");
    assert!(r.stderr().contains("safety: "), "{r}");
    let rootfs = unpack_in(w.path(), &out, "b");
    let check = chroot_run(&rootfs, &["apt-get", "check"]);
    assert!(!check.success(), "apt-get check passed: {check}");
    // `libssl3t64 : Breaks: libssl3 (< 3.5.9-1~deb13u1)`: every package apt names is named.
    let unmet = apt_unmet(&format!("{}{}", check.stdout(), check.stderr()));
    assert!(!unmet.is_empty(), "{check}");
    for (package, relation, target) in &unmet {
        assert!(
            real.iter().any(|f| f["kind"] == "package-relation"
                && f["relation"]["package"]["name"] == package.as_str()
                && f["relation"]["relation"] == relation.as_str()
                && f["relation"]["wanted"]
                    .as_str()
                    .is_some_and(|w| w.starts_with(&format!("{target} ")) || w == target)),
            "apt says {package} {relation} {target}; the verdict: {real:#?}"
        );
    }
}

/// apt-get check's unmet relations: (package, relation in kebab-case, target name), from lines
/// `pkg : Breaks: target (< 1)` and their continuation lines `       Depends: …`.
fn apt_unmet(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut current = None;
    for line in text.lines() {
        let rest = match line.split_once(" : ") {
            Some((pkg, rest)) if !pkg.trim().is_empty() && !pkg.trim().contains(' ') => {
                current = Some(pkg.trim().to_string());
                rest
            }
            _ if line.starts_with("    ") => line.trim(),
            _ => {
                current = None;
                continue;
            }
        };
        let Some(pkg) = &current else { continue };
        let Some((rel, target)) = rest.split_once(": ") else {
            continue;
        };
        let relation = match rel.trim() {
            "Depends" => "depends",
            "PreDepends" | "Pre-Depends" => "pre-depends",
            "Breaks" => "breaks",
            "Conflicts" => "conflicts",
            _ => continue,
        };
        let name = target.split([' ', ':']).next().unwrap_or_default();
        out.push((pkg.clone(), relation.to_string(), name.to_string()));
    }
    out
}

#[test]
fn a_base_that_lost_a_library_the_app_links_is_named_and_the_run_fails_so() {
    let w = workdir();
    let out = w.path().join("out");
    let r = rebase(
        w.path(),
        "app-gnutls",
        "base-v1",
        "trixie",
        &oci_ref(&out, "c"),
        &["--json"],
    );
    assert!(r.success(), "{r}");
    let real = real_findings(&r.json());
    let rootfs = unpack_in(w.path(), &out, "c");
    let ran = run_image(&rootfs, &out, "c");
    assert!(!ran.success(), "{ran}");
    // `wget: error while loading shared libraries: libidn2.so.0: cannot open shared object file`
    let err = ran.stderr();
    let soname = err
        .split("error while loading shared libraries: ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{ran}"));
    let binary = image_cmd(&out, "c")[0].clone();
    assert!(
        real.iter().any(|f| f["kind"] == "unresolved-library"
            && f["load"]["binary"]
                .as_str()
                .is_some_and(|b| b.ends_with(&format!("bin/{binary}")))
            && f["load"]["library"] == soname),
        "the loader says {soname} is missing for {binary}; the verdict: {real:#?}"
    );
}

#[test]
fn a_binary_needing_a_newer_glibc_is_named_and_the_run_fails_so() {
    let w = workdir();
    let out = w.path().join("out");
    let r = rebase(
        w.path(),
        "app-trixie",
        "trixie",
        "base-v1",
        &oci_ref(&out, "d"),
        &["--json"],
    );
    assert!(r.success(), "{r}");
    let real = real_findings(&r.json());
    let rootfs = unpack_in(w.path(), &out, "d");
    let ran = run_image(&rootfs, &out, "d");
    assert!(!ran.success(), "{ran}");
    // tree: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found (required by tree)
    let err = ran.stderr();
    let version = err
        .split("version `")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("{ran}"));
    let f = real
        .iter()
        .find(|f| f["kind"] == "missing-symbol-version" && f["load"]["version"] == version)
        .unwrap_or_else(|| panic!("the loader says {version}; the verdict: {real:#?}"));
    assert_eq!(f["load"]["highest"], "GLIBC_2.36", "{f:#}");
    assert!(
        f["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("needs {version}")),
        "{f:#}"
    );
}
