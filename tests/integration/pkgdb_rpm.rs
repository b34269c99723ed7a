//! rpm's databases. The legacy ones (BerkeleyDB `Packages`, NDB `Packages.db`) cannot be
//! rewritten: when the new base changed one, the report must say it was NOT reconciled and
//! `--strict` must fail, so a stale database is never left silently (Debian's rpm cannot write
//! BerkeleyDB or NDB, so these are synthetic).
//!
//! `rpmdb.sqlite` from an image is data, never code: a database whose schema carries a trigger
//! or a view is refused, promptly and by name, and nothing is written; the databases here are
//! made by the real rpm (rpmbuild, `rpm --justdb`) and what ocipatch writes is judged by the
//! real `rpm --dbpath DIR -qa`. (The full rebase-and-rebuild comparison is in
//! interop::rpm.)

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, MAIN_DB};
use serde_json::Value;

use crate::util::*;

/// rpm on the database directory `dbpath`, sqlite backend.
fn rpm(dbpath: &Path) -> Cmd {
    let mut c = cmd("rpm");
    c.arg("--dbpath")
        .arg(dbpath)
        .args(["--define", "_db_backend sqlite"]);
    c
}

/// rpm's databases of the standard rpm scenario, made by rpm itself from packages rpmbuild
/// makes: the old base (basefs, osslite 3.0.1-1), the new base (`rpm -U` osslite 3.0.1-2), the
/// application (`rpm -i` curlite on the old base), and an empty database (`rpm --initdb`).
struct RpmDbs {
    tmp: tempfile::TempDir,
    v1: Vec<u8>,
    v2: Vec<u8>,
    app: Vec<u8>,
    empty: Vec<u8>,
}

fn rpm_dbs() -> RpmDbs {
    let tmp = tempfile::tempdir().unwrap();
    let top = tmp.path().join("rpmbuild");
    let build = |name: &str, version: &str, release: &str, path: &str, extra: &str| -> PathBuf {
        let specs = top.join("SPECS");
        fs::create_dir_all(&specs).unwrap();
        let spec = specs.join(format!("{name}-{version}-{release}.spec"));
        fs::write(
            &spec,
            format!(
                "Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: {name}\n\
                 License: MIT\nBuildArch: noarch\nAutoReqProv: no\n{extra}\n\
                 %description\n{name} (ocipatch test).\n\
                 %install\nmkdir -p %{{buildroot}}$(dirname {path})\n\
                 echo {name}-{version}-{release} > %{{buildroot}}{path}\n\
                 %files\n{path}\n"
            ),
        )
        .unwrap();
        run_ok(
            cmd("rpmbuild")
                .arg("--quiet")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .arg("-bb")
                .arg(&spec),
        );
        top.join(format!("RPMS/noarch/{name}-{version}-{release}.noarch.rpm"))
    };
    let basefs = build("basefs", "1.0", "1", "/etc/basefs-release", "");
    let ssl1 = build(
        "osslite",
        "3.0.1",
        "1",
        "/usr/lib64/libosslite.so.3",
        "Provides: libosslite.so.3",
    );
    let ssl2 = build(
        "osslite",
        "3.0.1",
        "2",
        "/usr/lib64/libosslite.so.3",
        "Provides: libosslite.so.3",
    );
    let curl = build(
        "curlite",
        "8.0",
        "1",
        "/usr/bin/curlite",
        "Requires: osslite >= 3.0",
    );
    // One database directory per image, each grown from the previous as an image's layer is.
    let db = |name: &str, from: Option<&str>, args: &[&str], pkgs: &[&Path]| -> Vec<u8> {
        let dir = tmp.path().join(name);
        match from {
            Some(from) => {
                fs::create_dir_all(&dir).unwrap();
                fs::copy(
                    tmp.path().join(from).join("rpmdb.sqlite"),
                    dir.join("rpmdb.sqlite"),
                )
                .unwrap();
            }
            None => {
                run_ok(rpm(&dir).arg("--initdb"));
            }
        }
        if !pkgs.is_empty() {
            run_ok(
                rpm(&dir)
                    .args(args)
                    .args(["--justdb", "--nodeps", "--nosignature", "--noscripts"])
                    .args(pkgs),
            );
        }
        fs::read(dir.join("rpmdb.sqlite")).unwrap()
    };
    let empty = db("empty", None, &[], &[]);
    let v1 = db("v1", None, &["-i"], &[&basefs, &ssl1]);
    let v2 = db("v2", Some("v1"), &["-U"], &[&ssl2]);
    let app = db("app", Some("v1"), &["-i"], &[&curl]);
    RpmDbs {
        tmp,
        v1,
        v2,
        app,
        empty,
    }
}

