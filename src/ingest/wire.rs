//! Wire types for list and watch responses, decoded without building a DOM of the object.
//!
//! `metadata` is decoded into a small typed struct (managedFields without their large
//! `fieldsV1` trees); every other top-level field is kept as unparsed JSON bytes and parsed only
//! if a configured path reads it. That keeps ingest close to the cost of merely scanning the
//! event.

use std::{borrow::Cow, fmt};

use serde::{
    Deserialize, Deserializer,
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::value::RawValue;

use super::decode::Typed;
use crate::model::time::parse_time;

/// A string borrowed from the event text when it has no escapes, copied only when it has.
/// serde's own `Cow<str>` always copies (and so does `Option<Cow<str>>`, even with
/// `#[serde(borrow)]`): one allocation per key and per optional string field of every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Text)
    }
}

/// `Option<Cow<str>>` that borrows like [`Text`]; for `#[serde(default, deserialize_with)]`.
pub(crate) fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    Ok(Option::<Text<'a>>::deserialize(d)?.map(|t| t.0))
}

/// An object as decoded from the API. It borrows from the response text: nothing of it
/// outlives the event, only the facts extracted from it.
#[derive(Debug, Clone)]
pub struct RawObject<'a> {
    pub meta: Meta<'a>,
    /// Top-level fields other than `metadata`, `apiVersion` and `kind`, unparsed (less those
    /// decoded in the event's single read, see [`decode`](super::decode)).
    pub fields: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// The parts decoded during the event's single read; empty when decoded by this type's own
    /// `Deserialize`.
    pub(crate) typed: Typed<'a>,
}

impl<'a> RawObject<'a> {
    /// The raw JSON of a top-level field other than metadata.
    pub fn field(&self, name: &str) -> Option<&'a RawValue> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }
}

/// The metadata fields stallwatch reads; strings borrow from the event text.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta<'a> {
    #[serde(default, borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub namespace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub uid: Cow<'a, str>,
    #[serde(default, borrow)]
    pub resource_version: Cow<'a, str>,
    #[serde(default)]
    pub generation: Option<i64>,
    /// `creationTimestamp` in Unix seconds, parsed while read (`None`: absent, null or not a
    /// time), so that protobuf's seconds need no text.
    #[serde(default, rename = "creationTimestamp", deserialize_with = "opt_time")]
    pub created: Option<f64>,
    /// Whether `deletionTimestamp` is set: the object is being deleted.
    #[serde(default, rename = "deletionTimestamp", deserialize_with = "present")]
    pub deleting: bool,
    /// `managedFields`, folded while read (the entries are not kept).
    #[serde(default, borrow, rename = "managedFields")]
    pub writes: Writes<'a>,
    /// Kept unparsed: only pods and ReplicaSets need them (owner and revision), so others pay a
    /// scan only.
    #[serde(default, borrow)]
    pub labels: Option<&'a RawValue>,
    /// Kept unparsed: only DaemonSets (template generation), Deployments and ReplicaSets
    /// (revision) need one.
    #[serde(default, borrow)]
    pub annotations: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub owner_references: Option<&'a RawValue>,
}

/// What `metadata.managedFields` says of the object's writes, folded while the entries are
/// read, so no list of entries is built and each time is parsed once per event. An entry
/// whose time does not parse says nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Writes<'a> {
    /// The last write of the status subresource per field manager (Unix seconds), one per
    /// manager, ordered by manager.
    pub status: Vec<(Cow<'a, str>, f64)>,
    /// The latest write that was not to a subresource (a spec or metadata change).
    pub other: Option<f64>,
}

impl<'a> Writes<'a> {
    fn add(&mut self, mf: ManagedField<'a>) {
        let Some(t) = mf.time.as_deref().and_then(parse_time) else {
            return;
        };
        self.record(mf.manager.unwrap_or_default(), mf.subresource.as_deref(), t);
    }

    /// Folds in one entry's write: `manager` wrote at `t` (Unix seconds) to `subresource`.
    /// Call [`Writes::finish`] after the last entry.
    pub(crate) fn record(&mut self, manager: Cow<'a, str>, subresource: Option<&str>, t: f64) {
        match subresource {
            Some("status") => match self.status.iter_mut().find(|(m, _)| *m == manager) {
                Some((_, old)) => *old = old.max(t),
                None => self.status.push((manager, t)),
            },
            None | Some("") => self.other = Some(self.other.map_or(t, |o| o.max(t))),
            Some(_) => {}
        }
    }

    /// Orders the status writes by manager, as the entries' order must not matter.
    pub(crate) fn finish(&mut self) {
        self.status.sort_by(|a, b| a.0.cmp(&b.0));
    }

    /// The most recent status write of any manager.
    pub fn last_status(&self) -> Option<f64> {
        self.status.iter().map(|(_, t)| *t).reduce(f64::max)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Writes<'a> {
    /// A list of entries, each decoded as [`ManagedField`]; `null` is no entries.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<'a>(Writes<'a>);
        impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                    type Value = Writes<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a sequence")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Writes<'a>, A::Error> {
                        let mut w = Writes::default();
                        while let Some(mf) = seq.next_element::<ManagedField>()? {
                            w.add(mf);
                        }
                        w.finish();
                        Ok(w)
                    }
                }
                d.deserialize_seq(V(std::marker::PhantomData)).map(Entries)
            }
        }
        Ok(Option::<Entries>::deserialize(d)?.map(|e| e.0).unwrap_or_default())
    }
}

