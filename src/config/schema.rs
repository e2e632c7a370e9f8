//! The JSON Schema of the config file, generated from the serde types that parse it
//! ([`super::raw`]), so the schema cannot drift from what `check-config` accepts.
//!
//! It checks the file's shape (keys, types, enums, required keys). What only the exporter can
//! check (a JSONPath that parses, a preset's forbidden keys, duplicate targets) stays with
//! `check-config`.

use super::raw::RawConfig;

/// The schema as pretty-printed JSON, draft-07 (what yaml-language-server and Helm's
/// values.schema.json speak), with a title.
pub fn json() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<RawConfig>()).expect("a schema serialises");
    // `key: null` is no use in a config file (and a duration must be a string): no null types.
    strip_null(&mut schema);
    if let Some(o) = schema.as_object_mut() {
        // serde's `default` makes the key optional to serde; the file still needs targets.
        o.insert("required".into(), serde_json::json!(["targets"]));
        o.insert("title".into(), "stallwatch config file".into());
        o.insert(
            "description".into(),
            "The stallwatch config file: what to watch and when a stuck object counts as Stalled (docs/configuration.md).".into(),
        );
    }
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema serialises");
    s.push('\n');
    s
}

/// Drops what `Option` adds: `anyOf: [X, {type: null}]` becomes X, `type: [T, "null"]` T, and
/// `default: null` goes.
fn strip_null(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(o) => {
            if o.get("default").is_some_and(Value::is_null) {
                o.remove("default");
            }
            if let Some(Value::Array(types)) = o.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let t = types.remove(0);
                    o.insert("type".into(), t);
                }
            }
            let null = serde_json::json!({"type": "null"});
            if let Some(Value::Array(any)) = o.get("anyOf")
                && any.len() == 2
                && any[1] == null
                && let Some(Value::Object(inner)) = any.first().cloned()
            {
                o.remove("anyOf");
                for (k, x) in inner {
                    o.entry(k).or_insert(x);
                }
            }
            o.values_mut().for_each(strip_null);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_null),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn schema() -> Value {
        serde_json::from_str(&json()).unwrap()
    }

    fn def<'a>(s: &'a Value, name: &str) -> &'a Value {
        &s["definitions"][name]
    }

    #[test]
    fn top_level_is_strict_and_requires_targets() {
        let s = schema();
        assert_eq!(s["type"], "object");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(s["required"], serde_json::json!(["targets"]));
        let keys: Vec<&str> = s["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["resync", "stalledAfter", "watchTimeout", "targets", "context"] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        assert_eq!(s["properties"]["targets"]["minItems"], 1);
        assert!(!json().contains("null"), "no null types or defaults");
    }

    #[test]
    fn every_mapping_is_strict_and_presets_are_an_enum() {
        let s = schema();
        assert_eq!(s["$schema"], "http://json-schema.org/draft-07/schema#");
        for (name, d) in s["definitions"].as_object().unwrap() {
            if d["type"] == "object" {
                assert_eq!(d["additionalProperties"], false, "{name} accepts unknown keys");
            }
        }
        let t = def(&s, "Target");
        for k in
            ["preset", "name", "resource", "namespaces", "images", "controller", "events", "overriddenBy"]
        {
            assert!(t["properties"].get(k).is_some(), "Target lacks {k}");
        }
        assert_eq!(def(&s, "Preset")["enum"], serde_json::json!(["kubearmor", "workloads", "conventions"]));
        assert_eq!(def(&s, "Resource")["required"], serde_json::json!(["version", "kind"]));
    }

    /// Every key of `v` is a property of `node` (following `$ref`s and arrays).
    fn unknown_keys(s: &Value, node: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
        let node = match node.get("$ref").and_then(Value::as_str) {
            Some(r) => &s["definitions"][r.trim_start_matches("#/definitions/")],
            None => node,
        };
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    match node["properties"].get(k) {
                        Some(child) => unknown_keys(s, child, x, &format!("{at}.{k}"), out),
                        None => out.push(format!("{at}.{k}")),
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    unknown_keys(s, &node["items"], x, &format!("{at}[{i}]"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_key_of_every_example_config_is_in_the_schema_and_a_typo_is_not() {
        let s = schema();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            crate::config::Config::parse(&text, "example").unwrap();
            let v: Value = serde_saphyr::from_str(&text).unwrap();
            let mut bad = Vec::new();
            unknown_keys(&s, &s, &v, "", &mut bad);
            assert!(bad.is_empty(), "{}: keys missing from the schema: {bad:?}", p.display());
            n += 1;
        }
        assert!(n >= 3, "only {n} example configs");
        let v: Value = serde_saphyr::from_str("targets: [{preset: workloads, namespacez: [a]}]\n").unwrap();
        let mut bad = Vec::new();
        unknown_keys(&s, &s, &v, "", &mut bad);
        assert_eq!(bad, [".targets[0].namespacez"]);
    }
}
