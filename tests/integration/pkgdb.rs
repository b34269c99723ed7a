//! Package-database reconciliation: an application that ran `apt-get install` / `apk add`
//! carries its own copy of the database; the rebase must write what a rebuild would.
//! (The same on a real debootstrap'ed Debian is in interop::pkgdb.)

use serde_json::Value;

use crate::util::*;

/// Real dpkg output (13 stanzas of a bookworm status file, in dpkg's order).
pub(super) const STATUS_V1: &str = include_str!("../../testdata/pkgdb/dpkg-status");

pub(super) fn status_v2() -> String {
    // The security update: apt and libpam0g get new versions, a new package appears.
    STATUS_V1
        .replace("Version: 2.6.1\n", "Version: 2.6.2\n")
        .replacen("Version: 1.5.2-6+deb12u1\n", "Version: 1.5.2-6+deb12u9\n", 1)
        + "Package: zz-newpkg\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\nDescription: added by the update\n\n"
}

pub(super) const PYTHON: &str = "Package: python3-minimal\nStatus: install ok installed\nPriority: optional\nSection: python\nArchitecture: amd64\nVersion: 3.11.2-1+b1\nDescription: minimal subset of the Python language\n\n";

/// Inserts a stanza where dpkg would (before the first package sorting after it).
pub(super) fn with_stanza(status: &str, stanza: &str, name: &str) -> String {
    let mut out = String::new();
    let mut done = false;
    for s in status.split_inclusive("\n\n") {
        let pkg = s.lines().next().unwrap().trim_start_matches("Package: ");
        if !done && pkg > name {
            out += stanza;
            done = true;
        }
        out += s;
    }
    if !done {
        out += stanza;
    }
    out
}

fn ext_states(pkgs: &[&str]) -> String {
    pkgs.iter()
        .map(|p| format!("Package: {p}\nArchitecture: amd64\nAuto-Installed: 1\n\n"))
        .collect()
}

pub(super) struct Debian {
    pub(super) s: Scenario,
}

pub(super) fn debian() -> Debian {
    let s = scenario();
    let v1 = Image::new(
        vec![Layer::files(&[
            ("etc/os-release", b"VERSION=12\n"),
            ("var/lib/dpkg/status", STATUS_V1.as_bytes()),
            (
                "var/lib/apt/extended_states",
                ext_states(&["libpam0g"]).as_bytes(),
            ),
            ("var/log/dpkg.log", b"install\n"),
        ])],
        &["debootstrap"],
    );
    let v2 = Image::on(
        &v1,
        vec![Layer::files(&[
            ("var/lib/dpkg/status", status_v2().as_bytes()),
            ("var/lib/dpkg/status-old", STATUS_V1.as_bytes()),
            ("var/log/dpkg.log", b"install\nupgrade\n"),
            ("usr/lib/libpam.so.0", b"pam v2"),
        ])],
        &["RUN apt-get upgrade"],
    );
    let app = Image::on(
        &v1,
        vec![Layer::files(&[
            ("usr/bin/python3", b"python"),
            (
                "var/lib/dpkg/status",
                with_stanza(STATUS_V1, PYTHON, "python3-minimal").as_bytes(),
            ),
            ("var/lib/dpkg/status-old", STATUS_V1.as_bytes()),
            (
                "var/lib/apt/extended_states",
                ext_states(&["libpam0g", "libpython3.11-minimal"]).as_bytes(),
            ),
            ("var/log/dpkg.log", b"install\ninstall python3\n"),
            ("etc/ld.so.cache", b"cache"),
        ])],
        &["RUN apt-get install -y python3-minimal"],
    );
    s.layout.add("deb-v1", &v1);
    s.layout.add("deb-v2", &v2);
    s.layout.add("deb-app", &app);
    Debian { s }
}

