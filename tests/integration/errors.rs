//! Every failure a JSON report shows carries a stable `error_kind` (docs/json.md, Error kinds):
//! the error object `--json` prints when a command fails, the entries of a fleet, the problems
//! of `verify`. One test per kind the binary can be made to produce here; the registry kinds
//! come from the fake registry, which answers with whatever status a test asks for.

use std::fs;

use serde_json::{json, Value};

use crate::pkgdb::{debian, stack_layer};
use crate::util::fake::{FakeServer, Reply};
use crate::util::*;

/// Runs ocipatch, expecting exit code `code` and one error line on stderr; returns the error
/// object printed on stdout.
fn error_json(code: i32, args: &[&str]) -> Value {
    let (got, out, err) = outcome(args);
    assert_eq!(
        got, code,
        "ocipatch {args:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(err.starts_with("ocipatch: error: "), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(v["schemaVersion"], "1", "{v}");
    // The same line as on stderr, without its prefix.
    let line = err.trim_end().strip_prefix("ocipatch: error: ").unwrap();
    assert_eq!(v["error"], line, "{v}");
    v
}

fn kind_of(v: &Value) -> &str {
    v["error_kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no error_kind: {v}"))
}

#[test]
fn a_tag_the_layout_does_not_have_is_not_found() {
    let s = scenario();
    let v = error_json(1, &["inspect", &s.oci("nope"), "--json"]);
    assert_eq!(kind_of(&v), "not-found");
    assert!(v["error"].as_str().unwrap().contains("tags: app"), "{v}");
}

#[test]
fn an_image_without_a_base_annotation_needs_a_flag() {
    let s = scenario();
    // No base.digest annotation: the old base is unknown without --from.
    let out = s.oci("out");
    let v = error_json(
        1,
        &[
            "rebase",
            &s.oci("app"),
            "--onto",
            &s.oci("base-v2"),
            "-o",
            &out,
            "--json",
        ],
    );
    assert_eq!(kind_of(&v), "needs-flag");
    assert!(v["error"].as_str().unwrap().contains("pass --from"), "{v}");
    // No base.name annotation: check needs --base.
    let v = error_json(1, &["check", &s.oci("app"), "--json"]);
    assert_eq!(kind_of(&v), "needs-flag");
    assert!(v["error"].as_str().unwrap().contains("pass --base"), "{v}");
}

#[test]
fn an_argument_that_cannot_work_is_a_usage_error_exit_2() {
    let s = scenario();
    let patch = s.path("patch");
    fs::create_dir_all(&patch).unwrap();
    fs::write(patch.join("motd"), "patched\n").unwrap();
    let patch = patch.display().to_string();
    let v = error_json(
        2,
        &[
            "append",
            &s.oci("app"),
            "--delete",
            "/",
            "--layer",
            &patch,
            "-o",
            &s.oci("patched"),
            "--json",
        ],
    );
    assert_eq!(kind_of(&v), "usage");
    let v = error_json(
        2,
        &[
            "append",
            "scratch",
            "--platform",
            "linux",
            "--layer",
            &patch,
            "-o",
            &s.oci("patched"),
            "--json",
        ],
    );
    assert_eq!(kind_of(&v), "usage");
}

#[test]
fn strict_refusal_is_strict() {
    let s = scenario();
    // The app bundles its own copy of the library the new base patched: a real finding.
    let app = Image::on(
        &s.base_v1,
        vec![Layer::files(&[(
            "usr/lib/libfoo.so.1",
            b"app's bundled copy",
        )])],
        &["COPY libfoo"],
    );
    s.layout.add("risky", &app);
    let dest = s.path("never");
    let v = error_json(
        1,
        &[
            "rebase",
            &s.oci("risky"),
            "--from",
            &s.oci("base-v1"),
            "--onto",
            &s.oci("base-v2"),
            "-o",
            &format!("oci:{}:x", dest.display()),
            "--strict",
            "--json",
        ],
    );
    assert_eq!(kind_of(&v), "strict");
    assert!(
        v["error"].as_str().unwrap().contains("refused by --strict"),
        "{v}"
    );
    assert!(!dest.exists(), "nothing written");
}

#[test]
fn a_package_database_that_does_not_parse_is_package_db() {
    let d = debian();
    let broken = Layer::files(&[(
        "var/lib/dpkg/status",
        b"Package: a\nVersion: 1\n\nPackage: b\nthis line is broken\n",
    )]);
    stack_layer(
        &d.s.layout,
        "deb-v1",
        "bad",
        &broken,
        "RUN apt-get install b",
    );
    let v = error_json(
        1,
        &[
            "rebase",
            &d.s.oci("bad"),
            "--from",
            &d.s.oci("deb-v1"),
            "--onto",
            &d.s.oci("deb-v2"),
            "-o",
            &d.s.oci("out"),
            "--json",
        ],
    );
    assert_eq!(kind_of(&v), "package-db");
    let line = v["error"].as_str().unwrap();
    assert!(
        line.contains("line 5")
            && line.contains("pass --no-package-db to rebase without reconciling it"),
        "{v}"
    );
}

/// The image's blob of its layer `i`, and its bytes.
fn layer_blob(l: &Layout, tag: &str, i: usize) -> (String, std::path::PathBuf) {
    let m = l.read_json(&l.tagged(tag).unwrap());
    let d = m["layers"][i]["digest"].as_str().unwrap().to_string();
    let p = l.blob_path(&d);
    (d, p)
}

