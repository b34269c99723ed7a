//! Planning the rebase of one image manifest (one platform).

use serde::Serialize;
use serde_json::{Map, Value};

use super::{config, history, PlanError};
use crate::model::media::{self, Family};
use crate::model::{Config, Descriptor, Digest, Manifest, Platform};

/// The annotation naming the digest of the base manifest an image was built on (or rebased onto).
pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// The annotation naming the base image's reference, e.g. `docker.io/library/debian:12`.
pub const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";

/// One image as the planner sees it: a manifest and its config.
#[derive(Clone, Copy)]
pub struct Parts<'a> {
    /// The image manifest.
    pub manifest: &'a Manifest,
    /// The config the manifest points to.
    pub config: &'a Config,
}

/// Where a blob the output needs comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The application image (its own layers).
    Image,
    /// The new base (its layers).
    NewBase,
    /// Built by this run (the package-database layer).
    Built,
}

/// A layer the output references and the sink must hold: what to copy, and from where.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobCopy {
    /// The layer's descriptor as the output manifest has it (a new-base layer's media type is
    /// already mapped to the image's OCI or Docker family; digest and size are unchanged).
    pub descriptor: Descriptor,
    /// Which source holds the blob.
    pub origin: Origin,
}

/// One layer, as the reports list it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSummary {
    /// The stored (usually compressed) blob's digest.
    pub digest: Digest,
    /// The digest of the uncompressed tar (from the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// The layer's media type.
    pub media_type: String,
    /// The stored blob's size in bytes.
    pub size: u64,
}

/// What the rebase of one platform changes, for `--json` and the human summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageReport {
    /// The platform of the image's config.
    pub platform: Platform,
    /// The image's manifest digest before the rebase.
    pub manifest_before: Digest,
    /// The rebased manifest's digest.
    pub manifest_after: Digest,
    /// The old base's manifest digest.
    pub old_base: Digest,
    /// The new base's manifest digest.
    pub new_base: Digest,
    /// The old base's layers, taken out of the image.
    pub layers_removed: Vec<LayerSummary>,
    /// The new base's layers, put in their place.
    pub layers_added: Vec<LayerSummary>,
    /// The application's own layers, kept as they are.
    pub layers_kept: Vec<LayerSummary>,
    /// One human-readable line per config change (env, labels, history, ...).
    pub config_changes: Vec<String>,
    /// Things worth knowing that are not errors (e.g. base layers matched by diff ID only).
    pub notes: Vec<String>,
    /// The output is byte-identical to the input (rebase onto the base it already has).
    pub unchanged: bool,
    /// The package databases, when the application's layers carry one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_db: Option<crate::pkgdb::PackageDbReport>,
}

/// Everything needed to write one rebased image: its new JSON blobs and the blobs to copy.
#[derive(Clone, Debug)]
pub struct ImagePlan {
    /// The new config's bytes.
    pub config: Vec<u8>,
    /// The descriptor of [`ImagePlan::config`].
    pub config_descriptor: Descriptor,
    /// The new manifest's bytes.
    pub manifest: Vec<u8>,
    /// The descriptor of [`ImagePlan::manifest`] (its media type is the manifest's own).
    pub manifest_descriptor: Descriptor,
    /// The layers the output needs, new base's first, then the application's.
    pub copies: Vec<BlobCopy>,
    /// What changes, for reporting.
    pub report: ImageReport,
}

fn summaries(layers: &[Descriptor], diff_ids: &[Digest]) -> Vec<LayerSummary> {
    layers
        .iter()
        .zip(diff_ids)
        .map(|(l, d)| LayerSummary {
            digest: l.digest.clone(),
            diff_id: d.clone(),
            media_type: l.media_type.clone(),
            size: l.size,
        })
        .collect()
}

fn check_consistent(parts: &Parts, which: &'static str) -> Result<(), PlanError> {
    let (layers, diff_ids) = (parts.manifest.layers.len(), parts.config.diff_ids.len());
    if layers != diff_ids {
        return Err(PlanError::LayerCountMismatch {
            which,
            layers,
            diff_ids,
        });
    }
    Ok(())
}

