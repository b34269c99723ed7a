//! Registry interop: ocipatch against a real registry (Debian's `docker-registry`, started per
//! test on a free loopback port), fixtures pushed and results pulled with skopeo, file trees
//! compared after `umoci unpack`. The registry's access log tells which requests ocipatch made:
//! a registry-to-registry rebase must GET no layer blob.
//!
//! A missing tool (docker-registry, skopeo, htpasswd, umoci) fails the test; nothing is skipped.
//! Run as root (umoci unpack of files owned by uid 1000).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::util::fake::{FakeServer, Reply};
use crate::util::registry::{free_port, Auth, Registry, TestCa};
use crate::util::*;
use serde_json::Value;

const NO_TLS: &str = "--tls-verify=false";

/// `skopeo copy oci:FIXTURE:TAG docker://HOST/DEST` (`format`: `v2s2` or `oci`).
fn push(fx: &Fixture, reg: &Registry, tag: &str, dest: &str, format: &str, creds: Option<&str>) {
    let mut c = cmd("skopeo");
    c.args(["copy", "-q", "--dest-tls-verify=false", "--format", format]);
    if let Some(creds) = creds {
        c.arg("--dest-creds").arg(creds);
    }
    run_ok(c.arg(fx.image(tag)).arg(reg.docker(dest)));
}

/// Pushes app (as team/app:1) and base-v1/base-v2 (as lib/base:v1, v2).
fn push_fixture(fx: &Fixture, reg: &Registry, format: &str) {
    push(fx, reg, "app", "team/app:1", format, None);
    push(fx, reg, "base-v1", "lib/base:v1", format, None);
    push(fx, reg, "base-v2", "lib/base:v2", format, None);
}

/// Every layer digest of the fixture images.
fn fixture_layers(fx: &Fixture) -> BTreeSet<String> {
    TAGS.iter()
        .flat_map(|t| layer_digests(&fx.images, t))
        .collect()
}

/// The requests that GET a layer blob.
fn layer_gets(requests: &[String], layers: &BTreeSet<String>) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/blobs/"))
        .filter(|r| layers.iter().any(|l| r.ends_with(l.as_str())))
        .cloned()
        .collect()
}

/// Requests by kind: `GET manifests`, `HEAD blobs`, `POST uploads (mount)`, ...
fn by_kind(requests: &[String]) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for r in requests {
        let (method, path) = r.split_once(' ').unwrap_or((r, ""));
        let kind = if path == "/v2/" {
            "ping".to_string()
        } else if path.contains("mount=") {
            "uploads (mount)".to_string()
        } else if path.contains("/blobs/uploads/") {
            "uploads".to_string()
        } else if path.contains("/blobs/") {
            "blobs".to_string()
        } else if path.contains("/manifests/") {
            "manifests".to_string()
        } else {
            path.to_string()
        };
        *out.entry(format!("{method} {kind}")).or_insert(0) += 1;
    }
    out
}

/// Runs a rebase without `--json` (which also runs the safety scan, reading every layer) and
/// reads its summary: `{"digest", "media_type", "blobs": {"copied", "linked", "mounted",
/// "present", "foreign"}}`.
fn rebase_summary(args: &[&str]) -> Value {
    let r = run_ok(ocipatch().arg("rebase").args(args));
    let err = r.stderr();
    let line = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("blobs: "))
        .unwrap_or_else(|| panic!("no blob summary:\n{r}"));
    let mut blobs = serde_json::Map::new();
    for part in line.split(';').next().unwrap().split(", ") {
        let (n, what) = part.split_once(' ').unwrap();
        let key = what.trim_start_matches("already ");
        blobs.insert(key.into(), n.parse::<u64>().unwrap().into());
    }
    let media_type = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("written to "))
        .and_then(|l| l.rsplit_once(" ("))
        .map(|(_, mt)| mt.trim_end_matches(')').to_string())
        .unwrap_or_default();
    serde_json::json!({"digest": r.last_line(), "media_type": media_type, "blobs": blobs})
}

fn rebase_json(args: &[&str]) -> Value {
    let r = run_ok(ocipatch().arg("rebase").args(args).arg("--json"));
    serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{r}"))
}

