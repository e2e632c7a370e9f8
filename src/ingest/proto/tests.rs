//! The protobuf reader against the JSON single read of the same pods (the same facts and
//! metadata), its envelopes and frames, and hostile bytes (truncated, corrupt, not UTF-8).

use std::borrow::Cow;

use super::{
    FrameReader, ProtoError, decode_event, decode_list, decode_status,
    encode::{Message, envelope, watch_frame},
    is_protobuf,
};
use crate::{
    ingest::{
        Interner, builtin,
        decode::{Plan, decode_line},
        target,
        wire::{RawObject, WatchLine},
    },
    model::Kind,
};

/// The pod of `POD_JSON`, as the API server writes it in protobuf, with fields the facts do not
/// read (volumes, env, a fieldsV1 tree, tolerations) that must be skipped.
fn pod_message(name: &str) -> Message {
    let meta = Message::new()
        .str(1, name)
        .str(2, "web-7d4b9-")
        .str(3, "n")
        .str(4, "")
        .str(5, "u1")
        .str(6, "9")
        .int(7, 0)
        .time(8, 1_704_067_200)
        .msg(9, Message::new())
        .entry(11, "app", "web")
        .entry(11, "pod-template-hash", "7d4b9")
        .entry(12, "note", "x")
        .msg(
            13,
            Message::new()
                .str(5, "apps/v1")
                .str(1, "ReplicaSet")
                .str(3, "web-7d4b9")
                .str(4, "x")
                .bool(6, true),
        )
        .str(14, "example.com/finalizer")
        .msg(
            17,
            Message::new()
                .str(1, "kubelet")
                .str(2, "Update")
                .str(3, "v1")
                .time(4, 1_704_067_205)
                .str(6, "FieldsV1")
                .msg(7, Message::new().bytes(1, br#"{"f:status":{}}"#))
                .str(8, "status"),
        );
    let container = |name: &str, image: &str| {
        Message::new()
            .str(1, name)
            .str(2, image)
            .str(4, "--flag")
            .msg(7, Message::new().str(1, "A").str(2, "1"))
            .str(13, "/dev/termination-log")
    };
    let spec = Message::new()
        .msg(1, Message::new().str(1, "data").msg(2, Message::new().str(1, "/data")))
        .msg(20, container("init", "init:1"))
        .msg(2, container("app", "web:2"))
        .str(3, "Always")
        .int(4, 30)
        .str(10, "n1")
        .msg(22, Message::new().str(2, "Exists"));
    let status = Message::new()
        .str(1, "Running")
        .msg(2, Message::new().str(1, "Initialized").str(2, "True").time(4, 1_704_067_201))
        .msg(2, Message::new().str(1, "Ready").str(2, "True").str(5, "").str(6, ""))
        .str(5, "10.0.0.1")
        .msg(
            8,
            Message::new()
                .str(1, "app")
                .msg(2, Message::new().msg(2, Message::new().time(1, 1_704_067_203)))
                .bool(4, true)
                .int(5, 3)
                .str(6, "docker.io/library/web:2")
                .str(7, "docker.io/library/web@sha256:abc")
                .str(8, "containerd://1"),
        )
        .str(9, "Burstable");
    Message::new().msg(1, meta).msg(2, spec).msg(3, status)
}

/// The same pod in JSON.
const POD_JSON: &str = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-7d4b9-abcde","generateName":"web-7d4b9-",
    "namespace":"n","uid":"u1","resourceVersion":"9","creationTimestamp":"2024-01-01T00:00:00Z",
    "labels":{"app":"web","pod-template-hash":"7d4b9"},"annotations":{"note":"x"},
    "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9","uid":"x","controller":true}],
    "finalizers":["example.com/finalizer"],
    "managedFields":[{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2024-01-01T00:00:05Z",
    "fieldsType":"FieldsV1","fieldsV1":{"f:status":{}},"subresource":"status"}]},
    "spec":{"volumes":[{"name":"data","hostPath":{"path":"/data"}}],
    "initContainers":[{"name":"init","image":"init:1","args":["--flag"],"env":[{"name":"A","value":"1"}],"terminationMessagePath":"/dev/termination-log"}],
    "containers":[{"name":"app","image":"web:2","args":["--flag"],"env":[{"name":"A","value":"1"}],"terminationMessagePath":"/dev/termination-log"}],
    "restartPolicy":"Always","terminationGracePeriodSeconds":30,"nodeName":"n1","tolerations":[{"operator":"Exists"}]},
    "status":{"phase":"Running","conditions":[{"type":"Initialized","status":"True","lastTransitionTime":"2024-01-01T00:00:01Z"},
    {"type":"Ready","status":"True"}],"hostIP":"10.0.0.1","containerStatuses":[{"name":"app",
    "state":{"running":{"startedAt":"2024-01-01T00:00:03Z"}},"ready":true,"restartCount":3,
    "image":"docker.io/library/web:2","imageID":"docker.io/library/web@sha256:abc","containerID":"containerd://1"}],"qosClass":"Burstable"}}"#;

