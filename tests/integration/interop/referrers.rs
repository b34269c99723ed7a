//! OCI 1.1 referrers judged by clients nobody here wrote: attached by ocipatch to a real
//! docker-registry (distribution 2.8: no referrers API, so the referrers tag schema) and
//! discovered with the `oras` Python SDK; attached to a layout and read by skopeo and
//! oci-image-tool; an "earlier attachment" pushed by oras and named by a rebase as not carried;
//! two concurrent writers of one referrers tag keeping both entries.

use std::collections::BTreeMap;

use ocipatch::model::{Descriptor, Reference};
use ocipatch::ops::referrers;
use ocipatch::transport::RegistryOptions;
use serde_json::Value;

use crate::util::registry::{Registry, REGISTRY_TOOLS};
use crate::util::*;

const SPDX: &str = "application/spdx+json";
const INTOTO: &str = "application/vnd.in-toto+json";

/// The oras SDK's registry client (plain HTTP), as `reg` in the scripts below.
const ORAS_PRELUDE: &str = r#"
import hashlib, json, sys
import oras.provider
host = sys.argv[1]
reg = oras.provider.Registry(hostname=host, insecure=True)
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
"#;

/// Lists the referrers of `repo@subject` with oras: the referrers tag's index (the SDK has no
/// referrers call; the tag schema is how a registry without the API holds them), each entry's
/// manifest and its layer blob fetched through the SDK. Prints one JSON object per referrer.
pub(super) const ORAS_DISCOVER: &str = r#"
repo, subject = sys.argv[2], sys.argv[3]
tag = subject.replace(":", "-")
index = reg.get_manifest(f"{host}/{repo}:{tag}", allowed_media_type=[INDEX])
for e in index["manifests"]:
    m = reg.get_manifest(f"{host}/{repo}@{e['digest']}", allowed_media_type=[MANIFEST])
    layer = m["layers"][0]
    blob = reg.get_blob(f"{host}/{repo}", layer["digest"])
    blob.raise_for_status()
    print(json.dumps({
        "entry_artifact_type": e.get("artifactType"),
        "digest": e["digest"],
        "artifact_type": m.get("artifactType"),
        "subject": m["subject"]["digest"],
        "config": m["config"]["mediaType"],
        "layer": layer["digest"],
        "blob_sha256": "sha256:" + hashlib.sha256(blob.content).hexdigest(),
    }))
"#;

/// Pushes an attestation with a subject the way oras does (its `push(subject=...)`), then
/// lists it in the referrers tag as a client without the referrers API must. Prints the
/// pushed manifest's digest.
pub(super) const ORAS_ATTACH: &str = r#"
import os, oras.oci
repo, subject, size, workdir = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
os.chdir(workdir)
with open("provenance.json", "w") as f:
    f.write('{"predicateType":"https://slsa.dev/provenance/v1"}')
s = oras.oci.Subject(mediaType=MANIFEST, digest=subject, size=size)
resp = reg.push(f"{host}/{repo}:provenance", files=["provenance.json:application/vnd.in-toto+json"],
                subject=s, manifest_annotations={"org.example": "earlier"}, quiet=True)
resp.raise_for_status()
digest = resp.headers["Docker-Content-Digest"]
m = reg.get_manifest(f"{host}/{repo}@{digest}", allowed_media_type=[MANIFEST])
raw = reg.do_request(f"http://{host}/v2/{repo}/manifests/{digest}", "GET",
                     headers={"Accept": MANIFEST})
tag = subject.replace(":", "-")
index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [
    {"mediaType": MANIFEST, "digest": digest, "size": len(raw.content),
     "artifactType": "application/vnd.in-toto+json"}]}
put = reg.do_request(f"http://{host}/v2/{repo}/manifests/{tag}", "PUT",
                     headers={"Content-Type": INDEX}, data=json.dumps(index))
put.raise_for_status()
print(digest)
"#;

pub(super) fn oras(script: &str, args: &[&str]) -> String {
    let mut c = cmd(venv_python());
    c.arg("-c")
        .arg(format!("{ORAS_PRELUDE}{script}"))
        .args(args);
    run_ok(&mut c).stdout()
}

fn plain_http() -> RegistryOptions {
    RegistryOptions {
        tls_verify: false,
        ..RegistryOptions::default()
    }
}

fn subject(l: &Layout, tag: &str) -> Descriptor {
    Descriptor::from_json(&index_descriptor(&l.dir, tag)).unwrap()
}