/// `sql` run on a copy of database bytes (what a hostile image's build would do).
fn altered(db: &[u8], sql: &str) -> Vec<u8> {
    let mut bytes = db.to_vec();
    // Read the WAL-mode file rpm leaves as a rollback-mode one (no -wal in memory).
    bytes[18] = 1;
    bytes[19] = 1;
    let mut c = Connection::open_in_memory().unwrap();
    c.deserialize_read_exact(MAIN_DB, &bytes[..], bytes.len(), false)
        .unwrap();
    c.execute_batch(sql).unwrap();
    c.serialize(MAIN_DB).unwrap().to_vec()
}

/// Tags rpm-v1, rpm-v2 and `app_tag` (the application with `app_db`) in the scenario's layout;
/// returns the application layer's digest.
fn rpm_images(s: &Scenario, dbs: &RpmDbs, app_tag: &str, app_db: &[u8]) -> String {
    const DB: &str = "var/lib/rpm/rpmdb.sqlite";
    let v1 = Image::new(
        vec![Layer::files(&[
            ("etc/os-release", b"ID=fedora\n"),
            (DB, &dbs.v1),
        ])],
        &["RUN rpm -i basefs osslite"],
    );
    let v2 = Image::on(
        &v1,
        vec![Layer::files(&[(DB, &dbs.v2)])],
        &["RUN rpm -U osslite"],
    );
    let app_layer = Layer::files(&[("usr/bin/curlite", b"#!/bin/sh\n"), (DB, app_db)]);
    let app = Image::on(&v1, vec![app_layer.clone()], &["RUN rpm -i curlite"]);
    s.layout.add("rpm-v1", &v1);
    s.layout.add("rpm-v2", &v2);
    s.layout.add(app_tag, &app);
    sha256(&app_layer.blob())
}

/// The args of `rebase APP --from rpm-v1 --onto rpm-v2 -o DEST`.
fn rebase_args(s: &Scenario, app_tag: &str, dest: &str) -> Vec<String> {
    [
        "rebase",
        &s.oci(app_tag),
        "--from",
        &s.oci("rpm-v1"),
        "--onto",
        &s.oci("rpm-v2"),
        "-o",
        dest,
    ]
    .iter()
    .map(|x| x.to_string())
    .collect()
}

/// `rpm --dbpath DIR -qa` on database bytes, sorted.
fn rpm_qa(dir: &Path, db: &[u8]) -> Vec<String> {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("rpmdb.sqlite"), db).unwrap();
    let mut l: Vec<String> = run_ok(rpm(dir).arg("-qa"))
        .stdout()
        .lines()
        .map(String::from)
        .collect();
    l.sort();
    l
}

/// A database's schema: (type, name, table, sql) in `sqlite_master` order.
fn schema(db: &[u8]) -> Vec<(String, String, String, String)> {
    let mut bytes = db.to_vec();
    bytes[18] = 1;
    bytes[19] = 1;
    let mut c = Connection::open_in_memory().unwrap();
    c.deserialize_read_exact(MAIN_DB, &bytes[..], bytes.len(), true)
        .unwrap();
    let mut st = c
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    rows.map(|r| r.unwrap()).collect()
}

