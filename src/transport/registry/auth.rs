//! Registry credentials: where they come from (`--creds`, auth files, credential helpers) and
//! how a `WWW-Authenticate` challenge is answered.
//!
//! The lookup order follows containers-auth.json(5), as skopeo does: `--creds`, then the first
//! auth file that knows the registry among `--authfile` (or `$REGISTRY_AUTH_FILE`, else
//! `${XDG_RUNTIME_DIR}/containers/auth.json`), `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`
//! and `${DOCKER_CONFIG:-~/.docker}/config.json`. In a file, `credHelpers[host]` wins over
//! `auths`; `credsStore` is tried before `auths` (Docker keeps only placeholders there when a
//! store is set). Secrets never reach a message: `Credentials`' Debug redacts them.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::Value;

/// A user name and password (or token used as a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token. Never printed: `Debug` redacts it.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A `--creds` value that is not `USER:PASSWORD` (the value is never shown: it is a secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected USER:PASSWORD, with a user name before the ':'")]
pub struct CredentialsError;

/// Why the credentials for a registry could not be looked up: which file or helper failed,
/// never what it returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// An auth file that exists but cannot be read.
    #[error("cannot read auth file {}: {source}", file.display())]
    Read {
        /// The auth file.
        file: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// An auth file that is not JSON.
    #[error("auth file {} is not valid JSON: {source}", file.display())]
    Json {
        /// The auth file.
        file: PathBuf,
        /// What the parser said (positions, not contents).
        #[source]
        source: serde_json::Error,
    },
    /// An `auths` entry that does not decode.
    #[error("auth file {}: entry for {key}: {problem}", file.display())]
    Entry {
        /// The auth file.
        file: PathBuf,
        /// The entry's key.
        key: String,
        /// What is wrong with it.
        #[source]
        problem: EntryError,
    },
    /// A credential helper that cannot be started.
    #[error("cannot run credential helper {program}: {source}")]
    HelperSpawn {
        /// `docker-credential-NAME`.
        program: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A credential helper that could not be waited for.
    #[error("credential helper {program} failed: {source}")]
    HelperWait {
        /// `docker-credential-NAME`.
        program: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A credential helper that exited with an error.
    #[error("credential helper {program} failed ({status}) for {host}")]
    HelperFailed {
        /// `docker-credential-NAME`.
        program: String,
        /// How it exited.
        status: std::process::ExitStatus,
        /// The registry asked for.
        host: String,
    },
    /// A credential helper whose answer is not JSON.
    #[error("credential helper {program} did not print JSON for {host}")]
    HelperOutput {
        /// `docker-credential-NAME`.
        program: String,
        /// The registry asked for.
        host: String,
    },
    /// A credential helper that answered with an identity token.
    #[error("credential helper {program} returned an identity token for {host}; identity tokens are not supported, use --creds")]
    IdentityToken {
        /// `docker-credential-NAME`.
        program: String,
        /// The registry asked for.
        host: String,
    },
}

/// What is wrong with an auth file entry's `auth` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not base64.
    #[error("\"auth\" is not valid base64")]
    NotBase64,
    /// Not UTF-8 once decoded.
    #[error("\"auth\" is not UTF-8")]
    NotUtf8,
    /// Not `USER:PASSWORD` once decoded.
    #[error("\"auth\" does not decode to USER:PASSWORD")]
    NotUserPassword,
}

impl Credentials {
    /// `USER:PASS` as given to `--creds` (the password may contain `:`).
    pub fn parse(s: &str) -> Result<Credentials, CredentialsError> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err(CredentialsError),
        }
    }

    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The auth files to search, most specific first.
pub fn auth_file_candidates(authfile: Option<&Path>) -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut out = Vec::new();
    if let Some(f) = authfile
        .map(Path::to_path_buf)
        .or_else(|| env("REGISTRY_AUTH_FILE"))
    {
        out.push(f);
    } else if let Some(run) = env("XDG_RUNTIME_DIR") {
        out.push(run.join("containers/auth.json"));
    }
    if let Some(cfg) = env("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config"))) {
        out.push(cfg.join("containers/auth.json"));
    }
    if let Some(d) = env("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker"))) {
        out.push(d.join("config.json"));
    }
    out
}

