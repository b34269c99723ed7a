//! Registries (`docker://HOST/REPO[:TAG|@DIGEST]`), over the distribution API.
//!
//! Reading: manifests are fetched with every manifest media type we know in `Accept`, and their
//! bytes are checked against the digest asked for (by tag: the body's digest is recorded, and a
//! `Docker-Content-Digest` header must agree with it). Blobs are streamed, unverified: the
//! consumers verify as they read, as with every source.
//!
//! Writing, in as few requests as the distribution API allows (a fleet counts them): a blob
//! the source reads from this very repository is there (the registry checked every blob of
//! that manifest when it was pushed), so nothing is asked; a blob in another repository of the
//! same registry is mounted directly (`POST …/blobs/uploads/?mount=&from=`: 201 when mounted or
//! already there), so a registry-to-registry rebase moves no layer bytes through us; only when
//! the registry will not mount (202) is it streamed into the upload it opened (monolithic,
//! `Content-Length` from the descriptor, never buffered). A blob from elsewhere is looked for
//! with HEAD first. Manifests are pushed once each, with their exact bytes: children of an
//! index by digest, the root by tag, last, in `commit`.

pub mod auth;
pub mod body;
pub mod client;
pub mod secret;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};
use ureq::http::{Method, StatusCode};

use self::client::{header, Body, Client, SendFailure, MANIFEST_ACCEPT};
use super::{CopyOutcome, RegistryOptions, Sink, Source, MAX_JSON_BLOB};
use crate::error::{
    BlobError, BlobLocation, Error, NotFoundHint, RegistryAnswer, Result, UsageError, Wanted,
};
use crate::model::{media, Descriptor, Digest, Index, Manifest, Reference, Selector};

/// How many times a referrers tag is written again after another writer lost our entry.
const REFERRERS_TAG_RETRIES: u32 = 5;
/// How long after a write of a referrers tag it is read again (times the attempt).
const REFERRERS_TAG_SETTLE: std::time::Duration = std::time::Duration::from_millis(150);
/// One lock per referrers tag (`host/repository:tag`): this process's writers take turns.
static TAG_LOCKS: std::sync::OnceLock<Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>> =
    std::sync::OnceLock::new();

/// Where a `docker://` reference points: its host, repository and tag or digest (the fields of
/// its [`Location::Registry`](crate::model::Location::Registry)).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The registry host, with its port if one was written.
    pub host: &'a str,
    /// The repository path.
    pub repository: &'a str,
    /// The tag or digest.
    pub selector: &'a Selector,
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The media type of a manifest body: `Content-Type` when it names one we know, else the
/// body's `mediaType`, else its shape (OCI manifests may omit `mediaType`).
fn manifest_media_type(content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
    let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
    if let Some(ct) = ct.filter(|c| media::is_index(c) || media::is_manifest(c)) {
        return Some(ct.to_string());
    }
    let json: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    match json.get("mediaType").and_then(|m| m.as_str()) {
        Some(mt) => Some(mt.to_string()),
        None if json.get("manifests").is_some() => Some(media::OCI_INDEX.to_string()),
        None if json.get("config").is_some() => Some(media::OCI_MANIFEST.to_string()),
        None => None,
    }
}

/// A fetched manifest (descriptor, bytes), or the registry's 404 answer.
type Fetched = std::result::Result<(Descriptor, Vec<u8>), RegistryAnswer>;

/// A repository opened for reading.
pub struct RegistrySource {
    reference: Reference,
    client: Client,
    repository: String,
    scopes: Vec<String>,
    /// Manifests fetched so far (by digest, verified): `open_blob` serves them from here.
    manifests: Mutex<HashMap<Digest, Vec<u8>>>,
    /// Digests known to name manifests (listed in an index): fetched from `/manifests/`.
    manifest_digests: Mutex<HashSet<Digest>>,
    /// Sizes of the blobs the manifests fetched so far point at: no body is read past the
    /// size its descriptor gives (the `Source` interface asks for blobs by digest only).
    sizes: Mutex<HashMap<Digest, u64>>,
    /// The tag or digest [`Source::root`] resolves.
    selector: Selector,
}

impl RegistrySource {
    /// A source for a `docker://` reference, on a client set up as `opts` says (see
    /// [`Client::connect`]). The tag or digest is resolved by [`Source::root`].
    pub fn open(
        reference: &Reference,
        target: Target<'_>,
        opts: &RegistryOptions,
    ) -> Result<RegistrySource> {
        let Target {
            host,
            repository,
            selector,
        } = target;
        let client = Client::connect(&reference.to_string(), host, repository, opts)?;
        Ok(RegistrySource {
            reference: reference.clone(),
            client,
            repository: repository.to_string(),
            scopes: vec![pull_scope(repository)],
            manifests: Mutex::new(HashMap::new()),
            manifest_digests: Mutex::new(HashSet::new()),
            sizes: Mutex::new(HashMap::new()),
            selector: selector.clone(),
        })
    }

