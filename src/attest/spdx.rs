//! An SPDX 2.3 JSON document of one written platform image.
//!
//! - The image is the described package (`SPDXRef-Image`, purpose `CONTAINER`, its manifest
//!   digest as `versionInfo` and SHA-256 checksum); the document `DESCRIBES` it.
//! - Its base image is a package of its own (`SPDXRef-BaseImage`); the image is
//!   `DESCENDANT_OF` it.
//! - Each layer is a package (`SPDXRef-Layer-N`, purpose `ARCHIVE`, its role in the comment:
//!   base, application, package-database, appended, image) that the image `CONTAINS`.
//! - Each OS package is a package (`SPDXRef-Package-TYPE-N-NAME`) with its purl as a
//!   `PACKAGE-MANAGER` external reference, its source package in `sourceInfo`; the image
//!   `CONTAINS` it. The distribution is the operating system package
//!   (`SPDXRef-OperatingSystem`, purpose `OPERATING-SYSTEM`).
//! - `documentNamespace`: `https://github.com/ocipatch/ocipatch/spdx/<uuid>`, the UUID derived
//!   from the manifest digest, the image name and the time ([`super::derived_uuid`]).
//! - `creationInfo.created`: [`super::document_time`].

use serde_json::{json, Value};

use super::{derived_uuid, document_time, tool_name, ImageFacts, PackageKind};

/// SPDX identifiers allow letters, digits, `.` and `-`.
fn id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn kind_name(k: PackageKind) -> &'static str {
    match k {
        PackageKind::Deb => "deb",
        PackageKind::Apk => "apk",
        PackageKind::Rpm => "rpm",
    }
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}

/// The SPDX 2.3 document of `facts` as a JSON value (written with
/// [`super::to_canonical_json`]).
pub fn document(facts: &ImageFacts, source_date_epoch: Option<i64>) -> Value {
    let created = document_time(source_date_epoch, facts.created.as_deref());
    let digest = facts.manifest.digest.to_string();
    let uuid = derived_uuid(&["spdx", &digest, &facts.name, &created]);
    let mut packages = Vec::new();
    let mut relationships = vec![relationship(
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        "SPDXRef-Image",
    )];
    packages.push(json!({
        "SPDXID": "SPDXRef-Image",
        "name": facts.name,
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": facts.manifest.digest.hex()}],
        "comment": format!("platform {}; manifest {}", facts.platform, facts.manifest.media_type),
    }));
    if let Some(base) = &facts.base {
        packages.push(json!({
            "SPDXID": "SPDXRef-BaseImage",
            "name": base.name,
            "versionInfo": base.digest.to_string(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "CONTAINER",
            "checksums": [{"algorithm": "SHA256", "checksumValue": base.digest.hex()}],
        }));
        relationships.push(relationship(
            "SPDXRef-Image",
            "DESCENDANT_OF",
            "SPDXRef-BaseImage",
        ));
    }
    if let Some(r) = &facts.release {
        let mut os = json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": r.id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            "description": r.name,
        });
        if let Some(v) = r.version_id.as_ref().or(r.codename.as_ref()) {
            os["versionInfo"] = json!(v);
        }
        packages.push(os);
        relationships.push(relationship(
            "SPDXRef-Image",
            "CONTAINS",
            "SPDXRef-OperatingSystem",
        ));
    }
    for (i, l) in facts.layers.iter().enumerate() {
        let id = format!("SPDXRef-Layer-{}", i + 1);
        let mut comment = format!(
            "layer {} of {}: {}",
            i + 1,
            facts.layers.len(),
            l.role.as_str()
        );
        if let Some(d) = &l.diff_id {
            comment.push_str(&format!("; diff ID {d}"));
        }
        comment.push_str(&format!("; {}; {} bytes", l.media_type, l.size));
        packages.push(json!({
            "SPDXID": id,
            "name": l.digest.to_string(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "ARCHIVE",
            "checksums": [{"algorithm": "SHA256", "checksumValue": l.digest.hex()}],
            "comment": comment,
        }));
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &id));
    }
    for (i, p) in facts.packages.iter().enumerate() {
        let id = format!(
            "SPDXRef-Package-{}-{}-{}",
            kind_name(p.kind),
            i + 1,
            id_part(&p.name)
        );
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": facts.purl(p),
            }],
        });
        if !p.arch.is_empty() {
            pkg["comment"] = json!(format!("architecture {}", p.arch));
        }
        if let Some(src) = &p.source {
            let v = p
                .source_version
                .as_ref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            pkg["sourceInfo"] = json!(format!("built from source package {src}{v}"));
        }
        packages.push(pkg);
        relationships.push(relationship("SPDXRef-Image", "CONTAINS", &id));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} ({})", facts.name, facts.platform),
        "documentNamespace": format!("https://github.com/ocipatch/ocipatch/spdx/{uuid}"),
        "creationInfo": {
            "created": created,
            "creators": [format!("Tool: {}", tool_name())],
        },
        "packages": packages,
        "relationships": relationships,
    })
}
