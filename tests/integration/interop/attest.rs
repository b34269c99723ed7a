//! `--sbom` and `--provenance` on real images, judged by the formats' own tools: pyspdxtools
//! (SPDX 2.3), cyclonedx-python-lib's strict JSON validator (CycloneDX 1.6), the in-toto
//! attestation bindings (Statement v1 and the SLSA Provenance v1 predicate, unknown fields
//! refused), packageurl-python (every purl parses and is in canonical form), all from the
//! suite's venv ([`venv_python`]). The SBOM's packages are compared with what the package
//! manager itself lists in the unpacked result: `dpkg-query` on the debootstrap'ed Debian
//! fixture (`scripts/make-debian-fixture.sh`), apk's `installed` on the Alpine fixture
//! (`scripts/make-apk-fixture.sh`), `rpm -qa` on the rpm fixture (`scripts/make-rpm-fixture.sh`). Two runs give byte-identical documents.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::*;

pub(super) const DEBIAN_TOOLS: &[&str] = &[
    "skopeo",
    "umoci",
    "debootstrap",
    "chroot",
    "dpkg-query",
    "tar",
];
const APK_TOOLS: &[&str] = &["skopeo", "umoci", "tar"];

/// Validates one document (`spdx`, `cyclonedx`, `provenance`) with the tools of its format and
/// checks its purls with packageurl-python. Exits 1 with the tool's words when it is invalid.
const VALIDATE: &str = r#"
import json, subprocess, sys, os
kind, path = sys.argv[1], sys.argv[2]
text = open(path).read()
doc = json.loads(text)
purls = []
if kind == "spdx":
    tool = os.path.join(os.path.dirname(sys.executable), "pyspdxtools")
    r = subprocess.run([tool, "-i", path], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0 or out:
        print("pyspdxtools:", r.returncode, out)
        sys.exit(1)
    purls = [ref["referenceLocator"] for p in doc["packages"] for ref in p.get("externalRefs", [])
             if ref["referenceType"] == "purl"]
elif kind == "cyclonedx":
    from cyclonedx.validation.json import JsonStrictValidator
    from cyclonedx.schema import SchemaVersion
    err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if err is not None:
        print("cyclonedx:", err)
        sys.exit(1)
    purls = [c["purl"] for c in doc.get("components", []) if "purl" in c]
elif kind == "provenance":
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2, statement
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    try:
        pb = json_format.Parse(text, statement_pb2.Statement())
        statement.Statement.copy_from_pb(pb).validate()
        if pb.type != "https://in-toto.io/Statement/v1" or pb.predicate_type != "https://slsa.dev/provenance/v1":
            raise ValueError("wrong statement or predicate type")
        prov = json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
        if not prov.build_definition.build_type or not prov.run_details.builder.id:
            raise ValueError("no buildType or builder.id")
    except Exception as e:
        print("in-toto:", type(e).__name__, e)
        sys.exit(1)
else:
    sys.exit("unknown kind " + kind)
from packageurl import PackageURL
for p in purls:
    u = PackageURL.from_string(p)
    if u.to_string() != p:
        print("purl not canonical:", p, "->", u.to_string())
        sys.exit(1)
print("ok", len(purls))
"#;

/// Runs [`VALIDATE`] on `file`; returns the run (the caller asserts).
fn validate(kind: &str, file: &Path) -> Run {
    run(cmd(venv_python()).args(["-c", VALIDATE, kind]).arg(file))
}

#[track_caller]
pub(super) fn valid(kind: &str, file: &Path) {
    let r = validate(kind, file);
    assert!(r.success(), "{kind} {} is not valid:\n{r}", file.display());
}

/// `name version arch` of every OS package an SBOM lists.
pub(super) fn sbom_packages(doc: &serde_json::Value) -> BTreeSet<String> {
    let arch_of = |purl: &str| {
        purl.split_once('?')
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("arch=")))
            .unwrap_or("")
            .to_string()
    };
    if doc["spdxVersion"].is_string() {
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| {
                let purl = p["externalRefs"][0]["referenceLocator"].as_str()?;
                Some(format!(
                    "{} {} {}",
                    p["name"].as_str().unwrap(),
                    p["versionInfo"].as_str().unwrap(),
                    arch_of(purl)
                ))
            })
            .collect()
    } else {
        doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["type"] == "library")
            .map(|c| {
                format!(
                    "{} {} {}",
                    c["name"].as_str().unwrap(),
                    c["version"].as_str().unwrap(),
                    arch_of(c["purl"].as_str().unwrap())
                )
            })
            .collect()
    }
}