    /// `METHOD /v2/REPO/manifests/REFERENCE`, accepting every manifest and index type.
    fn manifest_request(
        &self,
        method: Method,
        reference: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let url = self
            .client
            .url(&self.repository, &format!("manifests/{reference}"));
        self.client.send(
            method,
            &url,
            &[("accept", MANIFEST_ACCEPT)],
            Body::Empty,
            &self.scopes,
        )
    }

    /// The size a descriptor we have seen gives for `digest`.
    fn known_size(&self, digest: &Digest) -> Option<u64> {
        self.sizes.lock().expect("lock").get(digest).copied()
    }

    /// "blob sha256:… from registry HOST"
    fn blob_name(&self, what: &str, digest: &Digest) -> String {
        format!("{what} {digest} from registry {}", self.client.host())
    }

    /// GET a manifest by tag or digest; checks the bytes against the digest asked for.
    /// `Ok(Err(answer))`: the registry does not have it (404, and what it said).
    fn fetch_manifest(&self, selector: &Selector) -> Result<Fetched> {
        let resp = self.manifest_request(Method::GET, &selector.to_string())?;
        let what = match selector {
            Selector::Tag(t) => format!("tag {t:?}"),
            Selector::Digest(d) => format!("manifest {d}"),
        };
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(Err(self.client.answer(resp)));
        }
        if !resp.status().is_success() {
            return Err(self
                .client
                .status_error(&format!("cannot fetch {what}"), resp));
        }
        let content_type = header(&resp, "content-type").map(str::to_string);
        let announced = header(&resp, "docker-content-digest").map(str::to_string);
        // By digest, from an index or a HEAD: no more than its descriptor's size.
        let limit = match selector {
            Selector::Digest(d) => self.known_size(d).unwrap_or(MAX_JSON_BLOB),
            Selector::Tag(_) => MAX_JSON_BLOB,
        }
        .min(MAX_JSON_BLOB);
        let bytes = body::read_limited(
            resp,
            limit,
            format!("{what} from registry {}", self.client.host()),
            self.client.deadline(0),
        )
        .map_err(|e| self.client.error_msg(e.to_string()))?;
        let actual = Digest::of(&bytes);
        let mismatch = |claimed: &str| {
            self.client.error_msg(format!(
                "{what}: the registry sent a manifest whose content has digest {actual}, not {claimed}; refusing it"
            ))
        };
        if let Selector::Digest(d) = selector {
            if &actual != d {
                return Err(mismatch(&d.to_string()));
            }
        }
        if let Some(claimed) = announced.filter(|c| c.starts_with("sha256:")) {
            if claimed != actual.to_string() {
                return Err(mismatch(&format!("{claimed} (its Docker-Content-Digest)")));
            }
        }
        let media_type = manifest_media_type(content_type.as_deref(), &bytes).ok_or_else(|| {
            self.client.error_msg(format!(
                "{what} is not an image manifest or index (Content-Type {})",
                content_type.as_deref().unwrap_or("none")
            ))
        })?;
        let desc = Descriptor::new(&media_type, actual.clone(), bytes.len() as u64);
        self.remember(&desc, &bytes);
        Ok(Ok((desc, bytes)))
    }

    /// Keeps a manifest's bytes, notes the children of an index as manifests, and the size of
    /// every blob it points at.
    fn remember(&self, desc: &Descriptor, bytes: &[u8]) {
        let children: Vec<Descriptor> = if media::is_index(&desc.media_type) {
            let index = Index::parse(bytes, Some(&desc.media_type));
            let children = index.map(|i| i.manifests).unwrap_or_default();
            let mut known = self.manifest_digests.lock().expect("lock");
            known.extend(children.iter().map(|d| d.digest.clone()));
            children
        } else {
            Manifest::parse(bytes, Some(&desc.media_type))
                .map(|m| std::iter::once(m.config).chain(m.layers).collect())
                .unwrap_or_default()
        };
        {
            let mut sizes = self.sizes.lock().expect("lock");
            sizes.insert(desc.digest.clone(), desc.size);
            for child in children {
                // Two descriptors disagreeing on a size: keep the smaller bound; the reader
                // checks the digest and size against the descriptor it holds anyway.
                let size = sizes.entry(child.digest).or_insert(child.size);
                *size = (*size).min(child.size);
            }
        }
        self.manifests
            .lock()
            .expect("lock")
            .insert(desc.digest.clone(), bytes.to_vec());
    }

    fn not_found(&self, what: Wanted, answer: RegistryAnswer) -> Error {
        Error::NotFound {
            reference: self.reference.to_string(),
            what,
            hint: NotFoundHint::Registry(Box::new(answer)),
        }
    }

    fn get_blob(&self, digest: &Digest) -> Result<Option<Box<dyn Read + Send + 'static>>> {
        let url = self
            .client
            .url(&self.repository, &format!("blobs/{digest}"));
        let known = self.known_size(digest);
        // ureq follows redirects (registries send blob GETs to their storage) and drops the
        // Authorization header when it does.
        let resp = self.client.send_expecting(
            Method::GET,
            &url,
            &[],
            Body::Empty,
            &self.scopes,
            known.unwrap_or(0),
        )?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .client
                .status_error(&format!("cannot fetch blob {digest}"), resp));
        }
        if let Some(claimed) = header(&resp, "docker-content-digest") {
            if claimed.starts_with("sha256:") && claimed != digest.to_string() {
                return Err(self.client.error_msg(format!(
                    "asked for blob {digest}, the registry answered with {claimed}"
                )));
            }
        }
        // At most the descriptor's size (one byte more proves a lie). A blob no manifest of
        // ours sized is bounded by the Content-Length ureq holds the registry to; with neither,
        // the body could be endless: refused.
        let announced = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok());
        let Some(limit) = known.or(announced) else {
            return Err(self.client.error_msg(format!(
                "{}: no descriptor read from this registry gives its size and the registry \
                 sent no Content-Length; refusing a body of unknown length",
                self.blob_name("blob", digest)
            )));
        };
        let deadline = self.client.deadline(limit);
        Ok(Some(Box::new(body::Limited::new(
            resp.into_body().into_reader(),
            limit,
            self.blob_name("blob", digest),
            deadline,
        ))))
    }
}

