//! Fleets against a real registry (Debian's `docker-registry` on a free loopback port, stopped
//! by its PID): requests per image counted in the registry's access log, re-runs that write
//! nothing, failure isolation, and the documented pipeline (docs/fleets.md) run as concurrent
//! shard processes. A missing tool fails the test; nothing is skipped.

use std::collections::BTreeMap;

use crate::util::registry::Registry;
use crate::util::*;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

const NO_TLS: &str = "--tls-verify=false";

/// The fixture's bases as lib/base:v1 and v2, and `n` distinct applications on v1 (the
/// fixture's app plus one layer each, so they carry its base.digest annotation), as
/// apps/app-I:1. Returns the application references.
fn fleet_registry(fx: &Fixture, reg: &Registry, n: usize) -> Vec<String> {
    require_tools(&["jq", "sh"]);
    for (tag, dest) in [
        ("base-v1", "lib/base:v1"),
        ("base-v2", "lib/base:v2"),
        ("app", "team/app:1"),
    ] {
        run_ok(
            cmd("skopeo")
                .args(["copy", "-q", "--dest-tls-verify=false", "--format", "oci"])
                .arg(fx.image(tag))
                .arg(reg.docker(dest)),
        );
    }
    (0..n)
        .map(|i| {
            let dir = fx.path(&format!("layer-{i}"));
            std::fs::create_dir_all(dir.join("srv")).unwrap();
            std::fs::write(dir.join("srv/service"), format!("service {i}\n")).unwrap();
            let dest = reg.docker(&format!("apps/app-{i}:1"));
            run_ok(
                ocipatch()
                    .args(["append", NO_TLS, "-q", "--layer"])
                    .arg(&dir)
                    .arg(reg.docker("team/app:1"))
                    .arg("-o")
                    .arg(&dest),
            );
            dest
        })
        .collect()
}

/// Access-log requests by the repository they name (`/v2/REPO/...`; `/v2/` is the ping).
fn by_repository(requests: &[String]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in requests {
        let path = r.split_once(' ').map_or("", |(_, p)| p);
        let repo = path
            .strip_prefix("/v2/")
            .and_then(|p| {
                ["/manifests/", "/blobs/", "/referrers/"]
                    .iter()
                    .find_map(|m| p.find(m).map(|i| p[..i].to_string()))
            })
            .unwrap_or_else(|| "(ping)".into());
        *out.entry(repo).or_insert(0) += 1;
    }
    out
}

fn writes(requests: &[String]) -> Vec<&String> {
    requests
        .iter()
        .filter(|r| !(r.starts_with("GET ") || r.starts_with("HEAD ")))
        .collect()
}

