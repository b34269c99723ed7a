//! No output of ocipatch ever holds a credential. A unique secret is planted everywhere one can
//! come from (the userinfo of a reference, `--creds`, an auth file's `auth`, a credential
//! helper's answer, a Bearer token the registry issues, a registry or token server that echoes
//! the request and its `Authorization` header back in its error body, a token realm or a
//! redirect URL that carries one) and every command is run on it, with `--json` and without:
//! not one byte of stdout or stderr may hold it.
//!
//! The registries are the small fake of `util/fake.rs`: a real registry does not
//! echo credentials on request.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;

use crate::util::fake::{FakeServer, Reply, Request};
use crate::util::*;

/// The planted secret. Every variant planted below contains [`MARK`].
const SECRET: &str = "s3cr3t-PLANTED-4f1c";
const MARK: &str = "PLANTED";
const USER: &str = "user";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// What must appear nowhere: the mark, and the secret as a Basic header or an auth file carry it.
fn needles() -> Vec<String> {
    vec![
        MARK.to_string(),
        b64(&format!("{USER}:{SECRET}")),
        b64(SECRET),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{USER}:{SECRET}")),
    ]
}

/// One run's fixtures: the standard layouts, a layer to append, an empty home.
struct World {
    s: Scenario,
    home: PathBuf,
    bin: PathBuf,
}

fn world() -> World {
    let s = scenario();
    let home = s.path("home");
    let bin = s.path("bin");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(s.path("layer/etc")).unwrap();
    fs::write(s.path("layer/etc/patched"), "yes\n").unwrap();
    World { s, home, bin }
}

impl World {
    fn path(&self, name: &str) -> String {
        self.s.path(name).display().to_string()
    }

    fn oci(&self, tag: &str) -> String {
        self.s.oci(tag)
    }

    /// A fresh output layout reference.
    fn out(&self, n: usize) -> String {
        format!("oci:{}:x", self.path(&format!("out{n}")))
    }

    /// Writes an `--images-from` list.
    fn list(&self, name: &str, refs: &[&str]) -> String {
        let path = self.path(name);
        fs::write(&path, refs.join("\n") + "\n").unwrap();
        path
    }

    /// Runs the real binary in its clean environment with `HOME` of this world, the helper
    /// directory first on `PATH`; returns exit code and output.
    fn run(&self, args: &[String], env: &[(String, String)]) -> (i32, Vec<u8>, Vec<u8>) {
        let mut c = ocipatch();
        c.args(args)
            .env("HOME", &self.home)
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display()),
            )
            .env("XDG_CACHE_HOME", self.s.path("cache"));
        for (k, v) in env {
            c.env(k, v);
        }
        let r = run(&mut c);
        (r.code(), r.stdout, r.stderr)
    }
}

/// Every command, with `r` as the reference under test in each place a reference goes: image,
/// new or old base, destination, fleet member, `--images-from` line. `n` numbers the outputs.
fn commands(w: &World, r: &str, n: &mut usize) -> Vec<Vec<String>> {
    let list = w.list(&format!("list{n}.txt"), &[r, &w.oci("app")]);
    let mut next = || {
        *n += 1;
        w.out(*n)
    };
    let fleet_pattern = format!("oci:{}:{{name}}-{{index}}", w.path("fleet"));
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let (app, v1, v2) = (w.oci("app"), w.oci("base-v1"), w.oci("base-v2"));
    let layer = w.path("layer");
    vec![
        v(&["rebase", r, "--onto", &v2, "--from", &v1, "-o", &next()]),
        v(&["rebase", &app, "--onto", r, "--from", &v1, "-o", &next()]),
        v(&["rebase", &app, "--onto", &v2, "--from", r, "-o", &next()]),
        v(&["rebase", &app, "--onto", &v2, "--from", &v1, "-o", r]),
        v(&[
            "rebase",
            r,
            &app,
            "--onto",
            &v2,
            "--from",
            &v1,
            "-o",
            &fleet_pattern,
        ]),
        v(&[
            "rebase",
            "--images-from",
            &list,
            "--onto",
            &v2,
            "--from",
            &v1,
            "-o",
            &fleet_pattern,
        ]),
        v(&["append", r, "--layer", &layer, "-o", &next()]),
        v(&["append", &app, "--layer", &layer, "-o", r]),
        v(&["verify", r]),
        v(&["inspect", r]),
        v(&["inspect", &app, "--base", r]),
        v(&["check", r, "--base", &v2]),
        v(&["check", &app, "--base", r]),
        v(&["check", "--images-from", &list, "--base", &v2]),
    ]
}