impl Source for RegistrySource {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn root(&self) -> Result<Descriptor> {
        let what = match &self.selector {
            Selector::Tag(t) => Wanted::Tag(t.clone()),
            Selector::Digest(d) => Wanted::Manifest(d.clone()),
        };
        match self.fetch_manifest(&self.selector)? {
            Ok((desc, _)) => Ok(desc),
            Err(answer) => Err(self.not_found(what, answer)),
        }
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send + '_>> {
        if let Some(bytes) = self.manifests.lock().expect("lock").get(digest) {
            return Ok(Box::new(io::Cursor::new(bytes.clone())));
        }
        let missing = || Error::MissingBlob {
            reference: self.reference.to_string(),
            digest: digest.clone(),
            location: BlobLocation::Registry(self.client.host().to_string()),
        };
        let is_manifest = self.manifest_digests.lock().expect("lock").contains(digest);
        if !is_manifest {
            if let Some(r) = self.get_blob(digest)? {
                return Ok(r);
            }
        }
        // A manifest we were not told about (or a registry that stores it only there).
        match self.fetch_manifest(&Selector::Digest(digest.clone()))? {
            Ok((_, bytes)) => Ok(Box::new(io::Cursor::new(bytes))),
            Err(_) => Err(missing()),
        }
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let url = self
            .client
            .url(&self.repository, &format!("blobs/{digest}"));
        let resp = self
            .client
            .send(Method::HEAD, &url, &[], Body::Empty, &self.scopes)?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self
                .client
                .status_error(&format!("cannot check blob {digest}"), resp)),
        }
    }

    fn descriptor_for_digest(&self, digest: &Digest) -> Result<Option<Descriptor>> {
        let resp = self.manifest_request(Method::HEAD, &digest.to_string())?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .client
                .status_error(&format!("cannot check manifest {digest}"), resp));
        }
        let ct = header(&resp, "content-type").map(|c| c.split(';').next().unwrap_or("").trim());
        let size = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok());
        match (ct, size) {
            (Some(ct), Some(size)) if media::is_index(ct) || media::is_manifest(ct) => {
                self.manifest_digests
                    .lock()
                    .expect("lock")
                    .insert(digest.clone());
                self.sizes
                    .lock()
                    .expect("lock")
                    .insert(digest.clone(), size.min(MAX_JSON_BLOB));
                Ok(Some(Descriptor::new(ct, digest.clone(), size)))
            }
            // HEAD said too little: fetch it (verified) and look.
            _ => Ok(self
                .fetch_manifest(&Selector::Digest(digest.clone()))?
                .ok()
                .map(|(d, _)| d)),
        }
    }

    fn registry_repository(&self) -> Option<(String, String)> {
        Some((self.client.host().to_string(), self.repository.clone()))
    }

    /// `GET /v2/REPO/referrers/DIGEST` (distribution-spec 1.1); a registry without the API
    /// (404, or 400/405 from one that does not route it) is read through the referrers tag
    /// schema: the index tagged `sha256-<hex>`, none when there is no such tag. The
    /// `artifactType` filter is applied here too (a registry may ignore it).
    fn referrers(&self, subject: &Digest, artifact_type: Option<&str>) -> Result<Vec<Descriptor>> {
        let what = format!("referrers of {subject}");
        if !self.client.lacks_referrers_api() {
            let mut url = self
                .client
                .url(&self.repository, &format!("referrers/{subject}"));
            if let Some(t) = artifact_type {
                url.push_str(&format!("?artifactType={}", auth::query_escape(t)));
            }
            let resp = self.client.send(
                Method::GET,
                &url,
                &[("accept", media::OCI_INDEX)],
                Body::Empty,
                &self.scopes,
            )?;
            let is_index = header(&resp, "content-type")
                .is_some_and(|c| c.split(';').next().unwrap_or("").trim() == media::OCI_INDEX);
            let status = resp.status();
            if status.is_success() && is_index {
                let bytes = body::read_limited(
                    resp,
                    MAX_JSON_BLOB,
                    format!("{what} from registry {}", self.client.host()),
                    self.client.deadline(0),
                )
                .map_err(|e| self.client.error_msg(e.to_string()))?;
                let index = Index::parse(&bytes, Some(media::OCI_INDEX))
                    .map_err(|e| self.client.error_msg(format!("{what}: {e}")))?;
                return Ok(super::referrers::filter(&index, artifact_type));
            }
            let no_api = status.is_success()
                || matches!(
                    status,
                    StatusCode::NOT_FOUND
                        | StatusCode::BAD_REQUEST
                        | StatusCode::METHOD_NOT_ALLOWED
                );
            if !no_api {
                return Err(self
                    .client
                    .status_error(&format!("cannot list {what}"), resp));
            }
            // A 404 from a registry with the API would be an index; this one has none.
            self.client.note_no_referrers_api();
        }
        let tag = super::referrers::fallback_tag(subject);
        let (desc, bytes) = match self.fetch_manifest(&Selector::Tag(tag.clone()))? {
            Ok(found) => found,
            Err(_) => return Ok(Vec::new()),
        };
        let index = Index::parse(&bytes, Some(&desc.media_type)).map_err(|e| {
            self.client.error_msg(format!(
                "{what}: the referrers tag {tag} is not an image index: {e}"
            ))
        })?;
        Ok(super::referrers::filter(&index, artifact_type))
    }
}