/// `ocipatch rebase app --from base-v1 --onto base-v2 -o oci:OUT:app EXTRA...`: the printed
/// digest (the last stdout line).
fn rebase_with(fx: &Fixture, out: &str, extra: &[&str]) -> String {
    let r = run_ok(
        ocipatch()
            .args(["rebase", &fx.image("app"), "--from", &fx.image("base-v1")])
            .args(["--onto", &fx.image("base-v2"), "-o"])
            .arg(oci_ref(&fx.path(out), "app"))
            .args(extra),
    );
    let digest = r.last_line();
    assert!(is_sha256_digest(&digest), "{r}");
    digest
}

/// The SBOM of the rebased image in both formats, each made twice: byte-identical, valid, and
/// listing exactly what `list` says the unpacked result holds. Then the provenance.
fn check_rebase_documents(fx: &Fixture, least: usize, list: impl Fn(&Path) -> BTreeSet<String>) {
    for format in ["spdx", "cyclonedx"] {
        let (a, b) = (
            fx.path(&format!("{format}-a.json")),
            fx.path(&format!("{format}-b.json")),
        );
        let out = format!("out-{format}");
        let digest = rebase_with(
            fx,
            &out,
            &["--sbom", format, "--sbom-file", a.to_str().unwrap()],
        );
        let again = rebase_with(
            fx,
            &out,
            &["--sbom", format, "--sbom-file", b.to_str().unwrap()],
        );
        assert_eq!(digest, again);
        assert_eq!(
            read(&a),
            read(&b),
            "two runs gave different {format} documents"
        );
        valid(format, &a);
        let doc = read_json(&a);
        let rootfs = fx.unpack(&fx.path(&out), "app");
        let want = list(&rootfs);
        assert!(want.len() >= least, "the fixture holds packages: {want:?}");
        let got = sbom_packages(&doc);
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{format}: packages the SBOM lacks: {missing:?}\nthat the image lacks: {extra:?}"
        );
        let text = String::from_utf8(read(&a)).unwrap();
        assert!(
            text.contains(digest.strip_prefix("sha256:").unwrap()),
            "the SBOM names its image"
        );
    }

    let (a, b) = (fx.path("prov-a.json"), fx.path("prov-b.json"));
    let sde = |c: &mut Cmd| {
        c.env("SOURCE_DATE_EPOCH", "1700000000");
    };
    let mut runs = Vec::new();
    for p in [&a, &b] {
        let mut c = ocipatch();
        c.args(["rebase", &fx.image("app"), "--from", &fx.image("base-v1")])
            .args(["--onto", &fx.image("base-v2"), "-o"])
            .arg(oci_ref(&fx.path("out-prov"), "app"))
            .args(["--provenance", "--provenance-file"])
            .arg(p);
        sde(&mut c);
        runs.push(run_ok(&mut c).last_line());
    }
    assert_eq!(read(&a), read(&b), "two runs gave different provenance");
    valid("provenance", &a);
    let st = read_json(&a);
    assert_eq!(
        format!(
            "sha256:{}",
            st["subject"][0]["digest"]["sha256"].as_str().unwrap()
        ),
        runs[0]
    );
    let deps = st["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    for (name, tag) in [
        ("image", "app"),
        ("old-base", "base-v1"),
        ("new-base", "base-v2"),
    ] {
        let want = index_digest(&fx.images, tag);
        assert!(
            deps.iter().any(|d| d["name"] == name
                && format!("sha256:{}", d["digest"]["sha256"].as_str().unwrap()) == want),
            "{name} {want} not among {deps:#?}"
        );
    }
    assert_eq!(
        st["predicate"]["runDetails"]["metadata"]["startedOn"],
        "2023-11-14T22:13:20Z"
    );
}

