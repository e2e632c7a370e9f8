//! Single-read decoding of watch lines and list pages: the parts a watch's extraction reads (a
//! pod's spec, status, revision labels and owners; a custom resource's conventional status) are
//! decoded into their typed shapes while the event or list item is read, instead of being kept
//! as raw JSON and read a second time by the extraction. Everything else is skipped or kept raw
//! as before.
//!
//! The single read accepts only the form the API server writes (`type` before `object`, no
//! repeated keys, fields of the expected types). Anything else (a malformed pod spec, say) is
//! decoded again the general way ([`RawObject`]'s own `Deserialize`), so what an odd event
//! yields, facts or an error, is exactly what it yielded before this fast path existed.

use std::{borrow::Cow, fmt, sync::Arc};

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::{
    config::Target,
    ingest::{
        builtin::shapes::{OwnerRef, PodOwnSpec, PodStatus, RevisionLabels},
        target::{ConventionalStatus, conventional},
        wire::{ApiStatus, BookmarkObject, List, Meta, RawObject, Text, WatchLine, opt_time, present},
    },
    model::Kind,
};

/// What one watch's events are decoded into during their single read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    /// Decode a pod's spec, status, revision labels and owner references into their shapes
    /// (a pod watch that only the built-in pod facts read).
    pub pod: bool,
    /// Decode `status` into the conventional shape (every target of the watch reads only the
    /// standard status fields, and no image path reads status).
    pub conventional_status: bool,
    /// Keep the other top-level fields raw (a path reads them); else they are only skipped.
    pub keep_raw: bool,
}

impl Plan {
    /// Every field other than metadata kept raw: [`RawObject`]'s own decode.
    pub const RAW: Plan = Plan { pod: false, conventional_status: false, keep_raw: true };

    /// The plan for a watch of `kind` (its built-in kind, if any) read by `targets`.
    pub fn new(kind: Option<Kind>, targets: &[Arc<Target>]) -> Plan {
        let status_unread_by_paths = || {
            targets.iter().flat_map(|t| &t.images).all(|i| !matches!(i.desired.root(), None | Some("status")))
        };
        let pod = kind == Some(Kind::Pod) && targets.is_empty();
        let conventional_status = kind.is_none()
            && !targets.is_empty()
            && targets.iter().all(|t| conventional(t))
            && status_unread_by_paths();
        if !pod && !conventional_status {
            return Plan::RAW;
        }
        // Only image paths read raw fields once status is typed: conventional targets read
        // status only, and pod watches have no targets.
        let keep_raw = targets.iter().any(|t| !t.images.is_empty());
        Plan { pod, conventional_status, keep_raw }
    }
}

/// The typed parts of an object decoded during its single read (see [`Plan`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Typed<'a> {
    /// `Some` when the plan decoded status (`Some(default)` when the object has none).
    pub(crate) status: Option<ConventionalStatus<'a>>,
    /// `Some` when the plan decoded the pod's parts.
    pub(crate) pod: Option<Box<PodParts<'a>>>,
}

/// The parts of a pod its facts are made of, each its default when absent.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodParts<'a> {
    pub(crate) spec: PodOwnSpec<'a>,
    pub(crate) status: PodStatus<'a>,
    pub(crate) labels: RevisionLabels<'a>,
    pub(crate) owners: Vec<OwnerRef<'a>>,
}

/// Decodes one watch line, reading its bytes once where `plan` allows.
pub fn decode_line(line: &str, plan: Plan) -> serde_json::Result<WatchLine<RawObject<'_>>> {
    if plan != Plan::RAW {
        let mut de = serde_json::Deserializer::from_str(line);
        if let Ok(l) = LineSeed(plan).deserialize(&mut de)
            && de.end().is_ok()
        {
            return Ok(l);
        }
    }
    serde_json::from_str(line)
}

/// Decodes one page of a list response, reading each item once where `plan` allows: the same
/// single read as [`decode_line`], and the same fallback (a page with anything out of the
/// fast form, an item or the page itself, is decoded again the general way).
pub fn decode_list(body: &[u8], plan: Plan) -> serde_json::Result<List<RawObject<'_>>> {
    if plan != Plan::RAW {
        let mut de = serde_json::Deserializer::from_slice(body);
        if let Ok(l) = ListSeed(plan).deserialize(&mut de)
            && de.end().is_ok()
        {
            return Ok(l);
        }
    }
    serde_json::from_slice(body)
}