/// The scenario's app pushed to `reg` as `app:v1` with skopeo (digests preserved).
fn pushed_app(reg: &Registry) -> (Scenario, Descriptor) {
    let s = scenario();
    run_ok(cmd("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &s.oci("app"),
        &reg.docker("app:v1"),
    ]));
    let d = subject(&s.layout, "app");
    (s, d)
}

fn attach(
    dest: &str,
    opts: &RegistryOptions,
    subject: &Descriptor,
    t: &str,
    doc: &[u8],
) -> referrers::Attached {
    referrers::attach(
        &Reference::parse(dest).unwrap(),
        opts,
        subject,
        t,
        doc,
        t,
        &BTreeMap::new(),
    )
    .unwrap()
}

fn discovered(reg: &Registry, subject: &Descriptor) -> Vec<Value> {
    oras(
        ORAS_DISCOVER,
        &[&reg.host(), "app", &subject.digest.to_string()],
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

#[test]
fn a_referrer_attached_to_a_registry_is_discovered_by_oras() {
    require_tools(REGISTRY_TOOLS);
    let reg = Registry::start(None);
    let (_s, subj) = pushed_app(&reg);
    let doc = br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#;
    let a = attach(&reg.docker("app:v1"), &plain_http(), &subj, SPDX, doc);
    // Again: nothing new is listed.
    attach(&reg.docker("app:v1"), &plain_http(), &subj, SPDX, doc);
    let found = discovered(&reg, &subj);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f["digest"], a.digest.to_string());
    assert_eq!(f["entry_artifact_type"], SPDX);
    assert_eq!(f["artifact_type"], SPDX);
    assert_eq!(f["subject"], subj.digest.to_string());
    assert_eq!(f["config"], "application/vnd.oci.empty.v1+json");
    assert_eq!(f["layer"], sha256(doc));
    assert_eq!(f["blob_sha256"], sha256(doc));
    // Our own listing agrees, and `inspect` and `verify` over the registry see it.
    let src = ocipatch::transport::open_source(
        &Reference::parse(&reg.docker("app:v1")).unwrap(),
        &plain_http(),
    )
    .unwrap();
    let listed = referrers::list(src.as_ref(), &subj.digest, None).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, a.digest);
    let v = run_ok(ocipatch().args([
        "inspect",
        "--tls-verify=false",
        &reg.docker("app:v1"),
        "--json",
    ]))
    .json();
    assert_eq!(v["referrers"][0]["digest"], a.digest.to_string(), "{v}");
    let v = run_ok(ocipatch().args([
        "verify",
        "--tls-verify=false",
        &reg.docker("app:v1"),
        "--json",
    ]))
    .json();
    assert_eq!(v["referrers_checked"], 1, "{v}");
}

#[test]
fn a_referrer_attached_to_a_layout_passes_oci_image_tool_umoci_and_skopeo() {
    require_tools(&["skopeo", "oci-image-tool", "umoci"]);
    let s = scenario();
    let subj = subject(&s.layout, "app");
    let a = attach(
        &s.oci("app"),
        &RegistryOptions::default(),
        &subj,
        SPDX,
        b"{\"sbom\":1}",
    );
    // skopeo 1.9 selects layout images by tag only: the referrer's manifest is checked by
    // oci-image-tool (the spec's schema), the whole layout with it, and the tagged image by
    // skopeo.
    let blob = s.layout.blob_path(&a.digest.to_string());
    let raw = std::fs::read(&blob).unwrap();
    assert_eq!(sha256(&raw), a.digest.to_string());
    let m: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["subject"]["digest"], subj.digest.to_string());
    assert_eq!(m["artifactType"], SPDX);
    run_ok(cmd("oci-image-tool").args(["validate", "--type", "manifest", &blob.to_string_lossy()]));
    // oci-image-tool 1.0.0-rc1 predates image-spec 1.1: its layout check refuses the empty
    // descriptor (the config 1.1 prescribes for artifacts), so the layout is judged by umoci:
    // it lists the tags, and its garbage collection keeps every blob of the referrer (an
    // index.json entry is a root to it) while ocipatch verify still finds it intact.
    let tags =
        run_ok(cmd("umoci").args(["ls", "--layout", &s.layout.dir.to_string_lossy()])).stdout();
    assert!(tags.lines().any(|t| t == "app"), "{tags}");
    run_ok(cmd("umoci").args(["gc", "--layout", &s.layout.dir.to_string_lossy()]));
    for d in [&a.digest, &a.document] {
        assert!(
            s.layout.blob_path(&d.to_string()).exists(),
            "umoci gc removed {d}"
        );
    }
    let v = run_ok(ocipatch().args(["verify", &s.oci("app"), "--json"])).json();
    assert_eq!(v["referrers_checked"], 1, "{v}");
    // The tagged image is still what skopeo reads by its tag.
    let tagged = run_ok(cmd("skopeo").args(["inspect", "--raw", &s.oci("app")])).stdout();
    assert_eq!(sha256(tagged.as_bytes()), subj.digest.to_string());
}