/// Pulls `reference` into a layout with skopeo (which verifies every blob) and unpacks it.
fn pulled_tree(fx: &Fixture, reference: &str, name: &str) -> Tree {
    let layout = fx.path(name);
    run_ok(
        cmd("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(reference)
            .arg(oci_ref(&layout, "app")),
    );
    fx.unpack_tree(&layout, "app")
}

fn assert_like_rebuild(fx: &Fixture, tree: &Tree, what: &str) {
    let rebuilt = fx.unpack_tree(&fx.images, "app-rebuilt-v2");
    assert_same_tree(what, tree, "app-rebuilt-v2 (rebuilt by umoci)", &rebuilt);
}

#[track_caller]
fn fails_with(c: &mut Cmd) -> String {
    let err = one_line_error(c, 1);
    eprintln!("{}", err.trim_end());
    err
}

/// A layer cache (`--cache-dir`) that knows the fixture's layers, filled by a rebase of the
/// fixture layout (the registry holds the same layer digests). A first rebase reads the
/// application's layers once to find their package databases (README: `--cache-dir`); the
/// tests that count layer GETs measure a run that has that cache, as a fleet's later images
/// and a second run do. Returns the `--cache-dir` argument.
fn warm_layer_cache(fx: &Fixture) -> String {
    let cache = fx.path("layer-cache");
    run_ok(
        ocipatch()
            .args(["rebase", &fx.image("app"), "--from", &fx.image("base-v1")])
            .args(["--onto", &fx.image("base-v2"), "-o"])
            .arg(oci_ref(&fx.path("warm"), "app"))
            .arg("--cache-dir")
            .arg(&cache),
    );
    cache.display().to_string()
}

fn registry_to_registry(format: &str) {
    let fx = Fixture::new();
    let reg = Registry::start(None);
    push_fixture(&fx, &reg, format);
    let layers = fixture_layers(&fx);
    let cache = warm_layer_cache(&fx);

    let mark = reg.log_mark();
    let report = rebase_summary(&[
        &reg.docker("team/app:1"),
        "--from",
        &reg.docker("lib/base:v1"),
        "--onto",
        &reg.docker("lib/base:v2"),
        "-o",
        &reg.docker("team/app:2"),
        NO_TLS,
        "--cache-dir",
        &cache,
    ]);
    let requests = reg.requests_since(mark);
    eprintln!("requests by kind ({format}): {:#?}", by_kind(&requests));
    eprintln!("blob stats: {}", report["blobs"]);
    assert_eq!(layer_gets(&requests, &layers), Vec::<String>::new());
    let blobs = &report["blobs"];
    assert_eq!(blobs["copied"], 0, "{report:#}");
    // base-v2's update layer lives in lib/base only: mounted; the rest is in team/app.
    assert_eq!(blobs["mounted"], 1, "{report:#}");
    assert_eq!(blobs["present"], 3, "{report:#}");
    // The tag is the last request that writes.
    let last_write = requests
        .iter()
        .rfind(|r| r.starts_with("PUT ") || r.starts_with("POST "))
        .expect("writes");
    assert_eq!(last_write, "PUT /v2/team/app/manifests/2");

    let tree = pulled_tree(&fx, &reg.docker("team/app:2"), "pulled");
    assert_like_rebuild(&fx, &tree, "team/app:2 (rebased in the registry)");

    // --json into a new repository: every layer is mounted, none copied, none downloaded
    // (the safety scan, which would read every layer, is skipped for registry sources and
    // the report says why).
    let mark = reg.log_mark();
    let json = rebase_json(&[
        &reg.docker("team/app:1"),
        "--from",
        &reg.docker("lib/base:v1"),
        "--onto",
        &reg.docker("lib/base:v2"),
        "-o",
        &reg.docker("other/app:2"),
        NO_TLS,
        "--cache-dir",
        &cache,
    ]);
    let requests = reg.requests_since(mark);
    assert_eq!(
        layer_gets(&requests, &layers),
        Vec::<String>::new(),
        "{json:#}"
    );
    assert!(
        json["safety_skipped"]
            .as_str()
            .unwrap()
            .contains("--safety"),
        "{json:#}"
    );
    assert_eq!(json["blobs"]["copied"], 0, "{json:#}");
    assert_eq!(json["blobs"]["bytes_checked"], 0, "{json:#}");
    assert_eq!(json["blobs"]["mounted"], 4, "{json:#}");
    assert_eq!(json["digest"], report["digest"], "{json:#}");
    let uploads: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("/blobs/uploads/"))
        .collect();
    assert_eq!(
        uploads.len(),
        1,
        "only the new config is uploaded: {requests:#?}"
    );

    // verify and inspect read the result from the registry.
    let v = run_ok(
        ocipatch()
            .args(["verify", NO_TLS, "--json"])
            .arg(reg.docker("team/app:2")),
    );
    let v: Value = serde_json::from_str(&v.stdout()).unwrap();
    assert_eq!(v["layers_checked"], 4, "{v:#}");
    assert_eq!(v["problems"], serde_json::json!([]), "{v:#}");
    let i = run_ok(
        ocipatch()
            .args(["inspect", NO_TLS, "--json"])
            .arg(reg.docker("team/app:2")),
    );
    let i: Value = serde_json::from_str(&i.stdout()).unwrap();
    assert_eq!(i["digest"], report["digest"], "{i:#}");
    assert_eq!(i["platforms"][0]["layers"].as_array().unwrap().len(), 4);
    // The base.name annotation names the registry base: inspect finds it there.
    assert_eq!(i["platforms"][0]["base"]["layers"], 2, "{i:#}");
}

#[test]
fn registry_to_registry_oci_mounts_and_moves_no_layer_bytes() {
    registry_to_registry("oci");
}

#[test]
fn registry_to_registry_docker_v2s2_mounts_and_moves_no_layer_bytes() {
    registry_to_registry("v2s2");
}

#[test]
fn within_one_repository_every_blob_is_present() {
    let fx = Fixture::new();
    let reg = Registry::start(None);
    push(&fx, &reg, "app", "team/app:1", "oci", None);
    push(&fx, &reg, "base-v1", "team/app:base-v1", "oci", None);
    push(&fx, &reg, "base-v2", "team/app:base-v2", "oci", None);
    let cache = warm_layer_cache(&fx);
    let mark = reg.log_mark();
    let report = rebase_summary(&[
        &reg.docker("team/app:1"),
        "--from",
        &reg.docker("team/app:base-v1"),
        "--onto",
        &reg.docker("team/app:base-v2"),
        "-o",
        &reg.docker("team/app:2"),
        NO_TLS,
        "--cache-dir",
        &cache,
    ]);
    let requests = reg.requests_since(mark);
    assert_eq!(
        layer_gets(&requests, &fixture_layers(&fx)),
        Vec::<String>::new()
    );
    assert_eq!(report["blobs"]["copied"], 0, "{report:#}");
    assert_eq!(report["blobs"]["mounted"], 0, "{report:#}");
    assert_eq!(report["blobs"]["present"], 4, "{report:#}");
    let tree = pulled_tree(&fx, &reg.docker("team/app:2"), "pulled");
    assert_like_rebuild(&fx, &tree, "team/app:2");
}

#[test]
fn digest_pinned_image_and_base_digest_annotation() {
    let fx = Fixture::new();
    let reg = Registry::start(None);
    push_fixture(&fx, &reg, "oci");
    // skopeo keeps the manifest bytes of an OCI push, so the layout's digest is the registry's.
    let digest = index_digest(&fx.images, "app");
    // No --from: the app's base.digest annotation is resolved in the --onto repository.
    let report = rebase_json(&[
        &reg.docker(&format!("team/app@{digest}")),
        "--onto",
        &reg.docker("lib/base:v2"),
        "-o",
        &reg.docker("team/app:pinned"),
        NO_TLS,
    ]);
    assert_eq!(report["blobs"]["copied"], 0, "{report:#}");
    let tree = pulled_tree(&fx, &reg.docker("team/app:pinned"), "pulled");
    assert_like_rebuild(&fx, &tree, "team/app:pinned");
}