/// Credentials for `host` (and `repository`, for per-repository `auths` keys), from the first
/// file that has some. Errors say which file or helper failed, never what it returned.
pub fn lookup(
    files: &[PathBuf],
    host: &str,
    repository: &str,
) -> Result<Option<Credentials>, AuthError> {
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(AuthError::Read {
                    file: file.clone(),
                    source,
                })
            }
        };
        let json: Value = serde_json::from_slice(&bytes).map_err(|source| AuthError::Json {
            file: file.clone(),
            source,
        })?;
        if let Some(found) = lookup_in(&json, host, repository, file)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn lookup_in(
    json: &Value,
    host: &str,
    repository: &str,
    file: &Path,
) -> Result<Option<Credentials>, AuthError> {
    if let Some(helper) = json
        .get("credHelpers")
        .and_then(|h| h.get(host))
        .and_then(Value::as_str)
    {
        return run_helper(helper, host);
    }
    if let Some(store) = json.get("credsStore").and_then(Value::as_str) {
        if let Some(c) = run_helper(store, host)? {
            return Ok(Some(c));
        }
    }
    let Some(auths) = json.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    // Most specific key first: host/ns/repo, host/ns, host (containers-auth.json allows
    // namespaced keys); keys may carry a scheme and a /v1/-style path (Docker's).
    let mut wanted = vec![host.to_string()];
    let mut path = String::from(host);
    for part in repository.split('/') {
        path.push('/');
        path.push_str(part);
        wanted.push(path.clone());
    }
    for key in wanted.iter().rev() {
        let entry = auths.iter().find(|(k, _)| normalise_key(k, host) == *key);
        if let Some((_, entry)) = entry {
            return decode_entry(entry).map_err(|problem| AuthError::Entry {
                file: file.to_path_buf(),
                key: key.clone(),
                problem,
            });
        }
    }
    Ok(None)
}

/// `https://host/v1/` → `host`, `host/ns/repo` stays; Docker Hub's legacy key maps to docker.io.
fn normalise_key(key: &str, host: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = match k.split_once('/') {
        Some((h, rest)) if rest == "v1" || rest == "v2" => h,
        _ => k,
    };
    if host == "docker.io" && (k == "index.docker.io" || k == "registry-1.docker.io") {
        return "docker.io".into();
    }
    k.to_string()
}

fn decode_entry(entry: &Value) -> Result<Option<Credentials>, EntryError> {
    if let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| EntryError::NotBase64)?;
        let s = String::from_utf8(raw).map_err(|_| EntryError::NotUtf8)?;
        return Credentials::parse(&s)
            .map(Some)
            .map_err(|_| EntryError::NotUserPassword);
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
            username: u.into(),
            password: p.into(),
        })),
        _ => Ok(None),
    }
}

/// `docker-credential-NAME get`, registry host on stdin, `{"Username","Secret"}` on stdout.
fn run_helper(name: &str, host: &str) -> Result<Option<Credentials>, AuthError> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| AuthError::HelperSpawn {
            program: program.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // Docker stores Docker Hub's credentials under its legacy index URL.
        let server = if host == "docker.io" {
            "https://index.docker.io/v1/"
        } else {
            host
        };
        // A helper that exits without reading its input is answered by its exit status.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| AuthError::HelperWait {
            program: program.clone(),
            source,
        })?;
    if !out.status.success() {
        // The helpers' protocol: "credentials not found" on stdout means none stored.
        let said = String::from_utf8_lossy(&out.stdout);
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(AuthError::HelperFailed {
            program,
            status: out.status,
            host: host.to_string(),
        });
    }
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|_| AuthError::HelperOutput {
        program: program.clone(),
        host: host.to_string(),
    })?;
    let user = json.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = json.get("Secret").and_then(Value::as_str).unwrap_or("");
    if user == "<token>" {
        return Err(AuthError::IdentityToken {
            program,
            host: host.to_string(),
        });
    }
    if user.is_empty() && secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: user.into(),
        password: secret.into(),
    }))
}

/// A parsed `WWW-Authenticate` header: `Bearer realm="…",service="…"` or `Basic realm="…"`.
/// `Debug` shows the realm without its query (a registry may put a key there).
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `Bearer` or `Basic`, as the registry wrote it (compare case-insensitively).
    pub scheme: String,
    /// The `key="value"` parameters, in order (`realm`, `service`, `scope`, ...).
    pub params: Vec<(String, String)>,
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<(&str, String)> = self
            .params
            .iter()
            .map(|(k, v)| match k.eq_ignore_ascii_case("realm") {
                true => (k.as_str(), super::secret::shown_url(v)),
                false => (k.as_str(), v.clone()),
            })
            .collect();
        f.debug_struct("Challenge")
            .field("scheme", &self.scheme)
            .field("params", &params)
            .finish()
    }
}

