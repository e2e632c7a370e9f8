//! Runs the self-test of the benches' synthetic objects (`benches/support`), so a change to the
//! decode or the facts that makes the benches measure nonsense fails here.

#[path = "../benches/support/mod.rs"]
mod support;

use stallwatch::{ingest::BuiltinFacts, model::Kind};
use support::{event, ingest, pod_event, pod_setup, setup};

#[test]
fn synthetic_events_are_realistic_and_decode() {
    let p = pod_event(7);
    assert!((4_300..5_000).contains(&p.len()), "pod event is {} bytes", p.len());
    let (w, subs) = pod_setup();
    w.write(|s| {
        ingest(s, &subs, &p);
        let t = s.objects.values().next().unwrap();
        match &t.kind {
            Some(BuiltinFacts::Pod(pod)) => {
                assert_eq!(pod.owner.as_ref().map(|(k, n)| (*k, &**n)), Some((Kind::DaemonSet, "agent")));
                assert_eq!(pod.containers.len(), 2);
                assert!(pod.ready);
                assert_eq!(pod.restarts, 1);
            }
            other => panic!("{other:?}"),
        }
    });
    let (w, subs) = setup();
    w.write(|s| ingest(s, &subs, &event(7)));
    assert_eq!(w.read(|s| s.objects.len()), 1);
}

/// The bench's pods in protobuf are the pods of its JSON events: for two of them, the facts
/// and the metadata read from [`support::pod_proto`] equal those read from Kubernetes' own
/// protobuf encoding of the JSON (`tests/fixtures/protobuf/pod-N.pb`, written by
/// `tests/perf/pod-protobuf`), and the sizes agree (the encoder writes empty strings Go
/// writes, so the bench is not flattered by a smaller message).
#[test]
fn protobuf_pods_are_the_json_pods_as_kubernetes_encodes_them() {
    use stallwatch::ingest::proto::{decode_event, encode::watch_frame};
    let (_, subs) = pod_setup();
    for i in [0usize, 12345] {
        let golden = std::fs::read(format!("tests/fixtures/protobuf/pod-{i}.pb")).expect("the golden pod");
        let go = watch_frame("MODIFIED", &golden)[4..].to_vec();
        let ours = support::pod_proto(i);
        let json_line = pod_event(i);
        let (w_go, w_ours, w_json) = (pod_setup().0, pod_setup().0, pod_setup().0);
        w_go.write(|s| support::ingest_proto(s, &subs, &go));
        w_ours.write(|s| support::ingest_proto(s, &subs, &ours));
        w_json.write(|s| ingest(s, &subs, &json_line));
        let facts = |w: &std::sync::Arc<stallwatch::store::Watch>| {
            w.read(|s| {
                s.objects
                    .iter()
                    .map(|(k, t)| {
                        format!(
                            "{k:?} {} {} {:?} {:?} {}",
                            t.uid, t.resource_version, t.per_target, t.kind, t.last_progress
                        )
                    })
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(facts(&w_ours), facts(&w_go), "pod {i}: our protobuf and Kubernetes' give the same facts");
        assert_eq!(facts(&w_go), facts(&w_json), "pod {i}: protobuf and JSON give the same facts");
        let ratio = ours.len() as f64 / go.len() as f64;
        eprintln!(
            "pod {i}: protobuf event {} B (Kubernetes' encoder {} B), JSON event {} B",
            ours.len(),
            go.len(),
            json_line.len()
        );
        assert!(
            (0.97..=1.03).contains(&ratio),
            "pod {i}: {} bytes against Kubernetes' {}",
            ours.len(),
            go.len()
        );
        let (a, b) = (decode_event(&go).unwrap(), decode_event(&ours).unwrap());
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "pod {i}: the same object read");
    }
}
