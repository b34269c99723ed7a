//! Hostile and unusual images at the package-database paths: links resolved inside the image
//! (the database is found, reconciled and written where the link leads), links that cannot be
//! followed (a real finding, `--strict` refuses), and a layer cache that was tampered with.

use serde_json::Value;

use super::pkgdb::*;
use crate::util::*;

/// The dpkg database the app's `apt-get install python3-minimal` wrote (on base v1).
fn app_status() -> String {
    with_stanza(STATUS_V1, PYTHON, "python3-minimal")
}

/// What a rebuild on v2 writes.
fn rebuilt_status() -> String {
    with_stanza(&status_v2(), PYTHON, "python3-minimal")
}

/// Tags `tag`: deb-v1 + one application layer of `nodes`.
fn app_with(d: &Debian, tag: &str, nodes: &[Node]) -> String {
    stack_layer(
        &d.s.layout,
        "deb-v1",
        tag,
        &Layer::nodes(nodes),
        "RUN apt-get install -y python3-minimal",
    );
    d.s.oci(tag)
}

fn rebase_args<'a>(d: &'a Debian, app: &'a str, dest: &'a str) -> Vec<String> {
    [
        "rebase",
        app,
        "--from",
        &d.s.oci("deb-v1"),
        "--onto",
        &d.s.oci("deb-v2"),
        "-o",
        dest,
        "--cache-dir",
        &d.s.path("cache").display().to_string(),
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn run(args: &[String], extra: &[&str]) -> (i32, String, String) {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(extra);
    outcome(&all)
}

/// The package-database layer's files (path → content) of the image tagged `tag` in `out`.
fn db_layer(out: &Layout, tag: &str) -> Vec<(String, u32, String)> {
    let m = out.manifest(tag);
    let top = m["layers"].as_array().unwrap().last().unwrap().clone();
    layer_files(out, top["digest"].as_str().unwrap())
        .into_iter()
        .map(|(p, mode, _, c)| (p, mode, String::from_utf8(c).unwrap()))
        .collect()
}

#[test]
fn a_symlinked_dpkg_directory_is_reconciled_where_it_leads() {
    let d = debian();
    let status = app_status();
    let app = app_with(
        &d,
        "app-linkdir",
        &[
            Node::Dir("opt/dpkgdb"),
            Node::File("opt/dpkgdb/status", status.as_bytes(), 0o644),
            Node::Symlink("var/lib/dpkg", "/opt/dpkgdb"),
        ],
    );
    let out = Layout::new(d.s.path("out"));
    let (code, _, err) = run(&rebase_args(&d, &app, &out.oci("x")), &["--strict"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("deleted by the application"), "{err}");
    assert!(
        err.contains("package database /var/lib/dpkg/status (at /opt/dpkgdb/status): reconciled"),
        "{err}"
    );
    let files = db_layer(&out, "x");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0].0, "opt/dpkgdb/status",
        "written where the link leads"
    );
    assert_eq!(files[0].2, rebuilt_status());
}

#[test]
fn a_symlinked_or_hard_linked_status_file_is_reconciled() {
    let d = debian();
    let status = app_status();
    let sym = app_with(
        &d,
        "app-symlink",
        &[
            Node::File("var/lib/dpkg/status.real", status.as_bytes(), 0o644),
            Node::Symlink("var/lib/dpkg/status", "status.real"),
        ],
    );
    let out = Layout::new(d.s.path("out"));
    let (code, _, err) = run(&rebase_args(&d, &sym, &out.oci("sym")), &[]);
    assert_eq!(code, 0, "{err}");
    let files = db_layer(&out, "sym");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].0, "var/lib/dpkg/status.real");
    assert_eq!(files[0].2, rebuilt_status());

    // A tar hard link: both names of the file get the merged database.
    let hard = app_with(
        &d,
        "app-hardlink",
        &[
            Node::Dir("opt/x"),
            Node::File("opt/x/status", status.as_bytes(), 0o644),
            Node::HardLink("var/lib/dpkg/status", "opt/x/status"),
        ],
    );
    let (code, _, err) = run(&rebase_args(&d, &hard, &out.oci("hard")), &["--json"]);
    assert_eq!(code, 0, "{err}");
    let files = db_layer(&out, "hard");
    let paths: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(paths, ["opt/x/status", "var/lib/dpkg/status"]);
    assert!(files
        .iter()
        .all(|f| f.2 == rebuilt_status() && f.1 == 0o644));
}

