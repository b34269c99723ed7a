//! A small blocking client for the distribution API on ureq: scheme detection (skopeo's
//! `--tls-verify=false` fallback to plain HTTP), the auth handshake (Basic, or Bearer tokens per
//! scope set), bounded retries of transient failures, and error messages that carry the
//! registry's status and error code.
//!
//! Blocking suits the code base: operations are synchronous and parallel across blobs with
//! rayon, one request per thread; an async client would need a runtime for nothing.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::http::{self, Method, Response, StatusCode};

use super::auth::{self, Challenge, Credentials};
use super::body;
use super::secret::{shown_url, Secrets};
use crate::error::{Error, RegistryAnswer, Result};
use crate::transport::RegistryOptions;

/// Attempts per request when the failure is transient (connection reset, 429, 5xx).
const MAX_ATTEMPTS: u32 = 4;
/// First retry delay; doubled on each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait a `Retry-After` header can impose on us.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Error bodies and token answers are small; read at most this much of them.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// The `Accept` header of manifest requests: every index and manifest type ocipatch reads.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How long one request may take, end to end: connection, request, answer and its whole body.
/// ureq's per-read timeout restarts with every byte, so a registry sending one byte every few
/// seconds would otherwise hold a run forever; this budget does not restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// The whole budget of a request that moves no blob (ping, token, manifest, HEAD, mount),
    /// and the fixed part of one that does.
    pub request: Duration,
    /// The slowest average transfer accepted, in bytes per second: a blob of N bytes gets
    /// `request + N / min_rate`.
    pub min_rate: u64,
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines {
            request: Duration::from_secs(120),
            min_rate: 64 << 10,
        }
    }
}

impl Deadlines {
    /// The budget of a request that moves `bytes` bytes (0 for one that moves no blob).
    pub fn for_bytes(&self, bytes: u64) -> Duration {
        let transfer = Duration::from_secs_f64(bytes as f64 / self.min_rate.max(1) as f64);
        self.request.saturating_add(transfer)
    }
}

/// A request body: none, bytes we hold (replayable, so retried), or a stream (sent once).
pub enum Body<'a> {
    /// No body.
    Empty,
    /// Bytes in memory: a failed attempt can be retried.
    Bytes(&'a [u8]),
    /// A stream of `size` bytes: sent once, never retried.
    Stream {
        /// The bytes to send.
        reader: &'a mut dyn Read,
        /// How many bytes `reader` yields (the `Content-Length`).
        size: u64,
    },
}

impl Body<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Body::Stream { .. })
    }
}

/// A failed request, and whether this request may be tried again: [`Error::is_temporary`] of
/// its own failure (connection reset, 429, 5xx), never for a failure that was retried already
/// (a token request) or is not the registry's (a source blob that does not match).
pub struct SendFailure {
    /// What went wrong, naming the reference (boxed: a failure is rare, the `Result` common).
    pub error: Box<Error>,
    /// Whether trying again may help.
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

/// The shared slow-down of one registry: a 429 or 503 makes every request of the run to that
/// registry wait, instead of each worker hammering it on its own schedule. Consecutive
/// throttling answers double the pause (up to `MAX_BACKOFF`); any other answer resets it.
#[derive(Debug)]
struct Throttle {
    state: Mutex<(Option<Instant>, u32)>,
}

impl Throttle {
    fn new() -> Throttle {
        Throttle {
            state: Mutex::new((None, 0)),
        }
    }

    /// The registry said "too many requests" or "unavailable" at `now`; it asked for `asked`
    /// (its `Retry-After`), if anything.
    fn slow_down(&self, now: Instant, asked: Option<Duration>) {
        let mut s = self.state.lock().expect("throttle lock");
        let pause = asked
            .unwrap_or(FIRST_BACKOFF * 2u32.saturating_pow(s.1.min(16)))
            .min(MAX_BACKOFF);
        s.1 = s.1.saturating_add(1);
        let until = now + pause;
        s.0 = Some(s.0.map_or(until, |u| u.max(until)));
    }

    /// The registry answered normally: the streak of throttling answers is over (a pause
    /// already announced still runs out).
    fn answered(&self) {
        self.state.lock().expect("throttle lock").1 = 0;
    }

