//! Descriptors, manifests, indexes and configs as read from their bytes.
//!
//! Each keeps its original bytes and its JSON as a `serde_json::Value` (with key order kept):
//! JSON we pass through is written back byte-for-byte, JSON we edit is edited as a value so
//! fields we do not know survive. oci-spec's typed structs validate the shape and give typed
//! access where a typed view is enough (config history and rootfs).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::digest::DigestParseError;
use super::media;
use super::Digest;

/// Why bytes are not a valid manifest, index, config or descriptor. The caller names the blob
/// or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A descriptor that is not an object.
    #[error("descriptor is not a JSON object")]
    DescriptorNotAnObject,
    /// A required field is missing or has the wrong type.
    #[error("{object} has no {field}")]
    Missing {
        /// `descriptor`, `manifest` or `index`.
        object: &'static str,
        /// What it lacks (`mediaType`, `valid size`, `layers array`).
        field: &'static str,
    },
    /// A digest that does not parse.
    #[error(transparent)]
    Digest(#[from] DigestParseError),
    /// An index where a manifest was expected.
    #[error("expected an image manifest, found an index ({media_type})")]
    IndexNotManifest {
        /// The media type found.
        media_type: String,
    },
    /// A manifest of a media type ocipatch does not read.
    #[error("unsupported manifest media type {media_type}")]
    ManifestMediaType {
        /// The media type found.
        media_type: String,
    },
    /// Something else where an index was expected.
    #[error("expected an index, found {media_type}")]
    NotAnIndex {
        /// The media type found.
        media_type: String,
    },
    /// `schemaVersion` is not 2.
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    /// oci-spec refuses the document (its message, then its causes).
    #[error("{}", spec_chain(.0))]
    Spec(#[source] oci_spec::OciSpecError),
    /// A problem of one field of the document.
    #[error("{field}: {source}")]
    In {
        /// Where it is.
        field: Field,
        /// The problem there.
        #[source]
        source: Box<FormatError>,
    },
}

/// A field of a manifest, index or config, for [`FormatError::In`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// A manifest's `config` descriptor.
    ConfigDescriptor,
    /// A manifest's `layers[i]`.
    Layer(usize),
    /// An index's `manifests[i]`.
    Manifests(usize),
    /// A config's `rootfs.diff_ids[i]`.
    DiffId(usize),
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::ConfigDescriptor => f.write_str("config descriptor"),
            Field::Layer(i) => write!(f, "layer {i}"),
            Field::Manifests(i) => write!(f, "manifests[{i}]"),
            Field::DiffId(i) => write!(f, "rootfs.diff_ids[{i}]"),
        }
    }
}

impl FormatError {
    fn at(field: Field) -> impl FnOnce(FormatError) -> FormatError {
        move |e| FormatError::In {
            field,
            source: Box::new(e),
        }
    }
}

/// oci-spec's errors say "serde failed"; the useful part is in the source chain.
fn spec_chain(e: &oci_spec::OciSpecError) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// A content descriptor plus the whole JSON object it came from (annotations, urls, platform,
/// and any field a newer spec or a vendor added).
#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    /// The `mediaType` of the content it points to.
    pub media_type: String,
    /// The content's digest.
    pub digest: Digest,
    /// The content's size in bytes.
    pub size: u64,
    raw: Map<String, Value>,
}