struct ListSeed(Plan);

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = List<RawObject<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = List<RawObject<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list with its items")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut metadata, mut items) = (None, None);
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match &*key {
                "metadata" if metadata.is_none() => metadata = Some(map.next_value()?),
                "items" if items.is_none() => items = Some(map.next_value_seed(ItemsSeed(self.0))?),
                "metadata" | "items" => return Err(A::Error::custom("a repeated field")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(List { metadata: metadata.unwrap_or_default(), items: items.unwrap_or_default() })
    }
}

/// A list's items, each read as [`ObjectSeed`] reads a watch event's object (`null` is none).
struct ItemsSeed(Plan);

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = Vec<RawObject<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed {
    type Value = Vec<RawObject<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(o) = seq.next_element_seed(ObjectSeed(self.0))? {
            items.push(o);
        }
        Ok(items)
    }
}

struct LineSeed(Plan);

impl<'de> DeserializeSeed<'de> for LineSeed {
    type Value = WatchLine<RawObject<'de>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed {
    type Value = WatchLine<RawObject<'de>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a watch event with `type` before `object`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut tag: Option<Cow<'de, str>> = None;
        let mut line = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match (&*key, &tag, &line) {
                ("type", None, None) => tag = Some(map.next_value::<Text>()?.0),
                ("object", Some(t), None) => {
                    let object = ObjectSeed(self.0);
                    line = Some(match &**t {
                        "ADDED" => WatchLine::Added(map.next_value_seed(object)?),
                        "MODIFIED" => WatchLine::Modified(map.next_value_seed(object)?),
                        "DELETED" => WatchLine::Deleted(map.next_value_seed(object)?),
                        "BOOKMARK" => WatchLine::Bookmark(map.next_value::<BookmarkObject>()?),
                        "ERROR" => WatchLine::Error(map.next_value::<ApiStatus>()?),
                        other => return Err(A::Error::custom(format_args!("unknown event type {other:?}"))),
                    })
                }
                _ => return Err(A::Error::custom("not the API server's event form")),
            }
        }
        line.ok_or_else(|| A::Error::missing_field("object"))
    }
}

struct ObjectSeed(Plan);

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = RawObject<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed {
    type Value = RawObject<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'de>, A::Error> {
        let plan = self.0;
        let mut meta: Option<Meta<'de>> = None;
        let mut fields = Vec::new();
        let mut typed = Typed::default();
        let mut pod = plan.pod.then(Box::<PodParts>::default);
        let (mut spec_seen, mut status_seen) = (false, false);
        let repeated = || A::Error::custom("a repeated field");
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match &*key {
                "metadata" if meta.is_none() => match pod.as_mut() {
                    Some(p) => {
                        let (m, labels, owners) = map.next_value_seed(PodMetaSeed)?;
                        (p.labels, p.owners) = (labels, owners);
                        meta = Some(m);
                    }
                    None => meta = Some(map.next_value()?),
                },
                "metadata" => return Err(repeated()),
                "apiVersion" | "kind" => {
                    map.next_value::<IgnoredAny>()?;
                }
                "spec" if let Some(p) = pod.as_mut() => {
                    if std::mem::replace(&mut spec_seen, true) {
                        return Err(repeated());
                    }
                    p.spec = map.next_value()?;
                }
                "status" if plan.pod || plan.conventional_status => {
                    if std::mem::replace(&mut status_seen, true) {
                        return Err(repeated());
                    }
                    match pod.as_mut() {
                        Some(p) => p.status = map.next_value()?,
                        None => typed.status = Some(map.next_value()?),
                    }
                }
                _ if plan.keep_raw => fields.push((key, map.next_value::<&'de RawValue>()?)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let meta = meta.ok_or_else(|| A::Error::missing_field("metadata"))?;
        if plan.conventional_status && typed.status.is_none() {
            typed.status = Some(ConventionalStatus::default());
        }
        typed.pod = pod;
        Ok(RawObject { meta, fields, typed })
    }
}

/// [`Meta::created`] as [`PodMetaSeed`] reads it: the field's own decode.
struct OptTime(Option<f64>);

impl<'de> serde::Deserialize<'de> for OptTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        opt_time(d).map(OptTime)
    }
}