/// One `metadata.managedFields` entry; `fieldsV1` is skipped.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ManagedField<'a> {
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub manager: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub operation: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub subresource: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub time: Option<Cow<'a, str>>,
}

/// An optional RFC 3339 time as Unix seconds; a string that is not a time is absent (as
/// [`parse_time`] says), anything but a string or null is an error.
pub(crate) fn opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.and_then(|t| parse_time(&t.0)))
}

/// Whether an optional string is set (a string; null is unset).
pub(crate) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<Text>::deserialize(d)?.is_some())
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawObject<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Kubernetes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'a>, A::Error> {
                let mut meta = None;
                let mut fields = Vec::with_capacity(4);
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    match &*key {
                        "metadata" => meta = Some(map.next_value::<Meta>()?),
                        "apiVersion" | "kind" => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        _ => fields.push((key, map.next_value::<&'de RawValue>()?)),
                    }
                }
                let meta = meta.ok_or_else(|| serde::de::Error::missing_field("metadata"))?;
                Ok(RawObject { meta, fields, typed: Typed::default() })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A list response: only its resourceVersion, continue token and items matter.
#[derive(Debug, Deserialize)]
pub struct List<T> {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(
        default = "Vec::new",
        deserialize_with = "null_as_default",
        bound(deserialize = "T: Deserialize<'de>")
    )]
    pub items: Vec<T>,
}

/// A list's resourceVersion and continue token.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default)]
    pub resource_version: String,
    #[serde(default, rename = "continue")]
    pub continue_token: Option<String>,
    /// Set by a server that applied the request's `shardSelector` (`ShardedListAndWatch`).
    #[serde(default)]
    pub shard_info: Option<ShardInfo>,
}

/// A sharded list's `metadata.shardInfo`: the selector the server applied, echoed.
#[derive(Debug, Default, Deserialize)]
pub struct ShardInfo {
    #[serde(default)]
    pub selector: String,
}

/// One line of a watch stream. `type` precedes `object` on the wire, so serde decodes the
/// object directly without buffering it.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", content = "object")]
pub enum WatchLine<T> {
    #[serde(rename = "ADDED")]
    Added(T),
    #[serde(rename = "MODIFIED")]
    Modified(T),
    #[serde(rename = "DELETED")]
    Deleted(T),
    #[serde(rename = "BOOKMARK")]
    Bookmark(BookmarkObject),
    #[serde(rename = "ERROR")]
    Error(ApiStatus),
}

/// The object of a BOOKMARK event: only its resourceVersion matters.
#[derive(Debug, Deserialize)]
pub struct BookmarkObject {
    pub metadata: BookmarkMeta,
}

/// The metadata of a BOOKMARK event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookmarkMeta {
    #[serde(default)]
    pub resource_version: String,
    /// Only the annotation that ends a streamed list (WatchList) is read.
    #[serde(default)]
    pub annotations: BookmarkAnnotations,
}

/// The annotations of a BOOKMARK event that stallwatch reads.
#[derive(Debug, Default, Deserialize)]
pub struct BookmarkAnnotations {
    /// `"true"` on the bookmark that ends the initial events of a `sendInitialEvents` watch.
    #[serde(rename = "k8s.io/initial-events-end", default)]
    pub initial_events_end: Option<String>,
}

impl BookmarkMeta {
    /// Whether this bookmark ends the initial events of a streamed list.
    pub fn initial_events_end(&self) -> bool {
        self.annotations.initial_events_end.as_deref() == Some("true")
    }
}