/// Tags `new_tag`: the image tagged `tag` plus `layer` on top (manifest, diff ID, history).
/// Returns the layer's digest.
pub(super) fn stack_layer(
    layout: &Layout,
    tag: &str,
    new_tag: &str,
    layer: &Layer,
    created_by: &str,
) -> String {
    let mut m = layout.manifest(tag);
    let (ld, ls) = layout.write_blob(&layer.blob());
    m["layers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"mediaType": layer.media_type(false), "digest": ld, "size": ls}));
    let mut c = layout.config(tag);
    c["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(layer.diff_id().into());
    c["history"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"created_by": created_by}));
    let (cd, cs) = layout.write_blob(&serde_json::to_vec(&c).unwrap());
    m["config"]["digest"] = cd.into();
    m["config"]["size"] = cs.into();
    let (md, ms) = layout.write_blob(&serde_json::to_vec(&m).unwrap());
    layout.tag(
        new_tag,
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": md, "size": ms}),
    );
    ld
}

fn cache_args(d: &Debian) -> Vec<String> {
    vec![
        "--cache-dir".into(),
        d.s.path("cache").display().to_string(),
    ]
}

fn rebase(d: &Debian, image: &str, dest: &str, extra: &[&str]) -> String {
    let onto = d.s.layout.oci("deb-v2");
    let mut args: Vec<String> = ["rebase", image, "--onto", &onto, "-o", dest]
        .into_iter()
        .map(String::from)
        .collect();
    args.extend(cache_args(d));
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&refs)
}

#[test]
fn rebase_writes_the_database_a_rebuild_would() {
    let d = debian();
    let out = Layout::new(d.s.path("out"));
    let app = d.s.oci("deb-app");
    let from = d.s.oci("deb-v1");
    let digest = rebase(&d, &app, &out.oci("app"), &["--from", &from]);
    let m = out.manifest("app");
    assert_eq!(last_line(&digest), out.tagged("app").unwrap());
    let layers = m["layers"].as_array().unwrap();
    // new base (2) + app (1) + the package-database layer
    assert_eq!(layers.len(), 4);
    let app_manifest = d.s.layout.manifest("deb-app");
    assert_eq!(
        layers[2], app_manifest["layers"][1],
        "the app layer is kept byte for byte"
    );
    let cfg = out.config("app");
    let history = cfg["history"].as_array().unwrap();
    assert_eq!(
        history.last().unwrap()["created_by"],
        "ocipatch rebase: package database"
    );
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);

    let files = layer_files(&out, layers[3]["digest"].as_str().unwrap());
    let paths: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        paths,
        ["var/lib/apt/extended_states", "var/lib/dpkg/status"]
    );
    let rebuild = with_stanza(&status_v2(), PYTHON, "python3-minimal");
    assert_eq!(String::from_utf8(files[1].3.clone()).unwrap(), rebuild);
    // Header of the application's copy.
    assert_eq!((files[1].1, files[1].2), (0o644, 1_700_000_000));
    assert_eq!(
        String::from_utf8(files[0].3.clone()).unwrap(),
        ext_states(&["libpam0g", "libpython3.11-minimal"])
    );
}