#[test]
fn an_attachment_pushed_by_oras_is_kept_by_our_attach_and_named_not_carried_by_a_rebase() {
    require_tools(REGISTRY_TOOLS);
    let reg = Registry::start(None);
    let (s, subj) = pushed_app(&reg);
    let work = s.path("oras-work");
    std::fs::create_dir_all(&work).unwrap();
    let theirs = oras(
        ORAS_ATTACH,
        &[
            &reg.host(),
            "app",
            &subj.digest.to_string(),
            &subj.size.to_string(),
            &work.to_string_lossy(),
        ],
    );
    let theirs = theirs.trim().to_string();
    // Ours next to theirs: the referrers tag keeps both.
    let ours = attach(
        &reg.docker("app:v1"),
        &plain_http(),
        &subj,
        SPDX,
        b"{\"sbom\":2}",
    );
    let found: Vec<String> = discovered(&reg, &subj)
        .iter()
        .map(|f| f["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(found, vec![theirs.clone(), ours.digest.to_string()]);

    // The bases pushed too; the rebase names both attachments and carries neither.
    for tag in ["base-v1", "base-v2"] {
        run_ok(cmd("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &s.oci(tag),
            &reg.docker(&format!("{tag}:latest")),
        ]));
    }
    let run = run_ok(ocipatch().args([
        "rebase",
        "--tls-verify=false",
        &reg.docker("app:v1"),
        "--from",
        &reg.docker("base-v1:latest"),
        "--onto",
        &reg.docker("base-v2:latest"),
        "-o",
        &reg.docker("app:v2"),
        "--json",
    ]));
    let r = run.json();
    let nc: Vec<(String, String)> = r["not_carried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["subject"], subj.digest.to_string());
            (
                n["digest"].as_str().unwrap().to_string(),
                n["artifact_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        nc,
        vec![
            (theirs.clone(), INTOTO.to_string()),
            (ours.digest.to_string(), SPDX.to_string())
        ],
        "{r}"
    );
    assert!(
        run.stderr().contains(&format!(
            "not carried: {INTOTO} {theirs} describes the old digest {}",
            subj.digest
        )),
        "{}",
        run.stderr()
    );
    // The new image has no referrers tag.
    let new_digest = r["digest"].as_str().unwrap();
    let tag = new_digest.replace(':', "-");
    let out = oras(
        &format!(
            "r = reg.do_request(f'http://{{host}}/v2/app/manifests/{tag}', 'GET', headers={{'Accept': INDEX}})\nprint(r.status_code)"
        ),
        &[&reg.host()],
    );
    assert_eq!(out.trim(), "404");
}

#[test]
fn two_concurrent_attaches_to_one_subject_keep_both_entries() {
    require_tools(REGISTRY_TOOLS);
    let reg = Registry::start(None);
    let (_s, subj) = pushed_app(&reg);
    let dest = reg.docker("app:v1");
    let docs: Vec<Vec<u8>> = (0..2)
        .map(|i| format!("{{\"sbom\":{i}}}").into_bytes())
        .collect();
    let barrier = std::sync::Barrier::new(2);
    let attached: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = docs
            .iter()
            .map(|doc| {
                let (dest, subj, barrier) = (&dest, &subj, &barrier);
                sc.spawn(move || {
                    // A session each, as two runs would have.
                    let opts = plain_http();
                    barrier.wait();
                    attach(dest, &opts, subj, SPDX, doc).digest.to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut found: Vec<String> = discovered(&reg, &subj)
        .iter()
        .map(|f| f["digest"].as_str().unwrap().to_string())
        .collect();
    found.sort();
    let mut want = attached;
    want.sort();
    assert_eq!(found, want);
}
