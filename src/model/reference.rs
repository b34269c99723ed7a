//! Image references in skopeo's transport syntax.
//!
//! `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG]`,
//! `docker://HOST/REPO[:TAG|@DIGEST]`. As in containers/image, the path ends at the first `:`
//! after the transport, so paths containing `:` are not expressible (skopeo has the same rule).
//!
//! A reference never carries credentials. `docker://user:password@host/repo` is refused (they
//! go in `--creds`, `--authfile` or the auth files), and no message ever shows what may be a
//! password: any `@` that does not start a valid `sha256:` digest is suspicious, and the text
//! between the `:` before it and the `@` is shown as `***` (see [`redact`]). Errors hold the
//! redacted text only.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use super::Digest;

/// Which tag or digest a reference selects inside a layout or archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// `org.opencontainers.image.ref.name` in a layout's index (default `latest`).
    Tag(String),
    /// A manifest or index by digest (`oci:DIR@sha256:…`).
    Digest(Digest),
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Tag(t) => f.write_str(t),
            Selector::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// Where an image lives: the transport and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `oci:DIR[:TAG]`. No selector: the `latest` tag, or the only image of the layout.
    OciLayout {
        /// The layout directory.
        dir: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`) or digest to select.
        selector: Option<Selector>,
    },
    /// `oci-archive:FILE[:TAG]`; no tag means "the only image in the archive".
    OciArchive {
        /// The archive file.
        file: PathBuf,
        /// The `org.opencontainers.image.ref.name` to select.
        tag: Option<String>,
    },
    /// `docker-archive:FILE[:NAME:TAG]`; no name means "the only image in the archive".
    DockerArchive {
        /// The archive file.
        file: PathBuf,
        /// The `NAME:TAG` in the archive's `RepoTags` to select.
        name: Option<String>,
    },
    /// `docker://HOST/REPO[:TAG|@DIGEST]`
    Registry {
        /// The registry host, with its port if one was written (`localhost:5000`).
        host: String,
        /// The repository path, e.g. `library/debian`.
        repository: String,
        /// The tag or digest; `latest` when none was written.
        selector: Selector,
    },
}

/// A parsed reference that remembers how the user wrote it (for messages and `base.name`).
/// `Debug` and `Display` show it as [`redact`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct Reference {
    written: String,
    /// The parsed location.
    pub location: Location,
}

/// A reference that cannot be parsed. It holds the input with what may be a password replaced
/// by `***` (see [`redact`]), never the input itself: it is safe to print, log and put in a
/// report.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}", self.message())]
pub struct ReferenceError {
    input: String,
    reason: String,
    credentials: bool,
    /// The reference the user probably meant (a missing or unknown transport).
    suggestion: Option<String>,
}

impl ReferenceError {
    /// An error about `input` (redacted here: the raw text is not kept), for `reason`, from
    /// which every part of `input` that may be a password is removed too.
    pub fn new(input: &str, reason: &str) -> ReferenceError {
        ReferenceError {
            input: redact(input).into_owned(),
            reason: scrub(reason, input),
            credentials: false,
            suggestion: None,
        }
    }

    /// The message: for a reference without a (known) transport the suggestion first, in a
    /// short line (`did you mean oci:DIR:TAG? ("DIR:TAG" has no transport)`).
    fn message(&self) -> String {
        match &self.suggestion {
            Some(suggestion) => format!("did you mean {suggestion}? ({})", self.reason),
            None => format!("invalid image reference {:?}: {}", self.input, self.reason),
        }
    }

