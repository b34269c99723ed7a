//! A CycloneDX 1.6 JSON BOM of one written platform image.
//!
//! - `metadata.component`: the image (`type: container`, the destination as `name`, the
//!   manifest digest as `version` and SHA-256 hash); its base image is its
//!   `pedigree.ancestors[0]`; its layers are `ocipatch:layer` properties, bottom to top, each
//!   `N ROLE DIGEST` (roles: base, application, package-database, appended, image).
//! - `components`: the distribution (`type: operating-system`), then each OS package
//!   (`type: library`, its purl, which is also its `bom-ref`), with the properties
//!   `ocipatch:package:type` (deb, apk, rpm), `ocipatch:package:architecture`,
//!   `ocipatch:package:source` and `ocipatch:package:source-version` where known.
//! - `serialNumber`: `urn:uuid:` + a UUID derived from the manifest digest, the image name and
//!   the time ([`super::derived_uuid`]); `metadata.timestamp`: [`super::document_time`].
//! - `metadata.tools.components`: ocipatch and its version.

use serde_json::{json, Value};

use super::{derived_uuid, document_time, ImageFacts, PackageKind};

fn property(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn kind_name(k: PackageKind) -> &'static str {
    match k {
        PackageKind::Deb => "deb",
        PackageKind::Apk => "apk",
        PackageKind::Rpm => "rpm",
    }
}

/// The CycloneDX 1.6 BOM of `facts` as a JSON value (written with
/// [`super::to_canonical_json`]).
pub fn document(facts: &ImageFacts, source_date_epoch: Option<i64>) -> Value {
    let timestamp = document_time(source_date_epoch, facts.created.as_deref());
    let digest = facts.manifest.digest.to_string();
    let uuid = derived_uuid(&["cyclonedx", &digest, &facts.name, &timestamp]);
    let mut properties = vec![property("ocipatch:platform", &facts.platform)];
    for (i, l) in facts.layers.iter().enumerate() {
        properties.push(property(
            "ocipatch:layer",
            &format!("{} {} {}", i + 1, l.role.as_str(), l.digest),
        ));
    }
    let mut image = json!({
        "type": "container",
        "bom-ref": "image",
        "name": facts.name,
        "version": digest,
        "hashes": [{"alg": "SHA-256", "content": facts.manifest.digest.hex()}],
        "properties": properties,
    });
    if let Some(base) = &facts.base {
        image["pedigree"] = json!({"ancestors": [{
            "type": "container",
            "bom-ref": "base-image",
            "name": base.name,
            "version": base.digest.to_string(),
            "hashes": [{"alg": "SHA-256", "content": base.digest.hex()}],
        }]});
    }
    let mut components = Vec::new();
    if let Some(r) = &facts.release {
        let mut os = json!({
            "type": "operating-system",
            "bom-ref": "operating-system",
            "name": r.id,
            "description": r.name,
        });
        if let Some(v) = r.version_id.as_ref().or(r.codename.as_ref()) {
            os["version"] = json!(v);
        }
        components.push(os);
    }
    let mut seen = std::collections::HashSet::new();
    for p in &facts.packages {
        let purl = facts.purl(p);
        // bom-refs must be unique; purls are unless two packages differ only in what the
        // purl leaves out.
        let mut bom_ref = purl.clone();
        let mut n = 1;
        while !seen.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = format!("{purl}#{n}");
        }
        let mut props = vec![property("ocipatch:package:type", kind_name(p.kind))];
        if !p.arch.is_empty() {
            props.push(property("ocipatch:package:architecture", &p.arch));
        }
        if let Some(s) = &p.source {
            props.push(property("ocipatch:package:source", s));
        }
        if let Some(v) = &p.source_version {
            props.push(property("ocipatch:package:source-version", v));
        }
        let mut c = json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": p.name,
            "purl": purl,
            "properties": props,
        });
        if !p.version.is_empty() {
            c["version"] = json!(p.version);
        }
        components.push(c);
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{uuid}"),
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{
                "type": "application",
                "name": "ocipatch",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": image,
        },
        "components": components,
    })
}
