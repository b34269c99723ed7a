//! Interop test for the rpm package-database reconciliation of `rebase`, judged with rpm itself
//! (rpm 4.18, sqlite backend) on images built with rpmbuild + `rpm --root` + umoci by
//! `scripts/make-rpm-fixture.sh`: base-v1 (basefs, osslite 3.0.1-1), base-v2 (`rpm -U`
//! osslite 3.0.1-2), app (`rpm -i curlite` on v1) and the reference rebuild (curlite on v2).
//!
//! After `ocipatch rebase app --onto base-v2`, rpm reading the rebased rootfs must give the
//! rebuild's answers: `rpm -qa`, `rpm -qf` on the upgraded library, `--whatprovides`,
//! `--whatrequires`, `--whatrecommends` (a rich dependency's index rows) and a clean `rpm -V`.
//! A corrupt database in the application's layer fails the rebase naming the file and the
//! layer, and writes nothing. A missing tool fails the test; run as root.

use std::fs;
use std::path::Path;

use crate::util::*;

const TOOLS: &[&str] = &["rpm", "rpmbuild", "umoci", "skopeo"];

/// rpm on an unpacked rootfs; its stdout, lines sorted.
fn rpm(rootfs: &Path, args: &[&str]) -> String {
    let r = run_ok(
        cmd("rpm")
            .arg("--root")
            .arg(rootfs)
            .args(["--dbpath", "/var/lib/rpm"])
            .args(args),
    );
    let mut lines: Vec<String> = r.stdout().lines().map(String::from).collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn rebased_rpm_database_answers_like_the_rebuild() {
    let fx = Fixture::build("make-rpm-fixture.sh", TOOLS);
    let r = run_ok(ocipatch().args([
        "rebase",
        &fx.image("app"),
        "--from",
        &fx.image("base-v1"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &fx.image("rebased"),
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&r.stdout()).expect("JSON");
    let db = &report["platforms"][0]["package_db"];
    assert_eq!(
        db["databases"][0]["path"], "var/lib/rpm/rpmdb.sqlite",
        "{db:#}"
    );
    assert_eq!(db["databases"][0]["action"], "reconciled", "{db:#}");
    assert_eq!(db["databases"][0]["packages"], 3, "{db:#}");
    assert_eq!(
        db["changes"],
        serde_json::json!([{"package": "osslite", "arch": "noarch", "from": "3.0.1-1", "to": "3.0.1-2"}])
    );
    assert_eq!(db["pinned"], serde_json::json!([]));

    let rebased = fx.unpack(&fx.images, "rebased");
    let rebuilt = fx.unpack(&fx.images, "rebuilt");
    // `rpm --dbpath <rootfs>/var/lib/rpm -qa`, as the issue states it.
    let qa = |root: &Path| {
        let r = run_ok(
            cmd("rpm")
                .arg("--dbpath")
                .arg(root.join("var/lib/rpm"))
                .arg("-qa"),
        );
        let mut l: Vec<String> = r.stdout().lines().map(String::from).collect();
        l.sort();
        l
    };
    assert_eq!(qa(&rebased), qa(&rebuilt));
    assert_eq!(
        qa(&rebased),
        [
            "basefs-1.0-1.noarch",
            "curlite-8.0-1.noarch",
            "osslite-3.0.1-2.noarch"
        ]
    );
    for args in [
        &["-qf", "/usr/lib64/libosslite.so.3"][..],
        &["-qf", "/usr/bin/curlite"],
        &["-q", "--whatprovides", "libosslite.so.3"],
        &["-q", "--whatrequires", "osslite"],
        &["-q", "--whatrecommends", "basefs"],
        &["-q", "--whatrecommends", "(osslite or basefs)"],
        // Not INSTALLTID: the app's packages keep the time the app installed them, and the
        // rebuild installs them again later (the fixture's times are real).
        &["-qa", "--qf", "%{NEVRA} %{SIZE} %{LICENSE}\n"],
    ] {
        assert_eq!(rpm(&rebased, args), rpm(&rebuilt, args), "rpm {args:?}");
    }
    assert_eq!(
        rpm(&rebased, &["-qf", "/usr/lib64/libosslite.so.3"]),
        "osslite-3.0.1-2.noarch"
    );
    // rpm -V: the files on disk are the new base's and match the database's headers.
    assert_eq!(rpm(&rebased, &["-V", "osslite", "curlite", "basefs"]), "");
    assert_eq!(rpm(&rebased, &["-Va"]), "");
}

#[test]
fn corrupt_rpm_database_fails_naming_file_and_layer_and_writes_nothing() {
    let fx = Fixture::build("make-rpm-fixture.sh", TOOLS);
    // app-corrupt: the app with its rpmdb.sqlite pages overwritten, repacked as one more layer.
    run_ok(
        cmd("umoci")
            .args(["tag", "--image"])
            .arg(umoci_ref(&fx.images, "app"))
            .arg("app-corrupt"),
    );
    let bundle = fx.dir.path().join("corrupt");
    run_ok(
        cmd("umoci")
            .args(["unpack", "--image"])
            .arg(umoci_ref(&fx.images, "app-corrupt"))
            .arg(&bundle),
    );
    let db = bundle.join("rootfs/var/lib/rpm/rpmdb.sqlite");
    let mut bytes = fs::read(&db).expect("read rpmdb");
    for b in &mut bytes[100..] {
        *b = 0x5a;
    }
    fs::write(&db, &bytes).expect("write rpmdb");
    run_ok(
        cmd("umoci")
            .args(["repack", "--image"])
            .arg(umoci_ref(&fx.images, "app-corrupt"))
            .arg(&bundle),
    );
    let index_before = fs::read(fx.images.join("index.json")).expect("index.json");
    let r = run_fail(ocipatch().args([
        "rebase",
        &fx.image("app-corrupt"),
        "--from",
        &fx.image("base-v1"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &fx.image("never"),
    ]));
    let err = r.stderr();
    assert!(
        err.contains("/var/lib/rpm/rpmdb.sqlite")
            && err.contains("application layer sha256:")
            && err.contains("--no-package-db"),
        "{r}"
    );
    assert_eq!(
        fs::read(fx.images.join("index.json")).expect("index.json"),
        index_before,
        "nothing may be written"
    );
}