    /// How long a request about to be sent at `now` must wait.
    fn wait_at(&self, now: Instant) -> Duration {
        let s = self.state.lock().expect("throttle lock");
        s.0.map_or(Duration::ZERO, |u| u.saturating_duration_since(now))
    }
}

/// One registry as this run reaches it: one connection pool (ureq reuses connections and TLS
/// sessions), the scheme found by the one ping, the auth challenge and the tokens per scope
/// set, and the shared throttle. Every reference to the same registry with the same
/// credentials shares it (see `Session`).
struct Connection {
    agent: ureq::Agent,
    host: String,
    /// `https://HOST` or, with `--tls-verify=false` and no TLS there, `http://HOST`.
    base: String,
    creds: Option<Credentials>,
    /// `creds` and every token issued: what no message of this connection may show.
    secrets: Secrets,
    auth: Mutex<AuthState>,
    deadlines: Deadlines,
    throttle: Throttle,
    /// The registry answered a referrers request without the API (404/400/405): later
    /// listings go to the referrers tag directly, one request fewer per subject.
    no_referrers_api: std::sync::atomic::AtomicBool,
}

/// What the registry clients of one run share: connections by registry (so each registry is
/// pinged once and each token scope fetched once per run), and request counts. Cloning shares
/// everything; `counted` shares the connections with a fresh count (one per fleet image).
#[derive(Clone, Default)]
pub struct Session {
    connections: Arc<Mutex<HashMap<String, Arc<Connection>>>>,
    total: Arc<AtomicU64>,
    counter: Arc<AtomicU64>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("requests", &self.requests())
            .field("total_requests", &self.total_requests())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The same connections, with a request count of its own.
    pub fn counted(&self) -> Session {
        Session {
            connections: self.connections.clone(),
            total: self.total.clone(),
            counter: Arc::default(),
        }
    }

    /// HTTP requests sent by clients opened with this session (or its clones).
    pub fn requests(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }

    /// HTTP requests sent by every client of the run.
    pub fn total_requests(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.counter.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }
}

/// One registry, as one reference sees it (the reference names every error).
pub struct Client {
    conn: Arc<Connection>,
    reference: String,
    session: Session,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("reference", &self.reference)
            .field("base", &self.conn.base)
            .field("creds", &self.conn.creds)
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
        // The request's whole budget is spent: trying again would multiply the deadline the
        // user set. A stalled connect or read within it may still be a passing fault.
        ureq::Error::Timeout(ureq::Timeout::Global) => false,
        ureq::Error::Timeout(_) => true,
        _ => false,
    }
}

fn retry_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// "Too many requests" and "service unavailable": the registry asks the whole run to slow
/// down (see `Throttle`).
fn throttling(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::SERVICE_UNAVAILABLE
}

/// A `Retry-After` in seconds.
fn retry_after(resp: &Response<ureq::Body>) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn backoff(attempt: u32, resp: Option<&Response<ureq::Body>>) -> Duration {
    let asked = resp.and_then(retry_after);
    asked
        .unwrap_or(FIRST_BACKOFF * 2u32.pow(attempt))
        .min(MAX_BACKOFF)
}

/// The value of header `name`, if present and ASCII.
pub fn header<'r>(resp: &'r Response<ureq::Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The origin of a URL (scheme, host, port with the scheme's default made explicit), the unit
/// credentials are scoped to.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some((
        url.scheme().to_string(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
    ))
}

