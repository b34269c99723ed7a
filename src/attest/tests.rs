use super::provenance::{self, Dependency, Subject};
use super::*;
use crate::verdict::release::Release;

fn release() -> Release {
    Release {
        id: "debian".into(),
        name: "Debian GNU/Linux".into(),
        version_id: Some("12".into()),
        codename: Some("bookworm".into()),
        point: Some("12.5".into()),
        series: "12".into(),
        file: "etc/os-release".into(),
    }
}

fn package(name: &str, version: &str, arch: &str) -> Package {
    Package {
        kind: PackageKind::Deb,
        name: name.into(),
        version: version.into(),
        arch: arch.into(),
        epoch: None,
        source: None,
        source_version: None,
    }
}

fn facts() -> ImageFacts {
    let mut packages = vec![
        package("zlib1g", "1:1.2.13.dfsg-1", "amd64"),
        package("libssl3", "3.0.13-1~deb12u1", "amd64"),
        package("base-files", "12.4+deb12u5", "amd64"),
        package("libssl3", "3.0.13-1~deb12u1", "i386"),
    ];
    packages[1].source = Some("openssl".into());
    sort_packages(&mut packages);
    ImageFacts {
        name: "oci:out:app".into(),
        manifest: Descriptor::of_bytes("application/vnd.oci.image.manifest.v1+json", b"m"),
        platform: "linux/amd64".into(),
        created: Some("2024-01-02T03:04:05Z".into()),
        release: Some(release()),
        base: Some(BaseImage {
            name: "docker.io/library/debian:12".into(),
            digest: Digest::of(b"base"),
        }),
        layers: vec![
            Layer {
                digest: Digest::of(b"l1"),
                diff_id: Some(Digest::of(b"d1")),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                size: 10,
                role: LayerRole::Base,
            },
            Layer {
                digest: Digest::of(b"l2"),
                diff_id: None,
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                size: 20,
                role: LayerRole::PackageDatabase,
            },
        ],
        packages,
    }
}

#[test]
fn packages_sort_by_type_name_arch_version() {
    let f = facts();
    let order: Vec<_> = f
        .packages
        .iter()
        .map(|p| format!("{}:{}", p.name, p.arch))
        .collect();
    assert_eq!(
        order,
        [
            "base-files:amd64",
            "libssl3:amd64",
            "libssl3:i386",
            "zlib1g:amd64"
        ]
    );
}

#[test]
fn spdx_lists_every_package_with_its_purl() {
    let f = facts();
    let doc = spdx::document(&f, None);
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let pkgs = doc["packages"].as_array().unwrap();
    let purls: Vec<&str> = pkgs
        .iter()
        .filter_map(|p| p["externalRefs"][0]["referenceLocator"].as_str())
        .collect();
    let want: Vec<String> = f.packages.iter().map(|p| f.purl(p)).collect();
    assert_eq!(purls, want);
    assert!(purls.contains(&"pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12"));
    // Unique SPDX ids, each package contained by the image.
    let ids: std::collections::BTreeSet<&str> =
        pkgs.iter().map(|p| p["SPDXID"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), pkgs.len());
    let rels = doc["relationships"].as_array().unwrap();
    for id in &ids {
        if *id != "SPDXRef-Image" {
            assert!(
                rels.iter().any(|r| r["relatedSpdxElement"] == *id),
                "{id} has no relationship"
            );
        }
    }
    // Time from the config when SOURCE_DATE_EPOCH is unset.
    assert_eq!(doc["creationInfo"]["created"], "2024-01-02T03:04:05Z");
    assert_eq!(
        doc["creationInfo"]["creators"][0],
        format!("Tool: ocipatch-{}", env!("CARGO_PKG_VERSION"))
    );
    let libssl = pkgs.iter().find(|p| p["name"] == "libssl3").unwrap();
    assert_eq!(libssl["sourceInfo"], "built from source package openssl");
}

