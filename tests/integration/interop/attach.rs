//! A rebase with `--sbom spdx --provenance` of the real Debian app (debootstrap'ed,
//! `scripts/make-debian-fixture.sh`), end to end: to a registry (docker-registry 2.8, the
//! referrers tag schema) and to a layout. Both documents become OCI 1.1 referrers of the
//! written image, found by a client nobody here wrote (the oras SDK on the registry; the
//! image-layout's `index.json` on disk), valid by their formats' own tools, the SBOM listing
//! exactly what `dpkg-query` lists in the unpacked result; the app's own earlier attachment
//! (pushed by oras) is named as not carried; a second run attaches the same bytes.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::attest::{dpkg_installed, read, sbom_packages, valid, DEBIAN_TOOLS};
use super::referrers::{oras, ORAS_ATTACH, ORAS_DISCOVER};
use crate::util::registry::{Registry, REGISTRY_TOOLS};
use crate::util::*;

const SPDX: &str = "application/spdx+json";
const INTOTO: &str = "application/vnd.in-toto+json";

/// Fetches blob `digest` of `repo` through the oras SDK into `file`.
const ORAS_BLOB: &str = r#"
repo, digest, path = sys.argv[2], sys.argv[3], sys.argv[4]
blob = reg.get_blob(f"{host}/{repo}", digest)
blob.raise_for_status()
open(path, "wb").write(blob.content)
"#;

/// The attestations of a `--json` rebase report, in order: (artifact type, document digest,
/// referrer digest, subject digest).
fn attestations(report: &Value) -> Vec<(String, String, String, String)> {
    report["attestations"]
        .as_array()
        .unwrap_or_else(|| panic!("no attestations in {report}"))
        .iter()
        .map(|a| {
            let s = |v: &Value| v.as_str().unwrap_or_else(|| panic!("{a}")).to_string();
            (
                s(&a["artifact_type"]),
                s(&a["digest"]),
                s(&a["referrer"]),
                s(&a["subject"]["digest"]),
            )
        })
        .collect()
}

/// The SBOM at `file` is valid and lists exactly what dpkg-query lists in `rootfs`.
fn sbom_is_dpkgs(file: &Path, rootfs: &Path) {
    valid("spdx", file);
    let want = dpkg_installed(rootfs);
    assert!(want.len() >= 50, "the fixture holds packages: {want:?}");
    let got = sbom_packages(&read_json(file));
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "packages the SBOM lacks: {missing:?}\nthat the image lacks: {extra:?}"
    );
}