#[test]
fn registry_image_onto_layout_base_into_layout_and_back() {
    let fx = Fixture::new();
    let reg = Registry::start(None);
    push(&fx, &reg, "app", "team/app:1", "oci", None);
    // registry image + layout bases → layout
    let out = fx.path("out");
    let report = rebase_json(&[
        &reg.docker("team/app:1"),
        "--from",
        &fx.image("base-v1"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &oci_ref(&out, "rebased"),
        NO_TLS,
    ]);
    assert_eq!(report["blobs"]["mounted"], 0, "{report:#}");
    let tree = fx.unpack_tree(&out, "rebased");
    assert_like_rebuild(&fx, &tree, "registry → layout");

    // layout image + layout bases → registry: blobs are uploaded (streamed, verified).
    let mark = reg.log_mark();
    let report = rebase_json(&[
        &fx.image("app"),
        "--from",
        &fx.image("base-v1"),
        "--onto",
        &fx.image("base-v2"),
        "-o",
        &reg.docker("team/fromlayout:2"),
        NO_TLS,
    ]);
    eprintln!(
        "layout → registry requests: {:#?}",
        by_kind(&reg.requests_since(mark))
    );
    assert_eq!(report["blobs"]["copied"], 4, "{report:#}");
    let tree = pulled_tree(&fx, &reg.docker("team/fromlayout:2"), "pulled");
    assert_like_rebuild(&fx, &tree, "layout → registry");
}

#[test]
fn auth_creds_auth_file_and_wrong_password() {
    let fx = Fixture::new();
    let reg = Registry::start(Some(Auth {
        user: "tester",
        password: "s3cret-pw",
    }));
    let creds = "tester:s3cret-pw";
    for (tag, dest) in [
        ("app", "team/app:1"),
        ("base-v1", "lib/base:v1"),
        ("base-v2", "lib/base:v2"),
    ] {
        push(&fx, &reg, tag, dest, "oci", Some(creds));
    }
    let args = |dest: &str| {
        vec![
            "rebase".to_string(),
            reg.docker("team/app:1"),
            "--from".into(),
            reg.docker("lib/base:v1"),
            "--onto".into(),
            reg.docker("lib/base:v2"),
            "-o".into(),
            reg.docker(dest),
            NO_TLS.into(),
        ]
    };
    // No credentials: a clear 401, naming the reference.
    let empty_auth = fx.path("empty-auth.json");
    std::fs::write(&empty_auth, "{}").unwrap();
    let err = fails_with(
        ocipatch()
            .args(args("team/app:none"))
            .env("REGISTRY_AUTH_FILE", &empty_auth),
    );
    let names_reference = |err: &str| err.contains(&format!("error: docker://{}/", reg.host()));
    assert!(names_reference(&err), "{err}");
    assert!(err.contains("401"), "{err}");

    // Wrong password: 401, and the password is never printed.
    let err = fails_with(
        ocipatch()
            .args(args("team/app:wrong"))
            .args(["--creds", "tester:WRONG-pw"]),
    );
    assert!(err.contains("401"), "{err}");
    assert!(names_reference(&err), "{err}");
    assert!(!err.contains("WRONG-pw"), "{err}");

    // --creds
    run_ok(
        ocipatch()
            .args(args("team/app:creds"))
            .args(["--creds", creds]),
    );
    // An auth file, Docker style: auths.HOST.auth = base64(user:pass).
    use base64::Engine as _;
    let auth_file = fx.path("auth.json");
    let encoded = base64::engine::general_purpose::STANDARD.encode(creds);
    std::fs::write(
        &auth_file,
        serde_json::json!({"auths": {reg.host(): {"auth": encoded}}}).to_string(),
    )
    .unwrap();
    let r = run_ok(
        ocipatch()
            .args(args("team/app:authfile"))
            .env("REGISTRY_AUTH_FILE", &auth_file),
    );
    assert!(!r.stderr().contains("s3cret"), "{r}");
    // A credential helper named by credHelpers: `docker-credential-NAME get`, host on stdin.
    let bin = fx.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-ocipatchtest");
    std::fs::write(
        &helper,
        "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n\
         printf '{\"ServerURL\":\"%s\",\"Username\":\"tester\",\"Secret\":\"s3cret-pw\"}' \"$host\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper_config = fx.path("helper-config.json");
    std::fs::write(
        &helper_config,
        serde_json::json!({"credHelpers": {reg.host(): "ocipatchtest"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_ok(
        ocipatch()
            .args(["inspect", NO_TLS, "--authfile"])
            .arg(&helper_config)
            .arg(reg.docker("team/app:1"))
            .env("PATH", path),
    );

    // --authfile takes the same file.
    run_ok(
        ocipatch()
            .args(["verify", NO_TLS, "--authfile"])
            .arg(&auth_file)
            .arg(reg.docker("team/app:authfile")),
    );
}

#[test]
fn unknown_host_and_refused_connection_fail_fast_naming_the_reference() {
    let fx = Fixture::new();
    let out = fx.path("out");
    let start = std::time::Instant::now();
    let err = fails_with(
        ocipatch()
            .arg("rebase")
            .arg("docker://nonexistent.invalid/x:1")
            .arg("--onto")
            .arg(fx.image("base-v2"))
            .arg("-o")
            .arg(oci_ref(&out, "x")),
    );
    assert!(err.contains("docker://nonexistent.invalid/x:1"), "{err}");
    assert!(err.contains("nonexistent.invalid"), "{err}");
    let port = free_port();
    let reference = format!("docker://127.0.0.1:{port}/x:1");
    let err = fails_with(ocipatch().args(["verify", NO_TLS, &reference]));
    assert!(err.contains(&reference), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert!(!out.exists());
}

#[test]
fn verified_tls_with_a_private_ca_from_the_trust_store() {
    let fx = Fixture::new();
    let ca = TestCa::create(fx.dir.path());
    let reg = Registry::start_tls(&ca);
    push_fixture(&fx, &reg, "oci");
    let ca_env = |c: &mut Cmd| {
        // what `update-ca-certificates` would give every client; rustls reads it via the
        // platform verifier (SSL_CERT_FILE is the standard override)
        c.env("SSL_CERT_FILE", &ca.ca_cert);
    };
    // HTTPS, verified, no --tls-verify=false: registry to registry, and into a layout
    let mut c = ocipatch();
    ca_env(&mut c);
    let out = fx.path("out");
    run_ok(c.args([
        "rebase",
        &reg.docker("team/app:1"),
        "--from",
        &reg.docker("lib/base:v1"),
        "--onto",
        &reg.docker("lib/base:v2"),
        "-o",
        &reg.docker("team/app:tls"),
    ]));
    let mut c = ocipatch();
    ca_env(&mut c);
    run_ok(c.args(["verify", &reg.docker("team/app:tls")]));
    let mut c = ocipatch();
    ca_env(&mut c);
    run_ok(c.args([
        "rebase",
        &reg.docker("team/app:tls"),
        "--onto",
        &reg.docker("lib/base:v2"),
        "-o",
        &oci_ref(&out, "app"),
    ]));
    // without the CA (the system's trust store: the clean environment names no other) the
    // certificate is refused, and the error says what to do
    let err = fails_with(ocipatch().args(["inspect", &reg.docker("team/app:tls")]));
    assert!(
        err.contains(&reg.docker("team/app:tls")) && err.contains("--tls-verify=false"),
        "{err}"
    );
    // and --tls-verify=false accepts it unverified
    run_ok(ocipatch().args(["inspect", NO_TLS, &reg.docker("team/app:tls")]));
}

#[test]
fn missing_tag_is_named() {
    let fx = Fixture::new();
    let reg = Registry::start(None);
    push(&fx, &reg, "base-v2", "lib/base:v2", "oci", None);
    let reference = reg.docker("lib/base:nope");
    let err = fails_with(ocipatch().args(["inspect", NO_TLS, &reference]));
    assert!(err.contains(&reference), "{err}");
    assert!(err.contains("tag \"nope\" not found"), "{err}");
    // HTTPS is the default, as in skopeo: a plain-HTTP registry needs --tls-verify=false.
    let err = fails_with(ocipatch().args(["inspect", &reg.docker("lib/base:v2")]));
    assert!(err.contains("--tls-verify=false"), "{err}");
}

#[test]
fn manifest_bytes_not_matching_the_digest_are_refused() {
    let fx = Fixture::new();
    let manifest = std::fs::read(blob_path(&fx.images, &index_digest(&fx.images, "app"))).unwrap();
    let mut tampered = manifest.clone();
    tampered.extend_from_slice(b"\n");
    let asked = index_digest(&fx.images, "app");
    let fake = manifest_server(tampered, None);
    let out = fx.path("out");
    let reference = format!("docker://127.0.0.1:{}/team/app@{asked}", fake.port);
    let err = fails_with(
        ocipatch()
            .arg("rebase")
            .arg(&reference)
            .arg("--onto")
            .arg(fx.image("base-v2"))
            .arg("-o")
            .arg(oci_ref(&out, "x"))
            .arg(NO_TLS),
    );
    assert!(err.contains(&reference), "{err}");
    assert!(err.contains(&asked) && err.contains("digest"), "{err}");
    assert!(!out.exists(), "nothing may be written");
    drop(fake);

    // By tag: the Docker-Content-Digest header must agree with the body.
    let fake = manifest_server(manifest, Some(asked_other()));
    let reference = format!("docker://127.0.0.1:{}/team/app:1", fake.port);
    let err = fails_with(ocipatch().args(["inspect", NO_TLS, &reference]));
    assert!(
        err.contains(&reference) && err.contains("Docker-Content-Digest"),
        "{err}"
    );
}

/// Answers `/v2/` and every manifest GET with `body` (and a Docker-Content-Digest header).
fn manifest_server(body: Vec<u8>, content_digest: Option<String>) -> FakeServer {
    FakeServer::start(move |req| {
        if req.path == "/v2/" {
            return Some(Reply::new(200, "{}"));
        }
        if req.method == "GET" && req.path.contains("/manifests/") {
            let mut r = Reply::new(200, body.clone()).header("Content-Type", OCI_MANIFEST);
            if let Some(d) = &content_digest {
                r = r.header("Docker-Content-Digest", d);
            }
            return Some(r);
        }
        Some(Reply::new(404, "{}"))
    })
}

fn asked_other() -> String {
    format!("sha256:{}", "ab".repeat(32))
}

/// A read-only registry over the fixture layout that wants Bearer tokens (from its own token
/// endpoint, for Basic credentials), fails some requests transiently (503, 429) and redirects
/// blob GETs to a "storage" path: what Docker Hub-like registries do and docker-registry
/// (htpasswd) does not.
#[test]
fn bearer_tokens_transient_failures_and_redirects() {
    let fx = Fixture::new();
    let images = fx.images.clone();
    let app = index_digest(&images, "app");
    let scopes = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures = Arc::new(AtomicUsize::new(0));
    let (seen_scopes, failed) = (scopes.clone(), failures.clone());
    let port = Arc::new(AtomicUsize::new(0));
    let port_in = port.clone();
    let server = FakeServer::start(move |req| {
        use base64::Engine as _;
        let me = port_in.load(Ordering::Relaxed);
        let challenge =
            format!("Bearer realm=\"http://127.0.0.1:{me}/token\",service=\"fake.test\"");
        let unauthorized = || {
            Reply::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}"#,
            )
            .header("WWW-Authenticate", &challenge)
        };
        let path = req.path.as_str();
        if let Some(query) = path.strip_prefix("/token?") {
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("u:p")
            );
            if req.header("authorization") != Some(basic.as_str()) {
                return Some(Reply::new(401, "{}"));
            }
            seen_scopes.lock().unwrap().push(query.to_string());
            return Some(Reply::new(200, r#"{"token":"tok-123"}"#));
        }
        if let Some(hex) = path.strip_prefix("/storage/") {
            // Pre-signed storage URLs reject registry credentials: none may follow a redirect.
            if req.header("authorization").is_some() {
                return Some(Reply::new(400, "credentials sent to storage"));
            }
            let blob = std::fs::read(images.join("blobs/sha256").join(hex)).ok()?;
            return Some(Reply::new(200, blob));
        }
        if path == "/v2/" || req.header("authorization") != Some("Bearer tok-123") {
            return Some(unauthorized());
        }
        // Every third authorised request fails once, transiently.
        if failed.fetch_add(1, Ordering::Relaxed) % 3 == 0 {
            let status = if path.contains("/blobs/") { 429 } else { 503 };
            return Some(Reply::new(status, "{}").header("Retry-After", "0"));
        }
        let rest = path.strip_prefix("/v2/team/app/")?;
        if let Some(r) = rest.strip_prefix("manifests/") {
            let digest = match r {
                "1" => app.clone(),
                d if d.starts_with("sha256:") => d.to_string(),
                // Another tag (the referrers tag `sha256-<hex>`): none here.
                _ => return Some(Reply::new(404, "{}")),
            };
            let bytes = std::fs::read(blob_path(&images, &digest)).ok()?;
            return Some(
                Reply::new(200, bytes)
                    .header("Content-Type", OCI_MANIFEST)
                    .header("Docker-Content-Digest", &digest),
            );
        }
        if let Some(d) = rest.strip_prefix("blobs/sha256:") {
            return Some(
                Reply::new(307, "")
                    .header("Location", &format!("http://127.0.0.1:{me}/storage/{d}")),
            );
        }
        Some(Reply::new(404, "{}"))
    });
    port.store(server.port as usize, Ordering::Relaxed);
    let reference = format!("docker://127.0.0.1:{}/team/app:1", server.port);

    let r = run_ok(
        ocipatch()
            .args(["verify", NO_TLS, "--json", "--creds", "u:p"])
            .arg(&reference),
    );
    let v: Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["problems"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["layers_checked"], 3, "{v:#}");
    eprintln!(
        "authorised requests: {}, scopes asked: {:?}",
        failures.load(Ordering::Relaxed),
        scopes.lock().unwrap()
    );
    assert!(failures.load(Ordering::Relaxed) > 3);
    let scopes = scopes.lock().unwrap().clone();
    assert!(
        scopes
            .iter()
            .all(|q| q == "service=fake.test&scope=repository%3Ateam%2Fapp%3Apull"),
        "{scopes:?}"
    );

    // Without credentials the token endpoint refuses: a one-line error naming the reference.
    let err = fails_with(ocipatch().args(["inspect", NO_TLS, &reference]));
    assert!(err.contains(&reference) && err.contains("401"), "{err}");
}

/// What the writable fake registry holds, per repository.
#[derive(Default)]
struct Store {
    /// (repository, digest) → bytes
    blobs: std::collections::HashMap<(String, String), Vec<u8>>,
    /// (repository, tag or digest) → (content type, bytes)
    manifests: std::collections::HashMap<(String, String), (String, Vec<u8>)>,
    /// upload id → repository
    uploads: std::collections::HashMap<String, String>,
    /// `METHOD PATH` of every request, in order
    log: Vec<String>,
    /// A blob served with one byte flipped (a corrupt source).
    tamper: Option<String>,
}

impl Store {
    /// Copies a fixture image (manifest, config, layers) into `repo` under `tag`.
    fn seed(&mut self, images: &std::path::Path, fixture_tag: &str, repo: &str, tag: &str) {
        let digest = index_digest(images, fixture_tag);
        let bytes = std::fs::read(blob_path(images, &digest)).unwrap();
        let m: Value = serde_json::from_slice(&bytes).unwrap();
        let ct = index_descriptor(images, fixture_tag)["mediaType"]
            .as_str()
            .unwrap()
            .to_string();
        for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
            let d = d["digest"].as_str().unwrap().to_string();
            let blob = std::fs::read(blob_path(images, &d)).unwrap();
            self.blobs.insert((repo.into(), d), blob);
        }
        for r in [tag.to_string(), digest] {
            self.manifests
                .insert((repo.into(), r), (ct.clone(), bytes.clone()));
        }
    }
}

/// A writable registry that never mounts (answers a mount request with 202 and an upload, as
/// registries do when they cannot or may not mount), and accepts monolithic uploads and
/// manifest pushes, checking digests.
fn writable_fake(store: Arc<Mutex<Store>>) -> FakeServer {
    FakeServer::start(move |req| {
        let mut st = store.lock().unwrap();
        st.log.push(format!("{} {}", req.method, req.path));
        let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                .map(|v| v.replace("%3A", ":").replace("%2F", "/"))
        };
        if path == "/v2/" {
            return Some(Reply::new(200, "{}"));
        }
        if let Some(id) = path.strip_prefix("/upload/") {
            let repo = st.uploads.remove(id)?;
            let digest = param("digest")?;
            if sha256(&req.body) != digest {
                return Some(Reply::new(
                    400,
                    r#"{"errors":[{"code":"DIGEST_INVALID","message":"digest invalid"}]}"#,
                ));
            }
            st.blobs.insert((repo, digest), req.body.clone());
            return Some(Reply::new(201, ""));
        }
        let rest = path.strip_prefix("/v2/")?;
        if let Some(repo) = rest.strip_suffix("/blobs/uploads/") {
            let id = format!("u{}", st.log.len());
            st.uploads.insert(id.clone(), repo.to_string());
            return Some(Reply::new(202, "").header("Location", &format!("/upload/{id}")));
        }
        if let Some((repo, d)) = rest.rsplit_once("/blobs/") {
            let Some(blob) = st.blobs.get(&(repo.to_string(), d.to_string())) else {
                return Some(Reply::new(
                    404,
                    r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
                ));
            };
            let mut blob = blob.clone();
            if st.tamper.as_deref() == Some(d) {
                let last = blob.len() - 1;
                blob[last] ^= 1;
            }
            return Some(Reply::new(200, blob));
        }
        if let Some((repo, r)) = rest.rsplit_once("/manifests/") {
            let key = (repo.to_string(), r.to_string());
            if req.method == "PUT" {
                let ct = req.header("content-type").unwrap_or("").to_string();
                let digest = sha256(&req.body);
                let value = (ct, req.body.clone());
                st.manifests
                    .insert((repo.to_string(), digest.clone()), value.clone());
                st.manifests.insert(key, value);
                return Some(Reply::new(201, "").header("Docker-Content-Digest", &digest));
            }
            let Some((ct, bytes)) = st.manifests.get(&key).cloned() else {
                return Some(Reply::new(
                    404,
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                ));
            };
            return Some(
                Reply::new(200, bytes.clone())
                    .header("Content-Type", &ct)
                    .header("Docker-Content-Digest", &sha256(&bytes)),
            );
        }
        Some(Reply::new(404, "{}"))
    })
}

#[test]
fn refused_mount_streams_into_the_opened_upload_and_corrupt_sources_leave_no_tag() {
    let fx = Fixture::new();
    let store = Arc::new(Mutex::new(Store::default()));
    {
        let mut st = store.lock().unwrap();
        st.seed(&fx.images, "app", "team/app", "1");
        st.seed(&fx.images, "base-v1", "lib/base", "v1");
        st.seed(&fx.images, "base-v2", "lib/base", "v2");
    }
    let server = writable_fake(store.clone());
    let host = format!("127.0.0.1:{}", server.port);
    let docker = |r: &str| format!("docker://{host}/{r}");
    let rebase_to = |tag: &str| {
        let mut c = ocipatch();
        c.arg("rebase")
            .arg(docker("team/app:1"))
            .arg("--from")
            .arg(docker("lib/base:v1"))
            .arg("--onto")
            .arg(docker("lib/base:v2"))
            .arg("-o")
            .arg(docker(&format!("team/app:{tag}")))
            .arg(NO_TLS);
        c
    };

    let r = run_ok(rebase_to("2").arg("--json"));
    let report: Value = serde_json::from_str(&r.stdout()).unwrap();
    let blobs = &report["blobs"];
    assert_eq!(blobs["mounted"], 0, "{report:#}");
    assert_eq!(blobs["copied"], 1, "{report:#}");
    assert_eq!(blobs["present"], 3, "{report:#}");
    let log = store.lock().unwrap().log.clone();
    let posts: Vec<&String> = log.iter().filter(|l| l.starts_with("POST ")).collect();
    // One mount request (refused: the layer goes into the upload it opened), one config upload.
    assert_eq!(posts.len(), 2, "{log:#?}");
    assert!(
        posts[0].contains("mount=") && posts[0].contains("from=lib%2Fbase"),
        "{log:#?}"
    );
    let last_write = log
        .iter()
        .rfind(|l| l.starts_with("PUT ") || l.starts_with("POST "))
        .unwrap();
    assert_eq!(last_write, "PUT /v2/team/app/manifests/2", "{log:#?}");
    let digest = report["digest"].as_str().unwrap().to_string();
    {
        let st = store.lock().unwrap();
        let (_, tagged) = &st.manifests[&("team/app".to_string(), "2".to_string())];
        assert_eq!(sha256(tagged), digest);
    }

    // The new base's layer is corrupt in its repository: refused while it streams, named, and
    // the tag is never written.
    let update_layer = layer_digests(&fx.images, "base-v2")[1].clone();
    {
        let mut st = store.lock().unwrap();
        st.tamper = Some(update_layer.clone());
        st.blobs
            .remove(&("team/app".to_string(), update_layer.clone()));
    }
    let err = fails_with(&mut rebase_to("3"));
    assert!(err.contains(&docker("lib/base:v2")), "{err}");
    assert!(
        err.contains(&update_layer) && err.contains("corrupt"),
        "{err}"
    );
    let st = store.lock().unwrap();
    assert!(
        !st.manifests
            .contains_key(&("team/app".to_string(), "3".to_string())),
        "a failed rebase must not write the tag"
    );
    assert!(
        !st.blobs
            .contains_key(&("team/app".to_string(), update_layer)),
        "the corrupt blob must not be stored"
    );
}

/// Tags `index_tag` in the fixture layout: an OCI index listing the `tag` image as linux/amd64.
fn add_index(images: &std::path::Path, tag: &str, index_tag: &str) {
    let mut entry = index_descriptor(images, tag);
    entry.as_object_mut().unwrap().remove("annotations");
    entry["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry],
    }))
    .unwrap();
    let digest = sha256(&index);
    std::fs::write(blob_path(images, &digest), &index).unwrap();
    let path = images.join("index.json");
    let mut top = read_json(&path);
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": OCI_INDEX,
            "digest": digest,
            "size": index.len(),
            "annotations": {ANN_REF_NAME: index_tag},
        }));
    std::fs::write(&path, serde_json::to_vec(&top).unwrap()).unwrap();
}

