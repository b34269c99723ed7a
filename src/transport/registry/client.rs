//! A small blocking client for the distribution API on ureq: scheme detection (skopeo's
//! `--tls-verify=false` fallback to plain HTTP), the auth handshake (Basic, or Bearer tokens per
//! scope set), bounded retries of transient failures, and error messages that carry the
//! registry's status and error code.
//!
//! Blocking suits the code base: operations are synchronous and parallel across blobs with
//! rayon, one request per thread; an async client would need a runtime for nothing.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;
use ureq::http::{self, Method, Response, StatusCode};

use super::auth::{self, Challenge, Credentials};
use crate::error::{Error, Result};
use crate::transport::RegistryOptions;

/// Attempts per request when the failure is transient (connection reset, 429, 5xx).
const MAX_ATTEMPTS: u32 = 4;
/// First retry delay; doubled on each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait a `Retry-After` header can impose on us.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Error bodies and token answers are small; read at most this much of them.
const MAX_SMALL_BODY: u64 = 1 << 20;

pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// A request body: none, bytes we hold (replayable, so retried), or a stream (sent once).
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream { reader: &'a mut dyn Read, size: u64 },
}

impl Body<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Body::Stream { .. })
    }
}

/// A failed request, and whether trying again may help (connection reset, 429, 5xx).
pub struct SendFailure {
    pub error: Error,
    pub transient: bool,
}

struct PingError {
    message: String,
    /// The connection was made but TLS failed: maybe a plain-HTTP or self-signed registry.
    tls: bool,
}

struct AuthState {
    challenge: Option<Challenge>,
    /// `Authorization` header values for Bearer tokens, by space-joined scope list.
    tokens: HashMap<String, String>,
}

/// One registry host, as one reference sees it (the reference names every error).
pub struct Client {
    agent: ureq::Agent,
    reference: String,
    host: String,
    /// `https://HOST` or, with `--tls-verify=false` and no TLS there, `http://HOST`.
    base: String,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("reference", &self.reference)
            .field("base", &self.base)
            .field("creds", &self.creds)
            .finish_non_exhaustive()
    }
}

/// Docker Hub's API lives on another host than its name.
fn api_host(host: &str) -> &str {
    if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

fn transient_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut | Interrupted
    )
}

fn transient(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => transient_io(io),
        ureq::Error::Timeout(_) => true,
        _ => false,
    }
}

fn retry_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

