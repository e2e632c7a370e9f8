//! Extraction: one decoded object plus its target's rules → a compact fact record.
//!
//! This is pure code: no clock, no IO. Timing that depends on history (since when a phase
//! holds, when a generation was first seen) is the store's job; here we only read what the
//! object itself says.

use std::{borrow::Cow, sync::Arc};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    config::{ObservedGeneration, Target},
    ingest::{
        Interner,
        wire::{Meta, RawObject, opt_str},
    },
    model::{ObjectPath, time::parse_time},
};

/// What stallwatch keeps of one object for one target. Whole objects are never stored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetFacts {
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub phase: Option<Arc<str>>,
    pub conditions: Vec<ConditionFact>,
    /// Last write of the status subresource per field manager, Unix seconds.
    pub status_writes: Vec<(Arc<str>, f64)>,
    /// Latest write that was not to the status subresource (spec or metadata change).
    pub last_spec_write: Option<f64>,
    pub created: Option<f64>,
    pub deleting: bool,
    /// The desired image of each of the target's image slots as the object states it
    /// (`None`: the field is empty or absent, so the slot's default applies).
    pub desired_images: Vec<Option<Box<str>>>,
}

/// One condition as the object states it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionFact {
    pub type_: Arc<str>,
    pub status: Arc<str>,
    pub reason: Arc<str>,
    pub last_transition: Option<f64>,
    pub observed_generation: Option<i64>,
}

impl TargetFacts {
    /// The most recent status write of any manager.
    pub fn last_status_write(&self) -> Option<f64> {
        self.status_writes.iter().map(|(_, t)| *t).reduce(f64::max)
    }
}

/// The parsed parts of an object that the target's paths read. Parsing is limited to the
/// top-level fields the paths start in; a path without a single root parses everything.
struct PathDoc(Value);

impl PathDoc {
    fn new(obj: &RawObject, paths: &[&ObjectPath]) -> PathDoc {
        let mut map = Map::new();
        let all = paths.iter().any(|p| p.root().is_none());
        for (k, raw) in &obj.fields {
            let wanted = all || paths.iter().any(|p| p.root() == Some(&**k));
            if wanted && let Ok(v) = serde_json::from_str::<Value>(raw.get()) {
                map.insert(k.to_string(), v);
            }
        }
        if all {
            map.insert("metadata".into(), meta_value(&obj.meta));
        }
        PathDoc(Value::Object(map))
    }
}

fn meta_value(m: &Meta) -> Value {
    serde_json::json!({
        "name": m.name, "namespace": m.namespace, "uid": m.uid,
        "resourceVersion": m.resource_version, "generation": m.generation,
    })
}

/// The facts `target`'s rules read from `obj`.
pub fn extract(target: &Target, obj: &RawObject, strings: &mut Interner) -> TargetFacts {
    let (status_writes, last_spec_write) = writes(&obj.meta, strings);
    let base = TargetFacts {
        generation: obj.meta.generation,
        status_writes,
        last_spec_write,
        created: obj.meta.created,
        deleting: obj.meta.deleting,
        ..Default::default()
    };
    // The status decoded in the event's single read, else from its raw field; a status that
    // does not fit the typed shape falls back to the JSONPath evaluation.
    let typed = match (conventional(target), &obj.typed.status) {
        (false, _) => None,
        (true, Some(st)) => Some(Cow::Borrowed(st)),
        (true, None) => match obj.field("status") {
            None => Some(Cow::Owned(ConventionalStatus::default())),
            Some(raw) => serde_json::from_str::<ConventionalStatus>(raw.get()).ok().map(Cow::Owned),
        },
    };
    let mut facts = match typed {
        Some(st) => from_conventional(target, &st, base, strings),
        None => from_paths(target, obj, base, strings),
    };
    if !target.images.is_empty() {
        let paths: Vec<&ObjectPath> = target.images.iter().map(|i| &i.desired).collect();
        let doc = PathDoc::new(obj, &paths);
        facts.desired_images = paths
            .iter()
            .map(|p| {
                p.first(&doc.0)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Box::from)
            })
            .collect();
    }
    one_per_type(&mut facts.conditions);
    facts
}