#[test]
fn index_images_push_children_by_digest_then_the_tag() {
    let fx = Fixture::new();
    let reg = Registry::start(None);
    for (tag, index_tag, dest) in [
        ("app", "app-index", "team/app:1"),
        ("base-v1", "base-v1-index", "lib/base:v1"),
        ("base-v2", "base-v2-index", "lib/base:v2"),
    ] {
        add_index(&fx.images, tag, index_tag);
        run_ok(
            cmd("skopeo")
                .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
                .arg(fx.image(index_tag))
                .arg(reg.docker(dest)),
        );
    }
    let cache = warm_layer_cache(&fx);
    let mark = reg.log_mark();
    let report = rebase_summary(&[
        &reg.docker("team/app:1"),
        "--from",
        &reg.docker("lib/base:v1"),
        "--onto",
        &reg.docker("lib/base:v2"),
        "-o",
        &reg.docker("team/app:2"),
        NO_TLS,
        "--cache-dir",
        &cache,
    ]);
    let requests = reg.requests_since(mark);
    assert_eq!(report["media_type"], OCI_INDEX, "{report:#}");
    assert_eq!(
        layer_gets(&requests, &fixture_layers(&fx)),
        Vec::<String>::new()
    );
    assert_eq!(report["blobs"]["copied"], 0, "{report:#}");
    assert_eq!(report["blobs"]["mounted"], 1, "{report:#}");
    let manifest_puts: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("PUT ") && r.contains("/manifests/"))
        .collect();
    // Each manifest is pushed once: the child by digest, then the index by tag only (the
    // registry stores it under its digest too).
    assert_eq!(manifest_puts.len(), 2, "{requests:#?}");
    assert!(
        manifest_puts[0].contains("/manifests/sha256:"),
        "{requests:#?}"
    );
    assert_eq!(manifest_puts[1], "PUT /v2/team/app/manifests/2");
    let index_digest = report["digest"].as_str().unwrap();
    let stored = run_ok(
        cmd("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(reg.docker(&format!("team/app@{index_digest}"))),
    );
    assert!(stored.stdout().contains("manifests"), "{stored}");
    let tree = pulled_tree(&fx, &reg.docker("team/app:2"), "pulled");
    assert_like_rebuild(&fx, &tree, "team/app:2 (index)");
}