    /// The input, as given, with what may be a password replaced by `***`.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// The reference the user probably meant, for a missing or unknown transport.
    pub fn suggestion(&self) -> Option<&str> {
        self.suggestion.as_deref()
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Whether the reference was refused for carrying credentials (a user name or password
    /// before the registry host).
    pub fn is_credentials(&self) -> bool {
        self.credentials
    }
}

/// Why a registry reference with userinfo is refused, and where credentials go instead.
fn userinfo_reason(with_password: bool) -> String {
    let what = if with_password {
        "a user name and password"
    } else {
        "a user name or token"
    };
    format!(
        "registry references carry no credentials, and this one has {what} before the host; \
pass them with --creds USER:PASSWORD or --authfile FILE (or log in with skopeo login, podman \
login or docker login, whose auth files are read)"
    )
}

impl Reference {
    /// Parses a reference in skopeo's syntax (`oci:`, `oci-archive:`, `docker-archive:`,
    /// `docker://`). The written form is kept for [`Reference`]'s `Display`.
    ///
    /// A `docker://` reference with userinfo (`docker://user:pass@host/repo`,
    /// `docker://token@host/repo`) is refused, its error showing `docker://user:***@host/repo`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let err = |reason: &str| ReferenceError::new(input, reason);
        let (transport, rest) = input.split_once(':').ok_or_else(|| ReferenceError {
            suggestion: Some(suggest_transport(&redact(input))),
            ..err(&format!(
                "{:?} has no transport: oci:, oci-archive:, docker-archive: or docker://",
                redact(input)
            ))
        })?;
        let location = match transport {
            "oci" => {
                let (dir, sel) = split_path(rest).map_err(&err)?;
                let selector = match sel {
                    None => None,
                    Some(s) if s.starts_with("sha256:") => Some(Selector::Digest(
                        s.parse()
                            .map_err(|e: super::digest::DigestParseError| err(e.reason))?,
                    )),
                    Some(s) => Some(Selector::Tag(check_layout_tag(s).map_err(&err)?)),
                };
                Location::OciLayout { dir, selector }
            }
            "oci-archive" => {
                let (file, tag) = split_path(rest).map_err(&err)?;
                let tag = tag.map(|t| check_layout_tag(t).map_err(&err)).transpose()?;
                Location::OciArchive { file, tag }
            }
            "docker-archive" => {
                let (file, name) = split_path(rest).map_err(&err)?;
                if let Some(n) = name {
                    if n.starts_with('@') {
                        return Err(err("docker-archive references by index (@N) are not supported; use NAME:TAG"));
                    }
                    normalise_docker_name(n).map_err(|r| err(&r.to_string()))?;
                }
                Location::DockerArchive {
                    file,
                    name: name.map(str::to_string),
                }
            }
            "docker" => {
                let rest = rest.strip_prefix("//").ok_or_else(|| {
                    err("registry references are written docker://HOST/REPO[:TAG]")
                })?;
                if let Some(with_password) = userinfo(rest) {
                    return Err(ReferenceError {
                        credentials: true,
                        ..err(&userinfo_reason(with_password))
                    });
                }
                parse_registry(rest).map_err(|r| err(&r.to_string()))?
            }
            other => {
                return Err(ReferenceError {
                    suggestion: Some(suggest_transport(&redact(input))),
                    ..err(&format!("unknown transport {other:?}"))
                })
            }
        };
        Ok(Reference {
            written: input.to_string(),
            location,
        })
    }

    /// The reference exactly as the user wrote it. For comparisons: messages use `Display`,
    /// which never shows what may be a password.
    pub fn as_written(&self) -> &str {
        &self.written
    }

    /// The directory or file a local reference names, as written (`None` for a registry).
    pub fn local_path(&self) -> Option<&std::path::Path> {
        match &self.location {
            Location::OciLayout { dir, .. } => Some(dir),
            Location::OciArchive { file, .. } | Location::DockerArchive { file, .. } => Some(file),
            Location::Registry { .. } => None,
        }
    }

    /// Whether the image is in a registry (`docker://`).
    pub fn is_registry(&self) -> bool {
        matches!(self.location, Location::Registry { .. })
    }

    /// Whether the reference is an archive file (`oci-archive:`, `docker-archive:`), which a
    /// writer rewrites whole: one image per archive in a fleet.
    pub fn is_archive(&self) -> bool {
        matches!(
            self.location,
            Location::OciArchive { .. } | Location::DockerArchive { .. }
        )
    }

    /// The registry host and repository, for a registry reference.
    pub fn registry_repository(&self) -> Option<(String, String)> {
        match &self.location {
            Location::Registry {
                host, repository, ..
            } => Some((host.clone(), repository.clone())),
            _ => None,
        }
    }

    /// Where the image is stored, without the tag or digest: two references with the same place
    /// share one blob store (tags of one layout, images of one repository).
    pub fn place(&self) -> String {
        match &self.location {
            Location::OciLayout { dir, .. } => format!("oci:{}", dir.display()),
            Location::OciArchive { file, .. } => format!("oci-archive:{}", file.display()),
            Location::DockerArchive { file, .. } => format!("docker-archive:{}", file.display()),
            Location::Registry {
                host, repository, ..
            } => format!("docker://{host}/{repository}"),
        }
    }

    /// The tag (or digest hex, or `latest`) this reference selects, for `{tag}` in patterns.
    pub fn tag(&self) -> String {
        let sel = |s: &Option<Selector>| match s {
            Some(Selector::Tag(t)) => t.clone(),
            Some(Selector::Digest(d)) => d.hex().to_string(),
            None => "latest".to_string(),
        };
        match &self.location {
            Location::OciLayout { selector, .. } => sel(selector),
            Location::OciArchive { tag, .. } => tag.clone().unwrap_or_else(|| "latest".into()),
            Location::DockerArchive { name, .. } => name
                .as_deref()
                .and_then(|n| n.rsplit_once(':'))
                .map_or_else(|| "latest".into(), |(_, t)| t.to_string()),
            Location::Registry { selector, .. } => sel(&Some(selector.clone())),
        }
    }

    /// The last component of where the image lives (layout directory, archive file stem,
    /// repository), for `{name}` in patterns.
    pub fn name(&self) -> String {
        let file_name = |p: &std::path::Path, stem: bool| {
            let n = if stem { p.file_stem() } else { p.file_name() };
            n.map_or_else(|| "image".to_string(), |n| n.to_string_lossy().into_owned())
        };
        match &self.location {
            Location::OciLayout { dir, .. } => file_name(dir, false),
            Location::OciArchive { file, .. } => file_name(file, true),
            Location::DockerArchive { file, name } => match name
                .as_deref()
                .map(|n| n.rsplit_once(':').map_or(n, |(n, _)| n))
            {
                Some(n) => n.rsplit('/').next().unwrap_or(n).to_string(),
                None => file_name(file, true),
            },
            Location::Registry { repository, .. } => repository
                .rsplit('/')
                .next()
                .unwrap_or(repository)
                .to_string(),
        }
    }

    /// The repository path (registries) or `{name}` otherwise, for `{repo}` in patterns.
    pub fn repo(&self) -> String {
        match &self.location {
            Location::Registry { repository, .. } => repository.clone(),
            _ => self.name(),
        }
    }

    /// A destination from a fleet pattern: `{name}`, `{tag}`, `{repo}` and `{index}` (or `{n}`,
    /// 1-based position) are replaced by this image's values; `{{`/`}}` are literal braces.
    pub fn expand(pattern: &str, image: &Reference, n: usize) -> Result<Reference, ReferenceError> {
        let mut out = String::new();
        let mut rest = pattern;
        while let Some(i) = rest.find(['{', '}']) {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let (value, used) = if tail.starts_with("{{") {
                ("{".to_string(), 2)
            } else if tail.starts_with("}}") {
                ("}".to_string(), 2)
            } else if let Some(end) = tail.find('}').filter(|_| tail.starts_with('{')) {
                let v = match &tail[1..end] {
                    "name" => image.name(),
                    "tag" => image.tag(),
                    "repo" => image.repo(),
                    // `{n}` is kept as a short alias (clap renders `{n}` as a line break in help).
                    "index" | "n" => n.to_string(),
                    other => {
                        return Err(ReferenceError::new(
                            pattern,
                            &format!("unknown placeholder {{{other}}} (known: {{name}}, {{tag}}, {{repo}}, {{index}})"),
                        ))
                    }
                };
                (v, end + 1)
            } else {
                return Err(ReferenceError::new(
                    pattern,
                    "unbalanced brace (write {{ or }} for a literal one)",
                ));
            };
            out.push_str(&value);
            rest = &tail[used..];
        }
        out.push_str(rest);
        Reference::parse(&out)
    }

    /// The name to record in `org.opencontainers.image.base.name`: only for references that
    /// mean the same thing on every machine (a registry's `HOST/REPO:TAG` or `HOST/REPO@DIGEST`,
    /// as builders write it). A layout or archive path means nothing elsewhere, and would make
    /// the same rebase give different digests from different working directories.
    pub fn portable_name(&self) -> Option<String> {
        match &self.location {
            Location::Registry {
                host,
                repository,
                selector,
            } => Some(match selector {
                Selector::Tag(t) => format!("{host}/{repository}:{t}"),
                Selector::Digest(d) => format!("{host}/{repository}@{d}"),
            }),
            _ => None,
        }
    }

    /// Reads an `org.opencontainers.image.base.name` annotation: a reference in our syntax, or
    /// a plain registry name as builders (and [`Reference::portable_name`]) write it:
    /// `docker.io/library/debian:12`, `registry:5000/base@sha256:…`.
    pub fn from_base_name(name: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(name).or_else(|_| Reference::parse(&format!("docker://{name}")))
    }

    /// The transport's name, as in the reference syntax.
    pub fn transport(&self) -> &'static str {
        match self.location {
            Location::OciLayout { .. } => "oci",
            Location::OciArchive { .. } => "oci-archive",
            Location::DockerArchive { .. } => "docker-archive",
            Location::Registry { .. } => "docker",
        }
    }
}