fn backoff(attempt: u32, resp: Option<&Response<ureq::Body>>) -> Duration {
    let asked = resp
        .and_then(|r| r.headers().get("retry-after"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    asked
        .unwrap_or(FIRST_BACKOFF * 2u32.pow(attempt))
        .min(MAX_BACKOFF)
}

pub fn header<'r>(resp: &'r Response<ureq::Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Reads at most `MAX_SMALL_BODY` bytes of a response body.
pub fn read_small(resp: Response<ureq::Body>, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.into_body()
        .into_reader()
        .take(limit)
        .read_to_end(&mut out)?;
    Ok(out)
}

impl Client {
    /// Finds how to talk to `host` (HTTPS, or HTTP when TLS is not verified, as skopeo does)
    /// and what auth it asks for, with one `GET /v2/`.
    pub fn connect(
        reference: &str,
        host: &str,
        repository: &str,
        opts: &RegistryOptions,
    ) -> Result<Client> {
        let fail = |message: String| Error::Registry {
            reference: reference.to_string(),
            message,
        };
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => auth::lookup(
                &auth::auth_file_candidates(opts.authfile.as_deref()),
                host,
                repository,
            )
            .map_err(fail)?,
        };
        // The system's trust store (as skopeo and docker use), so registries signed by a
        // private CA the machine trusts work; SSL_CERT_FILE / SSL_CERT_DIR are honoured.
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .disable_verification(!opts.tls_verify)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            // No overall timeout (layers can be large): bound each wait instead. A registry
            // hashes a whole upload before it answers the final PUT, hence the long one.
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(300)))
            .timeout_recv_response(Some(Duration::from_secs(600)))
            .user_agent(concat!("ocipatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let api = api_host(host);
        let mut client = Client {
            agent,
            reference: reference.to_string(),
            host: host.to_string(),
            base: format!("https://{api}"),
            creds,
            auth: Mutex::new(AuthState {
                challenge: None,
                tokens: HashMap::new(),
            }),
        };
        let https_err = match client.ping() {
            Ok(()) => return Ok(client),
            Err(e) => e,
        };
        if opts.tls_verify {
            let hint = if https_err.tls {
                " (for a plain-HTTP or self-signed registry pass --tls-verify=false)"
            } else {
                ""
            };
            return Err(fail(format!(
                "cannot reach registry {host} over HTTPS: {}{hint}",
                https_err.message
            )));
        }
        let https_err = https_err.message;
        client.base = format!("http://{api}");
        client.ping().map_err(|http_err| {
            fail(format!(
                "cannot reach registry {host}: HTTPS: {https_err}; HTTP: {}",
                http_err.message
            ))
        })?;
        Ok(client)
    }

    fn ping(&self) -> std::result::Result<(), PingError> {
        let req = http::Request::get(format!("{}/v2/", self.base))
            .body(())
            .map_err(|e| PingError {
                message: e.to_string(),
                tls: false,
            })?;
        let resp = self.agent.run(req).map_err(|e| PingError {
            // rustls reports a non-TLS peer or a bad certificate as invalid data.
            tls: matches!(&e, ureq::Error::Tls(_))
                || matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData),
            message: describe(e),
        })?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = header(&resp, "www-authenticate").and_then(Challenge::parse);
            self.auth.lock().expect("auth lock").challenge = challenge;
        }
        Ok(())
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// `BASE/v2/REPO/...` for a path below the repository.
    pub fn url(&self, repository: &str, path: &str) -> String {
        format!("{}/v2/{repository}/{path}", self.base)
    }

    /// Resolves an upload `Location` (absolute, or relative to the registry).
    pub fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// The `Authorization` header for `scopes`, fetching a token when the registry wants one.
    fn authorization(&self, scopes: &[String]) -> Result<Option<String>> {
        let mut state = self.auth.lock().expect("auth lock");
        let Some(challenge) = state.challenge.clone() else {
            return Ok(None);
        };
        if challenge.is_basic() {
            return Ok(self.creds.as_ref().map(Credentials::basic_header));
        }
        if !challenge.is_bearer() {
            return Ok(None);
        }
        let key = scopes.join(" ");
        if let Some(t) = state.tokens.get(&key) {
            return Ok(Some(t.clone()));
        }
        // Held across the token request: concurrent blob copies need the same token, and
        // asking for it once is kinder to the token server.
        let token = self.fetch_token(&challenge, scopes)?;
        let value = format!("Bearer {token}");
        state.tokens.insert(key, value.clone());
        Ok(Some(value))
    }

    fn fetch_token(&self, challenge: &Challenge, scopes: &[String]) -> Result<String> {
        let realm = challenge.param("realm").ok_or_else(|| {
            self.error_msg(format!(
                "registry {} asked for a Bearer token without a realm",
                self.host
            ))
        })?;
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(service) = challenge.param("service") {
            url.push_str(&format!("{sep}service={}", auth::query_escape(service)));
            sep = '&';
        }
        for scope in scopes {
            url.push_str(&format!("{sep}scope={}", auth::query_escape(scope)));
            sep = '&';
        }
        let mut last = None;
        for attempt in 0..MAX_ATTEMPTS {
            let mut b = http::Request::get(&url);
            if let Some(c) = &self.creds {
                b = b.header("authorization", c.basic_header());
            }
            let req = b.body(()).map_err(|e| self.error_msg(e.to_string()))?;
            match self.agent.run(req) {
                Err(e) if transient(&e) && attempt + 1 < MAX_ATTEMPTS => {
                    std::thread::sleep(backoff(attempt, None));
                }
                Err(e) => {
                    return Err(
                        self.error_msg(format!("cannot get a token from {realm}: {}", describe(e)))
                    )
                }
                Ok(r) if retry_status(r.status()) && attempt + 1 < MAX_ATTEMPTS => {
                    std::thread::sleep(backoff(attempt, Some(&r)));
                    last = Some(r.status());
                }
                Ok(r) if r.status().is_success() => {
                    let body = read_small(r, MAX_SMALL_BODY).map_err(|e| {
                        self.error_msg(format!("cannot read the token from {realm}: {e}"))
                    })?;
                    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    return json
                        .get("token")
                        .or_else(|| json.get("access_token"))
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| {
                            self.error_msg(format!("the token server {realm} sent no token"))
                        });
                }
                Ok(r) => {
                    let what = if self.creds.is_some() {
                        "authentication failed"
                    } else {
                        "authentication required (no credentials: use --creds or an auth file)"
                    };
                    return Err(self.status_error(&format!("{what}: token server {realm}"), r));
                }
            }
        }
        Err(self.error_msg(format!(
            "token server {realm} kept failing (last status {})",
            last.map_or_else(|| "none".into(), |s| s.to_string())
        )))
    }

    /// Sends a request with auth, answering one 401 challenge and retrying transient failures
    /// (a streamed body is sent once: the stream cannot be replayed; see `send_once`).
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
        scopes: &[String],
    ) -> Result<Response<ureq::Body>> {
        let mut answered_challenge = false;
        let mut attempt = 0;
        loop {
            let replayable = body.replayable();
            let can_retry = replayable && attempt + 1 < MAX_ATTEMPTS;
            let resp = match self.send_once(method.clone(), url, headers, &mut body, scopes) {
                Ok(r) => r,
                Err(f) if can_retry && f.transient => {
                    std::thread::sleep(backoff(attempt, None));
                    attempt += 1;
                    continue;
                }
                Err(f) => return Err(f.error),
            };
            if resp.status() == StatusCode::UNAUTHORIZED && replayable && !answered_challenge {
                // First contact on this scope set, or an expired token: take the challenge
                // the registry sends now and try once more.
                if let Some(c) = header(&resp, "www-authenticate").and_then(Challenge::parse) {
                    let mut state = self.auth.lock().expect("auth lock");
                    state.tokens.remove(&scopes.join(" "));
                    state.challenge = Some(c);
                    drop(state);
                    answered_challenge = true;
                    continue;
                }
            }
            if can_retry && retry_status(resp.status()) {
                std::thread::sleep(backoff(attempt, Some(&resp)));
                attempt += 1;
                continue;
            }
            return Ok(resp);
        }
    }

    /// One try, no retry: for streamed uploads, whose caller restarts the whole upload.
    pub fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &mut Body<'_>,
        scopes: &[String],
    ) -> std::result::Result<Response<ureq::Body>, SendFailure> {
        let fatal = |error: Error| SendFailure {
            error,
            transient: false,
        };
        let mut b = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = self.authorization(scopes).map_err(fatal)? {
            b = b.header("authorization", a);
        }
        let built = |e: http::Error| fatal(self.error_msg(e.to_string()));
        let result = match body {
            Body::Empty => self.agent.run(b.body(&[][..]).map_err(built)?),
            Body::Bytes(bytes) => self.agent.run(
                b.header("content-length", bytes.len().to_string())
                    .body(*bytes)
                    .map_err(built)?,
            ),
            Body::Stream { reader, size } => self.agent.run(
                b.header("content-length", size.to_string())
                    .body(ureq::SendBody::from_reader(*reader))
                    .map_err(built)?,
            ),
        };
        match result {
            Ok(r) if retry_status(r.status()) && !body.replayable() => {
                let status = r.status();
                Err(SendFailure {
                    error: self.status_error(&format!("{method} {}", strip_query(url)), r),
                    transient: retry_status(status),
                })
            }
            Ok(r) => Ok(r),
            Err(e) => Err(SendFailure {
                transient: transient(&e),
                error: self.error_msg(format!("{method} {}: {}", strip_query(url), describe(e))),
            }),
        }
    }

    pub fn error_msg(&self, message: String) -> Error {
        Error::Registry {
            reference: self.reference.clone(),
            message,
        }
    }

    /// "WHAT: registry answered 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)".
    pub fn status_error(&self, what: &str, resp: Response<ureq::Body>) -> Error {
        self.error_msg(format!("{what}: {}", answer(resp)))
    }
}