#[test]
fn a_fleet_takes_at_most_10_requests_per_image_and_a_rerun_writes_nothing() {
    let fx = Fixture::new();
    let reg = Registry::start(None);
    let mut images = fleet_registry(&fx, &reg, 6);
    // one image that cannot be read: its own failure, the others go on
    images.insert(2, reg.docker("apps/missing:1"));
    let list = fx.path("images.txt");
    std::fs::write(&list, images.join("\n")).unwrap();
    let cache = fx.path("cache");
    let fleet = |cache: &std::path::Path| {
        let mut c = ocipatch();
        c.args(["rebase", "--images-from"])
            .arg(&list)
            .args(["--onto", &reg.docker("lib/base:v2")])
            .args(["-o", &reg.docker("{repo}:2")])
            .arg("--cache-dir")
            .arg(cache)
            .args([NO_TLS, "--json"]);
        let r = run(&mut c);
        assert_eq!(r.status.code(), Some(1), "one image fails:\n{r}");
        let json: Value = serde_json::from_str(&r.stdout()).unwrap_or_else(|e| panic!("{e}\n{r}"));
        json
    };

    let mark = reg.log_mark();
    let first = fleet(&cache);
    let requests = reg.requests_since(mark);
    let per_repo = by_repository(&requests);
    eprintln!("{:#}\n{per_repo:#?}", first["requests"]);
    assert_eq!(
        (first["rebased"].clone(), first["failed"].clone()),
        (6.into(), 1.into()),
        "{first:#}"
    );
    let entries = first["images"].as_array().unwrap();
    assert_eq!(entries[2]["status"], "failed");
    assert!(
        entries[2]["error"]
            .as_str()
            .unwrap()
            .contains("apps/missing"),
        "{first:#}"
    );
    // Each layer blob is read at most once in the run (the package-database check reads the
    // application's layers; images sharing one wait for one read).
    let blob_gets: Vec<&String> = requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/blobs/sha256:"))
        .collect();
    let mut read = BTreeMap::new();
    for r in &blob_gets {
        *read.entry(r.rsplit('/').next().unwrap()).or_insert(0) += 1;
    }
    assert!(read.values().all(|n| *n == 1), "{blob_gets:#?}");
    for e in entries.iter().filter(|e| e["status"] == "rebased") {
        let repo = e["image"]
            .as_str()
            .unwrap()
            .strip_prefix("docker://")
            .unwrap();
        let repo = repo.split_once('/').unwrap().1.rsplit_once(':').unwrap().0;
        // ocipatch's own count is the registry's
        let logged = per_repo[repo];
        assert_eq!(e["requests"], logged as u64, "{repo}: {e:#}");
        // Reading the manifest and the config, checking the destination tag, mounting the
        // new base layer, uploading the config (POST, PUT) and pushing the manifest once: 7;
        // plus listing the image's referrers before writing (the referrers API, which this
        // registry does not have, then the referrers tag; the API is not asked again once the
        // run knows): at most 2; plus the reads of the application's layers not read before in
        // the run.
        let layer_reads = requests
            .iter()
            .filter(|r| r.starts_with(&format!("GET /v2/{repo}/blobs/")))
            .count()
            - 1;
        assert!(
            logged - layer_reads <= 9,
            "{repo}: {logged} requests: {requests:#?}"
        );
    }
    // read once each: 6 configs, the 6 images' own layers and the 2 they share, the configs
    // of the new base and of the old one (found by the base.digest annotation)
    assert_eq!(
        read.len(),
        6 + 6 + 2 + 2,
        "configs and layers: {blob_gets:#?}"
    );
    // one ping for the run; the bases once: the new one's manifest and config, the old one
    // found by digest (HEAD, then its manifest and config)
    assert_eq!(per_repo["(ping)"], 1, "{requests:#?}");
    assert_eq!(per_repo["lib/base"], 5, "{requests:#?}");
    assert!(
        first["requests"]["per_image"].as_f64().unwrap() <= 10.0,
        "{first:#}"
    );

    // the same run again: every image is unchanged, nothing is written
    let mark = reg.log_mark();
    let again = fleet(&cache);
    let requests = reg.requests_since(mark);
    assert_eq!(writes(&requests), Vec::<&String>::new());
    assert_eq!(
        (again["rebased"].clone(), again["unchanged"].clone()),
        (0.into(), 6.into()),
        "{again:#}"
    );
    for (a, b) in first["images"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["images"].as_array().unwrap())
    {
        assert_eq!(a["report"]["digest"], b["report"]["digest"]);
    }
    // without the broken image the re-run exits 0
    std::fs::write(
        &list,
        images
            .iter()
            .filter(|i| !i.contains("missing"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let r = run_ok(
        ocipatch()
            .args(["rebase", "--images-from"])
            .arg(&list)
            .args(["--onto", &reg.docker("lib/base:v2")])
            .args(["-o", &reg.docker("{repo}:2"), NO_TLS]),
    );
    assert!(
        r.stderr().contains("0 rebased, 6 unchanged, 0 failed"),
        "{r}"
    );
}

/// The ```LANG blocks of docs/fleets.md.
fn doc_blocks(lang: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/fleets.md")).unwrap();
    let fence = format!("```{lang}\n");
    text.split(&fence)
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap().to_string() + "\n")
        .collect()
}

/// Every string in a YAML document.
fn strings(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::String(s) => out.push(s.clone()),
        Yaml::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out)
        }),
        _ => {}
    }
}