/// Runs `args` with and without `--json` (and `extra` flags); notes in `leaks` every run with a
/// needle in any byte of its output, and every run that did not end as `expect` says (its exit
/// code) or did not print `marker` (which proves the planted path was reached).
#[allow(clippy::too_many_arguments)]
fn assert_clean(
    w: &World,
    label: &str,
    args: &[String],
    extra: &[String],
    env: &[(String, String)],
    expect: Option<i32>,
    marker: &str,
    leaks: &mut Vec<String>,
) {
    for json in [false, true] {
        let mut a = args.to_vec();
        a.extend(extra.iter().cloned());
        if json && !matches!(a[0].as_str(), "append") {
            a.push("--json".into());
        } else if json {
            // append has no --json; -q keeps its output to the digest and errors.
            a.push("-q".into());
        }
        let (code, out, err) = w.run(&a, env);
        let shown = || {
            format!(
                "[{label}] ocipatch {a:?}\nexit {code}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            )
        };
        for needle in needles() {
            let hit = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            if hit(&out) || hit(&err) {
                leaks.push(format!("LEAKED {needle:?}\n{}", shown()));
            }
        }
        if expect.is_some_and(|c| c != code) {
            leaks.push(format!("EXIT {code}, expected {expect:?}\n{}", shown()));
        }
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
        if !all.contains(marker) {
            leaks.push(format!("MARKER {marker:?} missing\n{}", shown()));
        }
    }
}

/// Fails with every run that printed a secret (or did not fail as expected).
fn finish(leaks: Vec<String>) {
    let printed = leaks.iter().filter(|l| l.starts_with("LEAKED")).count();
    assert!(
        leaks.is_empty(),
        "{printed} run(s) printed a secret, {} went another way:\n\n{}",
        leaks.len() - printed,
        leaks.join("\n\n")
    );
}

/// The registry references a user might write with credentials in them.
fn planted_references(host: &str, dir: &str) -> Vec<String> {
    let d = format!("sha256:{}", "ab".repeat(32));
    vec![
        format!("docker://{USER}:{SECRET}@{host}/team/app:1"),
        // A password with a `/`: the host part does not end at the first `/`.
        format!("docker://{USER}:s3cr3t/PLANTED/4f1c@{host}/team/app:1"),
        // A password with an `@`.
        format!("docker://{USER}:s3cr3t@PLANTED@{host}/team/app:1"),
        // A lone token as the user name.
        format!("docker://{SECRET}@{host}/team/app:1"),
        // Credentials and a digest.
        format!("docker://{USER}:{SECRET}@{host}/team/app@{d}"),
        format!("docker://{USER}:{SECRET}@{host}/team/app:1@{d}"),
        // Not quite our syntax.
        format!("docker:{USER}:{SECRET}@{host}/team/app:1"),
        format!("docker:///{USER}:{SECRET}@{host}/team/app:1"),
        format!("{USER}:{SECRET}@{host}/team/app:1"),
        format!("docker-archive:x.tar:{USER}:{SECRET}@{host}/team/app:1"),
        // Not a registry at all, but an `@` that is no digest: the text before it is not shown.
        format!("oci-archive:{dir}/x.tar:{USER}:{SECRET}@x"),
    ]
}

#[test]
fn a_password_in_a_reference_is_refused_and_never_shown() {
    let w = world();
    let mut leaks = Vec::new();
    let mut n = 0;
    for r in planted_references("127.0.0.1:1", &w.path("")) {
        // Registry references are refused as usage errors; the archive one is a valid name.
        let code = (!r.starts_with("oci-archive:")).then_some(2);
        for args in commands(&w, &r, &mut n) {
            assert_clean(&w, "reference", &args, &[], &[], code, "", &mut leaks);
        }
    }
    // A fleet pattern that carries credentials, or that is wrong and quotes them.
    let bad_patterns = [
        format!("docker://{USER}:{SECRET}@127.0.0.1:1/{{repo}}:{{tag}}"),
        format!("docker://{USER}:{SECRET}@127.0.0.1:1/{{nope}}"),
        format!("docker://{USER}:{SECRET}@127.0.0.1:1/{{tag"),
    ];
    for p in &bad_patterns {
        let args: Vec<String> = [
            "rebase",
            &w.oci("app"),
            &w.oci("app"),
            "--onto",
            &w.oci("base-v2"),
            "--from",
            &w.oci("base-v1"),
            "-o",
            p,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_clean(&w, "pattern", &args, &[], &[], Some(2), "***", &mut leaks);
    }
    // clap's own errors quote arguments too (one positional too many).
    let args: Vec<String> = [
        "inspect",
        &w.oci("app"),
        &format!("docker://{USER}:{SECRET}@127.0.0.1:1/team/app:1"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_clean(&w, "clap", &args, &[], &[], Some(2), "", &mut leaks);
    finish(leaks);
}

#[test]
fn the_refusal_shows_the_reference_with_the_password_replaced() {
    let w = world();
    let (code, _, err) = w.run(
        &[
            "inspect".into(),
            format!("docker://{USER}:{SECRET}@host.test/repo:tag"),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("docker://user:***@host.test/repo:tag"),
        "{err}"
    );
    assert!(
        err.contains("--creds") && err.contains("--authfile"),
        "{err}"
    );
    let (code, _, err) = w.run(
        &["verify".into(), "docker://user@host.test/repo:tag".into()],
        &[],
    );
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("docker://***@host.test/repo:tag"), "{err}");
    assert!(
        err.contains("--creds") && err.contains("--authfile"),
        "{err}"
    );
}

#[test]
fn a_bad_creds_flag_never_shows_the_password() {
    let w = world();
    let mut leaks = Vec::new();
    let mut n = 0;
    let r = "docker://127.0.0.1:1/team/app:1";
    for creds in [SECRET.to_string(), format!(":{SECRET}"), String::new()] {
        for args in commands(&w, r, &mut n) {
            let extra = vec![format!("--creds={creds}")];
            assert_clean(&w, "--creds", &args, &extra, &[], Some(2), "", &mut leaks);
        }
    }
    finish(leaks);
}

/// Where a credential file is found: `--authfile`, `$REGISTRY_AUTH_FILE`, `~/.docker/config.json`.
#[derive(Clone, Copy, Debug)]
enum FileAt {
    Flag,
    Env,
    DockerConfig,
}

impl FileAt {
    const ALL: [FileAt; 3] = [FileAt::Flag, FileAt::Env, FileAt::DockerConfig];

    /// Writes `contents` where this kind of file is looked for; returns the flags and env.
    fn place(self, w: &World, contents: &str) -> (Vec<String>, Vec<(String, String)>) {
        match self {
            FileAt::Flag => {
                let p = w.path("flag-auth.json");
                fs::write(&p, contents).unwrap();
                (vec![format!("--authfile={p}")], vec![])
            }
            FileAt::Env => {
                let p = w.path("env-auth.json");
                fs::write(&p, contents).unwrap();
                (vec![], vec![("REGISTRY_AUTH_FILE".into(), p)])
            }
            FileAt::DockerConfig => {
                let dir = w.home.join(".docker");
                fs::create_dir_all(&dir).unwrap();
                fs::write(dir.join("config.json"), contents).unwrap();
                (vec![], vec![])
            }
        }
    }
}

#[test]
fn auth_files_that_do_not_parse_never_show_their_auth_values() {
    let host = "127.0.0.1:1";
    let r = format!("docker://{host}/team/app:1");
    let mut leaks = Vec::new();
    let files = [
        // Not JSON (cut in the middle of the secret).
        format!(r#"{{"auths":{{"{host}":{{"auth":"{SECRET}"#),
        format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"#,
            b64(&format!("{USER}:{SECRET}"))
        ),
        // Not base64.
        format!(r#"{{"auths":{{"{host}":{{"auth":"{SECRET}"}}}}}}"#),
        // No `:` in what it decodes to.
        format!(r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#, b64(SECRET)),
        // Not UTF-8 once decoded, with the secret around.
        format!(
            r#"{{"auths":{{"{host}":{{"auth":"{}"}}}}}}"#,
            base64::engine::general_purpose::STANDARD
                .encode([b"\xff\xfe".as_slice(), SECRET.as_bytes()].concat())
        ),
        // A JSON value of the wrong type next to the secret.
        format!(
            r#"{{"auths":{{"{host}":{{"auth":["{SECRET}"],"password":{{"x":"{SECRET}"}}}}}}}}"#
        ),
    ];
    for (i, contents) in files.iter().enumerate() {
        for at in FileAt::ALL {
            let w = world();
            let (extra, env) = at.place(&w, contents);
            let mut n = 0;
            for args in commands(&w, &r, &mut n) {
                let label = format!("auth file {i} {at:?}");
                assert_clean(&w, &label, &args, &extra, &env, None, "", &mut leaks);
            }
        }
    }
    finish(leaks);
}

/// A `docker-credential-planted` helper on PATH that runs `script`.
fn helper(w: &World, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = w.bin.join("docker-credential-planted");
    fs::write(&p, format!("#!/bin/sh\ncat >/dev/null\n{script}\n")).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn credential_helpers_that_fail_never_show_what_they_printed() {
    let host = "127.0.0.1:1";
    let r = format!("docker://{host}/team/app:1");
    let mut leaks = Vec::new();
    let scripts = [
        format!("echo 'not json {SECRET}'"),
        format!("echo '{SECRET}'; echo '{SECRET}' >&2; exit 1"),
        format!(r#"echo '{{"Username":"<token>","Secret":"{SECRET}"}}'"#),
        format!(r#"echo '{{"Username":"{USER}","Secret":{{"nested":"{SECRET}"}}}}'"#),
    ];
    for script in &scripts {
        for store in [false, true] {
            let w = world();
            helper(&w, script);
            let config = if store {
                json!({"credsStore": "planted"})
            } else {
                json!({"credHelpers": {host: "planted"}})
            };
            let (extra, env) = FileAt::DockerConfig.place(&w, &config.to_string());
            let mut n = 0;
            for args in commands(&w, &r, &mut n) {
                assert_clean(&w, script, &args, &extra, &env, None, "", &mut leaks);
            }
        }
    }
    finish(leaks);
}

/// How the fake registry misbehaves.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Basic auth; every authorised request is answered with this status and an error body
    /// that echoes the request, its `Authorization` header and the credentials decoded.
    BasicEcho(u16),
    /// Bearer auth; the token server issues a token holding the secret, and every request
    /// that carries it is answered with this status and an echo of the request.
    BearerEcho(u16),
    /// Bearer auth; the token server answers with this status and an echo of the request.
    TokenEcho(u16),
    /// Bearer auth with a realm whose query carries the secret; the token server refuses.
    RealmQuery,
    /// Manifest reads are redirected to a URL with the secret as userinfo and in its query,
    /// on a scheme that is refused (`ftp`) or a port nobody listens on (`http`).
    Redirect(&'static str),
}

const FAULTS: [Fault; 11] = [
    Fault::BasicEcho(401),
    Fault::BasicEcho(403),
    Fault::BasicEcho(500),
    Fault::BearerEcho(401),
    Fault::BearerEcho(403),
    Fault::BearerEcho(500),
    Fault::TokenEcho(401),
    Fault::TokenEcho(500),
    Fault::RealmQuery,
    Fault::Redirect("ftp"),
    Fault::Redirect("http"),
];

/// The request, as a server that logs it would repeat it.
fn echo(req: &Request) -> String {
    let mut s = format!("{} {}", req.method, req.path);
    for (k, v) in &req.headers {
        s.push_str(&format!("; {k}: {v}"));
    }
    if let Some(basic) = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .unwrap_or_default();
        s.push_str(&format!(
            "; credentials {}",
            String::from_utf8_lossy(&decoded)
        ));
    }
    s
}

fn echo_reply(status: u16, req: &Request) -> Reply {
    let e = echo(req);
    let body = json!({"errors": [{"code": "DENIED", "message": e, "detail": e}]});
    Reply::new(status, body.to_string())
        .header("Content-Type", "application/json")
        .header("Retry-After", "0")
}

fn fake_registry(fault: Fault) -> FakeServer {
    let port = Arc::new(AtomicU16::new(0));
    let me = port.clone();
    let server = FakeServer::start(move |req| {
        let me = me.load(Ordering::Relaxed);
        let realm = match fault {
            Fault::RealmQuery => format!("http://127.0.0.1:{me}/token?access_key={SECRET}"),
            _ => format!("http://127.0.0.1:{me}/token"),
        };
        let bearer = format!("Bearer realm=\"{realm}\",service=\"fake.test\"");
        let token = format!("tok-{SECRET}");
        let path = req.path.as_str();
        let auth = req.header("authorization");
        if path.starts_with("/token") {
            return Some(match fault {
                Fault::TokenEcho(status) => echo_reply(status, req),
                Fault::RealmQuery => echo_reply(403, req),
                _ => Reply::new(200, json!({ "token": token }).to_string()),
            });
        }
        Some(match fault {
            Fault::BasicEcho(status) => match auth {
                Some(a) if a.starts_with("Basic ") => echo_reply(status, req),
                _ => echo_reply(401, req).header("WWW-Authenticate", "Basic realm=\"fake\""),
            },
            Fault::BearerEcho(status) => match auth {
                Some(a) if a == format!("Bearer {token}") => {
                    echo_reply(status, req).header("WWW-Authenticate", &bearer)
                }
                _ => echo_reply(401, req).header("WWW-Authenticate", &bearer),
            },
            Fault::TokenEcho(_) | Fault::RealmQuery => {
                echo_reply(401, req).header("WWW-Authenticate", &bearer)
            }
            Fault::Redirect(scheme) => {
                if path == "/v2/" {
                    Reply::new(200, "{}")
                } else {
                    let host = if scheme == "http" {
                        "127.0.0.1:1".to_string()
                    } else {
                        format!("127.0.0.1:{me}")
                    };
                    let to = format!(
                        "{scheme}://{USER}:{SECRET}@{host}/storage/x?X-Amz-Signature={SECRET}&token={SECRET}"
                    );
                    Reply::new(307, "").header("Location", &to)
                }
            }
        })
    });
    port.store(server.port, Ordering::Relaxed);
    server
}

/// Where the client's credentials come from.
#[derive(Clone, Copy, Debug)]
enum Creds {
    None,
    Flag,
    File(FileAt),
    Helper,
}

impl Creds {
    fn place(self, w: &World, host: &str) -> (Vec<String>, Vec<(String, String)>) {
        let auths = json!({"auths": {host: {"auth": b64(&format!("{USER}:{SECRET}"))}}});
        match self {
            Creds::None => (vec![], vec![]),
            Creds::Flag => (vec![format!("--creds={USER}:{SECRET}")], vec![]),
            Creds::File(at) => at.place(w, &auths.to_string()),
            Creds::Helper => {
                helper(
                    w,
                    &format!(r#"echo '{{"Username":"{USER}","Secret":"{SECRET}"}}'"#),
                );
                let config = json!({"credHelpers": {host: "planted"}});
                FileAt::DockerConfig.place(w, &config.to_string())
            }
        }
    }
}

fn registry_faults(creds: Creds, faults: &[Fault]) {
    let mut leaks = Vec::new();
    for &fault in faults {
        let server = fake_registry(fault);
        let host = format!("127.0.0.1:{}", server.port);
        let r = format!("docker://{host}/team/app:1");
        let w = world();
        let (mut extra, env) = creds.place(&w, &host);
        extra.extend(["--tls-verify=false".to_string(), "--timeout=10".to_string()]);
        let mut n = 0;
        for args in commands(&w, &r, &mut n) {
            let label = format!("{creds:?} {fault:?}");
            assert_clean(&w, &label, &args, &extra, &env, None, &host, &mut leaks);
        }
    }
    finish(leaks);
}

#[test]
fn registry_faults_with_creds_flag_never_show_a_secret() {
    registry_faults(Creds::Flag, &FAULTS);
}

#[test]
fn registry_faults_without_credentials_never_show_a_secret() {
    registry_faults(
        Creds::None,
        &[
            Fault::BearerEcho(401),
            Fault::BearerEcho(500),
            Fault::TokenEcho(401),
            Fault::RealmQuery,
            Fault::Redirect("ftp"),
            Fault::Redirect("http"),
        ],
    );
}

#[test]
fn registry_faults_with_auth_files_and_helpers_never_show_a_secret() {
    let some = [
        Fault::BasicEcho(401),
        Fault::BasicEcho(500),
        Fault::BearerEcho(403),
        Fault::TokenEcho(401),
    ];
    for creds in [
        Creds::File(FileAt::Flag),
        Creds::File(FileAt::Env),
        Creds::File(FileAt::DockerConfig),
        Creds::Helper,
    ] {
        registry_faults(creds, &some);
    }
}

#[test]
fn a_base_name_annotation_with_credentials_is_never_shown() {
    let w = world();
    let mut leaks = Vec::new();
    let base_v1 = w.s.layout.tagged("base-v1").unwrap();
    for (i, name) in [
        format!("{USER}:{SECRET}@127.0.0.1:1/lib/base:v1"),
        format!("docker://{USER}:{SECRET}@127.0.0.1:1/lib/base:v1"),
        format!("{SECRET}@127.0.0.1:1/lib/base:v1"),
        format!("{USER}:s3cr3t/PLANTED@127.0.0.1:1/lib/base:v1"),
    ]
    .iter()
    .enumerate()
    {
        let mut img = w.s.app.clone();
        img.annotations = Some(json!({
            ANN_BASE_NAME: name,
            ANN_BASE_DIGEST: base_v1,
        }));
        let tag = format!("annotated{i}");
        w.s.layout.add(&tag, &img);
        let image = w.oci(&tag);
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<String>>();
        for (args, code) in [
            (v(&["check", &image]), Some(1)),
            (v(&["inspect", &image]), Some(0)),
            (
                v(&["check", "--images-from", &w.list("a.txt", &[&image])]),
                None,
            ),
            (
                v(&[
                    "rebase",
                    &image,
                    "--onto",
                    &w.oci("base-v2"),
                    "-o",
                    &w.out(100 + i),
                ]),
                None,
            ),
        ] {
            assert_clean(&w, name, &args, &[], &[], code, "", &mut leaks);
        }
    }
    finish(leaks);
}

#[test]
fn a_base_name_flag_with_credentials_is_refused() {
    let w = world();
    let mut leaks = Vec::new();
    for name in [
        format!("{USER}:{SECRET}@127.0.0.1:1/lib/base:v2"),
        format!("docker://{USER}:{SECRET}@127.0.0.1:1/lib/base:v2"),
    ] {
        let args: Vec<String> = [
            "rebase",
            &w.oci("app"),
            "--onto",
            &w.oci("base-v2"),
            "--from",
            &w.oci("base-v1"),
            "--base-name",
            &name,
            "-o",
            &w.out(1),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_clean(
            &w,
            "--base-name",
            &args,
            &[],
            &[],
            Some(2),
            "***",
            &mut leaks,
        );
    }
    finish(leaks);
    assert!(!Path::new(&w.path("out1")).exists(), "nothing written");
}