impl Reference {
    /// One spelling per image, for sharding: the same on every machine and however the user
    /// wrote it. Registry references are fully qualified (`alpine` is
    /// `docker://docker.io/library/alpine:latest`); paths are taken as written, minus `.`
    /// components and trailing slashes (a fleet's list names the same paths on every machine).
    pub fn canonical(&self) -> String {
        let path = |p: &std::path::Path| {
            let clean: PathBuf = p
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            clean.display().to_string()
        };
        let sel = |s: &Selector| match s {
            Selector::Tag(t) => format!(":{t}"),
            Selector::Digest(d) => format!("@{d}"),
        };
        match &self.location {
            Location::OciLayout { dir, selector } => format!(
                "oci:{}{}",
                path(dir),
                selector.as_ref().map(sel).unwrap_or_default()
            ),
            Location::OciArchive { file, tag } => format!(
                "oci-archive:{}{}",
                path(file),
                tag.as_ref().map(|t| format!(":{t}")).unwrap_or_default()
            ),
            Location::DockerArchive { file, name } => format!(
                "docker-archive:{}{}",
                path(file),
                name.as_ref()
                    .map(|n| format!(":{}", normalise_docker_name(n).unwrap_or(n.clone())))
                    .unwrap_or_default()
            ),
            Location::Registry {
                host,
                repository,
                selector,
            } => format!("docker://{host}/{repository}{}", sel(selector)),
        }
    }
}

