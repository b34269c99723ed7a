//! The `--json` reports are an interface (CI pipelines parse them): every report the binary
//! prints validates against its schema in docs/schema/, carries `schemaVersion`, and every
//! field the schemas name is documented in docs/json.md.

use crate::util::*;
use serde_json::Value;

fn schema(name: &str) -> Value {
    let path = repo_root().join(format!("docs/schema/{name}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs ocipatch (exit code `code`) and validates its stdout against `docs/schema/{name}`.
fn validated(name: &str, code: i32, args: &[&str]) -> Value {
    let (got, out, err) = outcome(args);
    assert_eq!(got, code, "ocipatch {args:?}\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["schemaVersion"], "1", "{out}");
    let schema = schema(name);
    assert!(
        jsonschema::meta::is_valid(&schema),
        "docs/schema/{name}.schema.json is not a valid JSON Schema"
    );
    let validator = jsonschema::validator_for(&schema).expect("compile schema");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "ocipatch {args:?} does not match docs/schema/{name}.schema.json:\n{}\n{out}",
        errors.join("\n")
    );
    report
}

#[test]
fn every_report_validates_against_its_schema() {
    let s = scenario();
    let (app, v1, v2) = (s.oci("app"), s.oci("base-v1"), s.oci("base-v2"));
    let out = s.oci("out");
    let r = validated(
        "rebase",
        0,
        &[
            "rebase", &app, "--from", &v1, "--onto", &v2, "-o", &out, "--json",
        ],
    );
    assert!(r["safety"].is_array(), "the scan ran: {r}");
    // with the documents: one SBOM per platform, then the provenance
    let r = validated(
        "rebase",
        0,
        &[
            "rebase",
            &app,
            "--from",
            &v1,
            "--onto",
            &v2,
            "-o",
            &s.oci("attested"),
            "--json",
            "--sbom",
            "spdx",
            "--provenance",
        ],
    );
    assert_eq!(r["attestations"].as_array().map(Vec::len), Some(2), "{r}");
    // a warning, and the dry-run form
    let r = validated(
        "rebase",
        0,
        &[
            "rebase",
            &app,
            "--from",
            &v1,
            "--onto",
            &app,
            "-o",
            &s.oci("twice"),
            "--json",
            "--dry-run",
        ],
    );
    assert!(r["warnings"].is_array(), "{r}");

    // a fleet with one failure (base-v2 is not built on base-v1... it is; app-less tag fails)
    let pattern = format!("oci:{}:fleet-{{index}}", s.layout.dir.display());
    let r = validated(
        "fleet",
        1,
        &[
            "rebase",
            "--from",
            &v1,
            "--onto",
            &v2,
            "-o",
            &pattern,
            &app,
            &s.oci("nope"),
            "--json",
            "--sbom",
            "cyclonedx",
        ],
    );
    assert!(
        r["images"][0]["report"]["attestations"][0]["digest"].is_string(),
        "{r}"
    );
    assert_eq!(
        (r["rebased"].as_u64(), r["failed"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );

    validated("verify", 0, &["verify", &out, "--json"]);
    validated("inspect", 0, &["inspect", &out, "--json"]);
    let r = validated("inspect", 0, &["inspect", &app, "--base", &v2, "--json"]);
    assert!(r["platforms"][0]["base"].is_object(), "{r}");
    validated("check", 3, &["check", &app, "--base", &v2, "--json"]);
    validated("check", 0, &["check", &out, "--base", &v2, "--json"]);
    let r = validated(
        "check-fleet",
        3,
        &["check", &app, &out, "--base", &v2, "--json"],
    );
    assert_eq!(
        (r["current"].as_u64(), r["outdated"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );

    let patch = s.path("patch");
    std::fs::create_dir_all(patch.join("etc")).unwrap();
    std::fs::write(patch.join("etc/motd"), "patched\n").unwrap();
    let patch = patch.display().to_string();
    validated(
        "append",
        0,
        &[
            "append",
            &out,
            "--layer",
            &patch,
            "-o",
            &s.oci("patched"),
            "--json",
            "--sbom",
            "cyclonedx",
            "--provenance",
        ],
    );
}

#[test]
fn a_corrupt_image_report_validates() {
    let s = scenario();
    // Corrupt the app's top layer in place: verify reports it as a problem.
    let manifest = s.layout.read_json(&s.layout.tagged("app").unwrap());
    let top = manifest["layers"][1]["digest"].as_str().unwrap();
    let path = s.layout.blob_path(top);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let r = validated("verify", 1, &["verify", &s.oci("app"), "--json"]);
    assert!(!r["problems"].as_array().unwrap().is_empty(), "{r}");
}

#[test]
fn a_package_database_report_validates() {
    const STATUS: &str = include_str!("../../testdata/pkgdb/dpkg-status");
    let s = scenario();
    let v1 = Image::new(
        vec![Layer::files(&[("var/lib/dpkg/status", STATUS.as_bytes())])],
        &["debootstrap"],
    );
    let upgraded = STATUS.replace("Version: 2.6.1\n", "Version: 2.6.2\n");
    assert_ne!(upgraded, STATUS, "the fixture has apt 2.6.1");
    let v2 = Image::on(
        &v1,
        vec![Layer::files(&[(
            "var/lib/dpkg/status",
            upgraded.as_bytes(),
        )])],
        &["RUN apt-get upgrade"],
    );
    let extra = "Package: zz-app\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\nDescription: the app\n\n";
    let app = Image::on(
        &v1,
        vec![Layer::files(&[
            ("usr/bin/app", b"app"),
            ("var/lib/dpkg/status", format!("{STATUS}{extra}").as_bytes()),
        ])],
        &["RUN apt-get install -y zz-app"],
    );
    s.layout.add("deb-v1", &v1);
    s.layout.add("deb-v2", &v2);
    s.layout.add("deb-app", &app);
    let cache = s.path("cache").display().to_string();
    let r = validated(
        "rebase",
        0,
        &[
            "rebase",
            &s.oci("deb-app"),
            "--from",
            &s.oci("deb-v1"),
            "--onto",
            &s.oci("deb-v2"),
            "-o",
            &s.oci("deb-out"),
            "--cache-dir",
            &cache,
            "--json",
        ],
    );
    let db = &r["platforms"][0]["package_db"];
    assert!(!db["changes"].as_array().unwrap().is_empty(), "{r}");
    assert!(db["layer"].is_object(), "{r}");
}

#[test]
fn a_failure_with_json_prints_an_error_report_that_validates() {
    let s = scenario();
    // A tag the layout does not have: no report, the error object instead.
    let r = validated("error", 1, &["inspect", &s.oci("nope"), "--json"]);
    assert_eq!(r["error_kind"], "not-found", "{r}");
    // A usage error found after parsing (a --platform that is not OS/ARCH): exit 2.
    let patch = s.path("patch");
    std::fs::create_dir_all(&patch).unwrap();
    std::fs::write(patch.join("motd"), "patched\n").unwrap();
    let r = validated(
        "error",
        2,
        &[
            "append",
            "scratch",
            "--platform",
            "linux",
            "--layer",
            &patch.display().to_string(),
            "-o",
            &s.oci("scratch"),
            "--json",
        ],
    );
    assert_eq!(r["error_kind"], "usage", "{r}");
    let (app, v1, v2) = (s.oci("app"), s.oci("base-v1"), s.oci("base-v2"));
    // The fleet and verify reports carry the kinds of their failures.
    let pattern = format!("oci:{}:fleet-{{index}}", s.layout.dir.display());
    let r = validated(
        "fleet",
        1,
        &[
            "rebase",
            "--from",
            &v1,
            "--onto",
            &v2,
            "-o",
            &pattern,
            &app,
            &s.oci("nope"),
            "--json",
        ],
    );
    assert_eq!(r["images"][1]["error_kind"], "not-found", "{r}");
    assert!(r["images"][0].get("error_kind").is_none(), "{r}");
}

/// Every property any schema names appears in docs/json.md as `name`.
#[test]
fn every_schema_field_is_documented() {
    let doc = std::fs::read_to_string(repo_root().join("docs/json.md")).unwrap();
    fn fields(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                m.values().for_each(|v| fields(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| fields(v, out)),
            _ => {}
        }
    }
    for name in [
        "rebase",
        "fleet",
        "append",
        "verify",
        "inspect",
        "check",
        "check-fleet",
        "error",
    ] {
        let mut names = Vec::new();
        fields(&schema(name), &mut names);
        for f in names {
            assert!(
                doc.contains(&format!("`{f}`")),
                "docs/json.md does not document `{f}` (docs/schema/{name}.schema.json)"
            );
        }
        assert!(
            doc.contains(&format!("schema/{name}.schema.json")),
            "{name}"
        );
    }
}

/// Each field table of docs/json.md (under a `#### \`name\`` heading: a report, a shared object
/// of the schemas' `$defs`, or a path into one such as `inspect.platforms[].base`) lists exactly
/// the properties its schema gives that object: no field missing, none that is not one (a type
/// written as a field), so the next drift fails here with the name of the table and the field.
#[test]
fn every_json_md_table_lists_exactly_its_schema_fields() {
    let doc = std::fs::read_to_string(repo_root().join("docs/json.md")).unwrap();
    let schemas: Vec<(&str, Value)> = [
        "rebase",
        "fleet",
        "append",
        "verify",
        "inspect",
        "check",
        "check-fleet",
        "error",
    ]
    .into_iter()
    .map(|n| (n, schema(n)))
    .collect();
    // An object's schema: `$ref`s into the same schema's `$defs` followed.
    fn follow<'a>(root: &'a Value, mut v: &'a Value) -> &'a Value {
        while let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/$defs/");
            v = &root["$defs"][name];
        }
        v
    }
    let resolve = |path: &str| -> Option<Vec<String>> {
        let mut segments = path.split('.');
        let first = segments.next()?;
        let (first, array) = match first.strip_suffix("[]") {
            Some(f) => (f, true),
            None => (first, false),
        };
        let (root, mut v) = schemas
            .iter()
            .find(|(n, _)| *n == first)
            .map(|(_, s)| (s, s))
            .or_else(|| {
                schemas
                    .iter()
                    .find(|(_, s)| s["$defs"].get(first).is_some())
                    .map(|(_, s)| (s, &s["$defs"][first]))
            })?;
        v = follow(root, v);
        if array {
            v = follow(root, &v["items"]);
        }
        for seg in segments {
            let (name, array) = match seg.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (seg, false),
            };
            v = follow(root, v["properties"].get(name)?);
            if array {
                v = follow(root, &v["items"]);
            }
        }
        Some(v["properties"].as_object()?.keys().cloned().collect())
    };
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut heading: Option<String> = None;
    let mut table: Vec<String> = Vec::new();
    let mut finish = |heading: &Option<String>, table: &mut Vec<String>| {
        if let Some(h) = heading {
            if !table.is_empty() {
                match resolve(h) {
                    None => problems.push(format!(
                        "docs/json.md table `{h}`: no such object in docs/schema/"
                    )),
                    Some(want) => {
                        checked += 1;
                        for f in table.iter().filter(|f| !want.contains(f)) {
                            problems.push(format!(
                                "docs/json.md table `{h}` lists `{f}`, which its schema does not have"
                            ));
                        }
                        for f in want.iter().filter(|f| !table.contains(f)) {
                            problems.push(format!(
                                "docs/json.md table `{h}` lacks `{f}`, which its schema has"
                            ));
                        }
                    }
                }
            }
        }
        table.clear();
    };
    for line in doc.lines() {
        if let Some(h) = line
            .strip_prefix("#### `")
            .and_then(|h| h.strip_suffix('`'))
        {
            finish(&heading, &mut table);
            heading = Some(h.to_string());
        } else if line.starts_with('#') {
            finish(&heading, &mut table);
            heading = None;
        } else if let Some(cell) = line.strip_prefix("| `") {
            if heading.is_some() {
                if let Some(name) = cell.split('`').next() {
                    table.push(name.to_string());
                }
            }
        }
    }
    finish(&heading, &mut table);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 20, "only {checked} tables found in docs/json.md");
}