#[test]
fn cyclonedx_lists_every_package_with_unique_refs() {
    let f = facts();
    let doc = cyclonedx::document(&f, Some(1_700_000_000));
    assert_eq!(doc["specVersion"], "1.6");
    assert_eq!(doc["metadata"]["timestamp"], "2023-11-14T22:13:20Z");
    let comps = doc["components"].as_array().unwrap();
    assert_eq!(comps[0]["type"], "operating-system");
    let libs: Vec<_> = comps.iter().filter(|c| c["type"] == "library").collect();
    assert_eq!(libs.len(), f.packages.len());
    let refs: std::collections::BTreeSet<&str> = libs
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), libs.len());
    let serial = doc["serialNumber"].as_str().unwrap();
    let uuid = serial.strip_prefix("urn:uuid:").unwrap();
    // RFC 4122 layout, version 5, variant 10 (the schema's pattern).
    let b = uuid.as_bytes();
    assert_eq!((uuid.len(), b[14], b[8], b[13]), (36, b'5', b'-', b'-'));
    assert!(matches!(b[19], b'8' | b'9' | b'a' | b'b'), "{uuid}");
    assert_eq!(
        doc["metadata"]["component"]["pedigree"]["ancestors"][0]["version"],
        Digest::of(b"base").to_string()
    );
}

#[test]
fn documents_are_byte_identical_and_depend_on_their_subject() {
    let f = facts();
    for sde in [None, Some(5)] {
        let a = to_canonical_json(&spdx::document(&f, sde));
        assert_eq!(a, to_canonical_json(&spdx::document(&f.clone(), sde)));
        let a = to_canonical_json(&cyclonedx::document(&f, sde));
        assert_eq!(a, to_canonical_json(&cyclonedx::document(&f.clone(), sde)));
    }
    let mut g = facts();
    g.manifest = Descriptor::of_bytes("application/vnd.oci.image.manifest.v1+json", b"other");
    let ns = |f: &ImageFacts| spdx::document(f, None)["documentNamespace"].clone();
    assert_ne!(ns(&f), ns(&g));
    let serial = |f: &ImageFacts| cyclonedx::document(f, None)["serialNumber"].clone();
    assert_ne!(serial(&f), serial(&g));
}

#[test]
fn canonical_json_sorts_keys_at_every_level() {
    let v = serde_json::json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": 3}});
    let s = String::from_utf8(to_canonical_json(&v)).unwrap();
    let (a, b, c, d, y, z) = (
        s.find("\"a\"").unwrap(),
        s.find("\"b\"").unwrap(),
        s.find("\"c\"").unwrap(),
        s.find("\"d\"").unwrap(),
        s.find("\"y\"").unwrap(),
        s.find("\"z\"").unwrap(),
    );
    assert!(a < c && c < d && d < b && y < z, "{s}");
    assert!(s.ends_with("}\n"));
}

#[test]
fn document_time_rule() {
    assert_eq!(
        document_time(Some(0), Some("2024-01-02T03:04:05Z")),
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(
        document_time(None, Some("2024-01-02T03:04:05.123+02:00")),
        "2024-01-02T01:04:05Z"
    );
    assert_eq!(document_time(None, Some("garbage")), "1970-01-01T00:00:00Z");
    assert_eq!(document_time(None, None), "1970-01-01T00:00:00Z");
}

#[test]
fn provenance_statement() {
    let run = provenance::Run {
        build_type: provenance::REBASE_BUILD_TYPE,
        subjects: vec![Subject {
            name: "oci:out:app".into(),
            digest: Digest::of(b"m"),
        }],
        external_parameters: serde_json::json!({"operation": "rebase", "image": "oci:in:app"})
            .as_object()
            .unwrap()
            .clone(),
        dependencies: vec![Dependency {
            name: "new-base".into(),
            uri: Some("oci:bases:v2".into()),
            digest: Digest::of(b"v2"),
        }],
    };
    let v = provenance::statement(&run, None);
    assert_eq!(v["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(v["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(v["subject"][0]["digest"]["sha256"], Digest::of(b"m").hex());
    assert!(v["predicate"]["runDetails"].get("metadata").is_none());
    let dep = &v["predicate"]["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(dep["digest"]["sha256"], Digest::of(b"v2").hex());
    let with = provenance::statement(&run, Some(1));
    assert_eq!(
        with["predicate"]["runDetails"]["metadata"]["startedOn"],
        "1970-01-01T00:00:01Z"
    );
    assert_eq!(
        provenance::statement_bytes(&run, None),
        provenance::statement_bytes(&run.clone(), None)
    );
}
