//! `--sbom`, `--provenance` and their `-file` flags on rebase (one image and fleets) and
//! append: the `attestations` of `--json`, the files, the naming rule, the human lines, and the
//! SBOM's packages: those of the RESULT's reconciled database. (The documents judged by their
//! formats' own validators, on real Debian and Alpine images, are in interop::attest.)

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// `name version arch` of every stanza of a dpkg status text.
fn stanzas(status: &str) -> BTreeSet<String> {
    status
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let f = |k: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap_or("")
                    .to_string()
            };
            format!(
                "{} {} {}",
                f("Package: "),
                f("Version: "),
                f("Architecture: ")
            )
        })
        .collect()
}

/// `name version arch` of the OS packages of an SPDX document (arch from the purl).
fn spdx_packages(doc: &Value) -> BTreeSet<String> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let purl = p["externalRefs"][0]["referenceLocator"].as_str()?;
            let arch = purl
                .split_once('?')
                .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("arch=")))
                .unwrap_or("");
            Some(format!(
                "{} {} {arch}",
                p["name"].as_str().unwrap(),
                p["versionInfo"].as_str().unwrap()
            ))
        })
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_sbom_lists_the_reconciled_packages_of_the_result() {
    let d = crate::pkgdb::debian();
    let s = &d.s;
    let file = s.path("sbom.json");
    let r = run_ok(
        ocipatch()
            .args(["rebase", &s.oci("deb-app"), "--from", &s.oci("deb-v1")])
            .args(["--onto", &s.oci("deb-v2"), "-o", &s.oci("out"), "--json"])
            .args(["--sbom", "spdx", "--sbom-file"])
            .arg(&file),
    );
    let report = r.json();
    let att = &report["attestations"][0];
    assert_eq!(att["artifact_type"], "application/spdx+json", "{report:#}");
    assert_eq!(att["subject"]["digest"], report["digest"], "{report:#}");
    assert_eq!(att["platform"], "linux/amd64");
    assert_eq!(att["file"], file.display().to_string());
    let bytes = read(&file);
    assert_eq!(att["digest"], sha256(&bytes).as_str());
    assert_eq!(att["size"].as_u64(), Some(bytes.len() as u64));
    // The new base's versions and the application's own package: the reconciled database.
    let mut want = stanzas(&crate::pkgdb::status_v2());
    want.extend(stanzas(crate::pkgdb::PYTHON));
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(spdx_packages(&doc), want);
    // The layers, with their roles: two of the new base, the app's, the package-database layer.
    let comments: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["primaryPackagePurpose"] == "ARCHIVE")
        .map(|p| p["comment"].as_str().unwrap())
        .collect();
    let roles: Vec<&str> = comments
        .iter()
        .map(|c| c.split(": ").nth(1).unwrap().split(';').next().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["base", "base", "application", "package-database"],
        "{comments:?}"
    );
}

#[test]
fn rebase_documents_in_json_on_stderr_and_the_digest_last() {
    let s = scenario();
    let args = |dest: &str| {
        let mut c = ocipatch();
        c.args(["rebase", &s.oci("app"), "--from", &s.oci("base-v1")])
            .args(["--onto", &s.oci("base-v2"), "-o", &s.oci(dest)])
            .args(["--sbom", "cyclonedx", "--provenance"]);
        c
    };
    let r = run_ok(&mut args("a"));
    let digest = r.last_line();
    assert!(is_sha256_digest(&digest), "{r}");
    let err = r.stderr();
    assert!(
        err.contains("  sbom (linux/amd64): application/vnd.cyclonedx+json sha256:"),
        "{err}"
    );
    assert!(
        err.contains("  provenance: application/vnd.in-toto+json sha256:"),
        "{err}"
    );
    let report = run_ok(args("b").arg("--json")).json();
    let atts = report["attestations"].as_array().unwrap();
    assert_eq!(atts.len(), 2, "{report:#}");
    assert_eq!(atts[1]["artifact_type"], "application/vnd.in-toto+json");
    assert!(atts[1].get("platform").is_none());
    assert_eq!(atts[1]["subject"]["digest"], digest.as_str());
    assert!(atts.iter().all(|a| a.get("file").is_none()));
    // The same inputs, the same documents (the destination's name is in them: same name).
    let again = run_ok(args("b").arg("--json")).json();
    assert_eq!(again["attestations"], report["attestations"]);
    // Without the flags: no field.
    let plain = run_ok(
        ocipatch()
            .args(["rebase", &s.oci("app"), "--from", &s.oci("base-v1")])
            .args(["--onto", &s.oci("base-v2"), "-o", &s.oci("c"), "--json"]),
    )
    .json();
    assert!(plain.get("attestations").is_none(), "{plain:#}");
}

