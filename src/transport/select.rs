//! Picking an image out of an OCI `index.json` by its `org.opencontainers.image.ref.name`,
//! shared by the layout directory and the oci-archive (same file, same rules, as in skopeo).

use serde_json::{json, Map, Value};

use std::path::Path;

use crate::error::{Error, FileError, NotFoundHint, Result, Wanted};
use crate::model::media;
use crate::model::{Descriptor, Digest, Index, Reference};

/// The index annotation that tags a manifest in an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The tags of an index, sorted, once each.
pub fn tags(index: &Index) -> Vec<String> {
    let mut tags: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.annotation(REF_NAME).map(str::to_string))
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// Where an index is, for messages: a file, and the member of it for an archive.
pub type IndexFile<'a> = (&'a Path, Option<&'static str>);

/// The descriptor tagged `tag`; an error when the tag names two different manifests.
/// `index_file` names the index in messages.
pub fn by_tag(
    index: &Index,
    tag: &str,
    reference: &Reference,
    index_file: IndexFile,
) -> Result<Option<Descriptor>> {
    let found: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| d.annotation(REF_NAME) == Some(tag))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one, rest @ ..] if rest.iter().all(|d| d.digest == one.digest) => Ok(Some((*one).clone())),
        _ => {
            let problem = FileError::DuplicateTag {
                tag: tag.to_string(),
                manifests: found.len(),
            };
            let (file, member) = index_file;
            Err(Error::InvalidFile {
                reference: reference.to_string(),
                file: file.to_path_buf(),
                source: Box::new(match member {
                    Some(member) => FileError::Member {
                        member,
                        source: Box::new(problem),
                    },
                    None => problem,
                }),
                overwrite: false,
            })
        }
    }
}

/// A tag the index does not have, listing those it has (`what`: `layout` or `archive`).
pub fn tag_not_found(index: &Index, tag: &str, reference: &Reference, what: &'static str) -> Error {
    Error::NotFound {
        reference: reference.to_string(),
        what: Wanted::Tag(tag.to_string()),
        hint: NotFoundHint::Tags {
            store: what,
            tags: tags(index),
        },
    }
}

/// The image a tag selects; with no tag, like skopeo: `latest`, or the index's only image.
/// `what` is "layout" or "archive", for messages.
pub fn by_tag_or_default(
    index: &Index,
    tag: Option<&str>,
    reference: &Reference,
    index_file: IndexFile,
    what: &'static str,
) -> Result<Descriptor> {
    match tag {
        Some(tag) => by_tag(index, tag, reference, index_file)?
            .ok_or_else(|| tag_not_found(index, tag, reference, what)),
        None => match by_tag(index, "latest", reference, index_file)? {
            Some(d) => Ok(d),
            None if index.manifests.len() == 1 => Ok(index.manifests[0].clone()),
            None => Err(tag_not_found(index, "latest", reference, what)),
        },
    }
}

/// A descriptor for a stored blob that is a manifest or an index (how untagged manifests are
/// found by digest); `None` for anything else.
pub fn sniff_descriptor(bytes: &[u8], digest: &Digest) -> Option<Descriptor> {
    let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    let media_type = match json.get("mediaType").and_then(Value::as_str) {
        Some(mt) => mt.to_string(),
        None if json.contains_key("manifests") => media::OCI_INDEX.to_string(),
        None if json.contains_key("config") => media::OCI_MANIFEST.to_string(),
        None => return None,
    };
    Some(Descriptor::new(
        &media_type,
        digest.clone(),
        bytes.len() as u64,
    ))
}

/// `index` (an `index.json` object; a fresh one when `None`) with `tag` moved to `root`: other
/// entries kept in their order, the entry that had this tag replaced where it was (a new tag's
/// entry last).
pub fn retag(
    index: Option<Map<String, Value>>,
    root: &Descriptor,
    tag: &str,
) -> Map<String, Value> {
    let mut index = index.unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("schemaVersion".into(), 2.into());
        m.insert("mediaType".into(), media::OCI_INDEX.into());
        m.insert("manifests".into(), Value::Array(vec![]));
        m
    });
    let mut manifests: Vec<Value> = index
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let tagged = |m: &Value| {
        m.get("annotations")
            .and_then(|a| a.get(REF_NAME))
            .and_then(Value::as_str)
            == Some(tag)
    };
    let at = manifests.iter().position(tagged);
    manifests.retain(|m| !tagged(m));
    let mut entry = root.to_json();
    if let Value::Object(e) = &mut entry {
        e.insert("annotations".into(), json!({ REF_NAME: tag }));
    }
    // A tag that moves keeps its place: re-running a write leaves index.json as it was.
    match at {
        Some(i) => manifests.insert(i, entry),
        None => manifests.push(entry),
    }
    index.insert("manifests".into(), Value::Array(manifests));
    index
}
