//! Interop tests for the package-database reconciliation of `rebase`, judged with the real
//! tools on images built the way users build them:
//!
//! - Debian: `scripts/make-debian-fixture.sh` debootstraps a minbase bookworm (base-v1), upgrades
//!   it from bookworm-security/-updates (base-v2), and installs python3-minimal with apt on each
//!   (app, and the reference rebuild `rebuilt`). `dpkg-query` reads the databases.
//! - Alpine: `scripts/make-apk-fixture.sh` writes apk-tools 2.14's `lib/apk/db/installed` and
//!   `etc/apk/world` for the same four roles. No apk reader can be installed here, so the
//!   reconciled files are compared byte-for-byte with the script's rebuild.
//!
//! After `ocipatch rebase app --onto base-v2` the app's stale database copy must be replaced by
//! ONE small layer on top holding the reconciled database, so that the rebased image's
//! database equals the rebuild's. A missing tool fails the test; run as root (debootstrap,
//! chroot, umoci unpack). The Debian fixture needs the Debian mirror the first time (about six
//! minutes), then comes from the cache the script keeps (see testdata/README.md).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

/// `created_by` of the history entry of the layer holding the reconciled databases.
const PKGDB_CREATED_BY: &str = "ocipatch rebase: package database";

const DEBIAN_TOOLS: &[&str] = &[
    "skopeo",
    "umoci",
    "debootstrap",
    "chroot",
    "dpkg-query",
    "tar",
];
const APK_TOOLS: &[&str] = &["skopeo", "umoci", "tar"];

/// `ocipatch rebase app --from base-v1 --onto base-v2 -o out:app --json`; checks that the
/// report names the written digest, that the layers are the new base's, the app's and one
/// package-database layer on top, and that this layer holds `files[0]` and nothing but `files`.
/// Returns the report and the digest.
fn rebase_app_and_check_the_db_layer(
    fx: &Fixture,
    out: &Path,
    files: &[&str],
) -> (serde_json::Value, String) {
    let r = rebase(
        &fx.image("app"),
        Some(&fx.image("base-v1")),
        &fx.image("base-v2"),
        &oci_ref(out, "app"),
        &["--json"],
    );
    let report = r.json();
    let digest = index_digest(out, "app");
    assert_eq!(report["digest"], digest.as_str(), "{report:#}");

    let top = assert_layers_and_top(out, "app", &fx.images, "base-v1", "base-v2");
    let members = layer_members(out, &top);
    let allowed: BTreeSet<String> = files.iter().map(|f| f.to_string()).collect();
    assert!(
        members.contains(files[0]) && members.is_subset(&allowed),
        "the package-database layer must hold only the reconciled files, has {members:#?}"
    );
    (report, digest)
}