/// A read-only registry serving the fixture image `app` as `team/app:1`; `blob` decides how a
/// blob is answered (`None`: as stored).
fn serving_app(
    images: std::path::PathBuf,
    manifest: impl Fn(Vec<u8>) -> Reply + Send + 'static,
    blob: impl Fn(&str) -> Option<Reply> + Send + 'static,
) -> FakeServer {
    let app = index_digest(&images, "app");
    FakeServer::start(move |req| {
        let path = req.path.as_str();
        if path == "/v2/" {
            return Some(Reply::new(200, "{}"));
        }
        let rest = path.strip_prefix("/v2/team/app/")?;
        if let Some(r) = rest.strip_prefix("manifests/") {
            let digest = match r {
                "1" => app.clone(),
                d if d.starts_with("sha256:") => d.to_string(),
                // Another tag (the referrers tag `sha256-<hex>`): none here.
                _ => return Some(Reply::new(404, "{}")),
            };
            let bytes = std::fs::read(blob_path(&images, &digest)).ok()?;
            return Some(manifest(bytes).header("Content-Type", OCI_MANIFEST));
        }
        if let Some(d) = rest.strip_prefix("blobs/") {
            if let Some(reply) = blob(d) {
                return Some(reply);
            }
            let bytes = std::fs::read(blob_path(&images, d)).ok()?;
            return Some(Reply::new(200, bytes));
        }
        Some(Reply::new(404, "{}"))
    })
}

