//! OCI 1.1 referrers: the manifests whose `subject` names another manifest (an SBOM, a
//! provenance statement, a signature), as the image-spec and distribution-spec 1.1 define them.
//!
//! Pure: building a referrer's manifest (an artifact manifest with the empty config), the
//! descriptor an index lists it by, and adding it to an index (a layout's `index.json`, a
//! registry's referrers tag `sha256-<hex>`) keeping every other entry and its order. The I/O is
//! each transport's ([`super::Source::referrers`], [`super::Sink::attach_referrer`]).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::model::media;
use crate::model::{Descriptor, Digest, Index};

/// The empty JSON object `{}`: the config blob of an artifact manifest.
pub const EMPTY_JSON: &[u8] = b"{}";

/// The empty descriptor: `application/vnd.oci.empty.v1+json`, the digest of `{}`, size 2, its
/// content inlined as `data` (base64 of `{}`).
pub fn empty_descriptor() -> Descriptor {
    Descriptor::of_bytes(media::OCI_EMPTY, EMPTY_JSON).with_field("data", "e30=".into())
}

/// The referrers tag schema's tag for `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("{}-{}", subject.algorithm(), subject.hex())
}

/// A referrer manifest built by [`build_manifest`]: its bytes, its descriptor, and the entry an
/// index lists it by.
#[derive(Clone, Debug)]
pub struct Built {
    /// The manifest's bytes.
    pub bytes: Vec<u8>,
    /// The manifest's descriptor (media type, digest, size).
    pub descriptor: Descriptor,
    /// The index entry: the descriptor plus `artifactType` and the manifest's annotations.
    pub entry: Descriptor,
}

/// The artifact manifest that attaches `document` to `subject`: `artifactType`, the empty
/// config, `layers` = the one `document`, `subject` = the subject's media type, digest and size (its
/// platform and annotations are the subject's own business). Byte-identical for identical
/// inputs: keys in a fixed order, `annotations` (sorted) only when there are some.
pub fn build_manifest(
    subject: &Descriptor,
    artifact_type: &str,
    document: &Descriptor,
    annotations: &BTreeMap<String, String>,
) -> Built {
    let mut m = Map::new();
    m.insert("schemaVersion".into(), 2.into());
    m.insert("mediaType".into(), media::OCI_MANIFEST.into());
    m.insert("artifactType".into(), artifact_type.into());
    m.insert("config".into(), empty_descriptor().to_json());
    m.insert("layers".into(), Value::Array(vec![document.to_json()]));
    m.insert(
        "subject".into(),
        Descriptor::new(&subject.media_type, subject.digest.clone(), subject.size).to_json(),
    );
    if !annotations.is_empty() {
        m.insert("annotations".into(), json!(annotations));
    }
    let bytes = serde_json::to_vec(&Value::Object(m)).expect("a JSON value always serializes");
    let descriptor = Descriptor::of_bytes(media::OCI_MANIFEST, &bytes);
    let entry = index_entry(&descriptor, Some(artifact_type), annotations);
    Built {
        bytes,
        descriptor,
        entry,
    }
}

/// How an index lists a referrer (distribution-spec 1.1): its descriptor with `artifactType`
/// and the manifest's annotations.
pub fn index_entry(
    manifest: &Descriptor,
    artifact_type: Option<&str>,
    annotations: &BTreeMap<String, String>,
) -> Descriptor {
    let mut d = Descriptor::new(&manifest.media_type, manifest.digest.clone(), manifest.size);
    if let Some(t) = artifact_type {
        d = d.with_field("artifactType", t.into());
    }
    if !annotations.is_empty() {
        d = d.with_field("annotations", json!(annotations));
    }
    d
}

/// A new, empty image index (what a referrers tag starts as).
pub fn empty_index() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("schemaVersion".into(), 2.into());
    m.insert("mediaType".into(), media::OCI_INDEX.into());
    m.insert("manifests".into(), Value::Array(Vec::new()));
    m
}

/// Adds each of `entries` to `index` (`None`: a new one) unless an entry with its digest is
/// there (an entry listed twice is listed once). Every other field and entry is kept, in its
/// order; new entries go last, in the order given. Returns the index and whether it changed.
pub fn add_entries(
    index: Option<Map<String, Value>>,
    entries: &[Descriptor],
) -> (Map<String, Value>, bool) {
    let mut index = index.unwrap_or_else(empty_index);
    if !matches!(index.get("manifests"), Some(Value::Array(_))) {
        index.insert("manifests".into(), Value::Array(Vec::new()));
    }
    let Some(Value::Array(list)) = index.get_mut("manifests") else {
        unreachable!("just made an array")
    };
    let mut changed = false;
    for e in entries {
        let digest = e.digest.to_string();
        let present = list
            .iter()
            .any(|m| m.get("digest").and_then(Value::as_str) == Some(digest.as_str()));
        if !present {
            list.push(e.to_json());
            changed = true;
        }
    }
    (index, changed)
}

/// The entries of `wanted` that `index` does not list (by digest).
pub fn missing<'a>(index: &Index, wanted: &'a [Descriptor]) -> Vec<&'a Descriptor> {
    wanted
        .iter()
        .filter(|w| !index.manifests.iter().any(|m| m.digest == w.digest))
        .collect()
}

/// The entries of a referrers answer (the API's index or the referrers tag's), filtered by
/// artifact type when one is given.
pub fn filter(index: &Index, artifact_type: Option<&str>) -> Vec<Descriptor> {
    index
        .manifests
        .iter()
        .filter(|d| artifact_type.is_none() || d.artifact_type() == artifact_type)
        .cloned()
        .collect()
}

