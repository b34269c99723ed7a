//! The config 3-way merge: what a rebuild on the new base would have produced.
//!
//! A value the image inherited unchanged from the old base follows the base (takes the new
//! base's value, or disappears if the new base dropped it); a value the image set or changed is
//! the image's own and is kept. Everything else in the config is left exactly as it was.

use serde_json::{Map, Value};

/// Fields of the container config (`config` object) that an image inherits whole from its base.
const INHERITED_FIELDS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "User",
    "WorkingDir",
    "StopSignal",
    "ExposedPorts",
    "Volumes",
    "Healthcheck",
    "Shell",
];

/// Top-level config fields that describe the base's OS build (Windows updates change these).
const INHERITED_TOP_LEVEL: &[&str] = &["os.version", "os.features"];

/// Merges `image`'s config with the base change `old` → `new` (all three are whole config
/// objects). Returns the merged config and one line per change, in a stable order.
pub fn merge(
    image: &Map<String, Value>,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> (Map<String, Value>, Vec<String>) {
    let mut out = image.clone();
    let mut changes = Vec::new();

    for field in INHERITED_TOP_LEVEL {
        merge_whole(
            &mut out,
            field,
            old.get(*field),
            new.get(*field),
            "",
            &mut changes,
        );
    }

    let empty = Map::new();
    let old_cc = container_config(old).unwrap_or(&empty);
    let new_cc = container_config(new).unwrap_or(&empty);
    let mut cc = container_config(image).cloned().unwrap_or_default();
    let had_cc = image.get("config").is_some_and(Value::is_object);

    merge_env(&mut cc, old_cc, new_cc, &mut changes);
    merge_labels(&mut cc, old_cc, new_cc, &mut changes);
    for field in INHERITED_FIELDS {
        merge_whole(
            &mut cc,
            field,
            old_cc.get(*field),
            new_cc.get(*field),
            "config.",
            &mut changes,
        );
    }
    if had_cc || !cc.is_empty() {
        out.insert("config".into(), Value::Object(cc));
    }
    (out, changes)
}

fn container_config(config: &Map<String, Value>) -> Option<&Map<String, Value>> {
    config.get("config").and_then(Value::as_object)
}

/// `null` and absent mean the same thing in a config (Docker writes `"Cmd": null`).
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn merge_whole(
    target: &mut Map<String, Value>,
    field: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    prefix: &str,
    changes: &mut Vec<String>,
) {
    let mine = present(target.get(field));
    let (old, new) = (present(old), present(new));
    if mine != old || old == new {
        return; // the image's own value, or the base did not change it
    }
    let before = show(mine);
    match new {
        Some(v) => {
            target.insert(field.to_string(), v.clone());
        }
        None => {
            target.remove(field);
        }
    }
    changes.push(format!("{prefix}{field}: {before} -> {}", show(new)));
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(unset)".to_string(), |v| v.to_string())
}

/// `NAME=value` entries, in order; an entry without `=` is a name with a null value.
fn env_pairs(cc: &Map<String, Value>) -> Vec<(String, Value)> {
    cc.get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
                    None => (e.to_string(), Value::Null),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn merge_env(
    cc: &mut Map<String, Value>,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    changes: &mut Vec<String>,
) {
    let (keyed, old, new) = (env_pairs(cc), env_pairs(old), env_pairs(new));
    let merged = merge_keyed(&keyed, &old, &new, "Env", changes);
    if merged == keyed {
        return;
    }
    let env: Vec<Value> = merged
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(v) => Value::String(format!("{k}={v}")),
            _ => Value::String(k),
        })
        .collect();
    cc.insert("Env".into(), Value::Array(env));
}