/// Issue 10, item 4: a blob body that never ends is read to its descriptor's size plus one
/// byte, then refused, naming the blob and the registry (it was read until the server gave
/// up: 45 MB for a 104-byte descriptor).
#[test]
fn an_endless_blob_body_is_refused_after_its_descriptor_size() {
    const CAP: u64 = 64 << 20;
    let fx = Fixture::new();
    let layer = layer_digests(&fx.images, "app")[0].clone();
    let endless = layer.clone();
    let server = serving_app(
        fx.images.clone(),
        |m| Reply::new(200, m),
        move |d| (d == endless).then(|| Reply::endless(200, CAP)),
    );
    let reference = format!("docker://127.0.0.1:{}/team/app:1", server.port);
    let r = run(ocipatch()
        .args(["verify", NO_TLS, "--json"])
        .arg(&reference));
    assert_eq!(r.status.code(), Some(1), "{r}");
    let v: Value = serde_json::from_str(&r.stdout()).unwrap();
    let problems = v["problems"].as_array().unwrap();
    let bad = problems
        .iter()
        .find(|p| p["digest"] == layer.as_str())
        .unwrap_or_else(|| panic!("{v:#}"));
    let msg = bad["message"].as_str().unwrap();
    let host = format!("registry 127.0.0.1:{}", server.port);
    assert!(
        msg.contains(&layer) && msg.contains(&host) && msg.contains("more than"),
        "{msg}"
    );
    assert_eq!(problems.len(), 1, "{v:#}");
    // Only socket buffers' worth was ever sent, nowhere near the server's cap.
    let sent = server.streamed.load(Ordering::Relaxed);
    assert!(sent < CAP / 4, "{sent} bytes were streamed");
}