/// The checks both distributions share, after `out:app` (digest `digest`) was rebased onto
/// base-v2: a second rebase onto the same base (no --from: base.digest is set now) is a no-op;
/// with `--no-package-db` the output is today's (the new base's layers and the app's, no extra
/// layer). Returns that stale output's unpacked rootfs, for the caller's database check.
fn again_and_stale(fx: &Fixture, out: &Path, digest: &str) -> PathBuf {
    let l = &fx.images;
    let again = rebase(
        &oci_ref(out, "app"),
        None,
        &fx.image("base-v2"),
        &oci_ref(&fx.path("again"), "app"),
        &[],
    );
    assert_eq!(again.last_line(), digest, "{again}");

    let stale_out = fx.path("stale");
    rebase(
        &fx.image("app"),
        Some(&fx.image("base-v1")),
        &fx.image("base-v2"),
        &oci_ref(&stale_out, "app"),
        &["--no-package-db"],
    );
    let mut want = layer_digests(l, "base-v2");
    want.extend_from_slice(&layer_digests(l, "app")[layer_digests(l, "base-v1").len()..]);
    assert_eq!(layer_digests(&stale_out, "app"), want, "no extra layer");
    fx.unpack(&stale_out, "app")
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `ocipatch rebase IMAGE [--from FROM] --onto ONTO -o DEST EXTRA...`
fn rebase(image: &str, from: Option<&str>, onto: &str, dest: &str, extra: &[&str]) -> Run {
    let mut c = ocipatch();
    c.args(["rebase", image]);
    if let Some(from) = from {
        c.args(["--from", from]);
    }
    c.args(["--onto", onto, "-o", dest]).args(extra);
    run_ok(&mut c)
}

/// The layers of OUT:TAG must be NEW_BASE's, then the app's own layers byte-for-byte (their
/// digests), then exactly one more on top whose history entry is ocipatch's package-database
/// layer. Returns that top layer's digest.
fn assert_layers_and_top(
    out: &Path,
    tag: &str,
    images: &Path,
    old_base: &str,
    new_base: &str,
) -> String {
    let old = layer_digests(images, old_base);
    let new = layer_digests(images, new_base);
    let app = layer_digests(images, "app");
    assert_eq!(
        app[..old.len()],
        old[..],
        "the fixture app sits on {old_base}"
    );
    let own = &app[old.len()..];
    let got = layer_digests(out, tag);
    let mut want = new.clone();
    want.extend_from_slice(own);
    assert_eq!(
        got.len(),
        want.len() + 1,
        "expected {new_base}'s {} layers + the app's {} own layers + 1 package-database layer, got {got:#?}",
        new.len(),
        own.len()
    );
    assert_eq!(
        got[..want.len()],
        want[..],
        "new base layers, then the app's own layers byte-for-byte (same digests)"
    );
    let history = config(out, tag)["history"]
        .as_array()
        .expect("config history")
        .clone();
    let top = history
        .iter()
        .rev()
        .find(|h| h["empty_layer"] != true)
        .expect("a history entry with a layer");
    assert_eq!(
        top["created_by"], PKGDB_CREATED_BY,
        "history of the top layer: {history:#?}"
    );
    got.last().unwrap().clone()
}

/// Non-directory members of a layer blob (GNU tar detects its compression).
fn layer_members(layout: &Path, digest: &str) -> BTreeSet<String> {
    let r = run_ok(cmd("tar").arg("-tf").arg(blob_path(layout, digest)));
    r.stdout()
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .filter(|l| !l.is_empty() && !l.ends_with('/'))
        .collect()
}

/// `platforms[0].package_db.changes` of a rebase report as package -> (from, to).
fn reported_changes(report: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    let changes = report["platforms"][0]["package_db"]["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no platforms[0].package_db.changes[] in {report:#}"));
    changes
        .iter()
        .map(|c| {
            for key in ["package", "arch", "from", "to"] {
                assert!(c[key].is_string(), "change without string {key:?}: {c}");
            }
            (
                c["package"].as_str().unwrap().to_string(),
                (
                    c["from"].as_str().unwrap().to_string(),
                    c["to"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Debian

/// `dpkg-query -W` of a rootfs: one `Package Architecture Version Status-Abbrev` line per
/// package, in dpkg's order.
fn dpkg_query(rootfs: &Path) -> Vec<String> {
    let r = run_ok(
        cmd("dpkg-query")
            .arg(format!(
                "--admindir={}",
                rootfs.join("var/lib/dpkg").display()
            ))
            .args([
                "-W",
                "-f",
                "${Package} ${Architecture} ${Version} ${db:Status-Abbrev}\n",
            ]),
    );
    r.stdout()
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// `package:arch` -> version, from dpkg_query lines.
fn versions(lines: &[String]) -> BTreeMap<String, String> {
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (format!("{}:{}", f[0], f[1]), f[2].to_string())
        })
        .collect()
}

fn count_differing(a: &[String], b: &[String]) -> usize {
    let (a, b): (BTreeSet<&String>, BTreeSet<&String>) = (a.iter().collect(), b.iter().collect());
    a.symmetric_difference(&b)
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect::<BTreeSet<_>>()
        .len()
}

#[test]
fn debian_rebase_reconciles_dpkg_status() {
    let fx = Fixture::build("make-debian-fixture.sh", DEBIAN_TOOLS);
    let l = &fx.images;

    // What a rebase must fix: packages whose version differs between the bases.
    let v1 = dpkg_query(&fx.unpack(l, "base-v1"));
    let v2 = dpkg_query(&fx.unpack(l, "base-v2"));
    let rebuilt_root = fx.unpack(l, "rebuilt");
    let rebuilt = dpkg_query(&rebuilt_root);
    let app = dpkg_query(&fx.unpack(l, "app"));
    let (v1v, v2v, appv) = (versions(&v1), versions(&v2), versions(&app));
    let upgraded: BTreeMap<String, (String, String)> = v1v
        .iter()
        .filter_map(|(p, from)| {
            let to = v2v.get(p)?;
            (to != from && appv.get(p) == Some(from)).then(|| {
                let name = p.split(':').next().unwrap().to_string();
                (name, (from.clone(), to.clone()))
            })
        })
        .collect();
    assert!(
        !upgraded.is_empty(),
        "the fixture's base-v2 must upgrade a package the app has"
    );

    // --- the rebase
    let out = fx.path("out");
    let (report, digest) = rebase_app_and_check_the_db_layer(
        &fx,
        &out,
        &["var/lib/dpkg/status", "var/lib/apt/extended_states"],
    );

    // dpkg sees what a rebuild sees
    let rebased_root = fx.unpack(&out, "app");
    let rebased = dpkg_query(&rebased_root);
    let differ = count_differing(&rebased, &rebuilt);
    eprintln!(
        "debian: {} packages in the rebased image; {} differ between base-v1 and base-v2 \
         ({} of them installed in the app: {:?}); before reconciliation the rebased image \
         differed from the rebuild in {}, now in {differ}",
        rebased.len(),
        count_differing(&v1, &v2),
        upgraded.len(),
        upgraded,
        count_differing(&app, &rebuilt),
    );
    assert_eq!(
        rebased, rebuilt,
        "dpkg-query of the rebased image must equal the rebuild's ({differ} packages differ)"
    );
    assert!(
        read(&rebased_root.join("var/lib/dpkg/status"))
            == read(&rebuilt_root.join("var/lib/dpkg/status")),
        "var/lib/dpkg/status must be byte-identical to the rebuild's"
    );
    assert!(
        read(&rebased_root.join("var/lib/apt/extended_states"))
            == read(&rebuilt_root.join("var/lib/apt/extended_states")),
        "var/lib/apt/extended_states must be byte-identical to the rebuild's"
    );

    // the report names exactly the packages the new base changed under the app
    assert_eq!(reported_changes(&report), upgraded, "{report:#}");

    let stale = dpkg_query(&again_and_stale(&fx, &out, &digest));
    assert_ne!(
        stale, rebuilt,
        "without reconciliation dpkg must still list the old base's versions"
    );
}

#[test]
fn debian_safety_report_classifies_package_db_and_volatile_findings() {
    let fx = Fixture::build("make-debian-fixture.sh", DEBIAN_TOOLS);
    let r = rebase(
        &fx.image("app"),
        Some(&fx.image("base-v1")),
        &fx.image("base-v2"),
        &oci_ref(&fx.path("dry"), "app"),
        &["--dry-run", "--json"],
    );
    let report = r.json();
    let findings = report["safety"][0]["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("no safety[0].findings[] in {report:#}"));
    let mut per_class: BTreeMap<String, usize> = BTreeMap::new();
    for f in findings {
        for key in ["kind", "path", "detail", "class"] {
            assert!(f[key].is_string(), "finding without string {key:?}: {f}");
        }
        let class = f["class"].as_str().unwrap();
        assert!(
            ["package-db", "volatile", "real"].contains(&class),
            "unknown class in {f}"
        );
        *per_class.entry(class.to_string()).or_default() += 1;
    }
    eprintln!("debian safety findings per class: {per_class:?}\n{findings:#?}");

    let class_of = |path: &str| {
        findings
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("no finding for {path} in {findings:#?}"))["class"]
            .clone()
    };
    assert_eq!(class_of("var/lib/dpkg/status"), "package-db");
    let volatile: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| {
            let p = f["path"].as_str().unwrap();
            p.starts_with("var/log/") || p.starts_with("var/cache/")
        })
        .collect();
    for prefix in ["var/log/", "var/cache/"] {
        assert!(
            volatile
                .iter()
                .any(|f| f["path"].as_str().unwrap().starts_with(prefix)),
            "the fixture app overwrites files under {prefix} the new base changed: {findings:#?}"
        );
    }
    for f in volatile {
        assert_eq!(f["class"], "volatile", "{f}");
    }
}

// ---------------------------------------------------------------------------------------------
// Alpine

/// `P:` -> (`V:`, `A:`) of every package block of an apk installed database.
fn apk_packages(installed: &[u8]) -> BTreeMap<String, (String, String)> {
    let text = std::str::from_utf8(installed).expect("installed db is UTF-8");
    let mut out = BTreeMap::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap_or_else(|| panic!("block without {k}:\n{block}"))
                .to_string()
        };
        out.insert(field("P:"), (field("V:"), field("A:")));
    }
    out
}

#[test]
fn alpine_rebase_reconciles_apk_db() {
    const INSTALLED: &str = "lib/apk/db/installed";
    const WORLD: &str = "etc/apk/world";
    let fx = Fixture::build("make-apk-fixture.sh", APK_TOOLS);
    let l = &fx.images;

    let v1 = apk_packages(&read(&fx.unpack(l, "base-v1").join(INSTALLED)));
    let v2 = apk_packages(&read(&fx.unpack(l, "base-v2").join(INSTALLED)));
    let app_root = fx.unpack(l, "app");
    let app = apk_packages(&read(&app_root.join(INSTALLED)));
    let rebuilt_root = fx.unpack(l, "rebuilt");
    let upgraded: BTreeMap<String, (String, String)> = v1
        .iter()
        .filter_map(|(p, (from, _))| {
            let (to, _) = v2.get(p)?;
            (to != from && app.get(p).map(|a| &a.0) == Some(from))
                .then(|| (p.clone(), (from.clone(), to.clone())))
        })
        .collect();
    assert!(
        !upgraded.is_empty(),
        "base-v2 upgrades packages the app has"
    );

    let out = fx.path("out");
    let (report, digest) = rebase_app_and_check_the_db_layer(&fx, &out, &[INSTALLED, WORLD]);

    let rebased_root = fx.unpack(&out, "app");
    let rebased_installed = read(&rebased_root.join(INSTALLED));
    eprintln!(
        "alpine: {} packages in the rebased image; {} upgraded by base-v2 under the app: {upgraded:?}",
        apk_packages(&rebased_installed).len(),
        upgraded.len()
    );
    for file in [INSTALLED, WORLD] {
        assert!(
            read(&rebased_root.join(file)) == read(&rebuilt_root.join(file)),
            "{file} must be byte-identical to the rebuild's:\n--- rebased\n{}\n--- rebuilt\n{}",
            String::from_utf8_lossy(&read(&rebased_root.join(file))),
            String::from_utf8_lossy(&read(&rebuilt_root.join(file))),
        );
    }
    assert_eq!(reported_changes(&report), upgraded, "{report:#}");

    let stale = read(&again_and_stale(&fx, &out, &digest).join(INSTALLED));
    assert!(
        stale == read(&app_root.join(INSTALLED)) && stale != read(&rebuilt_root.join(INSTALLED)),
        "without reconciliation the app's stale installed db stays on top"
    );
}