fn history_raw(config: &Config) -> Vec<Value> {
    config
        .json
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Plans the rebase of `image` from `old` onto `new`. `new_base_name` goes into the
/// `org.opencontainers.image.base.name` annotation; `None` removes that annotation (a name
/// recorded by an earlier rebase would name the wrong base).
///
/// The steps, each a private function below: the inputs agree (`check_inputs`); the image
/// sits on the old base (`base_prefix`); the new base's layers go under the app's
/// (`splice_layers`); the config is merged (`new_config`); the manifest takes the new config,
/// layers and base annotations (`new_manifest`).
pub fn plan_image(
    image: Parts,
    old: Parts,
    new: Parts,
    new_base_name: Option<&str>,
) -> Result<ImagePlan, PlanError> {
    check_inputs(&image, &old, &new)?;
    let (base_len, base_prefix, notes) = base_prefix(&image, &old)?;
    let (layers, diff_ids) = splice_layers(&image, &new, base_len)?;
    let app_layers = &image.manifest.layers[base_len..];
    let (config_bytes, config_changes) =
        new_config(&image, &new, &old, &diff_ids, base_prefix, new_base_name);
    let mut config_descriptor = image.manifest.config.clone();
    config_descriptor.digest = Digest::of(&config_bytes);
    config_descriptor.size = config_bytes.len() as u64;
    let (manifest_bytes, manifest_descriptor) =
        new_manifest(&image, &new, &config_descriptor, &layers, new_base_name);

    let copies = layers[..new.manifest.layers.len()]
        .iter()
        .map(|mapped| BlobCopy {
            descriptor: mapped.clone(),
            origin: Origin::NewBase,
        })
        .chain(app_layers.iter().map(|l| BlobCopy {
            descriptor: l.clone(),
            origin: Origin::Image,
        }))
        .collect();

    let report = ImageReport {
        platform: image.config.platform.clone(),
        manifest_before: image.manifest.digest(),
        manifest_after: manifest_descriptor.digest.clone(),
        old_base: old.manifest.digest(),
        new_base: new.manifest.digest(),
        layers_removed: summaries(&image.manifest.layers[..base_len], &old.config.diff_ids),
        layers_added: summaries(&new.manifest.layers, &new.config.diff_ids),
        layers_kept: summaries(app_layers, &image.config.diff_ids[base_len..]),
        config_changes,
        notes,
        unchanged: manifest_bytes == image.manifest.bytes,
        package_db: None,
    };
    Ok(ImagePlan {
        config: config_bytes,
        config_descriptor,
        manifest: manifest_bytes,
        manifest_descriptor,
        copies,
        report,
    })
}

/// Layer and diff ID counts agree in each input, and the platforms match.
fn check_inputs(image: &Parts, old: &Parts, new: &Parts) -> Result<(), PlanError> {
    check_consistent(image, "image")?;
    check_consistent(old, "old base")?;
    check_consistent(new, "new base")?;
    for (base, which) in [(old, "old base"), (new, "new base")] {
        if !image.config.platform.same_target(&base.config.platform) {
            return Err(PlanError::PlatformMismatch {
                image: image.config.platform.to_string(),
                base: base.config.platform.to_string(),
                which,
            });
        }
    }
    Ok(())
}

/// The image must sit on the old base, by content (diff IDs), not by compressed digest.
/// Returns the old base's layer count, its history prefix length, and notes (recompressed base
/// layers).
fn base_prefix(image: &Parts, old: &Parts) -> Result<(usize, usize, Vec<String>), PlanError> {
    let base_len = old.config.diff_ids.len();
    for (i, base_id) in old.config.diff_ids.iter().enumerate() {
        match image.config.diff_ids.get(i) {
            Some(id) if id == base_id => {}
            other => {
                return Err(PlanError::NotOnBase {
                    layer: i,
                    image_diff_id: other.map_or("(none: the image has fewer layers)".into(), |d| {
                        d.to_string()
                    }),
                    base_diff_id: base_id.clone(),
                })
            }
        }
    }
    let history_prefix =
        history::base_prefix_len(&image.config.history, &old.config.history, base_len)?;
    let mut notes = Vec::new();
    let recompressed = image.manifest.layers[..base_len]
        .iter()
        .zip(&old.manifest.layers)
        .filter(|(a, b)| a.digest != b.digest)
        .count();
    if recompressed > 0 {
        notes.push(format!(
            "{recompressed} of the image's {base_len} base layers are stored as different blobs than in the old base (recompressed by the builder); they were matched by diff ID"
        ));
    }
    Ok((base_len, history_prefix, notes))
}

/// The new base's layers, mapped to the image's media-type family, then the app's; and the
/// diff IDs to match.
fn splice_layers(
    image: &Parts,
    new: &Parts,
    base_len: usize,
) -> Result<(Vec<Descriptor>, Vec<Digest>), PlanError> {
    let family = image.manifest.family();
    let mut layers = Vec::with_capacity(new.manifest.layers.len() + image.manifest.layers.len());
    for l in &new.manifest.layers {
        let media_type =
            media::convert(&l.media_type, family).ok_or_else(|| PlanError::NoDockerName {
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
            })?;
        let mut l = l.clone();
        l.media_type = media_type.to_string();
        layers.push(l);
    }
    layers.extend_from_slice(&image.manifest.layers[base_len..]);
    let mut diff_ids = new.config.diff_ids.clone();
    diff_ids.extend_from_slice(&image.config.diff_ids[base_len..]);
    Ok((layers, diff_ids))
}

/// The config: 3-way merge, then rootfs and history. Returns its bytes (the image's own when
/// nothing changed) and the merge's change list.
fn new_config(
    image: &Parts,
    new: &Parts,
    old: &Parts,
    diff_ids: &[Digest],
    base_prefix: usize,
    new_base_name: Option<&str>,
) -> (Vec<u8>, Vec<String>) {
    let (mut cfg, config_changes) =
        config::merge(&image.config.json, &old.config.json, &new.config.json);
    let mut rootfs = cfg
        .get("rootfs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    rootfs.insert("type".into(), "layers".into());
    rootfs.insert(
        "diff_ids".into(),
        diff_ids
            .iter()
            .map(|d| Value::String(d.to_string()))
            .collect(),
    );
    cfg.insert("rootfs".into(), Value::Object(rootfs));
    if cfg.contains_key("history") {
        let spliced = history::splice(
            &history_raw(image.config),
            base_prefix,
            &history_raw(new.config),
            new.manifest.layers.len(),
            &new_base_name.map_or_else(|| new.manifest.digest().to_string(), str::to_string),
        );
        cfg.insert("history".into(), Value::Array(spliced));
    }
    (
        keep_or_serialize(&cfg, &image.config.json, &image.config.bytes),
        config_changes,
    )
}

/// The manifest: the image's, with the new config, layers and base annotations. Returns its
/// bytes (the image's own when nothing changed) and descriptor.
fn new_manifest(
    image: &Parts,
    new: &Parts,
    config_descriptor: &Descriptor,
    layers: &[Descriptor],
    new_base_name: Option<&str>,
) -> (Vec<u8>, Descriptor) {
    let mut manifest = image.manifest.json.clone();
    manifest.insert("config".into(), config_descriptor.to_json());
    manifest.insert(
        "layers".into(),
        layers.iter().map(Descriptor::to_json).collect(),
    );
    let annotations = manifest
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(a) = annotations {
        a.insert(
            ANNOTATION_BASE_DIGEST.into(),
            new.manifest.digest().to_string().into(),
        );
        match new_base_name {
            Some(name) => {
                a.insert(ANNOTATION_BASE_NAME.into(), name.into());
            }
            None => {
                a.shift_remove(ANNOTATION_BASE_NAME);
            }
        }
    }
    let manifest_bytes = keep_or_serialize(&manifest, &image.manifest.json, &image.manifest.bytes);
    let mut manifest_descriptor = Descriptor::new(
        &image.manifest.media_type,
        Digest::of(&manifest_bytes),
        manifest_bytes.len() as u64,
    );
    if image.manifest.family() == Family::Docker && image.manifest.json.get("mediaType").is_none() {
        manifest_descriptor.media_type = media::DOCKER_MANIFEST.to_string();
    }
    (manifest_bytes, manifest_descriptor)
}

/// JSON that did not change keeps its original bytes (and so its digest); JSON that did is
/// serialized compactly, keys in the order they were read, new keys in the order added.
pub(crate) fn keep_or_serialize(
    edited: &Map<String, Value>,
    original: &Map<String, Value>,
    original_bytes: &[u8],
) -> Vec<u8> {
    if edited == original {
        original_bytes.to_vec()
    } else {
        serde_json::to_vec(edited).expect("a JSON value always serializes")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    /// A test image: layers identified by small numbers; diff ID of layer n is digest(n),
    /// its blob digest digest(100 + n) unless `recompressed`.
    pub struct Img {
        pub manifest: Manifest,
        pub config: Config,
    }

    pub fn image(
        layers: &[u8],
        env: &[&str],
        family: Family,
        history: Option<Vec<Value>>,
        annotations: Option<Value>,
    ) -> Img {
        let layer_type = match family {
            Family::Oci => media::OCI_LAYER_GZIP,
            Family::Docker => media::DOCKER_LAYER_GZIP,
        };
        let mut cfg = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": env, "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|n| digest(*n).to_string()).collect::<Vec<_>>()},
        });
        if let Some(h) = history {
            cfg["history"] = Value::Array(h);
        }
        let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
        let config = Config::parse(&cfg_bytes).unwrap();
        let (mt, ct) = match family {
            Family::Oci => (media::OCI_MANIFEST, media::OCI_CONFIG),
            Family::Docker => (media::DOCKER_MANIFEST, media::DOCKER_CONFIG),
        };
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": {"mediaType": ct, "digest": Digest::of(&cfg_bytes).to_string(), "size": cfg_bytes.len()},
            "layers": layers.iter().map(|n| json!({"mediaType": layer_type, "digest": digest(100 + n).to_string(), "size": 10 + *n as u64})).collect::<Vec<_>>(),
        });
        if let Some(a) = annotations {
            m["annotations"] = a;
        }
        let bytes = serde_json::to_vec(&m).unwrap();
        Img {
            manifest: Manifest::parse(&bytes, None).unwrap(),
            config,
        }
    }

    impl Img {
        pub fn parts(&self) -> Parts<'_> {
            Parts {
                manifest: &self.manifest,
                config: &self.config,
            }
        }
    }

    fn hist(entries: &[(&str, bool)]) -> Option<Vec<Value>> {
        Some(
            entries
                .iter()
                .map(|(by, empty)| {
                    if *empty {
                        json!({"created_by": by, "empty_layer": true})
                    } else {
                        json!({"created_by": by})
                    }
                })
                .collect(),
        )
    }

    #[test]
    fn splices_layers_diff_ids_history_and_annotations() {
        let old = image(
            &[1],
            &["PATH=/bin", "V=1"],
            Family::Oci,
            hist(&[("base1", false)]),
            None,
        );
        let new = image(
            &[1, 2],
            &["PATH=/bin", "V=2"],
            Family::Oci,
            hist(&[("base1", false), ("update", false)]),
            None,
        );
        let app = image(
            &[1, 10, 11],
            &["PATH=/bin", "V=1", "APP=x"],
            Family::Oci,
            hist(&[
                ("base1", false),
                ("app env", true),
                ("app1", false),
                ("app2", false),
            ]),
            Some(json!({"org.example": "keep"})),
        );
        let plan = plan_image(app.parts(), old.parts(), new.parts(), Some("oci:base:v2")).unwrap();
        let m = Manifest::parse(&plan.manifest, None).unwrap();
        let digests: Vec<_> = m.layers.iter().map(|l| l.digest.clone()).collect();
        assert_eq!(
            digests,
            vec![digest(101), digest(102), digest(110), digest(111)]
        );
        let c = Config::parse(&plan.config).unwrap();
        assert_eq!(
            c.diff_ids,
            vec![digest(1), digest(2), digest(10), digest(11)]
        );
        let by: Vec<_> = c
            .history
            .iter()
            .map(|h| h.created_by().clone().unwrap())
            .collect();
        assert_eq!(by, ["base1", "update", "app env", "app1", "app2"]);
        assert_eq!(
            c.json["config"]["Env"],
            json!(["PATH=/bin", "V=2", "APP=x"])
        );
        assert_eq!(c.json["created"], "2024-01-01T00:00:00Z");
        let ann = m.annotations();
        assert_eq!(ann["org.example"], "keep");
        assert_eq!(
            ann[ANNOTATION_BASE_DIGEST],
            new.manifest.digest().to_string()
        );
        assert_eq!(ann[ANNOTATION_BASE_NAME], "oci:base:v2");
        assert_eq!(m.config.digest, Digest::of(&plan.config));
        assert_eq!(plan.manifest_descriptor.digest, Digest::of(&plan.manifest));
        let origins: Vec<_> = plan.copies.iter().map(|c| c.origin).collect();
        assert_eq!(
            origins,
            [
                Origin::NewBase,
                Origin::NewBase,
                Origin::Image,
                Origin::Image
            ]
        );
        assert_eq!(plan.report.layers_removed.len(), 1);
        assert_eq!(plan.report.layers_kept.len(), 2);
        assert!(!plan.report.unchanged);
    }

    #[test]
    fn refuses_an_image_not_on_the_old_base_naming_the_layer() {
        let old = image(&[1, 2], &[], Family::Oci, None, None);
        let new = image(&[3], &[], Family::Oci, None, None);
        let app = image(&[1, 5, 10], &[], Family::Oci, None, None);
        match plan_image(app.parts(), old.parts(), new.parts(), Some("b")) {
            Err(PlanError::NotOnBase {
                layer,
                base_diff_id,
                ..
            }) => {
                assert_eq!(layer, 1);
                assert_eq!(base_diff_id, digest(2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn recompressed_base_layers_match_by_diff_id_and_are_reported() {
        let old = image(&[1], &[], Family::Oci, None, None);
        let new = image(&[2], &[], Family::Oci, None, None);
        let mut app = image(&[1, 10], &[], Family::Oci, None, None);
        let mut json = app.manifest.json.clone();
        json["layers"][0]["digest"] = digest(200).to_string().into();
        app.manifest = Manifest::parse(&serde_json::to_vec(&json).unwrap(), None).unwrap();
        let plan = plan_image(app.parts(), old.parts(), new.parts(), Some("b")).unwrap();
        assert_eq!(plan.report.notes.len(), 1, "{:?}", plan.report.notes);
    }

    #[test]
    fn layer_media_types_follow_the_manifest_family() {
        let old = image(&[1], &[], Family::Docker, None, None);
        let new = image(&[2], &[], Family::Oci, None, None);
        let app = image(&[1, 10], &[], Family::Docker, None, None);
        let plan = plan_image(app.parts(), old.parts(), new.parts(), Some("b")).unwrap();
        let m = Manifest::parse(&plan.manifest, None).unwrap();
        assert!(m
            .layers
            .iter()
            .all(|l| l.media_type == media::DOCKER_LAYER_GZIP));
        assert_eq!(plan.manifest_descriptor.media_type, media::DOCKER_MANIFEST);
    }

    #[test]
    fn zstd_base_layer_cannot_enter_a_docker_manifest() {
        let old = image(&[1], &[], Family::Docker, None, None);
        let mut new = image(&[2], &[], Family::Oci, None, None);
        let mut json = new.manifest.json.clone();
        json["layers"][0]["mediaType"] = media::OCI_LAYER_ZSTD.into();
        new.manifest = Manifest::parse(&serde_json::to_vec(&json).unwrap(), None).unwrap();
        let app = image(&[1, 10], &[], Family::Docker, None, None);
        assert!(matches!(
            plan_image(app.parts(), old.parts(), new.parts(), Some("b")),
            Err(PlanError::NoDockerName { .. })
        ));
    }

    #[test]
    fn rebase_onto_the_same_base_is_a_no_op() {
        let base = image(&[1], &["A=1"], Family::Oci, hist(&[("b", false)]), None);
        let first = image(
            &[1, 10],
            &["A=1"],
            Family::Oci,
            hist(&[("b", false), ("a", false)]),
            None,
        );
        let once = plan_image(first.parts(), base.parts(), base.parts(), Some("oci:b")).unwrap();
        let rebased = Img {
            manifest: Manifest::parse(&once.manifest, None).unwrap(),
            config: Config::parse(&once.config).unwrap(),
        };
        let twice = plan_image(rebased.parts(), base.parts(), base.parts(), Some("oci:b")).unwrap();
        assert!(twice.report.unchanged);
        assert_eq!(twice.manifest, once.manifest);
        assert_eq!(twice.config, once.config);
    }

    #[test]
    fn platforms_must_agree() {
        let old = image(&[1], &[], Family::Oci, None, None);
        let mut new = image(&[2], &[], Family::Oci, None, None);
        let mut cfg = new.config.json.clone();
        cfg.insert("architecture".into(), "arm64".into());
        new.config = Config::parse(&serde_json::to_vec(&cfg).unwrap()).unwrap();
        let app = image(&[1, 10], &[], Family::Oci, None, None);
        assert!(matches!(
            plan_image(app.parts(), old.parts(), new.parts(), Some("b")),
            Err(PlanError::PlatformMismatch {
                which: "new base",
                ..
            })
        ));
    }

    #[test]
    fn inconsistent_manifest_and_config_are_refused() {
        let old = image(&[1], &[], Family::Oci, None, None);
        let mut app = image(&[1, 10], &[], Family::Oci, None, None);
        app.config = old.config.clone();
        assert!(matches!(
            plan_image(app.parts(), old.parts(), old.parts(), Some("b")),
            Err(PlanError::LayerCountMismatch { which: "image", .. })
        ));
    }

    #[test]
    fn output_is_deterministic() {
        let old = image(&[1], &["A=1"], Family::Oci, None, None);
        let new = image(&[2], &["A=2", "B=3"], Family::Oci, None, None);
        let app = image(&[1, 10], &["A=1"], Family::Oci, None, None);
        let a = plan_image(app.parts(), old.parts(), new.parts(), Some("b")).unwrap();
        let b = plan_image(app.parts(), old.parts(), new.parts(), Some("b")).unwrap();
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(a.config, b.config);
    }
}