/// Issue 10, item 5: a manifest dribbled one byte at a time no longer holds the run (the read
/// timeout restarted with every byte): the request's deadline ends it, with an error that says
/// so and names the reference.
#[test]
fn a_dribbling_registry_fails_at_the_request_deadline() {
    let fx = Fixture::new();
    let server = serving_app(
        fx.images.clone(),
        |m| Reply::new(200, m).dribble(std::time::Duration::from_millis(250)),
        |_| None,
    );
    let reference = format!("docker://127.0.0.1:{}/team/app:1", server.port);
    let err = fails_with(
        ocipatch()
            .args(["inspect", NO_TLS, "--timeout", "2"])
            .arg(&reference),
    );
    assert!(err.contains(&reference), "{err}");
    assert!(
        err.contains("deadline of 2 s") && err.contains("--timeout"),
        "{err}"
    );
    // Cut off long before the whole manifest was sent.
    let manifest = std::fs::read(blob_path(&fx.images, &index_digest(&fx.images, "app"))).unwrap();
    let sent = server.streamed.load(Ordering::Relaxed);
    assert!(sent < manifest.len() as u64, "{sent} of {}", manifest.len());
}

/// Issue 10, item 1: a registry whose upload `Location` is on another port gets the blobs
/// there, but the user's credentials only ever reach the registry's own origin.
#[test]
fn credentials_never_follow_an_upload_location_to_another_port() {
    use base64::Engine as _;
    let fx = Fixture::new();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("u:p")
    );
    // (method, path, Authorization) of every request each server saw
    type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;
    let record = |seen: &Seen, req: &crate::util::fake::Request| {
        seen.lock().unwrap().push((
            req.method.clone(),
            req.path.clone(),
            req.header("authorization").map(str::to_string),
        ));
    };
    let other_seen: Seen = Arc::default();
    let seen = other_seen.clone();
    let other = FakeServer::start(move |req| {
        record(&seen, req);
        Some(if req.method == "PUT" {
            Reply::new(201, "")
        } else {
            Reply::new(404, "{}")
        })
    });
    let other_port = other.port;
    let registry_seen: Seen = Arc::default();
    let seen = registry_seen.clone();
    let wanted = basic.clone();
    let uploads = AtomicUsize::new(0);
    let registry = FakeServer::start(move |req| {
        record(&seen, req);
        if req.header("authorization") != Some(wanted.as_str()) {
            return Some(
                Reply::new(
                    401,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#,
                )
                .header("WWW-Authenticate", "Basic realm=\"fake\""),
            );
        }
        let path = req.path.as_str();
        if path == "/v2/" {
            return Some(Reply::new(200, "{}"));
        }
        if path.ends_with("/blobs/uploads/") && req.method == "POST" {
            let n = uploads.fetch_add(1, Ordering::Relaxed);
            let location = format!("http://127.0.0.1:{other_port}/upload/{n}?_state=x");
            return Some(Reply::new(202, "").header("Location", &location));
        }
        if path.contains("/manifests/") && req.method == "PUT" {
            return Some(Reply::new(201, "").header("Docker-Content-Digest", &sha256(&req.body)));
        }
        Some(Reply::new(404, "{}"))
    });
    let dest = format!("docker://127.0.0.1:{}/team/app:2", registry.port);
    run_ok(
        ocipatch()
            .arg("rebase")
            .arg(fx.image("app"))
            .arg("--from")
            .arg(fx.image("base-v1"))
            .arg("--onto")
            .arg(fx.image("base-v2"))
            .args(["-o", &dest, NO_TLS, "--creds", "u:p"]),
    );
    let at_other = other_seen.lock().unwrap().clone();
    let puts: Vec<_> = at_other.iter().filter(|(m, _, _)| m == "PUT").collect();
    assert!(
        !puts.is_empty(),
        "the blobs went to the Location: {at_other:#?}"
    );
    let leaked: Vec<_> = at_other.iter().filter(|(_, _, a)| a.is_some()).collect();
    assert!(
        leaked.is_empty(),
        "credentials sent to another port: {leaked:#?}"
    );
    // The registry itself did get them (the test would pass vacuously otherwise).
    let at_registry = registry_seen.lock().unwrap().clone();
    assert!(
        at_registry.iter().any(|(m, p, a)| m == "PUT"
            && p.ends_with("/manifests/2")
            && a.as_deref() == Some(basic.as_str())),
        "{at_registry:#?}"
    );
}