impl Challenge {
    /// The value of parameter `key`, matched case-insensitively.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// A `Bearer` (token) challenge.
    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }

    /// A `Basic` challenge.
    pub fn is_basic(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("basic")
    }

    /// Parses one challenge (registries send one); quoted values may contain `,` and `\"`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = match header.split_once(char::is_whitespace) {
            Some((s, r)) => (s, r),
            None => (header, ""),
        };
        if scheme.is_empty() {
            return None;
        }
        let mut params = Vec::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars
                .by_ref()
                .take_while(|c| *c != '=')
                .collect::<String>()
                .trim()
                .to_string();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek() {
                    if *c == ',' {
                        break;
                    }
                    value.push(*c);
                    chars.next();
                }
                value = value.trim().to_string();
            }
            params.push((key, value));
        }
        Some(Challenge {
            scheme: scheme.to_string(),
            params,
        })
    }
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass).
pub fn query_escape(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// What a query value escapes: everything but RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::parse("user:s3cr:et").unwrap();
        assert_eq!(c.password, "s3cr:et");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(Credentials::parse("nocolon").is_err());
        assert!(Credentials::parse(":pass").is_err());
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some("https://auth.example.com/token"));
        assert_eq!(c.param("service"), Some("registry.example.com"));
        assert_eq!(c.param("scope"), Some("repository:a/b:pull,push"));
        let b = Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap();
        assert!(b.is_basic());
        assert_eq!(b.param("realm"), Some("Registry Realm"));
        let e = Challenge::parse(r#"Bearer realm="x\"y", error=invalid_token"#).unwrap();
        assert_eq!(e.param("realm"), Some("x\"y"));
        assert_eq!(e.param("error"), Some("invalid_token"));
    }

    #[test]
    fn auth_file_entries_by_host_and_repository() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        std::fs::write(
            &file,
            serde_json::json!({"auths": {
                "https://reg.example.com/v1/": {"auth": enc("hostuser:hostpass")},
                "reg.example.com/team/app": {"auth": enc("appuser:apppass")},
                "https://index.docker.io/v1/": {"auth": enc("hub:hubpass")},
            }})
            .to_string(),
        )
        .unwrap();
        let files = vec![dir.path().join("missing.json"), file];
        let get = |h: &str, r: &str| lookup(&files, h, r).unwrap().map(|c| c.username);
        assert_eq!(
            get("reg.example.com", "team/app").as_deref(),
            Some("appuser")
        );
        assert_eq!(
            get("reg.example.com", "team/other").as_deref(),
            Some("hostuser")
        );
        assert_eq!(get("docker.io", "library/alpine").as_deref(), Some("hub"));
        assert_eq!(get("other.example.com", "x"), None);
    }

    #[test]
    fn bad_auth_entries_name_the_file_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        std::fs::write(&file, r#"{"auths":{"h.io":{"auth":"!!notbase64-secret"}}}"#).unwrap();
        let e = lookup(&[file], "h.io", "r").unwrap_err();
        assert!(
            matches!(
                e,
                AuthError::Entry {
                    problem: EntryError::NotBase64,
                    ..
                }
            ),
            "{e}"
        );
        let e = e.to_string();
        assert!(e.contains("auth.json"), "{e}");
        assert!(!e.contains("notbase64-secret"), "{e}");
    }

    #[test]
    fn a_challenge_debug_shows_no_realm_query() {
        let c = Challenge::parse(r#"Bearer realm="https://a.test/t?key=k3y-secret",service="s""#)
            .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("k3y-secret") && shown.contains("https://a.test/t"),
            "{shown}"
        );
    }

    #[test]
    fn creds_errors_never_show_the_value() {
        for bad in ["tokenonly-s3cr3t", ":s3cr3t", ""] {
            let e = Credentials::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn auth_file_errors_never_show_auth_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        let enc = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        for contents in [
            r#"{"auths":{"h.io":{"auth":"s3cr3t-value"#.to_string(),
            format!(
                r#"{{"auths":{{"h.io":{{"auth":"{}""#,
                enc(b"u:s3cr3t-value")
            ),
            format!(
                r#"{{"auths":{{"h.io":{{"auth":"{}"}}}}}}"#,
                enc(b"s3cr3t-value")
            ),
            format!(
                r#"{{"auths":{{"h.io":{{"auth":"{}"}}}}}}"#,
                enc(b"\xffs3cr3t-value")
            ),
        ] {
            std::fs::write(&file, &contents).unwrap();
            let e = lookup(std::slice::from_ref(&file), "h.io", "r")
                .unwrap_err()
                .to_string();
            assert!(
                !e.contains("s3cr3t") && !e.contains(&enc(b"u:s3cr3t-value")),
                "{e}"
            );
            assert!(e.contains("auth.json"), "{e}");
        }
    }

    #[test]
    fn escapes_query_values() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