/// Conditions are a map by type (`listType=map`, `listMapKey=type`); an object that repeats a
/// type anyway yields one fact per type, the last one listed, in the place of the first, so no
/// series is emitted twice. In place: the common case (no repeats) moves nothing.
fn one_per_type(conditions: &mut Vec<ConditionFact>) {
    let mut kept = 0;
    for i in 0..conditions.len() {
        match (0..kept).find(|&j| conditions[j].type_ == conditions[i].type_) {
            Some(j) => conditions.swap(j, i),
            None => {
                conditions.swap(kept, i);
                kept += 1;
            }
        }
    }
    conditions.truncate(kept);
}

/// Whether every path the target reads is a standard `status` field, so that status can be
/// decoded into a small typed struct instead of a DOM (the common case, and the fast one).
pub(crate) fn conventional(t: &Target) -> bool {
    t.conditions.path.source() == "$.status.conditions"
        && t.phase.as_ref().is_none_or(|p| p.path.source() == "$.status.phase")
        && match &t.observed_generation {
            ObservedGeneration::Conventional | ObservedGeneration::Absent => true,
            ObservedGeneration::Path(p) => p.source() == "$.status.observedGeneration",
        }
}

/// The standard status fields, borrowed from the event text.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConventionalStatus<'a> {
    #[serde(default)]
    observed_generation: Option<i64>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    phase: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    conditions: Option<Vec<ConventionalCondition<'a>>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConventionalCondition<'a> {
    #[serde(rename = "type", default, borrow)]
    type_: Cow<'a, str>,
    #[serde(default, borrow)]
    status: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    reason: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    last_transition_time: Option<Cow<'a, str>>,
    #[serde(default)]
    observed_generation: Option<i64>,
}

fn from_conventional(
    target: &Target,
    st: &ConventionalStatus,
    mut f: TargetFacts,
    strings: &mut Interner,
) -> TargetFacts {
    f.conditions = st
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|c| !c.type_.is_empty())
        .map(|c| ConditionFact {
            type_: strings.get(&c.type_),
            status: strings.get(&c.status),
            reason: strings.get(c.reason.as_deref().unwrap_or("")),
            last_transition: c.last_transition_time.as_deref().and_then(parse_time),
            observed_generation: c.observed_generation,
        })
        .collect();
    f.observed_generation = match target.observed_generation {
        ObservedGeneration::Absent => None,
        ObservedGeneration::Path(_) => st.observed_generation,
        ObservedGeneration::Conventional => {
            st.observed_generation.or_else(|| conditions_generation(&f.conditions, &target.conditions.ready))
        }
    };
    f.phase =
        target.phase.as_ref().and(st.phase.as_deref()).filter(|p| !p.is_empty()).map(|p| strings.get(p));
    f
}

/// The general case: evaluate the configured JSONPaths on the parts of the object they read.
fn from_paths(target: &Target, obj: &RawObject, mut f: TargetFacts, strings: &mut Interner) -> TargetFacts {
    let mut paths: Vec<&ObjectPath> = vec![&target.conditions.path];
    if let ObservedGeneration::Path(p) = &target.observed_generation {
        paths.push(p);
    }
    if let Some(phase) = &target.phase {
        paths.push(&phase.path);
    }
    // The conventional observedGeneration lives in status; make sure status is parsed.
    let status_path;
    if matches!(target.observed_generation, ObservedGeneration::Conventional) {
        status_path = ObjectPath::parse("$.status.observedGeneration").expect("static path");
        paths.push(&status_path);
    }
    let doc = PathDoc::new(obj, &paths);

    f.conditions = conditions(&doc.0, &target.conditions.path, strings);
    f.observed_generation = match &target.observed_generation {
        ObservedGeneration::Absent => None,
        ObservedGeneration::Path(p) => p.first(&doc.0).and_then(as_i64),
        ObservedGeneration::Conventional => doc
            .0
            .get("status")
            .and_then(|s| s.get("observedGeneration"))
            .and_then(as_i64)
            .or_else(|| conditions_generation(&f.conditions, &target.conditions.ready)),
    };
    f.phase = target
        .phase
        .as_ref()
        .and_then(|p| p.path.first(&doc.0))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|p| strings.get(p));
    f
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn conditions(doc: &Value, path: &ObjectPath, strings: &mut Interner) -> Vec<ConditionFact> {
    let Some(Value::Array(items)) = path.first(doc) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            let type_ = s("type");
            (!type_.is_empty()).then(|| ConditionFact {
                type_: strings.get(type_),
                status: strings.get(s("status")),
                reason: strings.get(s("reason")),
                last_transition: c.get("lastTransitionTime").and_then(Value::as_str).and_then(parse_time),
                observed_generation: c.get("observedGeneration").and_then(as_i64),
            })
        })
        .collect()
}