fn json_object(ty: &str) -> String {
    format!(r#"{{"type":"{ty}","object":{POD_JSON}}}"#)
}

fn object<'a>(l: WatchLine<RawObject<'a>>) -> RawObject<'a> {
    match l {
        WatchLine::Added(o) | WatchLine::Modified(o) | WatchLine::Deleted(o) => o,
        other => panic!("not an object: {other:?}"),
    }
}

fn facts(o: &RawObject) -> Option<builtin::BuiltinFacts> {
    builtin::extract(Kind::Pod, o, &[], &mut Interner::default())
}

/// A watch frame's event without its length prefix.
fn event(ty: &str, kind: &str, object: Message) -> Vec<u8> {
    watch_frame(ty, &envelope("v1", kind, object))[4..].to_vec()
}

#[test]
fn a_pod_in_protobuf_has_the_facts_and_metadata_of_its_json() {
    let frame = event("MODIFIED", "Pod", pod_message("web-7d4b9-abcde"));
    let pb = decode_event(&frame).unwrap();
    assert!(matches!(pb, WatchLine::Modified(_)));
    let pb = object(pb);
    let json_line = json_object("MODIFIED");
    let json = object(decode_line(&json_line, Plan::new(Some(Kind::Pod), &[])).unwrap());
    let f = facts(&pb);
    assert!(matches!(f, Some(builtin::BuiltinFacts::Pod(_))), "{f:?}");
    assert_eq!(f, facts(&json));
    let (m, j) = (&pb.meta, &json.meta);
    assert_eq!(
        (&m.name, &m.namespace, &m.uid, &m.resource_version),
        (&j.name, &j.namespace, &j.uid, &j.resource_version)
    );
    assert_eq!((m.generation, m.created, m.deleting), (j.generation, j.created, j.deleting));
    assert_eq!(m.writes, j.writes);
    assert_eq!(target::writes(m, &mut Interner::default()), target::writes(j, &mut Interner::default()));
    assert!(pb.fields.is_empty(), "nothing is kept raw");
    assert!(matches!(pb.meta.name, Cow::Borrowed(_)), "strings borrow from the frame");
}

