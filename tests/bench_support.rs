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