#[test]
fn the_time_is_source_date_epoch_else_the_configs_created() {
    let s = scenario();
    let sbom = |sde: Option<&str>, name: &str| -> Value {
        let file = s.path(name);
        let mut c = ocipatch();
        c.args(["rebase", &s.oci("app"), "--from", &s.oci("base-v1")])
            .args(["--onto", &s.oci("base-v2"), "-o", &s.oci("out")])
            .args(["--sbom", "spdx", "--sbom-file"])
            .arg(&file);
        if let Some(t) = sde {
            c.env("SOURCE_DATE_EPOCH", t);
        }
        run_ok(&mut c);
        serde_json::from_slice(&read(&file)).unwrap()
    };
    let created = config(&s.layout.dir, "app")["created"].clone();
    let plain = sbom(None, "a.json");
    let want = created
        .as_str()
        .map_or("1970-01-01T00:00:00Z".to_string(), |c| {
            c.split('.')
                .next()
                .unwrap()
                .trim_end_matches('Z')
                .to_string()
                + "Z"
        });
    assert_eq!(plain["creationInfo"]["created"], want.as_str());
    let fixed = sbom(Some("1700000000"), "b.json");
    assert_eq!(fixed["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_ne!(plain["documentNamespace"], fixed["documentNamespace"]);
}

#[test]
fn file_flags_need_their_document_flag() {
    let s = scenario();
    let code = run(ocipatch()
        .args([
            "rebase",
            &s.oci("app"),
            "--onto",
            &s.oci("base-v2"),
            "-o",
            &s.oci("x"),
        ])
        .arg("--sbom-file")
        .arg(s.path("f.json")))
    .code();
    assert_eq!(code, 2);
    let code = run(ocipatch()
        .args([
            "rebase",
            &s.oci("app"),
            "--onto",
            &s.oci("base-v2"),
            "-o",
            &s.oci("x"),
        ])
        .arg("--provenance-file")
        .arg(s.path("f.json")))
    .code();
    assert_eq!(code, 2);
}

#[test]
fn a_fleets_documents_go_to_a_directory_one_file_per_image() {
    let s = scenario();
    let (sd, pd) = (s.path("sboms"), s.path("provenance"));
    let pattern = format!("oci:{}:fleet-{{index}}", s.layout.dir.display());
    let report = run_ok(
        ocipatch()
            .args([
                "rebase",
                "--from",
                &s.oci("base-v1"),
                "--onto",
                &s.oci("base-v2"),
            ])
            .args(["-o", &pattern, &s.oci("app"), &s.oci("app"), "--json"])
            .args(["--sbom", "spdx", "--provenance", "--sbom-file"])
            .arg(&sd)
            .arg("--provenance-file")
            .arg(&pd),
    )
    .json();
    for (i, n) in [(0, 1), (1, 2)] {
        let atts = &report["images"][i]["report"]["attestations"];
        let sbom = sd.join(format!("{n}-linux-amd64.spdx.json"));
        let prov = pd.join(format!("{n}-provenance.intoto.json"));
        assert_eq!(atts[0]["file"], sbom.display().to_string(), "{report:#}");
        assert_eq!(atts[1]["file"], prov.display().to_string(), "{report:#}");
        assert_eq!(atts[0]["digest"], sha256(&read(&sbom)).as_str());
        assert_eq!(atts[1]["digest"], sha256(&read(&prov)).as_str());
    }
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&sd),
        ["1-linux-amd64.spdx.json", "2-linux-amd64.spdx.json"]
    );
    assert_eq!(
        names(&pd),
        ["1-provenance.intoto.json", "2-provenance.intoto.json"]
    );
}