#[test]
fn values_json_omits_when_empty_read_as_absent() {
    let meta = Message::new().str(1, "p").str(3, "").int(7, 0).msg(8, Message::new());
    let status = Message::new().msg(8, Message::new().str(1, "app").str(6, "").str(7, ""));
    let spec = Message::new().str(10, "").msg(2, Message::new().str(1, "app").str(2, ""));
    let frame = event("ADDED", "Pod", Message::new().msg(1, meta).msg(2, spec).msg(3, status));
    let o = object(decode_event(&frame).unwrap());
    assert_eq!((o.meta.namespace.as_deref(), o.meta.generation, o.meta.created), (None, None, None));
    let json = r#"{"type":"ADDED","object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"app","image":""}]},
        "status":{"containerStatuses":[{"name":"app","image":"","imageID":""}]}}}"#;
    let j = object(decode_line(json, Plan::new(Some(Kind::Pod), &[])).unwrap());
    assert_eq!(facts(&o), facts(&j));
    let g = Message::new().msg(1, Message::new().str(1, "p").int(7, 4).time(9, 1_704_067_200));
    let frame = event("DELETED", "Pod", g);
    let o = object(decode_event(&frame).unwrap());
    assert_eq!((o.meta.generation, o.meta.deleting), (Some(4), true));
}

#[test]
fn bookmarks_errors_and_odd_events() {
    let bookmark = |end: bool| {
        let mut meta = Message::new().str(6, "12345").entry(12, "other", "x");
        if end {
            meta = meta.entry(12, "k8s.io/initial-events-end", "true");
        }
        event("BOOKMARK", "Pod", Message::new().msg(1, meta))
    };
    let b = bookmark(true);
    assert!(
        matches!(decode_event(&b), Ok(WatchLine::Bookmark(b)) if b.metadata.resource_version == "12345" && b.metadata.initial_events_end())
    );
    let b = bookmark(false);
    assert!(matches!(decode_event(&b), Ok(WatchLine::Bookmark(b)) if !b.metadata.initial_events_end()));
    let status = Message::new()
        .str(2, "Failure")
        .str(3, "too old resource version: 1 (5)")
        .str(4, "Expired")
        .int(6, 410);
    let e = event("ERROR", "Status", status.clone());
    assert!(
        matches!(decode_event(&e), Ok(WatchLine::Error(s)) if s.code == 410 && s.reason == "Expired" && s.message.starts_with("too old"))
    );
    let e = decode_event(&event("NOPE", "Pod", pod_message("a"))).unwrap_err();
    assert_eq!(e, ProtoError::Shape("unknown event type \"NOPE\"".into()));
    let e = decode_event(&event("ADDED", "Status", status.clone())).unwrap_err();
    assert!(e.to_string().contains("carries a \"Status\""), "{e}");
    let e = decode_event(&event("ADDED", "Pod", Message::new().msg(2, Message::new()))).unwrap_err();
    assert!(e.to_string().contains("without metadata"), "{e}");
    let no_envelope =
        Message::new().str(1, "ADDED").msg(2, Message::new().bytes(1, b"{\"metadata\":{}}")).into_bytes();
    assert_eq!(decode_event(&no_envelope).unwrap_err(), ProtoError::Envelope);
    assert_eq!(decode_status(&envelope("v1", "Status", status)).map(|s| s.code), Some(410));
    assert!(decode_status(b"{\"kind\":\"Status\"}").is_none(), "JSON is not read here");
}

#[test]
fn a_pod_list_page_and_its_metadata() {
    let meta = Message::new()
        .str(2, "777")
        .str(3, "next-token")
        .int(4, 10)
        .msg(5, Message::new().str(1, "shardRange(object.metadata.namespace, '0x0', '0x8')"));
    let list = Message::new().msg(1, meta).msg(2, pod_message("a")).msg(2, pod_message("b"));
    let body = envelope("v1", "PodList", list);
    let l = decode_list(&body).unwrap();
    assert_eq!(
        (l.metadata.resource_version.as_str(), l.metadata.continue_token.as_deref()),
        ("777", Some("next-token"))
    );
    assert!(l.metadata.shard_info.as_ref().is_some_and(|s| s.selector.starts_with("shardRange(")));
    let names: Vec<&str> = l.items.iter().map(|o| &*o.meta.name).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(l.items.iter().all(|o| facts(o).is_some()));
    let last = envelope("v1", "PodList", Message::new().msg(1, Message::new().str(2, "778").str(3, "")));
    let l = decode_list(&last).unwrap();
    assert_eq!((l.metadata.continue_token, l.items.len(), l.metadata.shard_info.is_none()), (None, 0, true));
    let e = decode_list(&envelope("v1", "ConfigMapList", Message::new())).unwrap_err();
    assert!(e.to_string().contains("ConfigMapList"), "{e}");
    let compressed = b"k8s\0"
        .iter()
        .copied()
        .chain(Message::new().msg(2, Message::new()).str(3, "gzip").into_bytes())
        .collect::<Vec<u8>>();
    assert!(decode_list(&compressed).unwrap_err().to_string().contains("compressed"));
}

