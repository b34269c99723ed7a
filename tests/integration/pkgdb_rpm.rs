//! rpm's legacy databases (BerkeleyDB `Packages`, NDB `Packages.db`) cannot be rewritten: when
//! the new base changed one, the report must say it was NOT reconciled and `--strict` must fail,
//! so a stale database is never left silently. (sqlite is judged with real rpm in
//! tests/interop_rpm.rs; Debian's rpm cannot write BerkeleyDB or NDB, so these are synthetic.)

use serde_json::Value;

use super::harness::*;

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