#[test]
fn append_documents_and_dry_run_writes_nothing() {
    let s = scenario();
    let patch = s.path("patch");
    std::fs::create_dir_all(patch.join("etc")).unwrap();
    std::fs::write(patch.join("etc/motd"), "patched\n").unwrap();
    let (sbom, prov) = (s.path("sbom.json"), s.path("prov.json"));
    let append = |dry: bool| {
        let mut c = ocipatch();
        c.args(["append", &s.oci("app"), "--layer"])
            .arg(&patch)
            .args(["-o", &s.oci("patched"), "--json"])
            .args(["--sbom", "spdx", "--provenance", "--sbom-file"])
            .arg(&sbom)
            .arg("--provenance-file")
            .arg(&prov);
        if dry {
            c.arg("--dry-run");
        }
        run_ok(&mut c).json()
    };
    let dry = append(true);
    assert_eq!(
        dry["attestations"].as_array().map(Vec::len),
        Some(2),
        "{dry:#}"
    );
    assert!(
        !sbom.exists() && !prov.exists(),
        "--dry-run wrote a document"
    );
    assert!(
        s.layout.tagged("patched").is_none(),
        "--dry-run wrote the image"
    );
    let done = append(false);
    assert_eq!(
        done["attestations"][0]["digest"],
        dry["attestations"][0]["digest"]
    );
    assert_eq!(
        done["attestations"][0]["digest"],
        sha256(&read(&sbom)).as_str()
    );
    let st: Value = serde_json::from_slice(&read(&prov)).unwrap();
    assert_eq!(
        st["predicate"]["buildDefinition"]["buildType"],
        "https://github.com/ocipatch/ocipatch/append/v1"
    );
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        done["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    );
    let doc: Value = serde_json::from_slice(&read(&sbom)).unwrap();
    let last_layer = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|p| p["primaryPackagePurpose"] == "ARCHIVE")
        .unwrap()
        .clone();
    assert_eq!(last_layer["name"], done["layer"]["digest"]);
    assert!(last_layer["comment"]
        .as_str()
        .unwrap()
        .contains(": appended"));
}

#[test]
fn distroless_status_d_and_the_release_make_the_purls() {
    let s = scenario();
    let stanza = |name: &str, version: &str, source: &str| {
        format!(
            "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n{source}Version: {version}\nDescription: x\n"
        )
    };
    let (files, libc) = (
        stanza("base-files", "12.4+deb12u5", ""),
        stanza("libc6", "2.36-9+deb12u4", "Source: glibc\n"),
    );
    let img = Image::new(
        vec![Layer::files(&[
            (
                "etc/os-release",
                b"ID=debian\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
            ),
            ("var/lib/dpkg/status.d/base-files", files.as_bytes()),
            (
                "var/lib/dpkg/status.d/base-files.md5sums",
                b"d41d8cd98f00b204e9800998ecf8427e  etc/debian_version\n",
            ),
            ("var/lib/dpkg/status.d/libc6", libc.as_bytes()),
        ])],
        &["distroless"],
    );
    s.layout.add("distroless", &img);
    let patch = s.path("patch");
    std::fs::create_dir_all(&patch).unwrap();
    std::fs::write(patch.join("motd"), "hi\n").unwrap();
    let file = s.path("sbom.cdx.json");
    run_ok(
        ocipatch()
            .args(["append", &s.oci("distroless"), "--layer"])
            .arg(&patch)
            .args(["-o", &s.oci("out"), "--sbom", "cyclonedx", "--sbom-file"])
            .arg(&file),
    );
    let doc: Value = serde_json::from_slice(&read(&file)).unwrap();
    let purls: Vec<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert_eq!(
        purls,
        [
            "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
        ]
    );
    let libc = &doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "libc6")
        .unwrap()["properties"];
    assert!(
        libc.as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "ocipatch:package:source" && p["value"] == "glibc"),
        "{libc:#}"
    );
    assert_eq!(doc["components"][0]["type"], "operating-system");
    assert_eq!(doc["components"][0]["version"], "12");
}