/// `name version arch` of every installed package, as dpkg-query lists them.
pub(super) fn dpkg_installed(rootfs: &Path) -> BTreeSet<String> {
    let r = run_ok(
        cmd("dpkg-query")
            .arg(format!(
                "--admindir={}",
                rootfs.join("var/lib/dpkg").display()
            ))
            .args([
                "-W",
                "-f",
                "${db:Status-Status} ${Package} ${Version} ${Architecture}\n",
            ]),
    );
    r.stdout()
        .lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .map(str::to_string)
        .collect()
}

/// `name version arch` of every package of apk's installed database.
fn apk_installed(rootfs: &Path) -> BTreeSet<String> {
    let text = String::from_utf8(read(&rootfs.join("lib/apk/db/installed"))).unwrap();
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let f = |k: &str| {
                b.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap_or("")
                    .to_string()
            };
            format!("{} {} {}", f("P:"), f("V:"), f("A:"))
        })
        .collect()
}

#[test]
fn debian_rebase_documents_are_valid_and_list_what_dpkg_lists() {
    let fx = Fixture::build("make-debian-fixture.sh", DEBIAN_TOOLS);
    check_rebase_documents(&fx, 50, dpkg_installed);
}

#[test]
fn alpine_rebase_documents_are_valid_and_list_what_apk_lists() {
    let fx = Fixture::build("make-apk-fixture.sh", APK_TOOLS);
    check_rebase_documents(&fx, 5, apk_installed);
}

/// `name version-release arch` of every package rpm itself lists.
fn rpm_installed(rootfs: &Path) -> BTreeSet<String> {
    let r = run_ok(
        cmd("rpm")
            .arg("--dbpath")
            .arg(rootfs.join("var/lib/rpm"))
            .args(["-qa", "--qf", "%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\n"]),
    );
    r.stdout().lines().map(str::to_string).collect()
}

#[test]
fn rpm_rebase_documents_are_valid_and_list_what_rpm_lists() {
    let fx = Fixture::build(
        "make-rpm-fixture.sh",
        &["rpm", "rpmbuild", "umoci", "skopeo"],
    );
    check_rebase_documents(&fx, 3, rpm_installed);
}

/// The validators are not rubber stamps: each refuses a broken document of its format.
#[test]
fn the_validators_refuse_broken_documents() {
    let fx = Fixture::new();
    let sbom = |format: &str| {
        let f = fx.path(&format!("{format}.json"));
        run_ok(
            ocipatch()
                .args([
                    "rebase",
                    &fx.image("app"),
                    "--onto",
                    &fx.image("base-v2"),
                    "-o",
                ])
                .arg(oci_ref(&fx.path("out"), "app"))
                .args(["--sbom", format, "--provenance", "--sbom-file"])
                .arg(&f)
                .arg("--provenance-file")
                .arg(fx.path(&format!("{format}.prov.json"))),
        );
        f
    };
    let broken = |file: &Path, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = read_json(file);
        edit(&mut v);
        let bad = file.with_extension("bad.json");
        std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
        bad
    };
    let spdx = sbom("spdx");
    valid("spdx", &spdx);
    let bad = broken(&spdx, &|v| {
        v["relationships"][0]["relatedSpdxElement"] = "SPDXRef-Nothing".into()
    });
    assert!(!validate("spdx", &bad).success());
    let cdx = sbom("cyclonedx");
    valid("cyclonedx", &cdx);
    let bad = broken(&cdx, &|v| v["serialNumber"] = "not-a-urn".into());
    assert!(!validate("cyclonedx", &bad).success());
    let prov = fx.path("spdx.prov.json");
    valid("provenance", &prov);
    let bad = broken(&prov, &|v| {
        v["predicate"]["buildDefinition"]["surprise"] = 1.into()
    });
    assert!(!validate("provenance", &bad).success());
    let bad = broken(&prov, &|v| v["subject"] = serde_json::json!([]));
    assert!(!validate("provenance", &bad).success());
}

pub(super) fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