#[test]
fn a_registry_rebase_attaches_an_sbom_and_a_provenance_that_oras_discovers() {
    require_tools(REGISTRY_TOOLS);
    require_tools(DEBIAN_TOOLS);
    let fx = Fixture::build("make-debian-fixture.sh", DEBIAN_TOOLS);
    let reg = Registry::start(None);
    for (tag, to) in [
        ("app", "app:v1"),
        ("base-v1", "base:v1"),
        ("base-v2", "base:v2"),
    ] {
        run_ok(cmd("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &fx.image(tag),
            &reg.docker(to),
        ]));
    }
    // The app's own earlier attachment, pushed by oras with the app as its subject.
    let app = index_digest(&fx.images, "app");
    let app = app.as_str();
    let app_size = std::fs::metadata(
        fx.images
            .join("blobs/sha256")
            .join(app.strip_prefix("sha256:").unwrap()),
    )
    .unwrap()
    .len();
    let work = fx.path("oras-work");
    std::fs::create_dir_all(&work).unwrap();
    let earlier = oras(
        ORAS_ATTACH,
        &[
            &reg.host(),
            "app",
            app,
            &app_size.to_string(),
            &work.to_string_lossy(),
        ],
    )
    .trim()
    .to_string();

    let rebase = || {
        run_ok(ocipatch().args([
            "rebase",
            "--tls-verify=false",
            &reg.docker("app:v1"),
            "--from",
            &reg.docker("base:v1"),
            "--onto",
            &reg.docker("base:v2"),
            "-o",
            &reg.docker("app:rebased"),
            "--sbom",
            "spdx",
            "--provenance",
            "--json",
        ]))
    };
    let run = rebase();
    let report = run.json();
    let written = report["digest"].as_str().unwrap().to_string();
    // The earlier attachment describes the old digest: named, not carried.
    let nc = report["not_carried"].as_array().unwrap();
    assert!(
        nc.iter()
            .any(|n| n["digest"] == earlier.as_str() && n["subject"] == app),
        "{earlier} not among {nc:?}"
    );
    assert!(
        run.stderr()
            .contains(&format!("not carried: {INTOTO} {earlier}")),
        "{}",
        run.stderr()
    );
    let docs = attestations(&report);
    assert_eq!(
        docs.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
        [SPDX, INTOTO],
        "{report}"
    );
    assert!(docs.iter().all(|d| d.3 == written), "{docs:?} vs {written}");

    // oras finds both referrers of the written image, and nothing else.
    let found: Vec<Value> = oras(ORAS_DISCOVER, &[&reg.host(), "app", &written])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let found_set: BTreeSet<(String, String, String)> = found
        .iter()
        .map(|f| {
            assert_eq!(f["subject"], written.as_str(), "{f}");
            assert_eq!(f["config"], "application/vnd.oci.empty.v1+json", "{f}");
            assert_eq!(f["layer"], f["blob_sha256"], "{f}");
            (
                f["artifact_type"].as_str().unwrap().to_string(),
                f["layer"].as_str().unwrap().to_string(),
                f["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = docs
        .iter()
        .map(|d| (d.0.clone(), d.1.clone(), d.2.clone()))
        .collect();
    assert_eq!(found_set, want);

    // The documents as oras fetched them: valid, and the SBOM is dpkg's list of the result.
    let sbom = fx.path("sbom.spdx.json");
    let prov = fx.path("provenance.json");
    for (doc, file) in [(&docs[0], &sbom), (&docs[1], &prov)] {
        oras(
            ORAS_BLOB,
            &[&reg.host(), "app", &doc.1, &file.to_string_lossy()],
        );
    }
    valid("provenance", &prov);
    let copy = fx.path("pulled");
    run_ok(cmd("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &reg.docker("app:rebased"),
        &oci_ref(&copy, "app"),
    ]));
    sbom_is_dpkgs(&sbom, &fx.unpack(&copy, "app"));

    // Again: the same image, the same referrers, listed once each.
    let again = rebase().json();
    assert_eq!(again["digest"], written.as_str());
    assert_eq!(attestations(&again), docs);
    let listed = oras(ORAS_DISCOVER, &[&reg.host(), "app", &written]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
}

#[test]
fn a_layout_rebase_attaches_an_sbom_and_a_provenance_listed_in_index_json() {
    require_tools(DEBIAN_TOOLS);
    let fx = Fixture::build("make-debian-fixture.sh", DEBIAN_TOOLS);
    let out = fx.path("out");
    let rebase = || {
        run_ok(
            ocipatch()
                .args(["rebase", &fx.image("app"), "--from", &fx.image("base-v1")])
                .args(["--onto", &fx.image("base-v2"), "-o"])
                .arg(oci_ref(&out, "app"))
                .args(["--sbom", "spdx", "--provenance", "--json"]),
        )
        .json()
    };
    let report = rebase();
    let written = report["digest"].as_str().unwrap().to_string();
    let docs = attestations(&report);
    let index_before = read(&out.join("index.json"));
    // The image-layout spec's listing: untagged index.json entries whose manifests' subject is
    // the image.
    let index = read_json(&out.join("index.json"));
    let mut listed = Vec::new();
    for e in index["manifests"].as_array().unwrap() {
        let d = e["digest"].as_str().unwrap();
        let m = read_json(&out.join("blobs/sha256").join(&d[7..]));
        if m["subject"]["digest"] == written.as_str() {
            assert!(e["annotations"]["org.opencontainers.image.ref.name"].is_null());
            assert_eq!(e["artifactType"], m["artifactType"], "{e}");
            let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
            listed.push((
                m["artifactType"].as_str().unwrap().to_string(),
                layer,
                d.to_string(),
                written.clone(),
            ));
        }
    }
    assert_eq!(listed, docs);
    let blob = |d: &str| out.join("blobs/sha256").join(&d[7..]);
    // pyspdxtools knows a document by its name's extension.
    let (sbom, prov) = (fx.path("sbom.spdx.json"), fx.path("provenance.json"));
    std::fs::copy(blob(&docs[0].1), &sbom).unwrap();
    std::fs::copy(blob(&docs[1].1), &prov).unwrap();
    valid("provenance", &prov);
    sbom_is_dpkgs(&sbom, &fx.unpack(&out, "app"));
    // umoci and ocipatch's verify still read the layout, referrers included.
    run_ok(cmd("umoci").args(["ls", "--layout"]).arg(&out));
    let v = run_ok(
        ocipatch()
            .args(["verify", "--json"])
            .arg(oci_ref(&out, "app")),
    )
    .json();
    assert_eq!(v["referrers_checked"], 2, "{v}");
    let i = run_ok(
        ocipatch()
            .args(["inspect", "--json"])
            .arg(oci_ref(&out, "app")),
    )
    .json();
    assert_eq!(i["referrers"].as_array().map(Vec::len), Some(2), "{i}");

    // A second run: byte-identical documents, referrers and index.json.
    let again = rebase();
    assert_eq!(attestations(&again), docs);
    assert_eq!(read(&out.join("index.json")), index_before);
    assert!(
        !read(&blob(&docs[0].1)).is_empty() && Path::new(&blob(&docs[1].1)).is_file(),
        "the documents stay"
    );
}