impl Descriptor {
    /// A fresh descriptor of `bytes`: their digest and size.
    pub fn of_bytes(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64)
    }

    /// This descriptor (media type, platform, annotations…) pointing at `bytes` instead: their
    /// digest and size.
    pub fn with_bytes(mut self, bytes: &[u8]) -> Descriptor {
        self.digest = Digest::of(bytes);
        self.size = bytes.len() as u64;
        self.raw
            .insert("digest".into(), self.digest.to_string().into());
        self.raw.insert("size".into(), self.size.into());
        self
    }

    /// A fresh descriptor, keys in the spec's order.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        let mut raw = Map::new();
        raw.insert("mediaType".into(), media_type.into());
        raw.insert("digest".into(), digest.to_string().into());
        raw.insert("size".into(), size.into());
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            raw,
        }
    }

    /// Reads a descriptor object, keeping every field. Errors (the caller adds which
    /// descriptor) when `mediaType`, `digest` or `size` is missing or invalid.
    pub fn from_json(v: &Value) -> Result<Descriptor, FormatError> {
        let missing = |field| FormatError::Missing {
            object: "descriptor",
            field,
        };
        let raw = v
            .as_object()
            .ok_or(FormatError::DescriptorNotAnObject)?
            .clone();
        let media_type = raw
            .get("mediaType")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("mediaType"))?
            .to_string();
        let digest = raw
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("digest"))?
            .parse::<Digest>()?;
        let size = raw
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| missing("valid size"))?;
        Ok(Descriptor {
            media_type,
            digest,
            size,
            raw,
        })
    }

    /// The descriptor as JSON: every field it was read with, the three core fields current.
    pub fn to_json(&self) -> Value {
        let mut raw = self.raw.clone();
        raw.insert("mediaType".into(), self.media_type.clone().into());
        raw.insert("digest".into(), self.digest.to_string().into());
        raw.insert("size".into(), self.size.into());
        Value::Object(raw)
    }

    /// `artifactType` (OCI 1.1: set on a referrer's descriptor), if present and a string.
    pub fn artifact_type(&self) -> Option<&str> {
        self.raw.get("artifactType")?.as_str()
    }

    /// This descriptor with the field `key` set to `value` (a field the three core ones do not
    /// cover: `artifactType`, `annotations`); a core field's name is ignored.
    pub fn with_field(mut self, key: &str, value: Value) -> Descriptor {
        if !matches!(key, "mediaType" | "digest" | "size") {
            self.raw.insert(key.to_string(), value);
        }
        self
    }

    /// The annotation `key`, if present and a string.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.raw.get("annotations")?.get(key)?.as_str()
    }

    /// The descriptor's `platform` (set on index entries); `None` when absent or lacking os or
    /// architecture.
    pub fn platform(&self) -> Option<Platform> {
        Platform::from_json(self.raw.get("platform")?)
    }

    /// Sets (`Some`) or removes (`None`) `os.version` in the descriptor's `platform` object,
    /// keeping its other fields. Does nothing when the descriptor has no `platform`.
    pub fn set_platform_os_version(&mut self, os_version: Option<&str>) {
        if let Some(Value::Object(p)) = self.raw.get_mut("platform") {
            match os_version {
                Some(v) => {
                    p.insert("os.version".into(), v.into());
                }
                None => {
                    p.remove("os.version");
                }
            }
        }
    }

    /// Takes `other`'s `platform` object (an index entry's), if it has one.
    pub fn copy_platform_from(&mut self, other: &Descriptor) {
        if let Some(p) = other.raw.get("platform") {
            self.raw.insert("platform".into(), p.clone());
        }
    }

    /// Foreign layers may be fetched from here instead of the blob store.
    pub fn urls(&self) -> Vec<String> {
        self.raw
            .get("urls")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// os / architecture / variant (and os.version, which may differ between compatible images).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Platform {
    /// `os`, e.g. `linux`.
    pub os: String,
    /// `architecture`, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// `variant`, e.g. `v7` for `arm`; `None` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `os.version` (Windows builds); `None` when unset.
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl Platform {
    fn from_json(v: &Value) -> Option<Platform> {
        Some(Platform {
            os: v.get("os")?.as_str()?.to_string(),
            architecture: v.get("architecture")?.as_str()?.to_string(),
            variant: v.get("variant").and_then(Value::as_str).map(str::to_string),
            os_version: v
                .get("os.version")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Same os, architecture and variant. A missing variant equals the architecture's default
    /// (`arm64` is `v8`), as containerd's platform matcher has it; os.version is not compared.
    pub fn same_target(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && self.normalized_variant() == other.normalized_variant()
    }

    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", Some("v8")) => None,
            (_, Some("")) => None,
            (_, v) => v,
        }
    }

    /// Descriptor entries for attestations and other non-images use `unknown/unknown`.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, FormatError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(FormatError::NotAnObject),
        Err(e) => Err(FormatError::Json(e)),
    }
}

fn annotations_of(json: &Map<String, Value>) -> BTreeMap<String, String> {
    json.get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest exactly as stored: its digest is the digest of these bytes.
    pub bytes: Vec<u8>,
    /// The parsed JSON object, unknown fields included.
    pub json: Map<String, Value>,
    /// `mediaType`, or what the referring descriptor said when the manifest omits it.
    pub media_type: String,
    /// The config descriptor.
    pub config: Descriptor,
    /// The layer descriptors, base first.
    pub layers: Vec<Descriptor>,
}

impl Manifest {
    /// `descriptor_media_type` is what the referring index or tag said; OCI manifests may omit
    /// their own `mediaType`.
    pub fn parse(
        bytes: &[u8],
        descriptor_media_type: Option<&str>,
    ) -> Result<Manifest, FormatError> {
        let json = parse_object(bytes)?;
        let media_type = json
            .get("mediaType")
            .and_then(Value::as_str)
            .or(descriptor_media_type)
            .unwrap_or(media::OCI_MANIFEST)
            .to_string();
        if media::is_index(&media_type) {
            return Err(FormatError::IndexNotManifest { media_type });
        }
        if !media::is_manifest(&media_type) {
            return Err(FormatError::ManifestMediaType { media_type });
        }
        if json.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
            return Err(FormatError::SchemaVersion);
        }
        let missing = |field| FormatError::Missing {
            object: "manifest",
            field,
        };
        let config = Descriptor::from_json(json.get("config").ok_or_else(|| missing("config"))?)
            .map_err(FormatError::at(Field::ConfigDescriptor))?;
        let layers = json
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("layers array"))?
            .iter()
            .enumerate()
            .map(|(i, l)| Descriptor::from_json(l).map_err(FormatError::at(Field::Layer(i))))
            .collect::<Result<Vec<_>, _>>()?;
        oci_spec::image::ImageManifest::from_reader(bytes).map_err(FormatError::Spec)?;
        Ok(Manifest {
            bytes: bytes.to_vec(),
            json,
            media_type,
            config,
            layers,
        })
    }

    /// OCI or Docker schema 2, from the media type.
    pub fn family(&self) -> media::Family {
        media::family_of(&self.media_type).unwrap_or(media::Family::Oci)
    }

    /// The manifest's `annotations` (string values only); empty when there are none.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        annotations_of(&self.json)
    }

    /// The SHA-256 of [`Manifest::bytes`].
    pub fn digest(&self) -> Digest {
        Digest::of(&self.bytes)
    }

    /// The manifest's `subject` (OCI 1.1: the manifest it describes), when it has a valid one.
    pub fn subject(&self) -> Option<Descriptor> {
        Descriptor::from_json(self.json.get("subject")?).ok()
    }

    /// The manifest's `artifactType`, or else its config's media type when that is not the
    /// empty descriptor's (the spec's rule for a referrer's artifact type).
    pub fn artifact_type(&self) -> Option<String> {
        if let Some(t) = self.json.get("artifactType").and_then(Value::as_str) {
            return Some(t.to_string());
        }
        (self.config.media_type != media::OCI_EMPTY).then(|| self.config.media_type.clone())
    }

    /// An image, as opposed to an artifact that borrows the manifest format.
    pub fn is_image(&self) -> bool {
        media::is_image_config(&self.config.media_type)
    }
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Clone, Debug)]
pub struct Index {
    /// The index exactly as stored: its digest is the digest of these bytes.
    pub bytes: Vec<u8>,
    /// The parsed JSON object, unknown fields included.
    pub json: Map<String, Value>,
    /// `mediaType`, or what the referring descriptor said (the OCI index type when neither says).
    pub media_type: String,
    /// One descriptor per manifest (or nested index), in order.
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// Parses an index (OCI) or manifest list (Docker). `descriptor_media_type` is what the referring
    /// descriptor or tag said, used when the index omits its own `mediaType`. Errors when the bytes
    /// are not JSON, not an index, or not `schemaVersion` 2.
    pub fn parse(bytes: &[u8], descriptor_media_type: Option<&str>) -> Result<Index, FormatError> {
        let json = parse_object(bytes)?;
        let media_type = json
            .get("mediaType")
            .and_then(Value::as_str)
            .or(descriptor_media_type)
            .unwrap_or(media::OCI_INDEX)
            .to_string();
        if !media::is_index(&media_type) {
            return Err(FormatError::NotAnIndex { media_type });
        }
        if json.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
            return Err(FormatError::SchemaVersion);
        }
        let manifests = json
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or(FormatError::Missing {
                object: "index",
                field: "manifests array",
            })?
            .iter()
            .enumerate()
            .map(|(i, m)| Descriptor::from_json(m).map_err(FormatError::at(Field::Manifests(i))))
            .collect::<Result<Vec<_>, _>>()?;
        oci_spec::image::ImageIndex::from_reader(bytes).map_err(FormatError::Spec)?;
        Ok(Index {
            bytes: bytes.to_vec(),
            json,
            media_type,
            manifests,
        })
    }

    /// The index's `annotations` (string values only); empty when there are none.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        annotations_of(&self.json)
    }
}

