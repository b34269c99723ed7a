//! Media types: the OCI and Docker schema 2 names, and the one table that maps between them.

/// Which family of media types a manifest (and so every descriptor in it) belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// OCI image-spec types (`application/vnd.oci.…`).
    Oci,
    /// Docker schema 2 types (`application/vnd.docker.…`).
    Docker,
}

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The empty descriptor's media type (OCI 1.1): the config of an artifact manifest.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip-compressed tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd-compressed tar (no Docker equivalent).
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker manifest list (the Docker counterpart of an index).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip-compressed tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer, uncompressed tar.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker foreign layer (Windows base layers; its blob may be fetched from the descriptor's `urls`).
pub const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// OCI name ↔ Docker name, for every type that exists in both families.
/// zstd layers have no Docker schema 2 name.
const MAPPING: &[(&str, &str)] = &[
    (OCI_INDEX, DOCKER_MANIFEST_LIST),
    (OCI_MANIFEST, DOCKER_MANIFEST),
    (OCI_CONFIG, DOCKER_CONFIG),
    (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP),
    (OCI_LAYER_TAR, DOCKER_LAYER_TAR),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        DOCKER_FOREIGN_GZIP,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
    ),
];

/// The family a media type belongs to, if it is one we know.
pub fn family_of(media_type: &str) -> Option<Family> {
    if media_type.starts_with("application/vnd.oci.") {
        Some(Family::Oci)
    } else if media_type.starts_with("application/vnd.docker.") {
        Some(Family::Docker)
    } else {
        None
    }
}

/// The name of `media_type` in `family`. Types already in the family, or unknown to the table
/// (vendor types), are returned unchanged; `None` means the type cannot exist in that family.
pub fn convert(media_type: &str, family: Family) -> Option<&str> {
    if family_of(media_type) == Some(family) || family_of(media_type).is_none() {
        return Some(media_type);
    }
    match family {
        Family::Docker => MAPPING
            .iter()
            .find(|(oci, _)| *oci == media_type)
            .map(|(_, docker)| *docker),
        Family::Oci => MAPPING
            .iter()
            .find(|(_, docker)| *docker == media_type)
            .map(|(oci, _)| *oci),
    }
}

/// An OCI index or a Docker manifest list.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// An OCI or Docker schema 2 image manifest.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// Image configs; anything else in a manifest's config slot is an artifact, not an image.
pub fn is_image_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}

/// Layers whose blobs may legitimately be absent (fetched from `urls`): Windows base layers.
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type.contains(".nondistributable.") || media_type.contains(".foreign.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_layer_type_both_ways() {
        for (oci, docker) in MAPPING {
            assert_eq!(convert(oci, Family::Docker), Some(*docker));
            assert_eq!(convert(docker, Family::Oci), Some(*oci));
            assert_eq!(convert(oci, Family::Oci), Some(*oci));
            assert_eq!(convert(docker, Family::Docker), Some(*docker));
        }
    }

    #[test]
    fn zstd_has_no_docker_name() {
        assert_eq!(convert(OCI_LAYER_ZSTD, Family::Docker), None);
        assert_eq!(convert(OCI_LAYER_ZSTD, Family::Oci), Some(OCI_LAYER_ZSTD));
    }

    #[test]
    fn vendor_types_pass_through() {
        assert_eq!(
            convert("application/x-custom", Family::Docker),
            Some("application/x-custom")
        );
        assert!(is_foreign_layer(DOCKER_FOREIGN_GZIP));
        assert!(!is_foreign_layer(OCI_LAYER_GZIP));
    }
}
