//! PURE: the documents that attest what a rebase or an append wrote: an SBOM of each written
//! platform image (SPDX 2.3 or CycloneDX 1.6 JSON) and the provenance of the run (an in-toto
//! Statement v1 with a SLSA Provenance v1 predicate). Nothing here touches a file: `ops::attest`
//! reads the image and hands the facts over.
//!
//! Every document is deterministic, byte for byte, for the same inputs:
//! - object keys are sorted and the JSON is pretty-printed the same way every time
//!   ([`to_canonical_json`]); lists are in a stable order (packages by type, name, architecture
//!   and version; layers bottom to top);
//! - no random identifier: SPDX's `documentNamespace` and CycloneDX's `serialNumber` are
//!   derived from the subject's digest and the document's other inputs ([`derived_uuid`]);
//! - the one time in a document ([`document_time`]): `SOURCE_DATE_EPOCH` when it is set,
//!   else the image config's `created`, else `1970-01-01T00:00:00Z`. Provenance carries
//!   `startedOn`/`finishedOn` only when `SOURCE_DATE_EPOCH` is set.

pub mod cyclonedx;
pub mod packages;
pub mod provenance;
pub mod purl;
pub mod spdx;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::model::time::format_rfc3339;
use crate::model::{Descriptor, Digest};
use crate::verdict::release::Release;

/// The media type (and OCI `artifactType`) of an SPDX JSON document.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// The media type (and OCI `artifactType`) of a CycloneDX JSON document.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// The media type (and OCI `artifactType`) of an in-toto statement.
pub const IN_TOTO_MEDIA_TYPE: &str = "application/vnd.in-toto+json";

/// `Tool: ocipatch-<version>`, the creator every document names.
pub fn tool_name() -> String {
    format!("ocipatch-{}", env!("CARGO_PKG_VERSION"))
}

/// Which SBOM format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SbomFormat {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
}

impl SbomFormat {
    /// The document's media type.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::Spdx => SPDX_MEDIA_TYPE,
            SbomFormat::Cyclonedx => CYCLONEDX_MEDIA_TYPE,
        }
    }

    /// The file extension used when documents are written to a directory.
    pub fn extension(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "spdx.json",
            SbomFormat::Cyclonedx => "cdx.json",
        }
    }
}

/// The package manager a package was installed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    /// dpkg (`var/lib/dpkg/status`, `status.d/`).
    Deb,
    /// apk (`lib/apk/db/installed`).
    Apk,
    /// rpm (`rpmdb.sqlite`).
    Rpm,
}

/// One installed OS package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// Which package manager installed it.
    pub kind: PackageKind,
    /// Its name.
    pub name: String,
    /// Its version: dpkg's and apk's as written (a dpkg epoch included, `1:2.4-1`); rpm's
    /// `VERSION-RELEASE` (the epoch is [`Package::epoch`]).
    pub version: String,
    /// Its architecture (empty when it has none).
    pub arch: String,
    /// rpm's epoch, when the header has one.
    pub epoch: Option<u32>,
    /// The source package: dpkg `Source:`, apk `o:` (origin), rpm `SOURCERPM`.
    pub source: Option<String>,
    /// The source package's own version, when it differs and is given (dpkg
    /// `Source: name (version)`).
    pub source_version: Option<String>,
}

impl Package {
    /// The stable order of packages in every document.
    fn sort_key(&self) -> (PackageKind, &str, &str, &str) {
        (self.kind, &self.name, &self.arch, &self.version)
    }
}

/// Sorts packages in document order (type, name, architecture, version) and drops exact
/// duplicates.
pub fn sort_packages(packages: &mut Vec<Package>) {
    packages.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    packages.dedup();
}

/// What a layer of the written image is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerRole {
    /// A layer of the (new) base image.
    Base,
    /// One of the application's own layers.
    Application,
    /// The layer ocipatch wrote with the reconciled package databases.
    PackageDatabase,
    /// The layer `append` added.
    Appended,
    /// A layer of the image `append` started from (base and application are not told apart).
    Image,
}

impl LayerRole {
    /// The role as documents name it.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerRole::Base => "base",
            LayerRole::Application => "application",
            LayerRole::PackageDatabase => "package-database",
            LayerRole::Appended => "appended",
            LayerRole::Image => "image",
        }
    }
}

/// One layer of the written image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The stored blob's digest.
    pub digest: Digest,
    /// The uncompressed tar's digest (the config's diff ID).
    pub diff_id: Option<Digest>,
    /// The layer's media type.
    pub media_type: String,
    /// The stored blob's size.
    pub size: u64,
    /// What it is.
    pub role: LayerRole,
}

/// The base image, as the user named it and by digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseImage {
    /// The name as the user gave it (`--onto`, `--base-name`, or the image's
    /// `org.opencontainers.image.base.name` annotation).
    pub name: String,
    /// The base's manifest (or index) digest.
    pub digest: Digest,
}

/// Everything an SBOM of one written platform image says.
#[derive(Clone, Debug)]
pub struct ImageFacts {
    /// The image's name: the destination reference as given.
    pub name: String,
    /// The written platform manifest.
    pub manifest: Descriptor,
    /// The platform, `os/arch[/variant]`.
    pub platform: String,
    /// The image config's `created`, when it has one (RFC 3339).
    pub created: Option<String>,
    /// The distribution release the image's os-release names.
    pub release: Option<Release>,
    /// The base image.
    pub base: Option<BaseImage>,
    /// The layers, bottom to top.
    pub layers: Vec<Layer>,
    /// Every OS package of the image's package databases, in document order
    /// ([`sort_packages`]).
    pub packages: Vec<Package>,
}

impl ImageFacts {
    /// The purl namespace: the release's `ID`.
    fn namespace(&self) -> Option<&str> {
        self.release.as_ref().map(|r| r.id.as_str())
    }

    /// The purl `distro` qualifier: `ID-VERSION_ID` (`debian-12`), or `ID-CODENAME`.
    pub fn distro(&self) -> Option<String> {
        let r = self.release.as_ref()?;
        let v = r.version_id.as_ref().or(r.codename.as_ref())?;
        Some(format!("{}-{v}", r.id))
    }

    /// The purl of `p` in this image's distribution.
    pub fn purl(&self, p: &Package) -> String {
        purl::purl(p, self.namespace(), self.distro().as_deref())
    }
}

/// The time a document states (see the module documentation): `SOURCE_DATE_EPOCH` when
/// set, else `created`, else the Unix epoch; always RFC 3339 UTC with seconds
/// (`2024-01-02T03:04:05Z`).
pub fn document_time(source_date_epoch: Option<i64>, created: Option<&str>) -> String {
    if let Some(s) = source_date_epoch {
        return format_rfc3339(s);
    }
    created
        .and_then(crate::model::time::parse_rfc3339)
        .map(format_rfc3339)
        .unwrap_or_else(|| format_rfc3339(0))
}

/// A UUID derived from `parts` (SHA-256 of their bytes, each followed by a NUL), laid out as
/// RFC 4122 version 5 (name-based) with its variant bits: the same inputs, the same UUID.
pub fn derived_uuid(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `value` with every object's keys sorted, pretty-printed, with a final newline: the one
/// way documents are written.
pub fn to_canonical_json(value: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // Serializing a Value cannot fail (string keys, no non-finite floats).
    let mut out = serde_json::to_vec_pretty(&sorted(value)).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The `{"sha256": HEX}` digest set of in-toto and SLSA.
fn digest_set(d: &Digest) -> Value {
    let mut m = Map::new();
    m.insert(
        d.algorithm().to_string(),
        Value::String(d.hex().to_string()),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests;