/// `--shard I/N`: the I-th of N parts of a fleet (I from 0, as Kubernetes' JOB_COMPLETION_INDEX),
/// by a hash of each image's canonical reference. Stable across runs, machines and list order,
/// so N processes given the same list take every image exactly once between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part this process takes, from 0 to `count - 1`.
    pub index: u64,
    /// How many parts the fleet is split into. Must be at least 1: [`Shard::holds`] divides by it.
    pub count: u64,
}

impl Shard {
    /// Whether this shard takes `reference`.
    pub fn holds(&self, reference: &Reference) -> bool {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(reference.canonical().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        // A hand-made Shard with count 0 holds nothing (parsing refuses it), never divides by 0.
        self.count != 0 && u64::from_be_bytes(first) % self.count == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A `--shard` that is not `I/N` with `0 <= I < N`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid shard {input:?}: expected I/N with 0 <= I < N, e.g. 0/4")]
pub struct ShardError {
    /// The input, as given.
    pub input: String,
}

impl std::str::FromStr for Shard {
    type Err = ShardError;
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError {
            input: s.to_string(),
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Reference")
            .field(&redact(&self.written))
            .finish()
    }
}

/// The reference as written, except what may be a password (see [`redact`]): the form every
/// message and report shows.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.written))
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Where what may be a password lies in `text`: after the first `:` (past any `scheme://`)
/// and before the last `@` that does not start a valid `sha256:` digest, or the whole userinfo
/// when there is no `:` (a lone token). `None` when every `@` starts a digest, or none is there.
fn secret_span(text: &str) -> Option<Range<usize>> {
    let at = text
        .match_indices('@')
        .map(|(i, _)| i)
        .rev()
        .find(|&i| text[i + 1..].parse::<Digest>().is_err())?;
    let start = text[..at].find("://").map_or(0, |i| i + 3);
    Some(match text[start..at].find(':') {
        Some(colon) => start + colon + 1..at,
        None => start..at,
    })
}

/// `text` with what may be a password replaced by `***`: `docker://user:***@host/repo:tag`,
/// `docker://***@host/repo` (a lone user name may be a token). Any `@` not followed by a valid
/// `sha256:` digest counts, so a password holding `/` or `@` is covered too; text without one
/// comes back unchanged. For every message that quotes a reference or something that may be
/// one (an annotation, a pattern, a command-line argument).
pub fn redact(text: &str) -> Cow<'_, str> {
    match secret_span(text) {
        Some(span) => Cow::Owned(format!("{}***{}", &text[..span.start], &text[span.end..])),
        None => Cow::Borrowed(text),
    }
}

/// The part of `text` that [`redact`] hides, if any: what a message quoting `text` in pieces
/// (or whole) must not contain.
pub fn secret_part(text: &str) -> Option<&str> {
    secret_span(text)
        .map(|s| &text[s])
        .filter(|s| !s.is_empty())
}

/// `message` (about `input`) without any piece of what [`redact`] hides in `input`: the whole
/// secret part, and each of its tails after a `:` (a message may quote a piece that starts
/// after the transport, such as an archive's image name), longest first.
fn scrub(message: &str, input: &str) -> String {
    let Some(secret) = secret_part(input) else {
        return message.to_string();
    };
    let mut out = message.to_string();
    let tails =
        std::iter::once(secret).chain(secret.match_indices(':').map(|(i, _)| &secret[i + 1..]));
    for piece in tails.filter(|p| !p.is_empty()) {
        out = out.replace(piece, "***");
    }
    out
}

/// Whether a registry reference (after `docker://`) has userinfo, and then whether it has a
/// password: `Some(true)` for `user:pass@host/…`, `Some(false)` for `token@host/…`. An `@`
/// before the first `/` is userinfo. After it, the last `@` that starts no valid digest is
/// userinfo too when a `/` follows it (`user:pa/ss@host/repo`: a password may hold a `/`), and
/// otherwise a digest written wrong (`repo@sha256:abc`, `repo@latest`), left to the digest
/// parser.
fn userinfo(rest: &str) -> Option<bool> {
    let host_end = rest.find('/').unwrap_or(rest.len());
    let at = match rest[..host_end].rfind('@') {
        Some(at) => at,
        None => {
            let at = secret_span(rest)?.end;
            if !rest[at + 1..].contains('/') {
                return None;
            }
            at
        }
    };
    Some(rest[..at].contains(':'))
}

fn split_path(rest: &str) -> Result<(PathBuf, Option<&str>), &'static str> {
    let (path, sel) = match rest.split_once(':') {
        Some((p, s)) => (p, Some(s)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err("missing path");
    }
    if sel == Some("") {
        return Err("empty tag after ':'");
    }
    Ok((PathBuf::from(path), sel))
}

/// `org.opencontainers.image.ref.name` values: the image-spec allows a wider set than registry
/// tags (components separated by `.`, `-`, `/`, `:`…); refuse only what cannot be a name.
fn check_layout_tag(tag: &str) -> Result<String, &'static str> {
    if tag.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("tag contains whitespace or control characters");
    }
    Ok(tag.to_string())
}

