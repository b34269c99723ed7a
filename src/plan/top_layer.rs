//! The package-database layer a rebase puts on top of an image, planned: adding it to a planned
//! rebase ([`with_layer_on_top`]), and taking an earlier one off before planning
//! ([`without_top_layer`]), so rebases replace that layer instead of stacking it. JSON equal to
//! the original image's keeps the original bytes (`keep_or_serialize` in the rebase plan): a
//! rebase onto the current base stays a byte-identical no-op.

use serde_json::{Map, Value};

use super::rebase::keep_or_serialize;
use super::{plan_append, BlobCopy, ImagePlan, NewLayer, Origin, Parts, PlanError};
use crate::model::image::FormatError;
use crate::model::{Config, Descriptor, Manifest};

/// An image without its top layer.
#[derive(Debug)]
pub struct Stripped {
    /// The manifest, its last layer gone and its config descriptor updated.
    pub manifest: Manifest,
    /// The config, its last diff ID and history entry gone.
    pub config: Config,
    /// The manifest's descriptor (the original's, with the new digest and size).
    pub descriptor: Descriptor,
}

fn rewrite(what: &'static str) -> impl Fn(FormatError) -> PlanError {
    move |e| PlanError::Rewrite {
        what,
        source: Box::new(e),
    }
}

fn to_bytes(v: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON map always serializes")
}

/// `image` without its top layer (and that layer's diff ID and history entry); `descriptor`
/// is the manifest's descriptor in its index.
pub fn without_top_layer(image: Parts, descriptor: &Descriptor) -> Result<Stripped, PlanError> {
    let mut config = image.config.json.clone();
    if let Some(Value::Array(ids)) = config.get_mut("rootfs").and_then(|r| r.get_mut("diff_ids")) {
        ids.pop();
    }
    if let Some(Value::Array(h)) = config.get_mut("history") {
        h.pop();
    }
    let config_bytes = to_bytes(&config);
    let config = Config::parse(&config_bytes).map_err(rewrite("config"))?;
    let mut manifest = image.manifest.json.clone();
    if let Some(Value::Array(layers)) = manifest.get_mut("layers") {
        layers.pop();
    }
    let config_desc = image.manifest.config.clone().with_bytes(&config_bytes);
    manifest.insert("config".into(), config_desc.to_json());
    let manifest_bytes = to_bytes(&manifest);
    let manifest = Manifest::parse(&manifest_bytes, Some(&image.manifest.media_type))
        .map_err(rewrite("manifest"))?;
    Ok(Stripped {
        manifest,
        config,
        descriptor: descriptor.clone().with_bytes(&manifest_bytes),
    })
}