fn merge_labels(
    cc: &mut Map<String, Value>,
    old: &Map<String, Value>,
    new: &Map<String, Value>,
    changes: &mut Vec<String>,
) {
    let pairs = |m: &Map<String, Value>| -> Vec<(String, Value)> {
        m.get("Labels")
            .and_then(Value::as_object)
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let mine = pairs(cc);
    let merged = merge_keyed(&mine, &pairs(old), &pairs(new), "Labels", changes);
    if merged == mine {
        return;
    }
    let labels: Map<String, Value> = merged.into_iter().collect();
    cc.insert("Labels".into(), Value::Object(labels));
}

/// The keyed 3-way merge shared by Env (by variable name) and Labels (by key).
/// Order: the image's order, then keys new in the new base, in the new base's order.
fn merge_keyed(
    mine: &[(String, Value)],
    old: &[(String, Value)],
    new: &[(String, Value)],
    what: &str,
    changes: &mut Vec<String>,
) -> Vec<(String, Value)> {
    let get = |list: &[(String, Value)], k: &str| {
        list.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::with_capacity(mine.len());
    for (k, v) in mine {
        let inherited = get(old, k).as_ref() == Some(v);
        match (inherited, get(new, k)) {
            (true, Some(nv)) => {
                if &nv != v {
                    changes.push(format!("{what}.{k}: {v} -> {nv}"));
                }
                out.push((k.clone(), nv));
            }
            (true, None) => changes.push(format!("{what}.{k}: {v} -> (unset)")),
            (false, _) => out.push((k.clone(), v.clone())),
        }
    }
    for (k, nv) in new {
        if get(old, k).is_none() && get(mine, k).is_none() {
            changes.push(format!("{what}.{k}: (unset) -> {nv}"));
            out.push((k.clone(), nv.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn cfg(env: &[&str], labels: Value, cmd: Value) -> Map<String, Value> {
        obj(
            json!({"architecture":"amd64","os":"linux","config":{"Env":env,"Labels":labels,"Cmd":cmd}}),
        )
    }

    #[test]
    fn inherited_env_follows_the_base_and_own_values_stay() {
        let old = cfg(
            &["PATH=/bin", "JAVA_HOME=/jdk1", "GONE=1"],
            json!({}),
            json!(null),
        );
        let new = cfg(
            &["PATH=/bin", "JAVA_HOME=/jdk2", "NEWVAR=x"],
            json!({}),
            json!(null),
        );
        let img = cfg(
            &["PATH=/app/bin:/bin", "JAVA_HOME=/jdk1", "GONE=1", "APP=1"],
            json!({}),
            json!(null),
        );
        let (out, changes) = merge(&img, &old, &new);
        assert_eq!(
            out["config"]["Env"],
            json!(["PATH=/app/bin:/bin", "JAVA_HOME=/jdk2", "APP=1", "NEWVAR=x"])
        );
        assert_eq!(
            changes,
            vec![
                "Env.JAVA_HOME: \"/jdk1\" -> \"/jdk2\"",
                "Env.GONE: \"1\" -> (unset)",
                "Env.NEWVAR: (unset) -> \"x\""
            ]
        );
    }

    #[test]
    fn labels_merge_by_key_in_stable_order() {
        let old = cfg(&[], json!({"base":"1","vendor":"a"}), json!(null));
        let new = cfg(
            &[],
            json!({"base":"2","added":"y","vendor":"a"}),
            json!(null),
        );
        let img = cfg(
            &[],
            json!({"app":"x","base":"1","vendor":"mine"}),
            json!(null),
        );
        let (out, _) = merge(&img, &old, &new);
        let keys: Vec<_> = out["config"]["Labels"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["app", "base", "vendor", "added"]);
        assert_eq!(out["config"]["Labels"]["base"], "2");
        assert_eq!(out["config"]["Labels"]["vendor"], "mine");
    }

    #[test]
    fn whole_fields_follow_the_base_only_when_inherited() {
        let old = cfg(&[], json!({}), json!(["/bin/sh"]));
        let new = cfg(&[], json!({}), json!(["/bin/bash"]));
        let inherited = cfg(&[], json!({}), json!(["/bin/sh"]));
        let own = cfg(&[], json!({}), json!(["/app"]));
        assert_eq!(
            merge(&inherited, &old, &new).0["config"]["Cmd"],
            json!(["/bin/bash"])
        );
        assert_eq!(merge(&own, &old, &new).0["config"]["Cmd"], json!(["/app"]));
    }

    #[test]
    fn a_field_the_new_base_dropped_disappears_and_one_it_added_appears() {
        let old = obj(json!({"config":{"User":"base","WorkingDir":"/w"}}));
        let new = obj(json!({"config":{"StopSignal":"SIGINT","WorkingDir":"/w"}}));
        let img = obj(json!({"config":{"User":"base","WorkingDir":"/w"}}));
        let (out, changes) = merge(&img, &old, &new);
        assert_eq!(
            out["config"],
            json!({"WorkingDir":"/w","StopSignal":"SIGINT"})
        );
        assert_eq!(changes.len(), 2);
    }

    #[test]
    fn unknown_fields_and_created_survive_and_same_base_changes_nothing() {
        let img = obj(
            json!({"created":"2020-01-01T00:00:00Z","author":"me","x-vendor":{"a":1},
            "config":{"Env":["A=1"],"ArgsEscaped":true,"Healthcheck":{"Test":["CMD","true"]}}}),
        );
        let base = obj(json!({"config":{"Env":["A=1"]}}));
        let (out, changes) = merge(&img, &base, &base);
        assert_eq!(out, img);
        assert!(changes.is_empty());
    }

    #[test]
    fn windows_os_version_follows_the_base() {
        let old = obj(json!({"os":"windows","os.version":"10.0.17763.1"}));
        let new = obj(json!({"os":"windows","os.version":"10.0.17763.2"}));
        let img = obj(json!({"os":"windows","os.version":"10.0.17763.1","config":{}}));
        assert_eq!(merge(&img, &old, &new).0["os.version"], "10.0.17763.2");
    }
}