/// Whether two URLs have the same origin (an unparsable one has none).
fn same_origin(a: &str, b: &str) -> bool {
    match (origin(a), origin(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Reads at most `limit` bytes of a response body and drops the rest (error bodies: only
/// their first error is shown).
pub fn read_small(resp: Response<ureq::Body>, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.into_body()
        .into_reader()
        .take(limit)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// A registry error without an answer (no status), its message scrubbed of `secrets`.
fn unanswered(reference: &str, secrets: &Secrets, message: &str, transient: bool) -> Error {
    Error::Registry {
        reference: reference.to_string(),
        message: secrets.scrub(message),
        status: None,
        code: None,
        detail: None,
        transient,
    }
}

impl Connection {
    fn open(
        reference: &str,
        host: &str,
        creds: Option<Credentials>,
        opts: &RegistryOptions,
        session: &Session,
    ) -> Result<Connection> {
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
            // Already ureq's default, stated because it is a rule we rely on: a redirect
            // (blob GETs go to storage) never carries our Authorization header anywhere, as
            // Go's net/http (docker, containerd) does not carry it to another host.
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
            // Redirects are followed by `send_expecting`, which checks where they go (ureq
            // would resolve `file:///etc/passwd` as a path on the registry).
            .max_redirects(0)
            // A fleet keeps many requests in flight to one registry: keep that many
            // connections (and their TLS sessions) for reuse.
            .max_idle_connections(256)
            .max_idle_connections_per_host(128)
            .user_agent(concat!("ocipatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let api = api_host(host);
        let mut conn = Connection {
            agent,
            host: host.to_string(),
            base: format!("https://{api}"),
            secrets: Secrets::new(creds.as_ref()),
            creds,
            auth: Mutex::new(AuthState {
                challenge: None,
                tokens: HashMap::new(),
            }),
            deadlines: opts.deadlines,
            throttle: Throttle::new(),
            no_referrers_api: std::sync::atomic::AtomicBool::new(false),
        };
        let https_err = match conn.ping(session) {
            Ok(()) => return Ok(conn),
            Err(e) => e,
        };
        if opts.tls_verify {
            let hint = if https_err.tls {
                " (for a plain-HTTP or self-signed registry pass --tls-verify=false)"
            } else {
                ""
            };
            return Err(unanswered(
                reference,
                &conn.secrets,
                &format!(
                    "cannot reach registry {host} over HTTPS: {}{hint}",
                    https_err.message
                ),
                false,
            ));
        }
        let https_err = https_err.message;
        conn.base = format!("http://{api}");
        if let Err(http_err) = conn.ping(session) {
            return Err(unanswered(
                reference,
                &conn.secrets,
                &format!(
                    "cannot reach registry {host}: HTTPS: {https_err}; HTTP: {}",
                    http_err.message
                ),
                false,
            ));
        }
        Ok(conn)
    }

    fn ping(&self, session: &Session) -> std::result::Result<(), PingError> {
        let req = http::Request::get(format!("{}/v2/", self.base))
            .body(())
            .map_err(|e| PingError {
                message: e.to_string(),
                tls: false,
            })?;
        let resp = self.run(session, req, 0).map_err(|e| PingError {
            // rustls reports a non-TLS peer or a bad certificate as invalid data.
            tls: matches!(&e, ureq::Error::Tls(_))
                || matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData),
            message: self.describe(e, 0),
        })?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = header(&resp, "www-authenticate").and_then(Challenge::parse);
            self.auth.lock().expect("auth lock").challenge = challenge;
        }
        Ok(())
    }

    /// Runs one request under its deadline (see `Deadlines`), `bytes` being the size of the
    /// blob it moves, either way. ureq enforces the budget across redirects and while the
    /// body is read.
    fn run<B: ureq::AsSendBody>(
        &self,
        session: &Session,
        req: http::Request<B>,
        bytes: u64,
    ) -> std::result::Result<Response<ureq::Body>, ureq::Error> {
        let req = self
            .agent
            .configure_request(req)
            .timeout_global(Some(self.deadlines.for_bytes(bytes)))
            .build();
        session.count();
        self.agent.run(req)
    }

    /// A transport error as one line; a spent deadline says which one.
    fn describe(&self, e: ureq::Error, bytes: u64) -> String {
        match e {
            ureq::Error::Timeout(ureq::Timeout::Global) => {
                body::deadline_message(self.deadlines.for_bytes(bytes))
            }
            other => describe(other),
        }
    }
}

impl Client {
    /// A client for `reference` on `host`. The first client of a run for a registry (and
    /// credentials) finds how to talk to it (HTTPS, or HTTP when TLS is not verified, as skopeo
    /// does) and what auth it asks for, with one `GET /v2/`; the others share that connection.
    pub fn connect(
        reference: &str,
        host: &str,
        repository: &str,
        opts: &RegistryOptions,
    ) -> Result<Client> {
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => auth::lookup(
                &auth::auth_file_candidates(opts.authfile.as_deref()),
                host,
                repository,
            )
            .map_err(|source| Error::Credentials {
                reference: reference.to_string(),
                source,
            })?,
        };
        let key = format!(
            "{host}\0{}\0{:?}\0{}",
            opts.tls_verify,
            opts.deadlines,
            creds
                .as_ref()
                .map(|c| format!("{}\0{}", c.username, c.password))
                .unwrap_or_default()
        );
        let session = opts.session.clone();
        // Held while the first client pings: the others wait for its answer instead of
        // pinging too.
        let mut pool = session.connections.lock().expect("connection pool lock");
        if let Some(conn) = pool.get(&key) {
            return Ok(Client {
                conn: conn.clone(),
                reference: reference.to_string(),
                session: session.clone(),
            });
        }
        let conn = Connection::open(reference, host, creds, opts, &session)?;
        let conn = Arc::new(conn);
        pool.insert(key, conn.clone());
        drop(pool);
        Ok(Client {
            conn,
            reference: reference.to_string(),
            session,
        })
    }

    /// The deadline of a request moving `bytes` bytes.
    pub fn deadline(&self, bytes: u64) -> Duration {
        self.conn.deadlines.for_bytes(bytes)
    }

    /// A transport error as one line; a spent deadline says which one.
    pub fn describe(&self, e: ureq::Error, bytes: u64) -> String {
        self.conn.describe(e, bytes)
    }

    /// One request under its deadline, counted in this client's session.
    fn run<B: ureq::AsSendBody>(
        &self,
        req: http::Request<B>,
        bytes: u64,
    ) -> std::result::Result<Response<ureq::Body>, ureq::Error> {
        self.conn.run(&self.session, req, bytes)
    }

    /// Whether `url` is on the registry's own origin: the only place its credentials and
    /// tokens go (apart from Basic credentials to the token realm it names).
    ///
    /// What docker and containerd do, read in their sources: distribution's client authorizer
    /// looks up challenges by the request's scheme + host + `/v2/` and adds no header to a
    /// URL whose endpoint never challenged; containerd keys its auth handlers by the request's
    /// host, and its pusher drops the authorizer when an upload `Location` changes the host
    /// or scheme. Both send the Basic credentials to the realm of a Bearer challenge, wherever
    /// it is (Docker Hub's realm is auth.docker.io), to get a token.
    fn is_registry(&self, url: &str) -> bool {
        same_origin(url, &self.conn.base)
    }

    /// The reference every error of this client names.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The registry host (with port, if any).
    pub fn host(&self) -> &str {
        &self.conn.host
    }

    /// Whether this run has seen the registry answer without the referrers API.
    pub fn lacks_referrers_api(&self) -> bool {
        self.conn
            .no_referrers_api
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Notes that the registry has no referrers API (for the rest of the run).
    pub fn note_no_referrers_api(&self) {
        self.conn
            .no_referrers_api
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// `BASE/v2/REPO/...` for a path below the repository.
    pub fn url(&self, repository: &str, path: &str) -> String {
        format!("{}/v2/{repository}/{path}", self.conn.base)
    }

    /// Resolves an upload `Location` (absolute, or relative to the registry), as a browser
    /// resolves a link (RFC 3986); one that does not parse is used as the registry gave it.
    pub fn resolve(&self, location: &str) -> String {
        url::Url::parse(&format!("{}/", self.conn.base))
            .and_then(|base| base.join(location))
            .map_or_else(|_| location.to_string(), String::from)
    }

    /// The `Authorization` header for `scopes`, fetching a token when the registry wants one.
    fn authorization(&self, scopes: &[String]) -> Result<Option<String>> {
        let mut state = self.conn.auth.lock().expect("auth lock");
        let Some(challenge) = state.challenge.clone() else {
            return Ok(None);
        };
        if challenge.is_basic() {
            return Ok(self.conn.creds.as_ref().map(Credentials::basic_header));
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
                self.conn.host
            ))
        })?;
        // The realm is the registry's text, and its query may carry a key: shown without it.
        let shown_realm = shown_url(realm);
        if let Err(why) = realm_may_be_asked(realm, &self.conn.base, self.conn.creds.is_some()) {
            return Err(self.error_msg(format!(
                "registry {} names the token realm {shown_realm:?}: {why}",
                self.conn.host
            )));
        }
        // What the registry put in the realm's query, a server may echo: a secret too.
        self.conn.secrets.add_query_of(realm);
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
            if let Some(c) = &self.conn.creds {
                b = b.header("authorization", c.basic_header());
            }
            let req = b.body(()).map_err(|e| self.error_msg(e.to_string()))?;
            match self.run(req, 0) {
                Err(e) if transient(&e) && attempt + 1 < MAX_ATTEMPTS => {
                    std::thread::sleep(backoff(attempt, None));
                }
                Err(e) => {
                    return Err(self.error_msg(format!(
                        "cannot get a token from {shown_realm}: {}",
                        self.describe(e, 0)
                    )))
                }
                Ok(r) if retry_status(r.status()) && attempt + 1 < MAX_ATTEMPTS => {
                    std::thread::sleep(backoff(attempt, Some(&r)));
                    last = Some(r.status());
                }
                Ok(r) if r.status().is_success() => {
                    let body = body::read_limited(
                        r,
                        MAX_SMALL_BODY,
                        format!("the answer of token server {shown_realm}"),
                        self.deadline(0),
                    )
                    .map_err(|e| self.error_msg(format!("cannot read the token: {e}")))?;
                    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    // Every token in the answer is a secret from now on, used or not.
                    for key in ["token", "access_token", "refresh_token"] {
                        if let Some(t) = json.get(key).and_then(Value::as_str) {
                            self.conn.secrets.add(t);
                        }
                    }
                    return json
                        .get("token")
                        .or_else(|| json.get("access_token"))
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| {
                            self.error_msg(format!("the token server {shown_realm} sent no token"))
                        });
                }
                Ok(r) => {
                    let what = if self.conn.creds.is_some() {
                        "authentication failed"
                    } else {
                        "authentication required (no credentials: use --creds or an auth file)"
                    };
                    return Err(
                        self.status_error(&format!("{what}: token server {shown_realm}"), r)
                    );
                }
            }
        }
        Err(self.error_msg(format!(
            "token server {shown_realm} kept failing (last status {})",
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
        body: Body<'_>,
        scopes: &[String],
    ) -> Result<Response<ureq::Body>> {
        self.send_expecting(method, url, headers, body, scopes, 0)
    }

    /// `send`, for a request whose answer is a blob of `expected` bytes: its deadline grows
    /// with the size (see `Deadlines`).
    pub fn send_expecting(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        scopes: &[String],
        expected: u64,
    ) -> Result<Response<ureq::Body>> {
        if !matches!(method, Method::GET | Method::HEAD) {
            return self.send_expecting_at(method, url, headers, body, scopes, expected);
        }
        // GET and HEAD follow redirects (blob GETs go to storage), at most MAX_REDIRECTS, only
        // to http(s) URLs and never from https down to http. Credentials stay with the registry
        // (`send_once` adds them only for its origin).
        let mut url = url.to_string();
        for hop in 0..=MAX_REDIRECTS {
            // A redirected request carries no credentials, even to the registry's own host:
            // pre-signed storage URLs refuse them (ureq's and Go's rule for other hosts).
            let resp = if hop == 0 {
                self.send_expecting_at(
                    method.clone(),
                    &url,
                    headers,
                    Body::Empty,
                    scopes,
                    expected,
                )?
            } else {
                self.send_plain(method.clone(), &url, headers, expected)?
            };
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let Some(location) = header(&resp, "location") else {
                return Ok(resp);
            };
            let next = redirect_target(&url, location).map_err(|why| {
                self.error_msg(format!(
                    "{method} {}: refused the registry's redirect to {:?}: {why}",
                    shown_url(&url),
                    shown_url(location)
                ))
            })?;
            // A pre-signed storage URL's signature is a credential for that blob.
            self.conn.secrets.add_query_of(&next);
            url = next;
        }
        Err(self.error_msg(format!(
            "{method} {}: more than {MAX_REDIRECTS} redirects",
            shown_url(&url)
        )))
    }

    /// One request without credentials (a redirect's target), retried on transient failures.
    fn send_plain(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        expected: u64,
    ) -> Result<Response<ureq::Body>> {
        let mut attempt = 0;
        loop {
            let mut b = http::Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            let req = b.body(&[][..]).map_err(|e| self.error_msg(e.to_string()))?;
            match self.run(req, expected) {
                Ok(r) if retry_status(r.status()) && attempt + 1 < MAX_ATTEMPTS => {
                    std::thread::sleep(backoff(attempt, Some(&r)));
                }
                Ok(r) => return Ok(r),
                Err(e) if transient(&e) && attempt + 1 < MAX_ATTEMPTS => {
                    std::thread::sleep(backoff(attempt, None));
                }
                Err(e) => {
                    return Err(self.error_msg(format!(
                        "{method} {}: {}",
                        shown_url(url),
                        self.describe(e, expected)
                    )))
                }
            }
            attempt += 1;
        }
    }

    fn send_expecting_at(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        mut body: Body<'_>,
        scopes: &[String],
        expected: u64,
    ) -> Result<Response<ureq::Body>> {
        let mut answered_challenge = false;
        let mut attempt = 0;
        loop {
            let replayable = body.replayable();
            let can_retry = replayable && attempt + 1 < MAX_ATTEMPTS;
            let resp =
                match self.send_once(method.clone(), url, headers, &mut body, scopes, expected) {
                    Ok(r) => r,
                    Err(f) if can_retry && f.transient => {
                        std::thread::sleep(backoff(attempt, None));
                        attempt += 1;
                        continue;
                    }
                    Err(f) => return Err(*f.error),
                };
            // Only the registry's own challenge counts: another host (an upload Location)
            // gets no credentials from us, so its 401 is just an answer.
            if resp.status() == StatusCode::UNAUTHORIZED
                && replayable
                && !answered_challenge
                && self.is_registry(url)
            {
                // First contact on this scope set, or an expired token: take the challenge
                // the registry sends now and try once more.
                if let Some(c) = header(&resp, "www-authenticate").and_then(Challenge::parse) {
                    let mut state = self.conn.auth.lock().expect("auth lock");
                    state.tokens.remove(&scopes.join(" "));
                    state.challenge = Some(c);
                    drop(state);
                    answered_challenge = true;
                    continue;
                }
            }
            if can_retry && retry_status(resp.status()) {
                // 429/503: the shared throttle (set by `send_once`) makes the next try wait.
                if !throttling(resp.status()) {
                    std::thread::sleep(backoff(attempt, Some(&resp)));
                }
                attempt += 1;
                continue;
            }
            return Ok(resp);
        }
    }

    /// One try, no retry: for streamed uploads, whose caller restarts the whole upload.
    /// `expected`: the size of the blob the answer carries (0 if none); a streamed body's
    /// size counts instead when it is larger.
    pub fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &mut Body<'_>,
        scopes: &[String],
        expected: u64,
    ) -> std::result::Result<Response<ureq::Body>, SendFailure> {
        let fatal = |error: Error| SendFailure {
            error: Box::new(error),
            transient: false,
        };
        let mut b = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        // Credentials and tokens go to the registry's origin only, never to an upload
        // Location on another host, port or scheme (see `is_registry`).
        if self.is_registry(url) {
            if let Some(a) = self.authorization(scopes).map_err(fatal)? {
                b = b.header("authorization", a);
            }
        }
        let built = |e: http::Error| fatal(self.error_msg(e.to_string()));
        // A registry that said "slow down" to any worker of this run is given its pause by all.
        if self.is_registry(url) {
            let wait = self.conn.throttle.wait_at(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        let bytes = match body {
            Body::Stream { size, .. } => expected.max(*size),
            _ => expected,
        };
        let result = match body {
            Body::Empty => self.run(b.body(&[][..]).map_err(built)?, bytes),
            Body::Bytes(data) => self.run(
                b.header("content-length", data.len().to_string())
                    .body(*data)
                    .map_err(built)?,
                bytes,
            ),
            Body::Stream { reader, size } => self.run(
                b.header("content-length", size.to_string())
                    .body(ureq::SendBody::from_reader(*reader))
                    .map_err(built)?,
                bytes,
            ),
        };
        if let Ok(r) = &result {
            if self.is_registry(url) {
                if throttling(r.status()) {
                    self.conn.throttle.slow_down(Instant::now(), retry_after(r));
                } else {
                    self.conn.throttle.answered();
                }
            }
        }
        let failure = |error: Error| SendFailure {
            transient: error.is_temporary(),
            error: Box::new(error),
        };
        match result {
            Ok(r) if retry_status(r.status()) && !body.replayable() => Err(failure(
                self.status_error(&format!("{method} {}", shown_url(url)), r),
            )),
            Ok(r) => Ok(r),
            Err(e) => {
                let may_pass = transient(&e);
                let message = format!("{method} {}: {}", shown_url(url), self.describe(e, bytes));
                Err(failure(unanswered(
                    &self.reference,
                    &self.conn.secrets,
                    &message,
                    may_pass,
                )))
            }
        }
    }

    /// A registry error without an answer (no status), naming this client's reference. The
    /// message is scrubbed of this connection's secrets (see `Secrets::scrub`): it may quote
    /// what the registry said.
    pub fn error_msg(&self, message: String) -> Error {
        unanswered(&self.reference, &self.conn.secrets, &message, false)
    }

    /// "WHAT: registry answered 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)", with the
    /// status, code and message typed ([`Error::Registry`]).
    pub fn status_error(&self, what: &str, resp: Response<ureq::Body>) -> Error {
        let answer = self.answer(resp);
        Error::Registry {
            reference: self.reference.clone(),
            message: self.conn.secrets.scrub(what),
            status: Some(answer.status),
            code: answer.code,
            detail: answer.message,
            transient: false,
        }
    }

    /// The registry's answer (status, first error code and message), scrubbed of this
    /// connection's secrets: some registries echo the request, its `Authorization` header
    /// included.
    pub fn answer(&self, resp: Response<ureq::Body>) -> RegistryAnswer {
        let a = answer(resp);
        let scrub = |s: Option<String>| s.map(|s| self.conn.secrets.scrub(&s));
        RegistryAnswer {
            status: a.status,
            code: scrub(a.code),
            message: scrub(a.message),
        }
    }
}

/// The status and, from the distribution error body, the first error's code and message: the
/// registry's own text, unscrubbed (callers go through `Client::answer` or `status_error`).
fn answer(resp: Response<ureq::Body>) -> RegistryAnswer {
    let status = resp.status().as_u16();
    let body = read_small(resp, 64 << 10).unwrap_or_default();
    let first = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("errors")?.as_array()?.first().cloned());
    let field = |key: &str| {
        first
            .as_ref()
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    RegistryAnswer {
        status,
        code: field("code"),
        message: field("message"),
    }
}

/// A transport error as one line (ureq's own wording, which never includes headers), except
/// for the errors whose wording quotes the whole URL, query and userinfo included: the caller
/// names the URL as `shown_url` shows it.
pub fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::HostNotFound => "host not found (DNS resolution failed)".to_string(),
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::BadUri(_) => "not a usable URL".to_string(),
        ureq::Error::RequireHttpsOnly(_) => "only https is allowed".to_string(),
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
    fn credentials_never_go_to_a_plain_http_realm_behind_https() {
        let ok = |realm, base, creds| realm_may_be_asked(realm, base, creds).is_ok();
        assert!(ok(
            "https://auth.docker.io/token",
            "https://registry-1.docker.io",
            true
        ));
        assert!(ok(
            "http://127.0.0.1:5001/token",
            "http://127.0.0.1:5000",
            true
        ));
        assert!(ok("HTTPS://auth.test/token", "http://r.test", true));
        // Anonymous: nothing of ours crosses in clear text.
        assert!(ok("http://auth.test/token", "https://r.test", false));
        assert!(!ok("http://auth.test/token", "https://r.test", true));
        assert!(!ok("Http://auth.test/token", "HTTPS://r.test", true));
        assert!(!ok("file:///etc/passwd", "http://r.test", false));
        assert!(!ok("auth.test/token", "https://r.test", true));
    }

    #[test]
    fn credentials_are_scoped_to_scheme_host_and_port() {
        assert!(same_origin(
            "https://r.test/v2/a/blobs/uploads/x?_state=1",
            "https://r.test"
        ));
        assert!(same_origin("https://R.test:443/v2/", "https://r.test"));
        assert!(same_origin("http://127.0.0.1:80/x", "http://127.0.0.1"));
        assert!(!same_origin(
            "http://127.0.0.1:5001/upload",
            "http://127.0.0.1:5000"
        ));
        assert!(!same_origin("http://r.test/v2/", "https://r.test"));
        assert!(!same_origin("https://storage.test/v2/", "https://r.test"));
        assert!(!same_origin("https://r.test.evil/v2/", "https://r.test"));
        assert!(!same_origin("not a url", "https://r.test"));
    }

    #[test]
    fn blob_deadlines_grow_with_the_size() {
        let d = Deadlines {
            request: Duration::from_secs(10),
            min_rate: 1000,
        };
        assert_eq!(d.for_bytes(0), Duration::from_secs(10));
        assert_eq!(d.for_bytes(5000), Duration::from_secs(15));
        // A spent budget is final: retrying would multiply the deadline.
        assert!(!transient(&ureq::Error::Timeout(ureq::Timeout::Global)));
        assert!(transient(&ureq::Error::Timeout(ureq::Timeout::Connect)));
    }

    #[test]
    fn a_throttled_registry_makes_every_request_wait_and_the_pause_grows() {
        let t = Throttle::new();
        let now = Instant::now();
        assert_eq!(t.wait_at(now), Duration::ZERO);
        // One worker hears 429: every other request waits the pause out.
        t.slow_down(now, None);
        assert_eq!(t.wait_at(now), FIRST_BACKOFF);
        assert_eq!(
            t.wait_at(now + Duration::from_millis(50)),
            FIRST_BACKOFF - Duration::from_millis(50)
        );
        assert_eq!(t.wait_at(now + FIRST_BACKOFF), Duration::ZERO);
        // Consecutive throttling answers double it; a shorter pause never cuts a longer one.
        t.slow_down(now, None);
        assert_eq!(t.wait_at(now), FIRST_BACKOFF * 2);
        t.slow_down(now, Some(Duration::from_millis(1)));
        assert_eq!(t.wait_at(now), FIRST_BACKOFF * 2);
        // Retry-After is obeyed up to the cap.
        t.slow_down(now, Some(Duration::from_secs(3600)));
        assert_eq!(t.wait_at(now), MAX_BACKOFF);
        // A normal answer ends the streak: the next pause starts small again.
        t.answered();
        let later = now + MAX_BACKOFF;
        t.slow_down(later, None);
        assert_eq!(t.wait_at(later), FIRST_BACKOFF);
        assert!(throttling(StatusCode::TOO_MANY_REQUESTS));
        assert!(throttling(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!throttling(StatusCode::BAD_GATEWAY));
    }

    #[test]
    fn transport_errors_that_quote_a_url_are_reworded() {
        let url = "http://u:s3cr3t@r.test/x?sig=s3cr3t";
        for e in [
            ureq::Error::BadUri(format!("{url} is missing host")),
            ureq::Error::RequireHttpsOnly(url.into()),
        ] {
            let shown = describe(e);
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
    }

    #[test]
    fn docker_hub_api_host() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}

/// Whether a token may be asked of the realm a registry at `base` named: an http(s) URL, and,
/// when the request carries credentials, never plain http behind an https registry (the
/// credentials would cross the network in clear text because of what the registry said).
fn realm_may_be_asked(
    realm: &str,
    base: &str,
    with_credentials: bool,
) -> std::result::Result<(), &'static str> {
    let Some((scheme, _, _)) = origin(realm) else {
        return Err("only an http or https token realm is asked");
    };
    let behind_https = origin(base).is_some_and(|(s, _, _)| s == "https");
    if scheme == "http" && with_credentials && behind_https {
        return Err(
            "a plain-http realm behind an https registry; credentials are not sent in clear text",
        );
    }
    Ok(())
}

/// Redirects followed per request, as Go's net/http (docker, containerd) allows.
const MAX_REDIRECTS: usize = 10;

/// Where a redirect from `from` to `location` goes: an absolute http(s) URL, or a path on the
/// same origin. Any other scheme (`file:`, `ftp:`, `data:`) and a downgrade from https to http
/// are refused.
fn redirect_target(from: &str, location: &str) -> std::result::Result<String, &'static str> {
    let from = url::Url::parse(from).map_err(|_| "the request's own URL does not parse")?;
    let to = from
        .join(location)
        .map_err(|_| "its Location does not parse as a URL")?;
    match (from.scheme(), to.scheme()) {
        ("https", "http") => Err("it downgrades https to plain http"),
        (_, "http" | "https") => Ok(to.into()),
        _ => Err("only http and https redirects are followed"),
    }
}

#[cfg(test)]
mod redirect_tests {
    use super::redirect_target;

    #[test]
    fn redirects_go_to_http_urls_only_and_never_down_from_https() {
        let from = "https://r.example/v2/a/blobs/sha256:ab?x=1";
        assert_eq!(
            redirect_target(from, "https://s3.example/b?sig=1").unwrap(),
            "https://s3.example/b?sig=1"
        );
        assert_eq!(
            redirect_target(from, "/other/path").unwrap(),
            "https://r.example/other/path"
        );
        assert_eq!(
            redirect_target(from, "//cdn.example/x").unwrap(),
            "https://cdn.example/x"
        );
        assert_eq!(
            redirect_target(from, "blob2").unwrap(),
            "https://r.example/v2/a/blobs/blob2"
        );
        assert!(redirect_target(from, "file:///etc/passwd").is_err());
        assert!(redirect_target(from, "FILE:///etc/passwd").is_err());
        assert!(redirect_target(from, "ftp://x/y").is_err());
        assert!(redirect_target(from, "http://plain.example/b").is_err());
        assert_eq!(
            redirect_target("http://127.0.0.1:5000/v2/x", "http://127.0.0.1:5001/y").unwrap(),
            "http://127.0.0.1:5001/y"
        );
    }
}