/// Fresh uploads after a transient failure of a streamed one.
const UPLOAD_RETRIES: u32 = 3;

fn upload_url(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

/// A repository opened for writing one tag.
pub struct RegistrySink {
    reference: Reference,
    client: Client,
    repository: String,
    tag: String,
    scopes: Vec<String>,
    /// Manifests and indexes put so far, so `commit` can push the root by tag.
    pushed: Mutex<HashMap<Digest, (String, Vec<u8>)>>,
    /// The last manifest or index put, not sent yet: if it is the root, `commit` pushes it
    /// once, by tag; if another manifest follows, it is pushed by digest first.
    pending: Mutex<Option<Digest>>,
}

/// Streams a source blob into an upload, hashing it; stops the upload (an I/O error, so the
/// registry never completes it) as soon as the content cannot match the descriptor.
struct Verifying<'a> {
    inner: Box<dyn Read + Send + 'a>,
    hash: Sha256,
    size: u64,
    expected: &'a Descriptor,
    /// Set when the content is wrong: the upload failed because of the source, not the registry.
    problem: Option<Error>,
    /// The digest was checked (all `expected.size` bytes were read).
    checked: bool,
    reference: String,
}

impl Read for Verifying<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                // The upload fails because of the source: what it said is the problem, and
                // the HTTP client gets an error of the same kind that stops the request.
                let kind = e.kind();
                if self.problem.is_none() {
                    self.problem = Some(Error::InvalidBlob {
                        reference: self.reference.clone(),
                        what: "blob",
                        digest: self.expected.digest.clone(),
                        source: BlobError::Read(e),
                    });
                }
                return Err(io::Error::new(kind, "reading the source blob failed"));
            }
        };
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        // Checked as soon as the last byte is read: with a Content-Length body the HTTP client
        // may never read again to see the end of the stream.
        if self.size > self.expected.size || (n == 0 && self.size < self.expected.size) {
            self.problem = Some(Error::SizeMismatch {
                reference: self.reference.clone(),
                digest: self.expected.digest.clone(),
                expected: self.expected.size,
                actual: self.size,
            });
        } else if self.size == self.expected.size && !self.checked {
            self.checked = true;
            let actual = Digest::from_sha256(self.hash.clone().finalize().into());
            if actual != self.expected.digest {
                self.problem = Some(Error::DigestMismatch {
                    reference: self.reference.clone(),
                    expected: self.expected.digest.clone(),
                    actual,
                    size: self.size,
                });
            }
        }
        if self.problem.is_some() {
            return Err(io::Error::other(
                "blob content does not match its descriptor",
            ));
        }
        Ok(n)
    }
}