/// kstatus fallback: the ready condition's observedGeneration, else the highest of any.
fn conditions_generation(conds: &[ConditionFact], ready: &[String]) -> Option<i64> {
    conds
        .iter()
        .find(|c| ready.iter().any(|r| **r == *c.type_))
        .and_then(|c| c.observed_generation)
        .or_else(|| conds.iter().filter_map(|c| c.observed_generation).max())
}

/// Status writes per manager (their names shared), and the latest non-status write.
pub(crate) fn writes(meta: &Meta, strings: &mut Interner) -> (Vec<(Arc<str>, f64)>, Option<f64>) {
    let status = meta.writes.status.iter().map(|(m, t)| (strings.get(m), *t)).collect();
    (status, meta.writes.other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn target(yaml_rules: &str) -> Target {
        let text =
            format!("targets:\n  - name: t\n    resource: {{group: g, version: v1, kind: K}}\n{yaml_rules}");
        Config::parse(&text, "t").unwrap().targets.remove(0)
    }

    fn ex(t: &Target, o: &RawObject) -> TargetFacts {
        extract(t, o, &mut Interner::default())
    }

    fn obj(json: &str) -> RawObject<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_repeated_condition_type_is_one_fact() {
        for rules in ["", "    conditions: {path: $.status.conds}\n"] {
            let field = if rules.is_empty() { "conditions" } else { "conds" };
            let text = format!(
                r#"{{"metadata":{{"name":"a"}},"status":{{"{field}":[
                {{"type":"Ready","status":"False","reason":"Old"}},{{"type":"Synced","status":"True"}},
                {{"type":"Ready","status":"True","reason":"New"}}]}}}}"#
            );
            let f = ex(&target(rules), &obj(&text));
            let types: Vec<(&str, &str)> = f.conditions.iter().map(|c| (&*c.type_, &*c.reason)).collect();
            assert_eq!(types, [("Ready", "New"), ("Synced", "")], "{rules}");
        }
    }

    #[test]
    fn observed_generation_from_status() {
        let f = ex(
            &target(""),
            &obj(r#"{"metadata":{"name":"a","generation":4},"status":{"observedGeneration":3}}"#),
        );
        assert_eq!((f.generation, f.observed_generation), (Some(4), Some(3)));
    }

    #[test]
    fn observed_generation_from_ready_condition_then_highest() {
        let t = target("");
        let f = ex(
            &t,
            &obj(r#"{"metadata":{"generation":5},"status":{"conditions":[
                {"type":"Synced","status":"True","observedGeneration":5},
                {"type":"Ready","status":"False","observedGeneration":4,"reason":"Wait","lastTransitionTime":"2024-01-01T00:00:10Z"}]}}"#),
        );
        assert_eq!(f.observed_generation, Some(4));
        assert_eq!(f.conditions[1].reason.as_ref(), "Wait");
        assert_eq!(f.conditions[1].last_transition, Some(1704067210.0));
        let f = ex(
            &t,
            &obj(
                r#"{"metadata":{"generation":5},"status":{"conditions":[{"type":"Synced","status":"True","observedGeneration":5}]}}"#,
            ),
        );
        assert_eq!(f.observed_generation, Some(5));
    }

    #[test]
    fn observed_generation_absent_is_none_not_error() {
        let f = ex(&target(""), &obj(r#"{"metadata":{"generation":2},"status":{"phase":"x"}}"#));
        assert_eq!(f.observed_generation, None);
        let f = ex(&target(""), &obj(r#"{"metadata":{"generation":2}}"#));
        assert_eq!(f.observed_generation, None);
    }

    #[test]
    fn observed_generation_from_configured_path_in_spec() {
        let f = ex(
            &target("    observedGeneration: $.spec.seen\n"),
            &obj(r#"{"metadata":{"generation":2},"spec":{"seen":"2"},"status":{"observedGeneration":1}}"#),
        );
        assert_eq!(f.observed_generation, Some(2));
    }

    #[test]
    fn phase_and_status_writes() {
        let f = ex(
            &target("    phase: {path: $.status.phase, ready: [Running]}\n"),
            &obj(r#"{"metadata":{"creationTimestamp":"2024-01-01T00:00:00Z","managedFields":[
                {"manager":"op","operation":"Update","subresource":"status","time":"2024-01-01T00:01:00Z"},
                {"manager":"op","operation":"Update","subresource":"status","time":"2024-01-01T00:00:30Z"},
                {"manager":"kubectl","operation":"Update","time":"2024-01-01T00:00:20Z"}]},
                "status":{"phase":"Pending"}}"#),
        );
        assert_eq!(f.phase.as_deref(), Some("Pending"));
        assert_eq!(f.status_writes, vec![(Arc::from("op"), 1704067260.0)]);
        assert_eq!(f.last_spec_write, Some(1704067220.0));
        assert_eq!(f.created, Some(1704067200.0));
    }

    #[test]
    fn malformed_values_are_absent() {
        let f = ex(
            &target("    phase: {path: $.status.phase}\n"),
            &obj(
                r#"{"metadata":{"creationTimestamp":"yesterday"},"status":{"phase":7,"observedGeneration":[1],
                "conditions":"nope"}}"#,
            ),
        );
        assert_eq!(f.phase, None);
        assert_eq!(f.observed_generation, None);
        assert!(f.conditions.is_empty());
        assert_eq!(f.created, None);
    }

    #[test]
    fn typed_fast_path_equals_jsonpath_path() {
        let o = obj(
            r#"{"metadata":{"generation":5,"creationTimestamp":"2024-01-01T00:00:00Z"},"status":{"phase":"Pending","observedGeneration":4,
            "conditions":[{"type":"Ready","status":"False","reason":"Wait","message":"m","lastTransitionTime":"2024-01-01T00:00:10Z"},
            {"status":"True"}]}}"#,
        );
        let t = target("    phase: {path: $.status.phase}\n");
        assert!(conventional(&t));
        let (fast, slow) = (ex(&t, &o), from_paths(&t, &o, ex(&t, &o), &mut Interner::default()));
        assert_eq!(fast, slow);
        assert_eq!(fast.observed_generation, Some(4));
        assert_eq!(fast.conditions.len(), 1);
        // Wrong types defeat the typed decode; the JSONPath path then reads what it can.
        let bad =
            obj(r#"{"metadata":{},"status":{"phase":"Running","observedGeneration":"x","conditions":{}}}"#);
        let f = ex(&t, &bad);
        assert_eq!(f.phase.as_deref(), Some("Running"));
        assert_eq!(f.observed_generation, None);
    }

    #[test]
    fn wildcard_paths_see_the_whole_object() {
        let f = ex(
            &target("    phase: {path: \"$..phase\"}\n"),
            &obj(r#"{"metadata":{"name":"a"},"other":{"phase":"Deep"}}"#),
        );
        assert_eq!(f.phase.as_deref(), Some("Deep"));
    }
}