/// Issue 10, item 14: a blob GET redirected to `file:///etc/passwd` was reported as "blob …
/// is missing". It is a refused redirect, and the message must say so (and never read the file).
#[test]
fn a_redirect_to_a_file_url_is_refused_as_such() {
    let fx = Fixture::new();
    let layer = layer_digests(&fx.images, "app")[0].clone();
    let target = layer.clone();
    let server = serving_app(
        fx.images.clone(),
        |m| Reply::new(200, m),
        move |d| {
            (d == target).then(|| Reply::new(307, "").header("Location", "file:///etc/passwd"))
        },
    );
    let reference = format!("docker://127.0.0.1:{}/team/app:1", server.port);
    let r = run(ocipatch()
        .args(["verify", NO_TLS, "--json"])
        .arg(&reference));
    assert_eq!(r.status.code(), Some(1), "{r}");
    let v: Value = serde_json::from_str(&r.stdout()).unwrap();
    let bad = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["digest"] == layer.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{v:#}"));
    let msg = bad["message"].as_str().unwrap();
    assert!(!msg.contains("is missing"), "{msg}");
    assert!(
        msg.contains("redirect") && msg.contains("file:///etc/passwd"),
        "{msg}"
    );
}

/// A registry that names a token realm on another scheme (`file:`) is refused by name, before
/// any request goes there; the error says which realm. (The https-to-plain-http downgrade of a
/// realm, with credentials, is refused the same way; the unit test covers it, as this fake
/// speaks plain http only.)
#[test]
fn a_token_realm_that_is_not_http_is_refused_by_name() {
    let server = FakeServer::start(|_| {
        Some(
            Reply::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#,
            )
            .header(
                "WWW-Authenticate",
                "Bearer realm=\"file:///etc/passwd\",service=\"x\"",
            ),
        )
    });
    let reference = format!("docker://127.0.0.1:{}/team/app:1", server.port);
    let r = run_fail(
        ocipatch()
            .args(["inspect", NO_TLS, "--creds", "u:p"])
            .arg(&reference),
    );
    assert_eq!(r.status.code(), Some(1), "{r}");
    let err = r.stderr();
    assert!(
        err.contains("token realm") && err.contains("file:///etc/passwd"),
        "{err}"
    );
}