/// The subject digest of a manifest's bytes: `subject.digest`, read without any other check
/// (the caller has checked the bytes against their descriptor). `None` when absent or invalid.
pub fn subject_of(bytes: &[u8]) -> Option<Digest> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("subject")?.get("digest")?.as_str()?.parse().ok()
}

/// The index entry for a referrer manifest found by its bytes (a layout's, whose `index.json`
/// entry may lack `artifactType`): the descriptor it was listed by, with the manifest's own
/// `artifactType` (or config media type) and annotations.
pub fn entry_from_manifest(listed: &Descriptor, bytes: &[u8]) -> Descriptor {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let artifact_type = v
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| {
            v.get("config")?
                .get("mediaType")?
                .as_str()
                .filter(|t| *t != media::OCI_EMPTY)
        })
        .map(str::to_string)
        .or_else(|| listed.artifact_type().map(str::to_string));
    let annotations: BTreeMap<String, String> = v
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    index_entry(listed, artifact_type.as_deref(), &annotations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Descriptor {
        Descriptor::of_bytes(media::OCI_MANIFEST, b"{\"schemaVersion\":2}")
            .with_field("platform", json!({"os":"linux","architecture":"amd64"}))
    }

    fn doc() -> Descriptor {
        Descriptor::of_bytes("application/spdx+json", b"{\"spdxVersion\":\"SPDX-2.3\"}")
    }

    #[test]
    fn empty_descriptor_is_the_specs() {
        let e = empty_descriptor();
        assert_eq!(
            e.digest.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(e.size, 2);
        assert_eq!(e.to_json()["data"], "e30=");
    }

    #[test]
    fn built_manifest_is_deterministic_and_names_its_subject() {
        let a = build_manifest(
            &subject(),
            "application/spdx+json",
            &doc(),
            &BTreeMap::new(),
        );
        let b = build_manifest(
            &subject(),
            "application/spdx+json",
            &doc(),
            &BTreeMap::new(),
        );
        assert_eq!(a.bytes, b.bytes);
        let m = crate::model::Manifest::parse(&a.bytes, None).unwrap();
        let s = m.subject().unwrap();
        assert_eq!(s.digest, subject().digest);
        // Only the three core fields: the subject's platform is not copied.
        assert_eq!(s.to_json().as_object().unwrap().len(), 3);
        assert_eq!(m.artifact_type().as_deref(), Some("application/spdx+json"));
        assert_eq!(m.config.digest, empty_descriptor().digest);
        assert_eq!(m.layers, vec![doc()]);
        assert_eq!(subject_of(&a.bytes), Some(subject().digest));
        assert_eq!(a.entry.artifact_type(), Some("application/spdx+json"));
        assert_eq!(a.entry.digest, Digest::of(&a.bytes));
        assert!(!String::from_utf8_lossy(&a.bytes).contains("annotations"));
        let ann = BTreeMap::from([("b".to_string(), "2".to_string()), ("a".into(), "1".into())]);
        let c = build_manifest(&subject(), "application/spdx+json", &doc(), &ann);
        assert!(String::from_utf8_lossy(&c.bytes).contains(r#""annotations":{"a":"1","b":"2"}"#));
        assert_eq!(c.entry.annotation("a"), Some("1"));
    }

    #[test]
    fn adding_keeps_entries_and_order_and_is_idempotent() {
        let tagged = Descriptor::of_bytes(media::OCI_MANIFEST, b"x").with_field(
            "annotations",
            json!({"org.opencontainers.image.ref.name":"v1"}),
        );
        let mut start = empty_index();
        start.insert("manifests".into(), json!([tagged.to_json()]));
        start.insert("x-vendor".into(), 7.into());
        let r = build_manifest(&subject(), "t", &doc(), &BTreeMap::new());
        let (once, changed) = add_entries(Some(start), std::slice::from_ref(&r.entry));
        assert!(changed);
        let (twice, changed) = add_entries(Some(once.clone()), std::slice::from_ref(&r.entry));
        assert!(!changed);
        assert_eq!(once, twice);
        let list = once["manifests"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0], tagged.to_json());
        assert_eq!(list[1]["artifactType"], "t");
        assert_eq!(once["x-vendor"], 7);
    }

    #[test]
    fn merging_two_writers_keeps_both() {
        let a = build_manifest(&subject(), "a", &doc(), &BTreeMap::new()).entry;
        let b = build_manifest(&subject(), "b", &doc(), &BTreeMap::new()).entry;
        // Writer B overwrote A's tag with only its own entry; A re-reads and merges.
        let (theirs, _) = add_entries(None, std::slice::from_ref(&b));
        let bytes = serde_json::to_vec(&theirs).unwrap();
        let index = Index::parse(&bytes, None).unwrap();
        let wanted = [a.clone()];
        assert_eq!(missing(&index, &wanted), vec![&a]);
        let (merged, changed) = add_entries(Some(theirs), &wanted);
        assert!(changed);
        let merged = Index::parse(&serde_json::to_vec(&merged).unwrap(), None).unwrap();
        assert!(missing(&merged, &[a.clone(), b.clone()]).is_empty());
        assert_eq!(filter(&merged, Some("a")), vec![a]);
        assert_eq!(filter(&merged, None).len(), 2);
    }

    #[test]
    fn entry_from_manifest_takes_the_manifests_artifact_type() {
        let r = build_manifest(&subject(), "t", &doc(), &BTreeMap::new());
        let listed = r.descriptor.clone();
        assert_eq!(entry_from_manifest(&listed, &r.bytes), r.entry);
        assert_eq!(
            fallback_tag(&subject().digest),
            format!("sha256-{}", subject().digest.hex())
        );
    }
}