#[test]
fn the_documented_pipeline_parses_and_runs_as_concurrent_shards() {
    let script = doc_blocks("sh");
    assert_eq!(script.len(), 1, "one pipeline script in docs/fleets.md");
    let script = &script[0];
    let yaml = doc_blocks("yaml");
    assert_eq!(yaml.len(), 2, "a Kubernetes Job and a GitHub workflow");
    for (i, block) in yaml.iter().enumerate() {
        let docs = YamlLoader::load_from_str(block)
            .unwrap_or_else(|e| panic!("YAML block {i} of docs/fleets.md: {e}"));
        let mut all = Vec::new();
        strings(&docs[0], &mut all);
        assert!(
            all.iter().any(|s| s == script),
            "YAML block {i} does not embed the pipeline script"
        );
    }
    let job = &YamlLoader::load_from_str(&yaml[0]).unwrap()[0];
    assert_eq!(job["kind"].as_str(), Some("Job"));
    assert_eq!(job["spec"]["completionMode"].as_str(), Some("Indexed"));
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(
        pod["volumes"][0]["secret"]["items"][0]["path"].as_str(),
        Some("config.json")
    );
    let gha = &YamlLoader::load_from_str(&yaml[1]).unwrap()[0];
    assert_eq!(
        gha["jobs"]["rebase"]["strategy"]["matrix"]["shard"]
            .as_vec()
            .map(Vec::len),
        Some(4)
    );

    // The script, as 3 concurrent shards against a local registry.
    let fx = Fixture::new();
    let reg = Registry::start(None);
    let mut images = fleet_registry(&fx, &reg, 8);
    images.push(reg.docker("team/app:1"));
    let list = fx.path("images.txt");
    std::fs::write(&list, images.join("\n")).unwrap();
    let bin_dir = bin().parent().unwrap().to_path_buf();
    let run_shards = |round: &str| -> Vec<(Run, std::path::PathBuf)> {
        let children: Vec<_> = (0..3)
            .map(|i| {
                let dir = fx.path(&format!("{round}-{i}"));
                std::fs::create_dir_all(&dir).unwrap();
                let child = cmd("sh")
                    .arg("-c")
                    .arg(script)
                    .current_dir(&dir)
                    .env(
                        "PATH",
                        format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
                    )
                    .env("JOB_COMPLETION_INDEX", i.to_string())
                    .env("SHARD_COUNT", "3")
                    .env("IMAGES", &list)
                    .env("NEW_BASE", reg.docker("lib/base:v2"))
                    .env("DEST", reg.docker("{repo}:{tag}"))
                    .env("OCIPATCH_FLAGS", NO_TLS)
                    .spawn();
                (child, dir)
            })
            .collect();
        children
            .into_iter()
            .map(|(c, dir)| (c.finish(), dir))
            .collect()
    };
    let mut rebased = Vec::new();
    for (r, dir) in run_shards("first") {
        assert_eq!(r.code(), 0, "shard in {}:\n{r}", dir.display());
        let check: Value =
            serde_json::from_slice(&std::fs::read(dir.join("check.json")).unwrap()).unwrap();
        assert_eq!(
            check["current"], 0,
            "every image starts outdated: {check:#}"
        );
        if let Ok(bytes) = std::fs::read(dir.join("rebase.json")) {
            let r: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(r["failed"], 0, "{r:#}");
            for e in r["images"].as_array().unwrap() {
                assert_eq!(e["status"], "rebased");
                rebased.push(e["image"].as_str().unwrap().to_string());
            }
        }
    }
    rebased.sort();
    let mut all = images.clone();
    all.sort();
    assert_eq!(
        rebased, all,
        "each image rebased exactly once by the shards together"
    );
    // in place: every image is now current
    let r = run(ocipatch()
        .args(["check", "--images-from"])
        .arg(&list)
        .args(["--base", &reg.docker("lib/base:v2"), NO_TLS]));
    assert_eq!(r.status.code(), Some(0), "{r}");

    // the pipeline again (a retried job): reads only, nothing rebased
    let mark = reg.log_mark();
    for (r, dir) in run_shards("again") {
        assert_eq!(r.code(), 0, "{r}");
        assert!(
            !dir.join("rebase.json").exists(),
            "nothing outdated, nothing to rebase"
        );
    }
    assert_eq!(writes(&reg.requests_since(mark)), Vec::<&String>::new());
}