impl RegistrySink {
    /// Prepares to push to a `docker://` reference; it must name a tag. Nothing is tagged until
    /// commit.
    pub fn open(
        reference: &Reference,
        target: Target<'_>,
        opts: &RegistryOptions,
    ) -> Result<RegistrySink> {
        let Target {
            host,
            repository,
            selector,
        } = target;
        let Selector::Tag(tag) = selector else {
            return Err(UsageError::DigestDestination {
                reference: reference.to_string(),
            }
            .into());
        };
        let client = Client::connect(&reference.to_string(), host, repository, opts)?;
        Ok(RegistrySink {
            reference: reference.clone(),
            client,
            repository: repository.to_string(),
            tag: tag.clone(),
            scopes: vec![format!("repository:{repository}:pull,push")],
            pushed: Mutex::new(HashMap::new()),
            pending: Mutex::new(None),
        })
    }

    fn blob_url(&self, digest: &Digest) -> String {
        self.client
            .url(&self.repository, &format!("blobs/{digest}"))
    }

    fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let resp = self.client.send(
            Method::HEAD,
            &self.blob_url(digest),
            &[],
            Body::Empty,
            &self.scopes,
        )?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self
                .client
                .status_error(&format!("cannot check blob {digest}"), resp)),
        }
    }

    /// `POST …/blobs/uploads/` (with `mount`/`from` to ask for a cross-repository mount).
    /// `Ok(None)`: mounted (201). `Ok(Some(location))`: an upload session to send bytes to.
    fn start_upload(&self, digest: &Digest, mount_from: Option<&str>) -> Result<Option<String>> {
        let mut url = self.client.url(&self.repository, "blobs/uploads/");
        let mut scopes = self.scopes.clone();
        if let Some(from) = mount_from {
            url.push_str(&format!(
                "?mount={digest}&from={}",
                auth::query_escape(from)
            ));
            scopes.push(pull_scope(from));
        }
        let resp = self
            .client
            .send(Method::POST, &url, &[], Body::Empty, &scopes)?;
        match resp.status() {
            StatusCode::CREATED if mount_from.is_some() => Ok(None),
            StatusCode::ACCEPTED => match header(&resp, "location") {
                Some(loc) => Ok(Some(self.client.resolve(loc))),
                None => Err(self.client.error_msg(format!(
                    "upload of blob {digest}: the registry started an upload without a Location"
                ))),
            },
            _ => Err(self
                .client
                .status_error(&format!("cannot start the upload of blob {digest}"), resp)),
        }
    }

    /// `PUT LOCATION?digest=` with the whole body: a monolithic upload of bytes we hold.
    fn finish_upload(&self, location: &str, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let resp = self.client.send(
            Method::PUT,
            &upload_url(location, digest),
            &[("content-type", "application/octet-stream")],
            Body::Bytes(bytes),
            &self.scopes,
        )?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self
                .client
                .status_error(&format!("upload of blob {digest} refused"), resp))
        }
    }

    /// Streams a blob from the source into an upload session, verifying it on the way. The
    /// failure says whether a fresh upload may succeed.
    fn stream(
        &self,
        src: &dyn Source,
        desc: &Descriptor,
        location: &str,
    ) -> std::result::Result<(), SendFailure> {
        let fatal = |error| SendFailure {
            error: Box::new(error),
            transient: false,
        };
        let mut reader = Verifying {
            inner: src.open_blob(&desc.digest).map_err(fatal)?,
            hash: Sha256::new(),
            size: 0,
            expected: desc,
            problem: None,
            checked: false,
            reference: src.reference().to_string(),
        };
        let result = self.client.send_once(
            Method::PUT,
            &upload_url(location, &desc.digest),
            &[("content-type", "application/octet-stream")],
            &mut Body::Stream {
                reader: &mut reader,
                size: desc.size,
            },
            &self.scopes,
            0,
        );
        if let Some(problem) = reader.problem {
            return Err(fatal(problem));
        }
        let resp = result?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(fatal(self.client.status_error(
                &format!("upload of blob {digest} refused", digest = desc.digest),
                resp,
            )))
        }
    }

    /// Uploads a blob through us. A transient failure restarts it with a fresh upload session
    /// (a stream cannot be replayed into the old one), a bounded number of times.
    fn upload(&self, src: &dyn Source, desc: &Descriptor, first: Option<String>) -> Result<()> {
        let mut location = first;
        let mut attempt = 0u32;
        loop {
            let loc = match location.take() {
                Some(l) => l,
                None => self
                    .start_upload(&desc.digest, None)?
                    .expect("a plain upload never mounts"),
            };
            match self.stream(src, desc, &loc) {
                Ok(()) => return Ok(()),
                Err(f) if f.transient && attempt < UPLOAD_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(250 << attempt));
                }
                Err(f) => return Err(*f.error),
            }
        }
    }

    /// Pushes the manifest held back by `put_bytes` by digest: a manifest followed it, so it
    /// is a child (of an index), not the root.
    fn push_pending(&self) -> Result<()> {
        let pending = self.pending.lock().expect("lock").take();
        match pending {
            Some(p) => self.push_by_digest(&p),
            None => Ok(()),
        }
    }

    fn push_by_digest(&self, digest: &Digest) -> Result<()> {
        let known = self.pushed.lock().expect("lock").get(digest).cloned();
        let (media_type, bytes) = known.expect("a pending manifest was put");
        self.put_manifest(&digest.to_string(), &media_type, &bytes)
    }

    fn put_manifest(&self, reference: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        self.put_manifest_subject(reference, media_type, bytes)
            .map(|_| ())
    }

    /// The index tagged `tag`: `None` when there is no such tag (404). Read bounded, checked
    /// against its `Docker-Content-Digest`.
    fn get_tagged_index(
        &self,
        tag: &str,
    ) -> Result<Option<(serde_json::Map<String, serde_json::Value>, Index)>> {
        let url = self
            .client
            .url(&self.repository, &format!("manifests/{tag}"));
        let resp = self.client.send(
            Method::GET,
            &url,
            &[("accept", MANIFEST_ACCEPT)],
            Body::Empty,
            &self.scopes,
        )?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self
                .client
                .status_error(&format!("cannot fetch tag {tag:?}"), resp));
        }
        let announced = header(&resp, "docker-content-digest").map(str::to_string);
        let bytes = body::read_limited(
            resp,
            MAX_JSON_BLOB,
            format!("tag {tag:?} from registry {}", self.client.host()),
            self.client.deadline(0),
        )
        .map_err(|e| self.client.error_msg(e.to_string()))?;
        let actual = Digest::of(&bytes).to_string();
        if let Some(claimed) = announced.filter(|c| c.starts_with("sha256:") && *c != actual) {
            return Err(self.client.error_msg(format!(
                "tag {tag:?}: the registry sent an index whose digest is {actual}, not {claimed}; refusing it"
            )));
        }
        let bad = |e: String| {
            self.client.error_msg(format!(
                "the referrers tag {tag:?} is not an image index: {e}"
            ))
        };
        let index = Index::parse(&bytes, Some(media::OCI_INDEX)).map_err(|e| bad(e.to_string()))?;
        match serde_json::from_slice(&bytes) {
            Ok(serde_json::Value::Object(m)) => Ok(Some((m, index))),
            _ => Err(bad("not a JSON object".into())),
        }
    }

    /// Adds `entry` to the referrers tag of `subject` (`sha256-<hex>`), for a registry without
    /// the referrers API. Read, add, PUT; then, after a settle delay, read again: an entry of
    /// ours, or one that was there before our write, that another writer's PUT lost is merged
    /// back and PUT again, a bounded number of times. Writers of one tag in this process take
    /// turns (a lock per tag); across processes the re-read is what keeps both entries (the
    /// remaining race is described in docs/architecture.md).
    fn update_referrers_tag(&self, subject: &Digest, entry: &Descriptor) -> Result<()> {
        let tag = super::referrers::fallback_tag(subject);
        let key = format!("{}/{}:{tag}", self.client.host(), self.repository);
        let lock = {
            let mut locks = TAG_LOCKS
                .get_or_init(Default::default)
                .lock()
                .expect("lock");
            locks.entry(key).or_default().clone()
        };
        let _turn = lock.lock().expect("lock");
        let mut wanted = vec![entry.clone()];
        for attempt in 0..=REFERRERS_TAG_RETRIES {
            let current = self.get_tagged_index(&tag)?;
            if let Some((_, index)) = &current {
                for m in &index.manifests {
                    if !wanted.iter().any(|w| w.digest == m.digest) {
                        wanted.push(m.clone());
                    }
                }
            }
            let (merged, changed) = super::referrers::add_entries(current.map(|(m, _)| m), &wanted);
            if !changed {
                return Ok(());
            }
            if attempt == REFERRERS_TAG_RETRIES {
                break;
            }
            let bytes = serde_json::to_vec(&serde_json::Value::Object(merged))
                .expect("a JSON value always serializes");
            self.put_manifest(&tag, media::OCI_INDEX, &bytes)?;
            std::thread::sleep(REFERRERS_TAG_SETTLE * (attempt + 1));
        }
        Err(self.client.error_msg(format!(
            "the referrers tag {tag:?} kept losing entries to other writers ({REFERRERS_TAG_RETRIES} writes); attach again"
        )))
    }

    /// PUT a manifest; `Ok(true)` when the answer carries `OCI-Subject` (a registry with the
    /// referrers API, which indexes the manifest's subject itself).
    fn put_manifest_subject(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<bool> {
        let url = self
            .client
            .url(&self.repository, &format!("manifests/{reference}"));
        let resp = self.client.send(
            Method::PUT,
            &url,
            &[("content-type", media_type)],
            Body::Bytes(bytes),
            &self.scopes,
        )?;
        if !resp.status().is_success() {
            return Err(self
                .client
                .status_error(&format!("push of manifest {reference} refused"), resp));
        }
        let expected = Digest::of(bytes).to_string();
        let indexed = header(&resp, "oci-subject").is_some();
        match header(&resp, "docker-content-digest") {
            Some(d) if d.starts_with("sha256:") && d != expected => Err(self.client.error_msg(
                format!("pushed manifest {expected}, the registry stored it as {d}"),
            )),
            _ => Ok(indexed),
        }
    }
}