#[test]
fn report_lists_the_package_changes_and_quiets_the_safety_report() {
    let d = debian();
    let app = d.s.oci("deb-app");
    let from = d.s.oci("deb-v1");
    let out = d.s.path("dry");
    let json = rebase(
        &d,
        &app,
        &format!("oci:{}:x", out.display()),
        &["--from", &from, "--dry-run", "--json"],
    );
    assert!(!out.exists(), "--dry-run writes nothing");
    let r: Value = serde_json::from_str(&json).unwrap();
    let db = &r["platforms"][0]["package_db"];
    let changes: Vec<String> = db["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} -> {}", c["package"], c["from"], c["to"]))
        .collect();
    assert_eq!(
        changes,
        [
            r#""apt" "2.6.1" -> "2.6.2""#,
            r#""libpam0g" "1.5.2-6+deb12u1" -> "1.5.2-6+deb12u9""#
        ]
    );
    assert_eq!(db["added"][0]["package"], "zz-newpkg");
    assert_eq!(db["pinned"].as_array().unwrap().len(), 0);
    assert!(db["layer"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert!(db["bytes_read"]["image"].as_u64().unwrap() > 0);
    assert!(db["bytes_read"]["new_base"].as_u64().unwrap() > 0);

    let findings = r["safety"][0]["findings"].as_array().unwrap();
    let class_of = |path: &str| {
        findings
            .iter()
            .find(|f| f["path"] == path)
            .map(|f| f["class"].as_str().unwrap().to_string())
    };
    assert_eq!(
        class_of("var/lib/dpkg/status").as_deref(),
        Some("package-db")
    );
    assert_eq!(class_of("var/log/dpkg.log").as_deref(), Some("volatile"));
    // The app's status-old holds the same bytes as the new base's: no finding at all.
    assert_eq!(class_of("var/lib/dpkg/status-old").as_deref(), None);
    let real: Vec<&Value> = findings.iter().filter(|f| f["class"] == "real").collect();
    assert!(real.is_empty(), "{real:?}");

    // The second run reads no layer: the cache knows them.
    let json = rebase(
        &d,
        &app,
        &format!("oci:{}:x", out.display()),
        &["--from", &from, "--dry-run", "--json"],
    );
    let r: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        r["platforms"][0]["package_db"]["bytes_read"],
        serde_json::json!({"image": 0, "new_base": 0})
    );

    // The human summary is the changelog.
    let (code, _, err) = outcome(&[
        "rebase",
        &app,
        "--from",
        &from,
        "--onto",
        &d.s.oci("deb-v2"),
        "-o",
        &format!("oci:{}:x", out.display()),
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("apt 2.6.1 -> 2.6.2"), "{err}");
    assert!(
        err.contains("package database /var/lib/dpkg/status: reconciled, 15 packages"),
        "{err}"
    );
    assert!(err.contains("volatile state"), "{err}");
}

#[test]
fn rebasing_again_replaces_the_layer_and_onto_the_same_base_is_a_no_op() {
    let d = debian();
    let out = Layout::new(d.s.path("out"));
    let from = d.s.oci("deb-v1");
    let first = rebase(&d, &d.s.oci("deb-app"), &out.oci("app"), &["--from", &from]);
    // No --from: the base.digest annotation finds deb-v2; same base: byte-identical.
    let again = rebase(&d, &out.oci("app"), &out.oci("again"), &[]);
    assert_eq!(last_line(&first), last_line(&again));
    assert_eq!(out.tagged("app"), out.tagged("again"));

    // A newer base: the database layer is replaced, not stacked.
    let status_v3 = status_v2().replace("Version: 2.6.2\n", "Version: 2.6.3\n");
    let v3_layer = Layer::files(&[("var/lib/dpkg/status", status_v3.as_bytes())]);
    stack_layer(
        &d.s.layout,
        "deb-v2",
        "deb-v3",
        &v3_layer,
        "RUN apt-get upgrade again",
    );

    let json = ok(&[
        "rebase",
        &out.oci("app"),
        "--onto",
        &d.s.oci("deb-v3"),
        "-o",
        &out.oci("v3"),
        "--json",
        "--cache-dir",
        &d.s.path("cache").display().to_string(),
    ]);
    let r: Value = serde_json::from_str(&json).unwrap();
    let db = &r["platforms"][0]["package_db"];
    assert_eq!(db["changes"][0]["from"], "2.6.2");
    assert_eq!(db["changes"][0]["to"], "2.6.3");
    assert!(db["replaced_layer"].as_str().is_some());
    let m = out.manifest("v3");
    assert_eq!(
        m["layers"].as_array().unwrap().len(),
        5,
        "3 base + app + one db layer"
    );
    let files = layer_files(&out, m["layers"][4]["digest"].as_str().unwrap());
    let status = String::from_utf8(files[1].3.clone()).unwrap();
    assert_eq!(status, with_stanza(&status_v3, PYTHON, "python3-minimal"));
    let history = out.config("v3")["history"].as_array().unwrap().clone();
    let db_entries = history
        .iter()
        .filter(|h| h["created_by"] == "ocipatch rebase: package database")
        .count();
    assert_eq!(db_entries, 1);
}

#[test]
fn no_package_db_and_apps_without_a_database_add_nothing() {
    let d = debian();
    let out = Layout::new(d.s.path("out"));
    let from = d.s.oci("deb-v1");
    let (code, _, err) = outcome(&[
        "rebase",
        &d.s.oci("deb-app"),
        "--from",
        &from,
        "--onto",
        &d.s.oci("deb-v2"),
        "-o",
        &out.oci("plain"),
        "--no-package-db",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: --no-package-db"), "{err}");
    assert_eq!(out.manifest("plain")["layers"].as_array().unwrap().len(), 3);

    // The scenario's app has no package database: the output is what it always was.
    let json = ok(&[
        "rebase",
        &d.s.oci("app"),
        "--from",
        &d.s.oci("base-v1"),
        "--onto",
        &d.s.oci("base-v2"),
        "-o",
        &out.oci("nodb"),
        "--json",
    ]);
    let r: Value = serde_json::from_str(&json).unwrap();
    assert!(r["platforms"][0].get("package_db").is_none());
    assert_eq!(out.manifest("nodb")["layers"].as_array().unwrap().len(), 4);
}

#[test]
fn a_broken_database_is_refused_with_file_layer_and_line() {
    let d = debian();
    let v1 = d.s.oci("deb-v1");
    let app_layer = Layer::files(&[(
        "var/lib/dpkg/status",
        b"Package: a\nVersion: 1\n\nPackage: b\nthis line is broken\n",
    )]);
    let ld = stack_layer(
        &d.s.layout,
        "deb-v1",
        "bad",
        &app_layer,
        "RUN apt-get install b",
    );
    let dest = d.s.path("never");
    let err = fails(&[
        "rebase",
        &d.s.oci("bad"),
        "--from",
        &v1,
        "--onto",
        &d.s.oci("deb-v2"),
        "-o",
        &format!("oci:{}:x", dest.display()),
    ]);
    assert!(err.contains("/var/lib/dpkg/status"), "{err}");
    assert!(err.contains(&format!("application layer {ld}")), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("--no-package-db"), "{err}");
    assert!(!dest.exists(), "nothing written");
}

#[test]
fn a_package_both_changed_is_pinned_and_strict_refuses_it() {
    let d = debian();
    // The app upgraded apt itself (to a version other than the new base's).
    let app_status = STATUS_V1.replace("Version: 2.6.1\n", "Version: 2.6.1+local1\n");
    let app = Image::on(
        &Image::new(
            vec![Layer::files(&[
                ("etc/os-release", b"VERSION=12\n"),
                ("var/lib/dpkg/status", STATUS_V1.as_bytes()),
                (
                    "var/lib/apt/extended_states",
                    ext_states(&["libpam0g"]).as_bytes(),
                ),
                ("var/log/dpkg.log", b"install\n"),
            ])],
            &["debootstrap"],
        ),
        vec![Layer::files(&[(
            "var/lib/dpkg/status",
            app_status.as_bytes(),
        )])],
        &["RUN dpkg -i apt_2.6.1+local1.deb"],
    );
    d.s.layout.add("pinning", &app);
    let from = d.s.oci("deb-v1");
    let dest = format!("oci:{}:x", d.s.path("o").display());
    let json = rebase(
        &d,
        &d.s.oci("pinning"),
        &dest,
        &["--from", &from, "--json", "--dry-run"],
    );
    let r: Value = serde_json::from_str(&json).unwrap();
    let pin = &r["platforms"][0]["package_db"]["pinned"][0];
    assert_eq!(pin["package"], "apt");
    assert_eq!(pin["app_version"], "2.6.1+local1");
    assert_eq!(pin["new_base_version"], "2.6.2");
    let finding = r["safety"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "app-pins-package")
        .cloned()
        .unwrap();
    assert_eq!(
        finding["detail"],
        "the application pins apt 2.6.1+local1 over the new base's 2.6.2"
    );
    let err = fails(&[
        "rebase",
        &d.s.oci("pinning"),
        "--from",
        &from,
        "--onto",
        &d.s.oci("deb-v2"),
        "-o",
        &dest,
        "--strict",
    ]);
    assert!(
        err.contains("refused by --strict") && err.contains("pins apt"),
        "{err}"
    );
}

fn apk_db(pkgs: &[(&str, &str)]) -> String {
    pkgs.iter()
        .map(|(p, v)| format!("C:Q1{p}=\nP:{p}\nV:{v}\nA:x86_64\nS:1\nI:2\nT:{p}\nF:usr/lib\nR:lib{p}.so\nZ:Q1x=\n\n"))
        .collect()
}

#[test]
fn alpine_apk_database_and_world_are_reconciled() {
    let s = scenario();
    let v1 = Image::new(
        vec![Layer::files(&[
            (
                "lib/apk/db/installed",
                apk_db(&[
                    ("busybox", "1.36.1-r15"),
                    ("libcrypto3", "3.1.4-r1"),
                    ("musl", "1.2.4-r2"),
                ])
                .as_bytes(),
            ),
            ("etc/apk/world", b"alpine-baselayout\nbusybox\n"),
        ])],
        &["ADD alpine-minirootfs.tar.gz /"],
    );
    let v2 = Image::on(
        &v1,
        vec![Layer::files(&[
            (
                "lib/apk/db/installed",
                apk_db(&[
                    ("busybox", "1.36.1-r15"),
                    ("libcrypto3", "3.1.4-r5"),
                    ("musl", "1.2.4-r2"),
                ])
                .as_bytes(),
            ),
            (
                "etc/apk/world",
                b"alpine-baselayout\nbusybox\nca-certificates-bundle\n",
            ),
        ])],
        &["RUN apk upgrade"],
    );
    let app = Image::on(
        &v1,
        vec![Layer::files(&[
            (
                "lib/apk/db/installed",
                apk_db(&[
                    ("busybox", "1.36.1-r15"),
                    ("curl", "8.5.0-r0"),
                    ("libcrypto3", "3.1.4-r1"),
                    ("musl", "1.2.4-r2"),
                ])
                .as_bytes(),
            ),
            ("etc/apk/world", b"alpine-baselayout\nbusybox\ncurl\n"),
        ])],
        &["RUN apk add curl"],
    );
    s.layout.add("a1", &v1);
    s.layout.add("a2", &v2);
    s.layout.add("aapp", &app);
    let out = Layout::new(s.path("out"));
    ok(&[
        "rebase",
        &s.oci("aapp"),
        "--from",
        &s.oci("a1"),
        "--onto",
        &s.oci("a2"),
        "-o",
        &out.oci("x"),
        "--cache-dir",
        &s.path("cache").display().to_string(),
    ]);
    let m = out.manifest("x");
    let files = layer_files(&out, m["layers"][3]["digest"].as_str().unwrap());
    assert_eq!(files[0].0, "etc/apk/world");
    assert_eq!(
        files[0].3,
        b"alpine-baselayout\nbusybox\nca-certificates-bundle\ncurl\n"
    );
    assert_eq!(files[1].0, "lib/apk/db/installed");
    assert_eq!(
        String::from_utf8(files[1].3.clone()).unwrap(),
        apk_db(&[
            ("busybox", "1.36.1-r15"),
            ("curl", "8.5.0-r0"),
            ("libcrypto3", "3.1.4-r5"),
            ("musl", "1.2.4-r2")
        ])
    );
}

#[test]
fn check_lists_the_packages_the_newer_base_would_upgrade() {
    let d = debian();
    let (code, out, err) = outcome(&[
        "check",
        &d.s.oci("deb-app"),
        "--base",
        &d.s.oci("deb-v2"),
        "--json",
    ]);
    assert_eq!(code, 3, "outdated: {out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let upgrades: Vec<String> = r["platforms"][0]["package_upgrades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            format!(
                "{} {} {}",
                u["package"].as_str().unwrap(),
                u["from"].as_str().unwrap(),
                u["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        upgrades,
        [
            "apt 2.6.1 2.6.2",
            "libpam0g 1.5.2-6+deb12u1 1.5.2-6+deb12u9"
        ]
    );
    let (code, out, _) = outcome(&["check", &d.s.oci("deb-app"), "--base", &d.s.oci("deb-v2")]);
    assert_eq!(code, 3);
    assert!(out.contains("  apt 2.6.1 -> 2.6.2"), "{out}");
}

#[test]
fn distroless_status_d_files_are_reconciled_file_by_file() {
    let s = scenario();
    let stanza = |v: &str| {
        format!(
            "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n"
        )
    };
    let v1 = Image::new(
        vec![Layer::files(&[(
            "var/lib/dpkg/status.d/libssl3",
            stanza("3.0.11-1~deb12u1").as_bytes(),
        )])],
        &["distroless base"],
    );
    let v2 = Image::on(
        &v1,
        vec![Layer::files(&[(
            "var/lib/dpkg/status.d/libssl3",
            stanza("3.0.13-1~deb12u1").as_bytes(),
        )])],
        &["update"],
    );
    // One app copied the base's (old) stanza file along with its own files; another built
    // its own libssl3.
    let stale = Image::on(
        &v1,
        vec![Layer::files(&[
            ("app/bin", b"x"),
            (
                "var/lib/dpkg/status.d/libssl3",
                stanza("3.0.11-1~deb12u1").as_bytes(),
            ),
        ])],
        &["COPY --from=build / /"],
    );
    let own = Image::on(
        &v1,
        vec![Layer::files(&[(
            "var/lib/dpkg/status.d/libssl3",
            stanza("3.0.11-1+custom").as_bytes(),
        )])],
        &["RUN dpkg -i libssl3_custom.deb"],
    );
    s.layout.add("d1", &v1);
    s.layout.add("d2", &v2);
    s.layout.add("stale", &stale);
    s.layout.add("own", &own);
    let out = Layout::new(s.path("out"));
    let cache = s.path("cache").display().to_string();
    let rebase = |tag: &str| -> Value {
        let json = ok(&[
            "rebase",
            &s.oci(tag),
            "--from",
            &s.oci("d1"),
            "--onto",
            &s.oci("d2"),
            "-o",
            &out.oci(tag),
            "--json",
            "--cache-dir",
            &cache,
        ]);
        serde_json::from_str(&json).unwrap()
    };
    let r = rebase("stale");
    let db = &r["platforms"][0]["package_db"];
    assert_eq!(db["databases"][0]["path"], "var/lib/dpkg/status.d/libssl3");
    assert_eq!(db["databases"][0]["action"], "reconciled");
    assert_eq!(db["changes"][0]["to"], "3.0.13-1~deb12u1");
    let m = out.manifest("stale");
    let top = m["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let files = layer_files(&out, &top);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].3, stanza("3.0.13-1~deb12u1").into_bytes());

    let r = rebase("own");
    let db = &r["platforms"][0]["package_db"];
    assert_eq!(db["databases"][0]["action"], "report-only");
    assert_eq!(db["pinned"][0]["app_version"], "3.0.11-1+custom");
    assert_eq!(db["pinned"][0]["new_base_version"], "3.0.13-1~deb12u1");
    assert!(db.get("layer").is_none(), "{db}");
}
