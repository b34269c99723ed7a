//! Planning `append`: one new layer on top of an image, with its diff ID and history entry.

use serde_json::{Map, Value};

use super::rebase::keep_or_serialize;
use super::{Parts, PlanError};
use crate::model::media::{self, Family};
use crate::model::{Descriptor, Digest};

/// The layer being appended, already built.
#[derive(Clone, Debug)]
pub struct NewLayer {
    /// The compressed blob's digest.
    pub digest: Digest,
    /// The digest of the uncompressed tar (the config's new diff ID).
    pub diff_id: Digest,
    /// The compressed blob's size in bytes.
    pub size: u64,
    /// Zstd-compressed (an OCI-only media type) rather than gzip.
    pub zstd: bool,
}

/// Everything needed to write one image with the layer appended.
#[derive(Clone, Debug)]
pub struct AppendPlan {
    /// The new layer's descriptor, its media type in the image's OCI or Docker family.
    pub layer: Descriptor,
    /// The new config's bytes.
    pub config: Vec<u8>,
    /// The descriptor of [`AppendPlan::config`].
    pub config_descriptor: Descriptor,
    /// The new manifest's bytes.
    pub manifest: Vec<u8>,
    /// The descriptor of [`AppendPlan::manifest`].
    pub manifest_descriptor: Descriptor,
}

/// Appends `layer` to `image`. `history` is the new history entry; `created`, when set, becomes
/// the config's `created` (it is `SOURCE_DATE_EPOCH` when the user set one).
pub fn plan_append(
    image: Parts,
    layer: &NewLayer,
    history: Value,
    created: Option<&str>,
) -> Result<AppendPlan, PlanError> {
    let family = image.manifest.family();
    let media_type = match (family, layer.zstd) {
        (Family::Oci, false) => media::OCI_LAYER_GZIP,
        (Family::Oci, true) => media::OCI_LAYER_ZSTD,
        (Family::Docker, false) => media::DOCKER_LAYER_GZIP,
        (Family::Docker, true) => {
            return Err(PlanError::NoDockerName {
                digest: layer.digest.clone(),
                media_type: media::OCI_LAYER_ZSTD.into(),
            })
        }
    };
    let layer_descriptor = Descriptor::new(media_type, layer.digest.clone(), layer.size);

    let mut cfg = image.config.json.clone();
    let mut rootfs = cfg
        .get("rootfs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut diff_ids: Vec<Value> = image
        .config
        .diff_ids
        .iter()
        .map(|d| Value::String(d.to_string()))
        .collect();
    diff_ids.push(layer.diff_id.to_string().into());
    rootfs.insert("type".into(), "layers".into());
    rootfs.insert("diff_ids".into(), Value::Array(diff_ids));
    cfg.insert("rootfs".into(), Value::Object(rootfs));
    // A history that exists gets the entry; a config without one stays without (adding a
    // single entry would contradict its layer count).
    if let Some(Value::Array(h)) = cfg.get_mut("history") {
        h.push(history);
    }
    if let Some(created) = created {
        cfg.insert("created".into(), created.into());
    }
    let config = keep_or_serialize(&cfg, &image.config.json, &image.config.bytes);
    let mut config_descriptor = image.manifest.config.clone();
    config_descriptor.digest = Digest::of(&config);
    config_descriptor.size = config.len() as u64;

    let mut manifest: Map<String, Value> = image.manifest.json.clone();
    manifest.insert("config".into(), config_descriptor.to_json());
    let mut layers: Vec<Value> = image
        .manifest
        .layers
        .iter()
        .map(Descriptor::to_json)
        .collect();
    layers.push(layer_descriptor.to_json());
    manifest.insert("layers".into(), Value::Array(layers));
    let manifest = serde_json::to_vec(&manifest).expect("a JSON value always serializes");
    let manifest_descriptor = Descriptor::new(
        &image.manifest.media_type,
        Digest::of(&manifest),
        manifest.len() as u64,
    );
    Ok(AppendPlan {
        layer: layer_descriptor,
        config,
        config_descriptor,
        manifest,
        manifest_descriptor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Config, Manifest};
    use crate::plan::rebase::tests::{digest, image};
    use serde_json::json;

    fn layer(zstd: bool) -> NewLayer {
        NewLayer {
            digest: digest(200),
            diff_id: digest(201),
            size: 42,
            zstd,
        }
    }

    #[test]
    fn appends_layer_diff_id_and_history_and_keeps_the_rest() {
        let img = image(
            &[1, 2],
            &["A=1"],
            Family::Oci,
            Some(vec![json!({"created_by":"a"}), json!({"created_by":"b"})]),
            Some(json!({"k":"v"})),
        );
        let p = plan_append(
            img.parts(),
            &layer(false),
            json!({"created_by": "ocipatch append"}),
            None,
        )
        .unwrap();
        let m = Manifest::parse(&p.manifest, None).unwrap();
        assert_eq!(m.layers.len(), 3);
        assert_eq!(m.layers[2].media_type, media::OCI_LAYER_GZIP);
        assert_eq!(m.annotations()["k"], "v");
        let c = Config::parse(&p.config).unwrap();
        assert_eq!(c.diff_ids, vec![digest(1), digest(2), digest(201)]);
        assert_eq!(c.history.len(), 3);
        assert_eq!(c.json["created"], "2024-01-01T00:00:00Z");
        assert_eq!(m.config.digest, Digest::of(&p.config));
    }

    #[test]
    fn created_is_set_when_given() {
        let img = image(&[1], &[], Family::Oci, None, None);
        let p = plan_append(
            img.parts(),
            &layer(true),
            json!({}),
            Some("2020-01-01T00:00:00Z"),
        )
        .unwrap();
        let c = Config::parse(&p.config).unwrap();
        assert_eq!(c.json["created"], "2020-01-01T00:00:00Z");
        assert!(c.json.get("history").is_none());
        assert_eq!(p.layer.media_type, media::OCI_LAYER_ZSTD);
    }

    #[test]
    fn docker_family_gets_docker_gzip_and_refuses_zstd() {
        let img = image(&[1], &[], Family::Docker, None, None);
        let p = plan_append(img.parts(), &layer(false), json!({}), None).unwrap();
        assert_eq!(p.layer.media_type, media::DOCKER_LAYER_GZIP);
        assert!(plan_append(img.parts(), &layer(true), json!({}), None).is_err());
    }
}