/// A `metav1.Status` as sent in ERROR watch events.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ApiStatus {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_metadata_and_keeps_other_fields_raw() {
        let o: RawObject = serde_json::from_str(
            r#"{"apiVersion":"v1","kind":"X","metadata":{"name":"a","namespace":"n","uid":"u","resourceVersion":"7","generation":3,
            "managedFields":[{"manager":"op","operation":"Update","subresource":"status","time":"2024-01-01T00:00:00Z","fieldsV1":{"f:status":{}}}]},
            "spec":{"x":[1,2]},"status":{"phase":"Running"}}"#,
        )
        .unwrap();
        assert_eq!(o.meta.name, "a");
        assert_eq!(o.meta.generation, Some(3));
        assert_eq!(o.meta.writes, Writes { status: vec![("op".into(), 1_704_067_200.0)], other: None });
        assert_eq!(o.field("status").unwrap().get(), r#"{"phase":"Running"}"#);
        assert_eq!(o.field("spec").unwrap().get(), r#"{"x":[1,2]}"#);
        assert!(o.field("kind").is_none());
    }

    #[test]
    fn null_managed_fields_and_missing_metadata() {
        let o: RawObject = serde_json::from_str(r#"{"metadata":{"name":"a","managedFields":null}}"#).unwrap();
        assert_eq!(o.meta.writes, Writes::default());
        let e = serde_json::from_str::<RawObject>(r#"{"spec":{}}"#).unwrap_err();
        assert!(e.to_string().contains("metadata"));
    }

    #[test]
    fn wrong_types_are_errors_not_panics() {
        assert!(serde_json::from_str::<RawObject>(r#"{"metadata":{"generation":"x"}}"#).is_err());
        assert!(serde_json::from_str::<RawObject>(r#"[1,2]"#).is_err());
    }

    #[test]
    fn watch_lines() {
        let l: WatchLine<RawObject> =
            serde_json::from_str(r#"{"type":"MODIFIED","object":{"metadata":{"name":"a"}}}"#).unwrap();
        assert!(matches!(l, WatchLine::Modified(o) if o.meta.name == "a"));
        let l: WatchLine<RawObject> = serde_json::from_str(
            r#"{"type":"BOOKMARK","object":{"kind":"X","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#,
        )
        .unwrap();
        assert!(
            matches!(l, WatchLine::Bookmark(b) if b.metadata.resource_version == "12" && !b.metadata.initial_events_end())
        );
        let l: WatchLine<RawObject> = serde_json::from_str(
            r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"13","creationTimestamp":null,"annotations":{"k8s.io/initial-events-end":"true"}}}}"#,
        )
        .unwrap();
        assert!(
            matches!(l, WatchLine::Bookmark(b) if b.metadata.resource_version == "13" && b.metadata.initial_events_end())
        );
        let l: WatchLine<RawObject> = serde_json::from_str(
            r#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}"#,
        )
        .unwrap();
        assert!(matches!(l, WatchLine::Error(s) if s.code == 410));
    }

    #[test]
    fn strings_borrow_from_the_event_unless_escaped() {
        let o: RawObject = serde_json::from_str(
            r#"{"metadata":{"na\u006de":"a","namespace":"n","creationTimestamp":"2024-01-01T00:00:0\u0030Z"},"sp\u0065c":{}}"#,
        )
        .unwrap();
        assert_eq!(o.meta.name, "a", "an escaped key is still its field");
        assert!(matches!(o.meta.namespace, Some(Cow::Borrowed("n"))));
        assert_eq!(o.meta.created, Some(1_704_067_200.0), "an escaped time is still read");
        assert!(matches!(&o.fields[..], [(Cow::Owned(k), _)] if k == "spec"));
        assert!(matches!(&o.fields[..], [(_, v)] if v.get() == "{}"));
        let e = serde_json::from_str::<RawObject>(r#"{"metadata":{"namespace":5}}"#).unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
    }

    #[test]
    fn managed_fields_fold_into_the_last_write_per_manager() {
        let o: RawObject = serde_json::from_str(
            r#"{"metadata":{"managedFields":[
            {"manager":"op","subresource":"status","time":"2024-01-01T00:00:10Z","fieldsV1":{"f:status":{}}},
            {"manager":"op","subresource":"status","time":"2024-01-01T00:00:30Z"},
            {"manager":"op","subresource":"status","time":"2024-01-01T00:00:20Z"},
            {"manager":"kubelet","subresource":"status","time":"2024-01-01T00:00:05Z"},
            {"subresource":"status","time":"2024-01-01T00:00:01Z"},
            {"manager":"kubectl","operation":"Apply","time":"2024-01-01T00:00:40Z"},
            {"manager":"helm","subresource":"","time":"2024-01-01T00:00:50Z"},
            {"manager":"hpa","subresource":"scale","time":"2024-01-01T00:01:00Z"},
            {"manager":"late","subresource":"status","time":"not a time"},
            {"manager":"none","subresource":"status"}]}}"#,
        )
        .unwrap();
        let t = |s: f64| 1_704_067_200.0 + s;
        let status: Vec<(&str, f64)> = o.meta.writes.status.iter().map(|(m, t)| (&**m, *t)).collect();
        assert_eq!(status, [("", t(1.0)), ("kubelet", t(5.0)), ("op", t(30.0))], "ordered by manager");
        assert_eq!(o.meta.writes.other, Some(t(50.0)), "not the scale subresource");
        assert_eq!(o.meta.writes.last_status(), Some(t(30.0)));
        let bad = r#"{"metadata":{"managedFields":[{"manager":"op","time":7}]}}"#;
        assert!(serde_json::from_str::<RawObject>(bad).is_err(), "an entry of the wrong shape is an error");
        let bad = r#"{"metadata":{"managedFields":{"manager":"op"}}}"#;
        assert!(serde_json::from_str::<RawObject>(bad).is_err(), "not a list");
    }

    #[test]
    fn list_with_continue() {
        let l: List<RawObject> = serde_json::from_str(
            r#"{"kind":"XList","metadata":{"resourceVersion":"5","continue":"abc"},"items":[{"metadata":{"name":"a"}}]}"#,
        )
        .unwrap();
        assert_eq!(l.metadata.resource_version, "5");
        assert_eq!(l.metadata.continue_token.as_deref(), Some("abc"));
        assert_eq!(l.items.len(), 1);
    }
}