/// Why a registry reference's name (or a `docker save` image name) is not a Docker name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The digest after `@` does not parse.
    #[error(transparent)]
    Digest(#[from] super::digest::DigestParseError),
    /// A tag with characters a registry tag cannot have.
    #[error("invalid tag {0:?}")]
    Tag(String),
    /// Nothing before the tag or digest.
    #[error("missing repository")]
    MissingRepository,
    /// A repository path with characters a registry does not allow.
    #[error("invalid repository {0:?} (lowercase letters, digits, '.', '_', '-' and '/')")]
    Repository(String),
    /// An archive image named by digest.
    #[error("{0:?}: an archive image is named NAME[:TAG], not by digest")]
    ByDigest(String),
}

/// A `docker save` image name in its full form, as docker compares them: `app:1` is
/// `docker.io/library/app:1`, `example/app` is `docker.io/example/app:latest`. Digests are
/// not names (an archive's `RepoTags` hold tags only).
pub fn normalise_docker_name(name: &str) -> Result<String, NameError> {
    if name.contains('@') {
        return Err(NameError::ByDigest(name.to_string()));
    }
    match parse_registry(name)? {
        Location::Registry {
            host,
            repository,
            selector: Selector::Tag(tag),
        } => Ok(format!("{host}/{repository}:{tag}")),
        _ => unreachable!("a name without @ parses to a tag"),
    }
}

fn is_registry_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Docker reference normalisation, as `docker pull` does it: a first component without `.` or
/// `:` that is not `localhost` is a Docker Hub path, and single names live under `library/`.
/// What a reference written without a known transport most likely meant, for the error
/// message: a newcomer types `testdata/images:app` for `oci:testdata/images:app`, or
/// `registry.example.com/app:1` for `docker://registry.example.com/app:1`. Pure guesswork on
/// the text (the model does no I/O), so ambiguous input gets both readings.
fn suggest_transport(input: &str) -> String {
    let path = input.split(':').next().unwrap_or(input);
    let first = path.split('/').next().unwrap_or(path);
    let looks_like_path = path.starts_with(['/', '.', '~']);
    let looks_like_host =
        !looks_like_path && path.contains('/') && (first.contains('.') || first == "localhost");
    if looks_like_host {
        format!("docker://{input}")
    } else if path.ends_with(".tar") || path.ends_with(".tar.gz") {
        format!("oci-archive:{input} (or docker-archive:{input} for a `docker save` tarball)")
    } else if path.contains('/') || looks_like_path {
        format!("oci:{input}")
    } else {
        format!("oci:{input} (an OCI layout directory) or docker://{input} (a registry image)")
    }
}

