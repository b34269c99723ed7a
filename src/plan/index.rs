//! Rewriting an image index after its images were rebased.

use serde_json::Value;

use super::rebase::keep_or_serialize;
use crate::model::{Descriptor, Digest, Index};

/// What replaces one index entry: the new manifest's descriptor and its platform's os.version.
#[derive(Clone, Copy, Debug)]
pub struct NewEntry<'a> {
    /// The rebased manifest's descriptor.
    pub manifest: &'a Descriptor,
    /// The new `os.version` of the entry's platform; `None` removes it.
    pub os_version: Option<&'a str>,
}

/// A rewritten index: its bytes, its descriptor, and what it dropped.
#[derive(Clone, Debug)]
pub struct IndexPlan {
    /// The new index's bytes.
    pub bytes: Vec<u8>,
    /// The descriptor of [`IndexPlan::bytes`].
    pub descriptor: Descriptor,
    /// Entries that are not images of the old index (attestations, artifacts): dropped, since
    /// they describe the image as it was.
    pub dropped: Vec<Descriptor>,
}

/// `entries[i]` replaces `index.manifests[i]`, or is `None` for an entry to drop.
/// The index's own fields and annotations are kept; each kept entry keeps its fields
/// (annotations, platform) with the new digest, size and os.version.
pub fn rewrite_index(index: &Index, entries: &[Option<NewEntry>]) -> IndexPlan {
    let mut manifests = Vec::new();
    let mut dropped = Vec::new();
    for (entry, new) in index.manifests.iter().zip(entries) {
        match new {
            Some(new) => {
                let mut d = entry.clone();
                d.digest = new.manifest.digest.clone();
                d.size = new.manifest.size;
                if d.platform().is_some() {
                    d.set_platform_os_version(new.os_version);
                }
                manifests.push(d.to_json());
            }
            None => dropped.push(entry.clone()),
        }
    }
    let mut json = index.json.clone();
    json.insert("manifests".into(), Value::Array(manifests));
    let bytes = keep_or_serialize(&json, &index.json, &index.bytes);
    let descriptor = Descriptor::new(&index.media_type, Digest::of(&bytes), bytes.len() as u64);
    IndexPlan {
        bytes,
        descriptor,
        dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::media::{self, Family};
    use crate::plan::plan_image;
    use crate::plan::rebase::tests::image;
    use serde_json::json;

    #[test]
    fn keeps_index_annotations_and_drops_attestations() {
        let old = image(&[1], &[], Family::Oci, None, None);
        let new = image(&[2], &[], Family::Oci, None, None);
        let app = image(&[1, 10], &[], Family::Oci, None, None);
        let plan = plan_image(app.parts(), old.parts(), new.parts(), Some("b")).unwrap();
        let idx = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [
                {"mediaType": media::OCI_MANIFEST, "digest": app.manifest.digest().to_string(), "size": app.manifest.bytes.len(),
                 "platform": {"architecture": "amd64", "os": "linux"}, "annotations": {"x": "y"}},
                {"mediaType": media::OCI_MANIFEST, "digest": Digest::of(b"att").to_string(), "size": 3,
                 "platform": {"architecture": "unknown", "os": "unknown"}},
            ],
            "annotations": {"org.example.index": "kept"}
        });
        let index = Index::parse(&serde_json::to_vec(&idx).unwrap(), None).unwrap();
        let new = NewEntry {
            manifest: &plan.manifest_descriptor,
            os_version: None,
        };
        let out = rewrite_index(&index, &[Some(new), None]);
        let v: Value = serde_json::from_slice(&out.bytes).unwrap();
        assert_eq!(v["annotations"]["org.example.index"], "kept");
        assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["manifests"][0]["digest"],
            plan.manifest_descriptor.digest.to_string()
        );
        assert_eq!(v["manifests"][0]["annotations"]["x"], "y");
        assert_eq!(out.dropped.len(), 1);
        assert_eq!(out.descriptor.digest, Digest::of(&out.bytes));
    }
}