/// [`Meta::deleting`] as [`PodMetaSeed`] reads it.
struct Present(bool);

impl<'de> serde::Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        present(d).map(Present)
    }
}

/// A pod's metadata: the common fields, with its labels and owners decoded in the same read
/// (they are kept raw for other kinds). Field types are those of [`Meta`]'s own decode.
struct PodMetaSeed;

type PodMeta<'a> = (Meta<'a>, RevisionLabels<'a>, Vec<OwnerRef<'a>>);

impl<'de> DeserializeSeed<'de> for PodMetaSeed {
    type Value = PodMeta<'de>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PodMetaSeed {
    type Value = PodMeta<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("object metadata")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PodMeta<'de>, A::Error> {
        let mut m = Meta::default();
        let (mut labels, mut owners) = (None, None);
        let mut seen = 0u16;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            let bit = match &*key {
                "name" => (1, m.name = map.next_value()?).0,
                "namespace" => (2, m.namespace = map.next_value()?).0,
                "uid" => (4, m.uid = map.next_value()?).0,
                "resourceVersion" => (8, m.resource_version = map.next_value()?).0,
                "generation" => (16, m.generation = map.next_value()?).0,
                "creationTimestamp" => (32, m.created = map.next_value::<OptTime>()?.0).0,
                "deletionTimestamp" => (64, m.deleting = map.next_value::<Present>()?.0).0,
                "managedFields" => (128, m.writes = map.next_value()?).0,
                "labels" => (256, labels = map.next_value::<Option<RevisionLabels>>()?).0,
                "ownerReferences" => (512, owners = map.next_value::<Option<Vec<OwnerRef>>>()?).0,
                _ => (0, map.next_value::<IgnoredAny>()?).0,
            };
            if seen & bit != 0 {
                return Err(A::Error::custom("a repeated metadata field"));
            }
            seen |= bit;
        }
        Ok((m, labels.unwrap_or_default(), owners.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        ingest::{Interner, builtin, target},
    };

    const POD: &str = r#"{"metadata":{"name":"web-7d4b9-abcde","namespace":"n","uid":"u1","resourceVersion":"9",
        "labels":{"pod-template-hash":"7d4b9","app":"web"},"managedFields":[{"manager":"kubelet","operation":"Update",
        "subresource":"status","time":"2024-01-01T00:00:05Z","fieldsV1":{"f:status":{}}}],
        "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9","uid":"x","controller":true}]},
        "spec":{"nodeName":"n1","containers":[{"name":"app","image":"web:2","env":[{"name":"A","value":"1"}]}],
        "initContainers":[{"name":"init","image":"init:1"}]},
        "status":{"conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"app",
        "image":"docker.io/library/web:2","imageID":"docker.io/library/web@sha256:abc","restartCount":3}]}}"#;

    fn line(ty: &str, object: &str) -> String {
        format!(r#"{{"type":"{ty}","object":{object}}}"#)
    }

    fn object(l: &str, plan: Plan) -> RawObject<'_> {
        match decode_line(l, plan).unwrap() {
            WatchLine::Added(o) | WatchLine::Modified(o) | WatchLine::Deleted(o) => o,
            other => panic!("{other:?}"),
        }
    }

    fn pod_facts(o: &RawObject) -> Option<builtin::BuiltinFacts> {
        builtin::extract(Kind::Pod, o, &[], &mut Interner::default())
    }

    fn pod_plan() -> Plan {
        Plan::new(Some(Kind::Pod), &[])
    }

    #[test]
    fn a_pod_read_once_has_the_facts_of_the_general_decode() {
        let l = line("MODIFIED", POD);
        let (once, raw) = (object(&l, pod_plan()), object(&l, Plan::RAW));
        assert!(once.typed.pod.is_some() && raw.typed.pod.is_none());
        assert!(once.field("spec").is_none() && raw.field("spec").is_some(), "spec is not read twice");
        assert!(once.fields.is_empty(), "nothing else is kept: no path reads it");
        let facts = pod_facts(&once);
        assert_eq!(facts, pod_facts(&raw));
        let Some(builtin::BuiltinFacts::Pod(p)) = facts else { panic!("{facts:?}") };
        assert_eq!(p.owner, Some((Kind::Deployment, Arc::from("web"))));
        assert_eq!((p.restarts, p.ready, p.containers.len()), (3, true, 2));
        assert_eq!(once.meta.name, "web-7d4b9-abcde");
        assert_eq!(once.meta.writes.status, [("kubelet".into(), 1_704_067_205.0)]);
        assert_eq!(target::writes(&once.meta, &mut Interner::default()).0.len(), 1);
    }

    #[test]
    fn odd_events_decode_as_before() {
        let cases = [
            // object before type, a repeated status, a malformed spec, labels of the wrong type
            r#"{"object":{"metadata":{"name":"a"}},"type":"ADDED"}"#.to_string(),
            line(
                "ADDED",
                r#"{"metadata":{"name":"a"},"status":{},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
            ),
            line("ADDED", r#"{"metadata":{"name":"a"},"spec":{"containers":"x"}}"#),
            line("ADDED", r#"{"metadata":{"name":"a","labels":["x"]}}"#),
            line("DELETED", POD),
        ];
        for l in &cases {
            let (once, raw) = (object(l, pod_plan()), object(l, Plan::RAW));
            assert_eq!(pod_facts(&once), pod_facts(&raw), "{l}");
            assert_eq!(once.meta.name, raw.meta.name, "{l}");
        }
        assert_eq!(pod_facts(&object(&cases[2], pod_plan())), None, "a malformed pod has no facts");
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_problem() {
        for l in [
            r#"{"type":"ADDED","object":{"spec":{}}}"#,
            r#"{"type":"NOPE","object":{}}"#,
            r#"{"type":"ADDED","object":{"metadata":{"name":"a","name":"b"}}}"#,
            "[1]",
            "{\"type\":",
        ] {
            let e = decode_line(l, pod_plan()).unwrap_err().to_string();
            let general = serde_json::from_str::<WatchLine<RawObject>>(l).unwrap_err().to_string();
            assert_eq!(e, general, "{l}");
        }
        let e = decode_line(r#"{"type":"ADDED","object":{"spec":{}}}"#, pod_plan()).unwrap_err();
        assert!(e.to_string().contains("metadata"), "{e}");
    }

    #[test]
    fn bookmarks_and_errors_read_once() {
        let b =
            decode_line(r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}"#, pod_plan());
        assert!(matches!(b, Ok(WatchLine::Bookmark(b)) if b.metadata.resource_version == "12"));
        let e = decode_line(r#"{"type":"ERROR","object":{"code":410,"reason":"Expired"}}"#, pod_plan());
        assert!(matches!(e, Ok(WatchLine::Error(s)) if s.code == 410));
    }

    #[test]
    fn a_list_page_read_once_has_the_facts_of_the_general_decode() {
        let page = |items: &str| {
            format!(
                r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"42","continue":"c1"}},"items":{items}}}"#
            )
        };
        let other = POD
            .replace("web-7d4b9-abcde", "web-7d4b9-fghij")
            .replace(r#""restartCount":3"#, r#""restartCount":1"#);
        let cases = [
            (page(&format!("[{POD},{other}]")), true),
            (page("[]"), true),
            (page("null"), true),
            (r#"{"metadata":{"resourceVersion":"1"}}"#.to_string(), true),
            // an item out of the fast form, a repeated field, an item without metadata
            (page(&format!(r#"[{POD},{{"metadata":{{"name":"a"}},"spec":{{"containers":"x"}}}}]"#)), false),
            (page(&format!(r#"[{POD}],"items":[]"#)), false),
            (page(r#"[{"spec":{}}]"#), false),
        ];
        for (body, fast) in &cases {
            let once = decode_list(body.as_bytes(), pod_plan());
            let general = serde_json::from_slice::<List<RawObject>>(body.as_bytes());
            let (once, general) = match (once, general) {
                (Ok(o), Ok(g)) => (o, g),
                (Err(o), Err(g)) => {
                    assert_eq!(o.to_string(), g.to_string(), "{body}");
                    continue;
                }
                (o, g) => panic!("{body}: {o:?} / {g:?}"),
            };
            assert_eq!(once.metadata.resource_version, general.metadata.resource_version);
            assert_eq!(once.metadata.continue_token, general.metadata.continue_token);
            let facts = |l: &List<RawObject>| l.items.iter().map(pod_facts).collect::<Vec<_>>();
            assert_eq!(facts(&once), facts(&general), "{body}");
            let read_once = once.items.iter().all(|o| o.typed.pod.is_some());
            assert_eq!(read_once, *fast, "{body}");
        }
        let two = decode_list(cases[0].0.as_bytes(), pod_plan()).unwrap();
        assert_eq!(two.items.len(), 2);
        assert!(two.items.iter().all(|o| o.field("spec").is_none()), "spec is not kept: read once");
        let e = decode_list(cases[6].0.as_bytes(), pod_plan()).unwrap_err();
        assert!(e.to_string().contains("metadata"), "{e}");
    }

    fn targets(yaml: &str) -> Vec<Arc<Target>> {
        Config::parse(yaml, "t").unwrap().targets.into_iter().map(Arc::new).collect()
    }

    #[test]
    fn a_conventional_status_read_once_has_the_facts_of_the_general_decode() {
        let ts = targets(
            "targets:\n  - name: t\n    resource: {group: g, version: v1, kind: K}\n    phase: {path: $.status.phase}\n",
        );
        let plan = Plan::new(None, &ts);
        assert_eq!(plan, Plan { pod: false, conventional_status: true, keep_raw: false });
        for status in [
            r#","status":{"phase":"Running","observedGeneration":2,"conditions":[{"type":"Ready","status":"True","reason":"Ok","lastTransitionTime":"2024-01-01T00:00:10Z"},{"type":"Ready","status":"False"}]}"#,
            "",
            r#","status":{"phase":7,"conditions":"nope"}"#,
        ] {
            let l = line(
                "MODIFIED",
                &format!(r#"{{"metadata":{{"name":"a","generation":2}},"spec":{{"x":1}}{status}}}"#),
            );
            let (once, raw) = (object(&l, plan), object(&l, Plan::RAW));
            let ex = |o: &RawObject| target::extract(&ts[0], o, &mut Interner::default());
            assert_eq!(ex(&once), ex(&raw), "{l}");
            // A status of the wrong shape is decoded the general way (spec kept raw).
            let read_once = once.typed.status.is_some();
            assert_eq!(read_once, !status.contains("nope"), "{l}");
            assert_eq!(once.field("spec").is_none(), read_once, "no path reads spec: skipped when read once");
        }
    }

    #[test]
    fn plans_read_once_only_what_nothing_else_reads_raw() {
        let conventional = "targets:\n  - name: t\n    resource: {group: g, version: v1, kind: K}\n";
        let by_path = "targets:\n  - name: t\n    resource: {group: g, version: v1, kind: K}\n    phase: {path: $.status.state.phase}\n";
        assert_eq!(
            Plan::new(None, &targets(conventional)),
            Plan { pod: false, conventional_status: true, keep_raw: false }
        );
        let images = format!(
            "{conventional}    images: [{{slot: a, desired: $.spec.image, workloads: {{kind: DaemonSet, selector: app=a}}}}]\n"
        );
        assert_eq!(
            Plan::new(None, &targets(&images)),
            Plan { pod: false, conventional_status: true, keep_raw: true }
        );
        let status_image = images.replace("$.spec.image", "$.status.image");
        assert_eq!(Plan::new(None, &targets(&status_image)), Plan::RAW);
        assert_eq!(Plan::new(None, &targets(by_path)), Plan::RAW);
        assert_eq!(Plan::new(None, &[]), Plan::RAW);
        assert_eq!(
            Plan::new(Some(Kind::Pod), &[]),
            Plan { pod: true, conventional_status: false, keep_raw: false }
        );
        assert_eq!(Plan::new(Some(Kind::Pod), &targets(conventional)), Plan::RAW);
        assert_eq!(Plan::new(Some(Kind::DaemonSet), &[]), Plan::RAW);
    }
}