#[test]
fn verify_problems_say_missing_blob_digest_mismatch_and_size_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Layout::new(tmp.path().join("l"));
    let img = Image::new(
        vec![
            Layer::files(&[("gone", b"this blob is deleted")]),
            Layer::files(&[("flipped", b"one byte of this blob changes")]).with(Comp::None),
            Layer::files(&[("sized", b"this blob's descriptor lies")]).with(Comp::None),
        ],
        &["a", "b", "c"],
    );
    // The size lie: the manifest says 1 byte for the intact third layer.
    let mut desc = l.put_image(&img);
    let mut m = l.read_json(desc["digest"].as_str().unwrap());
    m["layers"][2]["size"] = 1.into();
    let (md, ms) = l.write_blob(&serde_json::to_vec(&m).unwrap());
    desc["digest"] = md.into();
    desc["size"] = ms.into();
    l.tag("bad", desc);
    let (gone, gone_path) = layer_blob(&l, "bad", 0);
    fs::remove_file(gone_path).unwrap();
    let (flipped, flipped_path) = layer_blob(&l, "bad", 1);
    let mut bytes = fs::read(&flipped_path).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == b"one byte")
        .expect("the file's contents are in the plain tar");
    bytes[at] = b'O';
    fs::write(&flipped_path, bytes).unwrap();
    let (sized, _) = layer_blob(&l, "bad", 2);

    let (code, out, err) = outcome(&["verify", &l.oci("bad"), "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<(String, String)> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["digest"].as_str().unwrap().to_string(),
                p["error_kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |d: &str, k: &str| kinds.iter().any(|(pd, pk)| pd == d && pk == k);
    assert!(has(&gone, "missing-blob"), "{r:#}");
    assert!(has(&flipped, "digest-mismatch"), "{r:#}");
    assert!(has(&sized, "size-mismatch"), "{r:#}");
    // The missing blob's message is the error's, without the reference the report names.
    let missing = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["error_kind"] == "missing-blob")
        .unwrap();
    let msg = missing["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("blob {gone} is missing (")),
        "{msg}"
    );
}

#[test]
fn fleet_entries_carry_their_error_kind() {
    let s = scenario();
    // An image whose own layer blob is gone.
    let broken = Image::on(
        &s.base_v1,
        vec![Layer::files(&[(
            "app/only-here",
            b"a layer no other image has",
        )])],
        &["COPY only-here"],
    );
    s.layout.add("broken", &broken);
    let (_, gone) = layer_blob(&s.layout, "broken", 1);
    fs::remove_file(gone).unwrap();
    let pattern = format!("oci:{}:{{index}}", s.path("fleet").display());
    let (code, out, err) = outcome(&[
        "rebase",
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &pattern,
        &s.oci("app"),
        &s.oci("nope"),
        &s.oci("broken"),
        "--json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let kinds: Vec<Value> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error_kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        vec![Value::Null, json!("not-found"), json!("missing-blob")],
        "{r:#}"
    );

    // check's fleet form too.
    let (code, out, err) = outcome(&[
        "check",
        &s.oci("app"),
        &s.oci("nope"),
        "--base",
        &s.oci("base-v2"),
        "--json",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["images"][1]["status"], "error", "{r:#}");
    assert_eq!(r["images"][1]["error_kind"], "not-found", "{r:#}");
    assert!(r["images"][0].get("error_kind").is_none(), "{r:#}");
}

/// A fake registry that answers `GET /v2/` with 200 and everything else with `reply`; a
/// `Bearer` challenge on the manifest sends the client to its `/token`, answered `token`.
fn registry(status: u16, bearer_then_token: Option<u16>) -> FakeServer {
    let port = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let me = port.clone();
    let server = FakeServer::start(move |req| {
        let path = req.path.as_str();
        if path == "/v2/" {
            return Some(Reply::new(200, "{}"));
        }
        if let Some(token_status) = bearer_then_token {
            if path.starts_with("/token") {
                let body =
                    json!({"errors": [{"code": "NAME_UNKNOWN", "message": "no such realm"}]});
                return Some(Reply::new(token_status, body.to_string()));
            }
            let realm = format!(
                "Bearer realm=\"http://127.0.0.1:{}/token\",service=\"fake\"",
                me.load(std::sync::atomic::Ordering::Relaxed)
            );
            return Some(Reply::new(401, "").header("WWW-Authenticate", &realm));
        }
        let body = json!({"errors": [{"code": "CODE", "message": "the fake says no"}]});
        Some(
            Reply::new(status, body.to_string())
                .header("Content-Type", "application/json")
                .header("Retry-After", "0"),
        )
    });
    port.store(server.port, std::sync::atomic::Ordering::Relaxed);
    server
}

#[test]
fn registry_answers_are_named_by_their_status() {
    for (status, token, kind) in [
        (401, None, "registry-unauthorized"),
        (403, None, "registry-denied"),
        (429, None, "registry-rate-limited"),
        (503, None, "registry-unavailable"),
        (404, None, "not-found"),
        // A token server that does not exist: a 404 on something other than the image.
        (200, Some(404), "registry-not-found"),
    ] {
        let server = registry(status, token);
        let image = format!("docker://127.0.0.1:{}/team/app:1", server.port);
        let v = error_json(
            1,
            &[
                "inspect",
                &image,
                "--tls-verify=false",
                "--timeout=10",
                "--json",
            ],
        );
        assert_eq!(kind_of(&v), kind, "{status} {token:?}: {v}");
        let line = v["error"].as_str().unwrap();
        if kind != "not-found" {
            assert!(line.contains("registry answered"), "{line}");
        }
    }
}