#[test]
fn a_merged_rpm_database_is_rpms_own_schema_and_rpm_reads_it() {
    let s = scenario();
    let dbs = rpm_dbs();
    rpm_images(&s, &dbs, "rpm-app", &dbs.app);
    let out = s.path("out");
    let dest = format!("oci:{}:x", out.display());
    let report: Value = serde_json::from_str(&ok(&strs(
        &[rebase_args(&s, "rpm-app", &dest), vec!["--json".into()]].concat(),
    )))
    .unwrap();
    let db = &report["platforms"][0]["package_db"];
    assert_eq!(db["databases"][0]["action"], "reconciled", "{db:#}");
    assert_eq!(db["databases"][0]["packages"], 3, "{db:#}");
    let layout = Layout::new(&out);
    let m = layout.read_json(&layout.tagged("x").unwrap());
    let top = m["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let written = layer_files(&layout, &top)
        .into_iter()
        .find(|f| f.0 == "var/lib/rpm/rpmdb.sqlite")
        .expect("the package-database layer holds rpmdb.sqlite")
        .3;
    assert_eq!(
        rpm_qa(&dbs.tmp.path().join("judge"), &written),
        [
            "basefs-1.0-1.noarch",
            "curlite-8.0-1.noarch",
            "osslite-3.0.1-2.noarch"
        ]
    );
    // rpm's own schema, in rpm's order: what `rpm --initdb` creates, nothing of the inputs'.
    assert_eq!(schema(&written), schema(&dbs.empty));
}

/// A trigger in the application's database once rewrote what ocipatch wrote (exit 0, `rpm -qa`
/// listing one package three times): now a refusal naming the trigger, the file and the layer,
/// and nothing written. The flag it names does get past it.
#[test]
fn an_rpm_database_with_a_trigger_is_refused_naming_it() {
    let s = scenario();
    let dbs = rpm_dbs();
    let hostile = altered(
        &dbs.app,
        "CREATE TRIGGER rewrite AFTER INSERT ON Packages BEGIN \
         UPDATE Packages SET blob = (SELECT blob FROM Packages ORDER BY hnum LIMIT 1) \
         WHERE hnum = NEW.hnum; END;",
    );
    let layer = rpm_images(&s, &dbs, "rpm-app-trigger", &hostile);
    let out = s.path("never");
    let dest = format!("oci:{}:x", out.display());
    let args = rebase_args(&s, "rpm-app-trigger", &dest);
    let (code, stdout, err) = run(ocipatch().args(&args).timeout(Duration::from_secs(60))).parts();
    let judged = if code == 0 {
        // What today's wrong output looks like to rpm, for the failure message.
        let layout = Layout::new(&out);
        let m = layout.read_json(&layout.tagged("x").unwrap());
        let top = m["layers"].as_array().unwrap().last().unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let db = layer_files(&layout, &top)
            .into_iter()
            .find(|f| f.0 == "var/lib/rpm/rpmdb.sqlite")
            .map(|f| f.3)
            .unwrap_or_default();
        format!("rpm -qa: {:?}", rpm_qa(&s.path("judge"), &db))
    } else {
        String::new()
    };
    assert_eq!(code, 1, "{stdout}{err}{judged}");
    assert!(
        err.starts_with("ocipatch: error: ") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    for want in [
        "rpm database /var/lib/rpm/rpmdb.sqlite",
        &format!("in application layer {layer}"),
        "a trigger \"rewrite\" on \"Packages\"",
        "pass --no-package-db to rebase without reconciling it",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    assert!(!out.exists(), "nothing written");
    ok(&strs(&[args, vec!["--no-package-db".into()]].concat()));
}

/// An index table replaced by a view with an endless recursive query once hung the rebase
/// until killed (`rpm -qa` on the same file returns at once): now a prompt refusal.
#[test]
fn an_rpm_database_with_an_endless_view_is_refused_promptly() {
    let s = scenario();
    let dbs = rpm_dbs();
    let hostile = altered(
        &dbs.app,
        "DROP TABLE Installtid; CREATE VIEW Installtid AS \
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
         SELECT x AS key, 1 AS hnum, 0 AS idx FROM c;",
    );
    let layer = rpm_images(&s, &dbs, "rpm-app-view", &hostile);
    let out = s.path("never");
    let args = rebase_args(&s, "rpm-app-view", &format!("oci:{}:x", out.display()));
    let (code, stdout, err) = run(ocipatch().args(&args).timeout(Duration::from_secs(60))).parts();
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(err.contains("a view \"Installtid\""), "{err}");
    assert!(
        err.contains(&format!("in application layer {layer}")),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    // rpm itself reads the same file at once.
    assert_eq!(rpm_qa(&s.path("judge"), &hostile).len(), 3);
}

/// A database over the size cap is refused with the flag that skips it.
#[test]
fn an_rpm_database_over_the_size_cap_names_the_flag() {
    let s = scenario();
    let dbs = rpm_dbs();
    // A database one byte over the cap (the app's real one, padded: gzip makes the layer
    // small, the tar is 128 MiB).
    let mut huge = dbs.app.clone();
    huge.resize((128 << 20) + 1, 0);
    let app = Image::on(
        &s.base_v1,
        vec![Layer::files(&[("var/lib/rpm/rpmdb.sqlite", &huge)])],
        &["RUN rpm -i everything"],
    );
    s.layout.add("rpm-huge", &app);
    let out = s.path("never");
    let err = fails(&[
        "rebase",
        &s.oci("rpm-huge"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &format!("oci:{}:x", out.display()),
    ]);
    assert!(err.contains("/var/lib/rpm/rpmdb.sqlite"), "{err}");
    assert!(
        err.contains("is 134217729 bytes, more than the 134217728 bytes"),
        "{err}"
    );
    assert!(
        err.contains("pass --no-package-db to rebase without reconciling it"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_stale_berkeleydb_rpm_database_is_reported_and_fails_strict() {
    let s = scenario();
    let v1 = Image::new(
        vec![Layer::files(&[("var/lib/rpm/Packages", b"bdb v1")])],
        &["FROM ubi8"],
    );
    let v2 = Image::on(
        &v1,
        vec![Layer::files(&[("var/lib/rpm/Packages", b"bdb v2")])],
        &["RUN dnf upgrade"],
    );
    let app = Image::on(
        &v1,
        vec![Layer::files(&[
            ("usr/bin/app", b"app"),
            ("var/lib/rpm/Packages", b"bdb v1 + app"),
        ])],
        &["RUN dnf install app"],
    );
    s.layout.add("rpm-v1", &v1);
    s.layout.add("rpm-v2", &v2);
    s.layout.add("rpm-app", &app);
    let dest = format!("oci:{}:x", s.path("o").display());
    let cache = s.path("cache").display().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "rebase",
            &s.oci("rpm-app"),
            "--from",
            &s.oci("rpm-v1"),
            "--onto",
            &s.oci("rpm-v2"),
            "-o",
            &dest,
            "--cache-dir",
            &cache,
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let out = ok(&args(&["--json", "--dry-run"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>());
    let r: Value = serde_json::from_str(&out).unwrap();
    let db = &r["platforms"][0]["package_db"];
    assert_eq!(db["databases"][0]["path"], "var/lib/rpm/Packages", "{db:#}");
    assert_eq!(db["databases"][0]["action"], "not-reconciled", "{db:#}");
    assert!(db.get("layer").is_none(), "{db:#}");
    let finding = r["safety"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "var/lib/rpm/Packages")
        .cloned()
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(finding["class"], "real", "{finding:#}");
    let err = fails(
        &args(&["--strict"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        err.contains("refused by --strict") && err.contains("var/lib/rpm/Packages"),
        "{err}"
    );
}