impl Sink for RegistrySink {
    fn reference(&self) -> &Reference {
        &self.reference
    }

    fn copy_blob(&self, src: &dyn Source, desc: &Descriptor) -> Result<CopyOutcome> {
        let foreign = media::is_foreign_layer(&desc.media_type) && !desc.urls().is_empty();
        let source_repo = src
            .registry_repository()
            .filter(|(host, _)| host == self.client.host());
        match source_repo {
            // Read from this repository: the blob is here (see the module comment).
            Some((_, repo)) if repo == self.repository && !foreign => {
                return Ok(CopyOutcome::Present)
            }
            // Another repository of this registry: mount, no HEAD first (201 either way).
            Some((_, from)) if !foreign => {
                return match self.start_upload(&desc.digest, Some(&from))? {
                    None => Ok(CopyOutcome::Mounted),
                    // 202: no mount (the registry does not do it, or may not read `from`);
                    // it opened an upload instead, which we fill.
                    Some(loc) => {
                        self.upload(src, desc, Some(loc))?;
                        Ok(CopyOutcome::Copied)
                    }
                };
            }
            _ => {}
        }
        if self.has_blob(&desc.digest)? {
            return Ok(CopyOutcome::Present);
        }
        if foreign && !src.has_blob(&desc.digest)? {
            return Ok(CopyOutcome::Foreign);
        }
        self.upload(src, desc, None)?;
        Ok(CopyOutcome::Copied)
    }