fn parse_registry(rest: &str) -> Result<Location, NameError> {
    // The digest follows the last `@` (`Reference::parse` refused userinfo before).
    let (name, selector) = if let Some((name, digest)) = rest.rsplit_once('@') {
        let d: Digest = digest.parse()?;
        // `name:tag@digest` pins by digest; the tag is informational.
        let name = match name.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => n,
            _ => name,
        };
        (name, Selector::Digest(d))
    } else {
        match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => {
                if !is_registry_tag(t) {
                    return Err(NameError::Tag(t.to_string()));
                }
                (n, Selector::Tag(t.to_string()))
            }
            _ => (rest, Selector::Tag("latest".to_string())),
        }
    };
    if name.is_empty() {
        return Err(NameError::MissingRepository);
    }
    let (host, repository) = match name.split_once('/') {
        Some((first, path))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), path.to_string())
        }
        Some(_) => ("docker.io".to_string(), name.to_string()),
        None => ("docker.io".to_string(), format!("library/{name}")),
    };
    if repository.is_empty()
        || repository.split('/').any(|c| {
            c.is_empty()
                || !c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        })
    {
        return Err(NameError::Repository(repository));
    }
    Ok(Location::Registry {
        host,
        repository,
        selector,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_ignores_how_the_reference_was_written() {
        let c = |s: &str| Reference::parse(s).unwrap().canonical();
        assert_eq!(
            c("docker://alpine"),
            "docker://docker.io/library/alpine:latest"
        );
        assert_eq!(
            c("docker://docker.io/library/alpine:latest"),
            "docker://docker.io/library/alpine:latest"
        );
        assert_eq!(c("docker://team/app:1"), "docker://docker.io/team/app:1");
        assert_eq!(c("oci:./images/:app"), "oci:images:app");
        assert_eq!(c("oci:images:app"), "oci:images:app");
        assert_ne!(c("oci:images:app"), c("oci:images:app2"));
        assert_eq!(
            c("docker-archive:a.tar:app:1"),
            "docker-archive:a.tar:docker.io/library/app:1"
        );
    }

    #[test]
    fn shards_parse_and_partition() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "1", "-1/2", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let r = Reference::parse("docker://reg.test/a:1").unwrap();
        let same = Reference::parse("docker://reg.test/a:1").unwrap();
        let owners: Vec<u64> = (0..3)
            .filter(|i| {
                Shard {
                    index: *i,
                    count: 3,
                }
                .holds(&r)
            })
            .collect();
        assert_eq!(owners.len(), 1, "exactly one shard takes an image");
        assert!(Shard {
            index: owners[0],
            count: 3
        }
        .holds(&same));
        assert!(Shard { index: 0, count: 1 }.holds(&r));
        assert!(
            !Shard { index: 0, count: 0 }.holds(&r),
            "no panic, no image"
        );
    }

    fn parse_err(s: &str) -> String {
        Reference::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn a_missing_transport_suggests_the_likely_one() {
        // issue 13: a layout path with a tag reads as an unknown transport "testdata/images".
        let e = parse_err("testdata/images:app");
        assert!(e.contains("unknown transport \"testdata/images\""), "{e}");
        // issue 19: the hint first, in a short line.
        assert!(
            e.starts_with("did you mean oci:testdata/images:app?"),
            "{e}"
        );
        assert!(e.len() < 100, "{e}");
        let e = parse_err("testdata/images");
        assert!(e.contains("did you mean oci:testdata/images?"), "{e}");
        let e = parse_err("registry.example.com/team/app:1");
        assert!(
            e.contains("did you mean docker://registry.example.com/team/app:1?"),
            "{e}"
        );
        let e = parse_err("/tmp/app.tar");
        assert!(
            e.contains("oci-archive:/tmp/app.tar (or docker-archive:/tmp/app.tar"),
            "{e}"
        );
        let e = parse_err("ubuntu:24.04");
        assert!(
            e.contains("oci:ubuntu:24.04 (an OCI layout directory) or docker://ubuntu:24.04"),
            "{e}"
        );
    }

    fn loc(s: &str) -> Location {
        Reference::parse(s).unwrap().location
    }

    #[test]
    fn oci_layout_defaults_to_latest() {
        assert_eq!(
            loc("oci:./app"),
            Location::OciLayout {
                dir: "./app".into(),
                selector: None
            }
        );
        assert_eq!(
            loc("oci:/tmp/x:v1.2"),
            Location::OciLayout {
                dir: "/tmp/x".into(),
                selector: Some(Selector::Tag("v1.2".into()))
            }
        );
    }

    #[test]
    fn oci_layout_by_digest() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            loc(&format!("oci:dir:{d}")),
            Location::OciLayout {
                dir: "dir".into(),
                selector: Some(Selector::Digest(d.parse().unwrap()))
            }
        );
    }

    #[test]
    fn archives() {
        assert_eq!(
            loc("oci-archive:a.tar"),
            Location::OciArchive {
                file: "a.tar".into(),
                tag: None
            }
        );
        assert_eq!(
            loc("docker-archive:a.tar:app:1.0"),
            Location::DockerArchive {
                file: "a.tar".into(),
                name: Some("app:1.0".into())
            }
        );
    }

    #[test]
    fn docker_archive_names() {
        assert_eq!(
            normalise_docker_name("app:1").unwrap(),
            "docker.io/library/app:1"
        );
        assert_eq!(
            normalise_docker_name("docker.io/library/app:1").unwrap(),
            "docker.io/library/app:1"
        );
        assert_eq!(
            normalise_docker_name("example/app").unwrap(),
            "docker.io/example/app:latest"
        );
        assert_eq!(
            normalise_docker_name("localhost:5000/app:2").unwrap(),
            "localhost:5000/app:2"
        );
        assert!(normalise_docker_name("App:1").is_err());
        assert!(Reference::parse("docker-archive:a.tar:Bad:1").is_err());
        assert!(Reference::parse("docker-archive:a.tar:a@sha256:00").is_err());
    }

    #[test]
    fn registry_normalisation() {
        assert_eq!(
            loc("docker://alpine"),
            Location::Registry {
                host: "docker.io".into(),
                repository: "library/alpine".into(),
                selector: Selector::Tag("latest".into())
            }
        );
        assert_eq!(
            loc("docker://127.0.0.1:5000/team/app:v2"),
            Location::Registry {
                host: "127.0.0.1:5000".into(),
                repository: "team/app".into(),
                selector: Selector::Tag("v2".into())
            }
        );
        assert_eq!(
            loc("docker://localhost:5000/app"),
            Location::Registry {
                host: "localhost:5000".into(),
                repository: "app".into(),
                selector: Selector::Tag("latest".into())
            }
        );
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            loc(&format!("docker://quay.io/a/b:tag@{d}")),
            Location::Registry {
                host: "quay.io".into(),
                repository: "a/b".into(),
                selector: Selector::Digest(d.parse().unwrap())
            }
        );
    }

    #[test]
    fn bad_references_are_refused_with_a_reason() {
        for bad in [
            "app",
            "foo:bar",
            "oci:",
            "oci:dir:",
            "docker:alpine",
            "docker://Alpine",
            "docker://host.io/app:bad tag",
            "oci:dir:sha256:abc",
        ] {
            let e = Reference::parse(bad).unwrap_err();
            assert_eq!(e.input(), bad);
            assert!(!e.reason().is_empty());
            assert!(!e.is_credentials());
        }
    }

    #[test]
    fn fleet_patterns_expand_per_image() {
        let img = Reference::parse("docker://reg.io/team/web:1.2").unwrap();
        let d = Reference::expand("oci:out/{name}:{tag}-rebased", &img, 3).unwrap();
        assert_eq!(d.to_string(), "oci:out/web:1.2-rebased");
        let d = Reference::expand("docker://reg.io/{repo}:{tag}-{index}", &img, 3).unwrap();
        assert_eq!(d.to_string(), "docker://reg.io/team/web:1.2-3");
        let img = Reference::parse("oci:/srv/images/api:v7").unwrap();
        assert_eq!(
            Reference::expand("oci:/out:{name}-{tag}", &img, 1)
                .unwrap()
                .to_string(),
            "oci:/out:api-v7"
        );
        assert!(Reference::expand("oci:x:{nope}", &img, 1).is_err());
        assert!(Reference::expand("oci:x:{tag", &img, 1).is_err());
        let arch = Reference::parse("docker-archive:/a/b.tar:example/app:2").unwrap();
        assert_eq!(arch.name(), "app");
        assert_eq!(arch.tag(), "2");
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn userinfo_in_a_registry_reference_is_refused_and_redacted() {
        for (input, shown, password) in [
            (
                "docker://user:hunter2@host.test/repo:tag",
                "docker://user:***@host.test/repo:tag",
                true,
            ),
            // A password with `/` or `@`: the host part does not end at the first `/`.
            (
                "docker://user:hun/ter2@host.test/repo",
                "docker://user:***@host.test/repo",
                true,
            ),
            (
                "docker://user:hun@ter2@host.test/repo:1",
                "docker://user:***@host.test/repo:1",
                true,
            ),
            (
                "docker://user:hun:ter2@localhost:5000/repo",
                "docker://user:***@localhost:5000/repo",
                true,
            ),
            // No password: a lone user name may be a token, so it is not shown either.
            (
                "docker://hunter2@host.test/repo:tag",
                "docker://***@host.test/repo:tag",
                false,
            ),
            (
                "docker:///user:hunter2@host.test/repo",
                "docker:///user:***@host.test/repo",
                true,
            ),
        ] {
            let e = Reference::parse(input).unwrap_err();
            assert!(e.is_credentials(), "{input}: {e}");
            assert_eq!(e.input(), shown);
            let text = format!("{e} {e:?}");
            assert!(
                !text.contains("hunter2") && !text.contains("ter2"),
                "{text}"
            );
            assert!(
                text.contains("--creds") && text.contains("--authfile"),
                "{text}"
            );
            let says_password = e.reason().contains("password before");
            assert_eq!(says_password, password, "{e}");
        }
        // With a digest too: the `@` of the digest is not the one refused.
        let input = format!("docker://user:hunter2@host.test/repo@{D}");
        let e = Reference::parse(&input).unwrap_err();
        assert!(e.is_credentials());
        assert_eq!(e.input(), format!("docker://user:***@host.test/repo@{D}"));
    }

    #[test]
    fn an_at_after_the_repository_is_a_digest() {
        assert_eq!(
            loc(&format!("docker://localhost:5000/team/app@{D}")),
            Location::Registry {
                host: "localhost:5000".into(),
                repository: "team/app".into(),
                selector: Selector::Digest(D.parse().unwrap()),
            }
        );
        // Written wrong, it is a digest error, not userinfo; what is before the `@` is still
        // not shown (it could be a password, as far as the text tells).
        for bad in [
            "docker://host.test/repo@sha256:abc",
            "docker://host.test/repo@latest",
        ] {
            let e = Reference::parse(bad).unwrap_err();
            assert!(!e.is_credentials(), "{e}");
            assert!(e.reason().contains("digest"), "{e}");
        }
        let e = Reference::parse("docker://localhost:5000/repo@latest").unwrap_err();
        assert_eq!(e.input(), "docker://localhost:***@latest");
    }

    #[test]
    fn redaction_leaves_references_without_a_suspicious_at_alone() {
        for plain in [
            "docker://host.test/repo:tag",
            "oci:/srv/images:app",
            &format!("docker://host.test/repo:1@{D}"),
            "",
        ] {
            assert_eq!(redact(plain), plain);
            assert_eq!(secret_part(plain), None);
        }
        assert_eq!(redact("user:pw@host/repo"), "user:***@host/repo");
        assert_eq!(redact("tok@host/repo"), "***@host/repo");
        assert_eq!(redact("oci-archive:a.tar:x:pw@y"), "oci-archive:***@y");
        assert_eq!(secret_part("docker://u:pw@h/r"), Some("pw"));
    }

    #[test]
    fn no_error_or_display_shows_what_may_be_a_password() {
        let inputs = [
            "docker:user:hunter2@host.test/repo",
            "user:hunter2@host.test/repo:1",
            "hunter2@host.test/repo:1",
            "docker-archive:x.tar:user:hunter2@host.test/repo:1",
            "docker-archive:x.tar:user:hun@ter2@host.test/repo:1",
            "oci:dir:user:hunter2@x y",
            "oci-archive:x.tar:user:hunter2@x\u{1}",
        ];
        for input in inputs {
            let e = Reference::parse(input).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(
                !text.contains("hunter2") && !text.contains("ter2"),
                "{text}"
            );
            let e = Reference::from_base_name(input).unwrap_err();
            assert!(!format!("{e} {e:?}").contains("ter2"), "{e}");
        }
        // A valid name that only looks like one: shown redacted, kept as written.
        let r = Reference::parse("oci-archive:x.tar:user:hunter2@x").unwrap();
        assert_eq!(r.to_string(), "oci-archive:***@x");
        assert!(!format!("{r:?}").contains("hunter2"));
        assert_eq!(r.as_written(), "oci-archive:x.tar:user:hunter2@x");
        // base.name annotations and fleet patterns go through the same parser.
        let e = Reference::from_base_name("user:hunter2@host.test/base:1").unwrap_err();
        assert!(e.is_credentials() && e.input() == "docker://user:***@host.test/base:1");
        let img = Reference::parse("oci:x:app").unwrap();
        for pattern in [
            "docker://user:hunter2@host.test/{repo}",
            "docker://user:hunter2@host.test/{nope}",
            "docker://user:hunter2@host.test/{tag",
        ] {
            let e = Reference::expand(pattern, &img, 1).unwrap_err();
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn keeps_what_the_user_wrote() {
        let r = Reference::parse("oci:./x:y").unwrap();
        assert_eq!(r.to_string(), "oci:./x:y");
        assert_eq!(r.transport(), "oci");
    }
}