/// An image config. `json` is what we edit; the other fields are read from oci-spec's typed
/// view when parsing and are not updated when `json` changes.
#[derive(Clone, Debug)]
pub struct Config {
    /// The config exactly as stored: its digest is the digest of these bytes.
    pub bytes: Vec<u8>,
    /// The parsed JSON object, unknown fields included: edit this one to write a new config.
    pub json: Map<String, Value>,
    /// `os`, `architecture`, `variant` and `os.version`.
    pub platform: Platform,
    /// `rootfs.diff_ids`: the uncompressed digest of each layer, base first.
    pub diff_ids: Vec<Digest>,
    /// `history`, empty when absent (one entry per layer, plus `empty_layer` entries).
    pub history: Vec<oci_spec::image::History>,
}

impl Config {
    /// Parses a config: it must be JSON that oci-spec accepts as an image configuration, with
    /// valid diff IDs.
    pub fn parse(bytes: &[u8]) -> Result<Config, FormatError> {
        let json = parse_object(bytes)?;
        let typed =
            oci_spec::image::ImageConfiguration::from_reader(bytes).map_err(FormatError::Spec)?;
        let platform = Platform {
            os: typed.os().to_string(),
            architecture: typed.architecture().to_string(),
            variant: typed.variant().clone(),
            os_version: typed.os_version().clone(),
        };
        let diff_ids = typed
            .rootfs()
            .diff_ids()
            .iter()
            .enumerate()
            .map(|(i, d)| {
                d.parse::<Digest>()
                    .map_err(|e| FormatError::at(Field::DiffId(i))(e.into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            bytes: bytes.to_vec(),
            json,
            platform,
            diff_ids,
            history: typed.history().clone().unwrap_or_default(),
        })
    }

    /// The SHA-256 of [`Config::bytes`].
    pub fn digest(&self) -> Digest {
        Digest::of(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn descriptor_keeps_unknown_fields() {
        let v: Value = serde_json::from_str(&format!(
            r#"{{"mediaType":"a","digest":"{D}","size":3,"urls":["http://x"],"x-vendor":1}}"#
        ))
        .unwrap();
        let mut d = Descriptor::from_json(&v).unwrap();
        assert_eq!(d.urls(), vec!["http://x".to_string()]);
        d.media_type = "b".into();
        let out = serde_json::to_string(&d.to_json()).unwrap();
        assert_eq!(
            out,
            format!(
                r#"{{"mediaType":"b","digest":"{D}","size":3,"urls":["http://x"],"x-vendor":1}}"#
            )
        );
    }

    #[test]
    fn manifest_parse_reports_what_is_missing() {
        let err = Manifest::parse(br#"{"schemaVersion":2}"#, None).unwrap_err();
        assert!(
            matches!(
                err,
                FormatError::Missing {
                    field: "config",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.to_string(), "manifest has no config");
        let err = Manifest::parse(b"{", None).unwrap_err();
        assert!(matches!(err, FormatError::Json(_)), "{err}");
        assert!(err.to_string().starts_with("invalid JSON: "), "{err}");
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
            media::OCI_INDEX
        );
        let err = Manifest::parse(idx.as_bytes(), None).unwrap_err();
        assert!(matches!(err, FormatError::IndexNotManifest { .. }), "{err}");
        let layer = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"a","digest":"{D}","size":1}},"layers":[{{"mediaType":"a","size":1}}]}}"#
        );
        let err = Manifest::parse(layer.as_bytes(), None).unwrap_err();
        assert_eq!(err.to_string(), "layer 0: descriptor has no digest");
    }

    #[test]
    fn platform_matching_normalises_arm64_variant() {
        let p = |a: &str, v: Option<&str>| Platform {
            os: "linux".into(),
            architecture: a.into(),
            variant: v.map(Into::into),
            os_version: None,
        };
        assert!(p("arm64", Some("v8")).same_target(&p("arm64", None)));
        assert!(!p("arm", Some("v7")).same_target(&p("arm", Some("v6"))));
        assert!(!p("amd64", None).same_target(&p("arm64", None)));
    }
}