    fn put_bytes(&self, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        super::verify_bytes(&self.reference.to_string(), desc, bytes)?;
        if media::is_index(&desc.media_type) || media::is_manifest(&desc.media_type) {
            self.push_pending()?;
            self.pushed.lock().expect("lock").insert(
                desc.digest.clone(),
                (desc.media_type.clone(), bytes.to_vec()),
            );
            *self.pending.lock().expect("lock") = Some(desc.digest.clone());
            return Ok(());
        }
        // A config we produced: new to the repository in all but a re-run, which the caller
        // already recognises as unchanged. Uploaded without asking first.
        let location = self
            .start_upload(&desc.digest, None)?
            .expect("a plain upload never mounts");
        self.finish_upload(&location, &desc.digest, bytes)
    }

    fn commit(&self, root: &Descriptor) -> Result<()> {
        let pending = self.pending.lock().expect("lock").take();
        if let Some(p) = pending.filter(|p| p != &root.digest) {
            self.push_by_digest(&p)?;
        }
        let known = self.pushed.lock().expect("lock").get(&root.digest).cloned();
        let (media_type, bytes) = match known {
            Some(k) => k,
            None => {
                // Not put by this run (an unchanged image): it is in the repository already.
                let url = self
                    .client
                    .url(&self.repository, &format!("manifests/{}", root.digest));
                let resp = self.client.send(
                    Method::GET,
                    &url,
                    &[("accept", MANIFEST_ACCEPT)],
                    Body::Empty,
                    &self.scopes,
                )?;
                if !resp.status().is_success() {
                    return Err(self.client.status_error(
                        &format!("cannot read back manifest {}", root.digest),
                        resp,
                    ));
                }
                let bytes = body::read_limited(
                    resp,
                    root.size.min(MAX_JSON_BLOB),
                    format!(
                        "manifest {} from registry {}",
                        root.digest,
                        self.client.host()
                    ),
                    self.client.deadline(0),
                )
                .map_err(|e| self.client.error_msg(e.to_string()))?;
                super::verify_bytes(&self.reference.to_string(), root, &bytes)?;
                (root.media_type.clone(), bytes)
            }
        };
        self.put_manifest(&self.tag, &media_type, &bytes)
    }