/// `p` with `layer` on top (history `created_by`, the config's `created`), its JSON kept
/// byte-identical to `original`'s (the image before the rebase) when equal to it.
pub fn with_layer_on_top(
    mut p: ImagePlan,
    original: Parts,
    layer: &NewLayer,
    created_by: &str,
) -> Result<ImagePlan, PlanError> {
    let manifest = Manifest::parse(&p.manifest, Some(&p.manifest_descriptor.media_type))
        .map_err(rewrite("planned manifest"))?;
    let config = Config::parse(&p.config).map_err(rewrite("planned config"))?;
    let mut entry = Map::new();
    if let Some(created) = config.json.get("created") {
        entry.insert("created".into(), created.clone());
    }
    entry.insert("created_by".into(), created_by.into());
    let ap = plan_append(
        Parts {
            manifest: &manifest,
            config: &config,
        },
        layer,
        Value::Object(entry),
        None,
    )?;
    let reparse = |bytes: &[u8]| serde_json::from_slice::<Map<String, Value>>(bytes).ok();
    let config_json =
        reparse(&ap.config).ok_or_else(|| rewrite("config")(FormatError::NotAnObject))?;
    let config_bytes =
        keep_or_serialize(&config_json, &original.config.json, &original.config.bytes);
    let mut manifest_json =
        reparse(&ap.manifest).ok_or_else(|| rewrite("manifest")(FormatError::NotAnObject))?;
    let config_desc = ap.config_descriptor.with_bytes(&config_bytes);
    manifest_json.insert("config".into(), config_desc.to_json());
    let manifest_bytes = keep_or_serialize(
        &manifest_json,
        &original.manifest.json,
        &original.manifest.bytes,
    );
    p.copies.push(BlobCopy {
        descriptor: ap.layer,
        origin: Origin::Built,
    });
    p.config = config_bytes;
    p.config_descriptor = config_desc;
    p.manifest_descriptor = p.manifest_descriptor.clone().with_bytes(&manifest_bytes);
    p.manifest = manifest_bytes;
    p.report.manifest_after = p.manifest_descriptor.digest.clone();
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::media::Family;
    use crate::model::Digest;
    use crate::plan::plan_image;
    use crate::plan::rebase::tests::{digest, image};
    use serde_json::json;

    const CREATED_BY: &str = "ocipatch rebase: package database";

    fn hist(n: usize) -> Option<Vec<Value>> {
        Some(
            (0..n)
                .map(|i| json!({ "created_by": format!("step {i}") }))
                .collect(),
        )
    }

    fn layer(n: u8) -> NewLayer {
        NewLayer {
            digest: digest(200 + n),
            diff_id: digest(n),
            size: 77,
            zstd: false,
        }
    }

    /// A rebase of `app` (on `old`) onto `new`, with the package-database layer `l` on top.
    fn rebase_with_layer(app: Parts, old: Parts, new: Parts, l: &NewLayer) -> ImagePlan {
        let p = plan_image(app, old, new, None).unwrap();
        with_layer_on_top(p, app, l, CREATED_BY).unwrap()
    }

    #[test]
    fn the_layer_goes_on_top_and_comes_off_again() {
        let old = image(&[1], &["V=1"], Family::Oci, hist(1), None);
        let app = image(&[1, 2], &["V=1"], Family::Oci, hist(2), None);
        let plain = plan_image(app.parts(), old.parts(), old.parts(), None).unwrap();
        let on_top = with_layer_on_top(plain.clone(), app.parts(), &layer(9), CREATED_BY).unwrap();
        let m = Manifest::parse(&on_top.manifest, None).unwrap();
        let c = Config::parse(&on_top.config).unwrap();
        assert_eq!(m.layers.len(), 3);
        assert_eq!(m.layers[2].digest, digest(209));
        assert_eq!(c.diff_ids.last(), Some(&digest(9)));
        assert_eq!(
            c.history.last().unwrap().created_by().as_deref(),
            Some(CREATED_BY)
        );
        assert_eq!(on_top.copies.last().unwrap().origin, Origin::Built);
        assert_eq!(
            on_top.manifest_descriptor.digest,
            Digest::of(&on_top.manifest)
        );
        assert_eq!(
            on_top.report.manifest_after,
            on_top.manifest_descriptor.digest
        );
        assert_eq!(on_top.config_descriptor.size, on_top.config.len() as u64);
        assert_eq!(m.config.digest, on_top.config_descriptor.digest);

        // Taken off again: the plan without the layer, byte for byte.
        let parts = Parts {
            manifest: &m,
            config: &c,
        };
        let desc = Descriptor::of_bytes(&m.media_type, &on_top.manifest);
        let back = without_top_layer(parts, &desc).unwrap();
        assert_eq!(back.config.bytes, plain.config);
        assert_eq!(back.manifest.bytes, plain.manifest);
        assert_eq!(back.descriptor.digest, Digest::of(&plain.manifest));
    }

    #[test]
    fn rebasing_a_result_onto_its_own_base_gives_the_same_bytes() {
        for family in [Family::Oci, Family::Docker] {
            let old = image(&[1], &[], family, hist(1), None);
            let new = image(&[3], &[], family, hist(1), None);
            let app = image(&[1, 2], &[], family, hist(2), None);
            let first = rebase_with_layer(app.parts(), old.parts(), new.parts(), &layer(9));
            let result = (
                Manifest::parse(&first.manifest, None).unwrap(),
                Config::parse(&first.config).unwrap(),
            );
            let parts = Parts {
                manifest: &result.0,
                config: &result.1,
            };
            // Again onto the same base: the earlier layer comes off, the same one goes on.
            let desc = Descriptor::of_bytes(&result.0.media_type, &first.manifest);
            let stripped = without_top_layer(parts, &desc).unwrap();
            let stripped_parts = Parts {
                manifest: &stripped.manifest,
                config: &stripped.config,
            };
            let p = plan_image(stripped_parts, new.parts(), new.parts(), None).unwrap();
            let again = with_layer_on_top(p, parts, &layer(9), CREATED_BY).unwrap();
            assert_eq!(again.config, first.config, "{family:?}: config bytes kept");
            assert_eq!(
                again.manifest, first.manifest,
                "{family:?}: manifest bytes kept"
            );
        }
    }
}