#[test]
fn truncated_or_corrupt_bytes_are_errors_never_panics() {
    let frame = event("MODIFIED", "Pod", pod_message("web"));
    for n in 0..frame.len() {
        // Every prefix either decodes (it ended between fields) or names the problem.
        if let Err(e) = decode_event(&frame[..n]) {
            assert!(!e.to_string().is_empty());
        }
    }
    let mut flipped = frame.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0xff;
        let _ = decode_event(&flipped);
        flipped[i] ^= 0xff;
    }
    assert_eq!(
        decode_event(&[0x0b]).unwrap_err(),
        ProtoError::WireType { field: 1, wire: 3 },
        "groups are not Kubernetes'"
    );
    let long = [&[0x08][..], &[0xff; 11]].concat();
    assert_eq!(decode_event(&long).unwrap_err(), ProtoError::LongVarint(1));
    assert_eq!(decode_event(&[0x0a, 0x05, b'A']).unwrap_err(), ProtoError::Truncated(2));
    let e = decode_event(&Message::new().int(1, 7).into_bytes()).unwrap_err();
    assert_eq!(e, ProtoError::Type { field: 1, expected: "length-delimited" });
}

#[test]
fn strings_that_are_not_utf8_read_as_json_writes_them() {
    let meta = Message::new().bytes(1, b"p\xffq").str(6, "1");
    let frame = event("ADDED", "Pod", Message::new().msg(1, meta));
    let o = object(decode_event(&frame).unwrap());
    assert_eq!(o.meta.name, "p\u{fffd}q");
}

#[tokio::test]
async fn frames_are_read_one_at_a_time_to_the_end() {
    let mut stream = watch_frame("ADDED", &envelope("v1", "Pod", pod_message("a")));
    stream.extend(watch_frame(
        "BOOKMARK",
        &envelope("v1", "Pod", Message::new().msg(1, Message::new().str(6, "5"))),
    ));
    let mut r = FrameReader::new(futures::io::Cursor::new(stream.clone()));
    let first = r.next().await.unwrap().unwrap();
    assert!(matches!(decode_event(&first), Ok(WatchLine::Added(o)) if o.meta.name == "a"));
    let second = r.next().await.unwrap().unwrap();
    assert!(matches!(decode_event(&second), Ok(WatchLine::Bookmark(_))));
    assert!(r.next().await.is_none(), "the end between frames is the end of the stream");

    let cut = stream[..stream.len() - 3].to_vec();
    let mut r = FrameReader::new(futures::io::Cursor::new(cut));
    assert!(r.next().await.unwrap().is_ok());
    let e = r.next().await.unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "a frame cut short is an error");

    let huge = (u32::MAX).to_be_bytes().to_vec();
    let e = FrameReader::new(futures::io::Cursor::new(huge)).next().await.unwrap().unwrap_err();
    assert!(e.to_string().contains("over the"), "{e}");
}

#[test]
fn protobuf_responses_are_told_by_their_content_type() {
    let h = |s: &'static str| http::HeaderValue::from_static(s);
    assert!(is_protobuf(Some(&h("application/vnd.kubernetes.protobuf"))));
    assert!(is_protobuf(Some(&h("application/vnd.kubernetes.protobuf;stream=watch"))));
    assert!(!is_protobuf(Some(&h("application/json"))));
    assert!(!is_protobuf(None));
}