    /// Blobs (each uploaded unless there), the manifest by digest; when the registry does
    /// not answer `OCI-Subject`, the referrers tag too.
    fn attach_referrer(
        &self,
        built: &super::referrers::Built,
        blobs: &[(Descriptor, &[u8])],
        subject: &Digest,
    ) -> Result<()> {
        for (desc, bytes) in blobs {
            super::verify_bytes(&self.reference.to_string(), desc, bytes)?;
            if !self.has_blob(&desc.digest)? {
                let location = self
                    .start_upload(&desc.digest, None)?
                    .expect("a plain upload never mounts");
                self.finish_upload(&location, &desc.digest, bytes)?;
            }
        }
        let indexed = self.put_manifest_subject(
            &built.descriptor.digest.to_string(),
            &built.descriptor.media_type,
            &built.bytes,
        )?;
        if indexed {
            return Ok(());
        }
        self.update_referrers_tag(subject, &built.entry)
    }

    fn abort(&self) {
        // Nothing to undo: blobs and untagged manifests are unreferenced until the tag is
        // pushed, and the registry's garbage collection owns them.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_from_header_or_body() {
        let oci = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(
            manifest_media_type(Some(media::DOCKER_MANIFEST), oci).as_deref(),
            Some(media::DOCKER_MANIFEST)
        );
        assert_eq!(
            manifest_media_type(Some("application/json; charset=utf-8"), oci).as_deref(),
            Some(media::OCI_MANIFEST)
        );
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            manifest_media_type(None, idx).as_deref(),
            Some(media::OCI_INDEX)
        );
        assert_eq!(manifest_media_type(None, b"not json"), None);
    }

    #[test]
    fn verifying_reader_stops_on_wrong_content() {
        let good = b"hello".to_vec();
        let desc = Descriptor::new(media::OCI_LAYER_TAR, Digest::of(&good), 5);
        let mut ok = Verifying {
            inner: Box::new(io::Cursor::new(good)),
            hash: Sha256::new(),
            size: 0,
            expected: &desc,
            problem: None,
            checked: false,
            reference: "r".into(),
        };
        io::copy(&mut ok, &mut io::sink()).unwrap();
        assert!(ok.problem.is_none());

        let mut bad = Verifying {
            inner: Box::new(io::Cursor::new(b"hellO".to_vec())),
            hash: Sha256::new(),
            size: 0,
            expected: &desc,
            problem: None,
            checked: false,
            reference: "r".into(),
        };
        // Refused on the last byte, before the end of the stream is seen: an HTTP client
        // sending Content-Length bytes never reads past them.
        let mut exactly = [0u8; 5];
        assert!(bad.read(&mut exactly).is_err());
        assert!(matches!(bad.problem, Some(Error::DigestMismatch { .. })));

        let mut long = Verifying {
            inner: Box::new(io::Cursor::new(b"hello!".to_vec())),
            hash: Sha256::new(),
            size: 0,
            expected: &desc,
            problem: None,
            checked: false,
            reference: "r".into(),
        };
        assert!(io::copy(&mut long, &mut io::sink()).is_err());
        assert!(matches!(long.problem, Some(Error::SizeMismatch { .. })));
    }
}