/// The status and, from the distribution error body, the first error's code and message.
pub fn answer(resp: Response<ureq::Body>) -> String {
    let status = resp.status();
    let auth_hint = if status == StatusCode::UNAUTHORIZED {
        " (check the credentials: --creds, --authfile or the auth files)"
    } else {
        ""
    };
    let body = read_small(resp, 64 << 10).unwrap_or_default();
    let detail = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("errors")?.as_array()?.first().cloned())
        .map(|e| {
            let code = e.get("code").and_then(Value::as_str).unwrap_or("");
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
            format!(" ({code}: {msg})")
        })
        .unwrap_or_default();
    format!("registry answered {status}{detail}{auth_hint}")
}

/// The registry's `?_state=` tokens and our digests make URLs long and say nothing to a person.
fn strip_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(u, _)| u)
}

/// A transport error as one line (ureq's own wording, which never includes headers).
pub fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::HostNotFound => "host not found (DNS resolution failed)".to_string(),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(0, None), FIRST_BACKOFF);
        assert_eq!(backoff(1, None), FIRST_BACKOFF * 2);
        assert_eq!(backoff(10, None), MAX_BACKOFF);
    }

    #[test]
    fn transient_failures_are_retried_others_not() {
        assert!(retry_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(retry_status(StatusCode::BAD_GATEWAY));
        assert!(!retry_status(StatusCode::NOT_FOUND));
        assert!(!retry_status(StatusCode::UNAUTHORIZED));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(transient(&ureq::Error::Io(reset)));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(!transient(&ureq::Error::Io(refused)));
        assert!(!transient(&ureq::Error::HostNotFound));
    }

    #[test]
    fn docker_hub_api_host() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