#[test]
fn links_that_cannot_be_followed_are_real_findings_and_strict_refuses() {
    let d = debian();
    let cases: [(&str, Vec<Node>, &str); 3] = [
        (
            "loop",
            vec![
                Node::Symlink("var/lib/dpkg", "dpkg2"),
                Node::Symlink("var/lib/dpkg2", "dpkg"),
            ],
            "more than 40 symbolic links",
        ),
        (
            "escape",
            vec![Node::Symlink(
                "var/lib/dpkg/status",
                "../../../../../../etc/shadow",
            )],
            "points above the image's root",
        ),
        (
            "dangling",
            vec![Node::Symlink("var/lib/dpkg", "/nonexistent/dpkg")],
            "nonexistent, which does not exist",
        ),
    ];
    for (name, nodes, words) in cases {
        let app = app_with(&d, &format!("app-{name}"), &nodes);
        let dest = d.s.path(&format!("never-{name}"));
        let args = rebase_args(&d, &app, &format!("oci:{}:x", dest.display()));
        let (code, _, err) = run(&args, &["--strict"]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains("refused by --strict"), "{name}: {err}");
        assert!(!dest.exists(), "{name}: nothing written");

        let (code, json, err) = run(&args, &["--dry-run", "--json"]);
        assert_eq!(code, 0, "{name}: {err}");
        let r: Value = serde_json::from_str(&json).unwrap();
        let finding = r["safety"][0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "unresolvable-path")
            .unwrap_or_else(|| panic!("{name}: {json}"))
            .clone();
        assert_eq!(finding["class"], "real", "{name}");
        let detail = finding["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{name}: {detail}");
        assert_eq!(finding["path"], "var/lib/dpkg/status", "{name}");
        assert_eq!(
            r["platforms"][0]["package_db"]["databases"][0]["action"], "unresolvable",
            "{name}"
        );
    }
}

/// Every file under `dir`, recursively.
fn files_below(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_below(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_poisoned_layer_cache_is_ignored_with_a_warning() {
    let d = debian();
    let out = Layout::new(d.s.path("out"));
    let app = d.s.oci("deb-app");
    let args = rebase_args(&d, &app, &out.oci("cold"));
    let (code, cold, err) = run(&args, &[]);
    assert_eq!(code, 0, "{err}");

    // Change one digit of a mode in every cache entry (0644 → 0646).
    let cache = d.s.path("cache");
    let mut poisoned = 0;
    for f in files_below(&cache) {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("\"mode\":420") {
            std::fs::write(&f, text.replace("\"mode\":420", "\"mode\":422")).unwrap();
            poisoned += 1;
        }
    }
    assert!(poisoned > 0, "the cache holds entries with modes");
    let args = rebase_args(&d, &app, &out.oci("warm"));
    let (code, warm, err) = run(&args, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        last_line(&warm),
        last_line(&cold),
        "the same image as without a cache"
    );
    assert!(err.contains("warning: layer cache: ignoring"), "{err}");
    let status = db_layer(&out, "warm")
        .into_iter()
        .find(|f| f.0 == "var/lib/dpkg/status")
        .unwrap();
    assert_eq!(status.1, 0o644);

    // The cache is private: directory 0700, entries 0600.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    for f in files_below(&cache) {
        if !f.file_name().unwrap().to_string_lossy().ends_with(".lock") {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
        assert_eq!(mode(f.parent().unwrap()), 0o700, "{}", f.display());
    }
}