/// The referrers of `digest` listed in a layout's `index.json`: (artifactType, the referrer
/// manifest's digest), in index order.
fn layout_referrers(dir: &Path, digest: &str) -> Vec<(String, String)> {
    let index: Value = serde_json::from_slice(&read(&dir.join("index.json"))).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let d = e["digest"].as_str()?;
            let m: Value =
                serde_json::from_slice(&read(&dir.join("blobs/sha256").join(&d[7..]))).ok()?;
            (m["subject"]["digest"] == digest).then(|| {
                (
                    m["artifactType"].as_str().unwrap().to_string(),
                    d.to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn without_file_flags_the_documents_are_attached_as_referrers() {
    let s = scenario();
    let out = s.path("out");
    let r = run_ok(
        ocipatch()
            .args(["rebase", &s.oci("app"), "--from", &s.oci("base-v1")])
            .args(["--onto", &s.oci("base-v2"), "-o"])
            .arg(oci_ref(&out, "app"))
            .args(["--sbom", "cyclonedx", "--provenance", "--json"]),
    );
    let report = r.json();
    let digest = report["digest"].as_str().unwrap();
    let attached: Vec<(String, String)> = report["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["artifact_type"].as_str().unwrap().to_string(),
                a["referrer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(layout_referrers(&out, digest), attached);
    assert_eq!(
        attached.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        [
            "application/vnd.cyclonedx+json",
            "application/vnd.in-toto+json"
        ]
    );
    // The document is the referrer's one layer, byte for byte what --json described.
    let m: Value =
        serde_json::from_slice(&read(&out.join("blobs/sha256").join(&attached[0].1[7..]))).unwrap();
    assert_eq!(
        m["layers"][0]["digest"],
        report["attestations"][0]["digest"]
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );

    // A file flag keeps its document off the image; the other one is still attached.
    let out2 = s.path("out2");
    let sbom = s.path("sbom.json");
    let r2 = run_ok(
        ocipatch()
            .args(["rebase", &s.oci("app"), "--from", &s.oci("base-v1")])
            .args(["--onto", &s.oci("base-v2"), "-o"])
            .arg(oci_ref(&out2, "app"))
            .args(["--sbom", "spdx", "--sbom-file"])
            .arg(&sbom)
            .args(["--provenance", "--json"]),
    )
    .json();
    assert!(r2["attestations"][0]["referrer"].is_null(), "{r2:#}");
    let listed = layout_referrers(&out2, r2["digest"].as_str().unwrap());
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, "application/vnd.in-toto+json");
    assert!(sbom.is_file());
}

#[test]
fn an_archive_destination_needs_the_file_flags_and_is_refused_before_writing() {
    let s = scenario();
    for (dest, transport) in [
        (s.path("a.tar"), "oci-archive"),
        (s.path("d.tar"), "docker-archive"),
    ] {
        let dest_ref = format!("{transport}:{}", dest.display());
        let r = run(ocipatch()
            .args(["rebase", &s.oci("app"), "--from", &s.oci("base-v1")])
            .args(["--onto", &s.oci("base-v2")])
            .args(["-o", &dest_ref, "--sbom", "spdx"]));
        assert_eq!(r.code(), 1, "{r}");
        assert!(
            r.stderr().contains(&format!(
                "{dest_ref}: {transport} archives cannot hold OCI referrers"
            )) && r.stderr().contains("--sbom-file"),
            "{r}"
        );
        assert!(!dest.exists(), "{} was written", dest.display());
        // With the file flag the same rebase writes the archive and the document.
        let file = s.path(&format!("{transport}.spdx.json"));
        run_ok(
            ocipatch()
                .args(["rebase", &s.oci("app"), "--from", &s.oci("base-v1")])
                .args(["--onto", &s.oci("base-v2")])
                .args(["-o", &dest_ref, "--sbom", "spdx", "--sbom-file"])
                .arg(&file),
        );
        assert!(dest.is_file() && file.is_file());
    }
    // append, too.
    let patch = s.path("patch");
    std::fs::create_dir_all(&patch).unwrap();
    std::fs::write(patch.join("x"), "x\n").unwrap();
    let tar = s.path("appended.tar");
    let r = run(ocipatch()
        .args(["append", &s.oci("app"), "--layer"])
        .arg(&patch)
        .arg("-o")
        .arg(format!("oci-archive:{}", tar.display()))
        .arg("--provenance"));
    assert_eq!(r.code(), 1, "{r}");
    assert!(r.stderr().contains("--provenance-file"), "{r}");
    assert!(!tar.exists());
}

#[test]
fn append_attaches_its_documents_to_a_layout() {
    let s = scenario();
    let patch = s.path("patch");
    std::fs::create_dir_all(patch.join("etc")).unwrap();
    std::fs::write(patch.join("etc/motd"), "patched\n").unwrap();
    let report = run_ok(
        ocipatch()
            .args(["append", &s.oci("app"), "--layer"])
            .arg(&patch)
            .args(["-o", &s.oci("patched"), "--sbom", "spdx", "--json"]),
    )
    .json();
    let digest = report["digest"].as_str().unwrap();
    let listed = layout_referrers(&s.layout.dir, digest);
    assert_eq!(
        listed,
        vec![(
            "application/spdx+json".to_string(),
            report["attestations"][0]["referrer"]
                .as_str()
                .unwrap()
                .to_string()
        )]
    );
    let v = run_ok(ocipatch().args(["verify", "--json", &s.oci("patched")])).json();
    assert_eq!(v["referrers_checked"], 1, "{v}");
}
