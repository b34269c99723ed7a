//! Fleets against a real registry (Debian's `docker-registry` on a free loopback port, stopped
//! by its PID): requests per image counted in the registry's access log, re-runs that write
//! nothing, failure isolation, and the documented pipeline (docs/fleets.md) run as concurrent
//! shard processes. A missing tool fails the test; nothing is skipped.

use std::collections::BTreeMap;

use crate::util::registry::{Registry, TestCa};
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
        // The workflow runs the script on a runner; the Job runs ocipatch alone in its image
        // (the_kubernetes_job_runs_in_the_built_image_over_tls).
        assert_eq!(
            all.iter().any(|s| s == script),
            i == 1,
            "YAML block {i}: only the GitHub workflow embeds the pipeline script"
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

/// `$(NAME)` replaced by `env`'s NAME, as Kubernetes expands a container's `command` and `args`
/// (`$$` is a literal `$`; an undefined name stays as written).
fn kubernetes_expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some((name, after)) = tail
            .strip_prefix("$(")
            .and_then(|t| t.split_once(')'))
            .filter(|(n, _)| env.contains_key(*n))
        {
            out.push_str(&env[name]);
            rest = after;
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out + rest
}

fn yaml_strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The Indexed Job of docs/fleets.md, run as its pods would run it: its `command` and `args`,
/// `$(NAME)` expanded, inside the rootfs of the image scripts/build-image.sh builds (a chroot:
/// no shell, no jq, nothing from the host), against a registry over TLS. The CA is trusted the
/// documented way, by the image's bundle (/etc/ssl/certs/ca-certificates.crt, a mounted bundle
/// holding the private CA); without it the same pod fails.
#[test]
fn the_kubernetes_job_runs_in_the_built_image_over_tls() {
    require_tools(&["umoci", "unshare", "chroot", "ldd", "openssl", "bash"]);
    let yaml = doc_blocks("yaml");
    let job = &YamlLoader::load_from_str(&yaml[0]).unwrap()[0];
    let mut all = Vec::new();
    strings(job, &mut all);
    for s in &all {
        assert!(
            !s.contains("/bin/sh") && !s.contains("jq "),
            "the Job needs a shell or jq, which the image has not: {s}"
        );
    }
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let command = yaml_strings(&container["command"]);
    let args = yaml_strings(&container["args"]);
    assert_eq!(command, ["/usr/local/bin/ocipatch"], "{container:?}");
    let completions = job["spec"]["completions"].as_i64().unwrap();
    let mut env: BTreeMap<String, String> = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| {
            let (n, v) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
            (n.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(env["SHARD_COUNT"], completions.to_string());

    // The registry (placeholders of the page replaced by the local one), over TLS.
    let fx = Fixture::new();
    let ca_dir = fx.path("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    let ca = TestCa::create(&ca_dir);
    let reg = Registry::start_tls(&ca);
    let images = fleet_registry(&fx, &reg, 8);
    env.insert("NEW_BASE".into(), reg.docker("lib/base:v2"));
    env.insert("DEST".into(), reg.docker("{repo}:{tag}"));

    // The image, as scripts/build-image.sh builds it, unpacked.
    let layout = fx.path("ocipatch-image");
    run_ok(
        cmd("bash")
            .arg(repo_root().join("scripts/build-image.sh"))
            .arg("--binary")
            .arg(bin())
            .arg(format!("oci:{}:latest", layout.display())),
    );
    let rootfs = unpack_in(&fx.path("."), &layout, "latest");
    let bundle = rootfs.join("etc/ssl/certs/ca-certificates.crt");
    let public = std::fs::read_to_string(&bundle).unwrap();
    assert!(
        public.matches("BEGIN CERTIFICATE").count() > 50,
        "the image carries the public CA certificates"
    );
    assert!(rootfs
        .join("etc/ssl/certs/ca-certificates.crt.source")
        .is_file());
    assert!(!rootfs.join("bin/sh").exists() && !rootfs.join("usr/bin/jq").exists());
    // The binary under test is a debug build linked dynamically (the release image's binary is
    // static, which the script checks): its loader and libraries go in beside it, nothing else.
    let ldd = run_ok(cmd("ldd").arg(bin())).stdout();
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let to = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lib, &to).unwrap();
    }
    // What the Job mounts: the auth file (a Secret) and the image list (a ConfigMap).
    for (path, contents) in [
        ("auth/config.json", "{\"auths\": {}}\n".to_string()),
        ("fleet/images.txt", images.join("\n") + "\n"),
    ] {
        let to = rootfs.join(path);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, contents).unwrap();
    }
    let pod_run = |index: i64| {
        let mut env = env.clone();
        env.insert("JOB_COMPLETION_INDEX".into(), index.to_string());
        let argv: Vec<String> = command
            .iter()
            .chain(&args)
            .map(|a| kubernetes_expand(a, &env))
            .collect();
        chroot_run(
            &rootfs,
            &argv.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    // The public bundle does not know the test CA: every pod with images fails, saying why.
    let mut refused = 0;
    for index in 0..completions {
        let r = pod_run(index);
        if r.json()["images"].as_array().is_some_and(|a| a.is_empty()) {
            continue; // an empty shard contacts nobody
        }
        assert_eq!(r.code(), 1, "{r}");
        assert_eq!(r.json()["rebased"].as_u64().unwrap_or(0), 0, "{r}");
        assert!(r.stdout().to_lowercase().contains("certificate"), "{r}");
        refused += 1;
    }
    assert!(refused > 0, "no shard held an image");

    // A bundle that holds the private CA, mounted over the image's (as with a ConfigMap and
    // subPath): every pod rebases its shard, together each image exactly once.
    let private = std::fs::read_to_string(&ca.ca_cert).unwrap();
    std::fs::write(&bundle, public + &private).unwrap();
    let mut rebased = Vec::new();
    for index in 0..completions {
        let r = pod_run(index);
        assert_eq!(r.code(), 0, "pod {index}:\n{r}");
        let report = r.json();
        assert_eq!(report["failed"], 0, "{report:#}");
        for e in report["images"].as_array().unwrap() {
            assert_eq!(e["status"], "rebased", "{report:#}");
            rebased.push(e["image"].as_str().unwrap().to_string());
        }
    }
    rebased.sort();
    let mut want = images.clone();
    want.sort();
    assert_eq!(
        rebased, want,
        "each image rebased exactly once by the pods together"
    );
    // A retried pod: nothing left to do, nothing written.
    let mark = reg.log_mark();
    let r = pod_run(0);
    assert_eq!(r.code(), 0, "{r}");
    assert_eq!(r.json()["rebased"], 0, "{r}");
    assert_eq!(writes(&reg.requests_since(mark)), Vec::<&String>::new());
}
