//! Synthetic objects for benches and profiling: realistic events without a cluster.

use std::sync::Arc;

use crate::{
    config::Config,
    object::{RawObject, WatchLine},
    store::{Store, Subscribers, Watch, WatchState, plan},
};

const CONFIG: &str = "targets:\n  - name: widgets\n    resource: {group: example.com, version: v1, kind: Widget}\n    phase: {path: $.status.phase, ready: [Running]}\n";

/// A realistic custom-resource event of about 3.5 KB: labels, annotations, managedFields with
/// their fieldsV1 trees, a spec with images, env and tolerations, status with conditions.
pub fn event(i: usize) -> String {
    format!(
        r#"{{"type":"MODIFIED","object":{{"apiVersion":"example.com/v1","kind":"Widget","metadata":{{"name":"widget-{i}","namespace":"ns-{ns}","uid":"6b1f7c4e-0d3a-4c55-9a51-{i:012}","resourceVersion":"{rv}","generation":{g},"creationTimestamp":"2024-01-01T00:00:00Z","labels":{{"app.kubernetes.io/name":"widget","app.kubernetes.io/instance":"widget-{i}","app.kubernetes.io/managed-by":"widget-operator","team":"payments"}},"annotations":{{"kubectl.kubernetes.io/last-applied-configuration":"{{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{{\"name\":\"widget-{i}\"}},\"spec\":{{\"replicas\":3}}}}"}},"managedFields":[{{"manager":"kubectl-client-side-apply","operation":"Update","apiVersion":"example.com/v1","time":"2024-01-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:annotations":{{".":{{}},"f:kubectl.kubernetes.io/last-applied-configuration":{{}}}},"f:labels":{{".":{{}},"f:app.kubernetes.io/name":{{}},"f:team":{{}}}}}},"f:spec":{{".":{{}},"f:agentImage":{{".":{{}},"f:image":{{}},"f:imagePullPolicy":{{}}}},"f:replicas":{{}},"f:tolerations":{{}}}}}}}},{{"manager":"widget-operator","operation":"Update","apiVersion":"example.com/v1","time":"2024-01-01T00:05:00Z","fieldsType":"FieldsV1","fieldsV1":{{"f:status":{{".":{{}},"f:conditions":{{}},"f:observedGeneration":{{}},"f:phase":{{}}}}}},"subresource":"status"}}]}},"spec":{{"replicas":3,"agentImage":{{"image":"docker.io/example/agent:v1.{g}.0","imagePullPolicy":"IfNotPresent","args":["--log-level=info","--metrics-port=9090","--enable-feature=a,b,c"],"env":[{{"name":"A","value":"1"}},{{"name":"B","value":"two"}},{{"name":"C","valueFrom":{{"fieldRef":{{"fieldPath":"spec.nodeName"}}}}}}]}},"tolerations":[{{"key":"node-role.kubernetes.io/control-plane","operator":"Exists","effect":"NoSchedule"}},{{"key":"example.com/dedicated","operator":"Equal","value":"agents","effect":"NoExecute","tolerationSeconds":300}}],"nodeSelector":{{"kubernetes.io/os":"linux","example.com/pool":"general"}},"resources":{{"requests":{{"cpu":"100m","memory":"128Mi"}},"limits":{{"memory":"256Mi"}}}}}},"status":{{"phase":"{phase}","message":"reconciled by widget-operator","observedGeneration":{og},"conditions":[{{"type":"Ready","status":"{ready}","reason":"Reconciled","message":"all replicas are ready","lastTransitionTime":"2024-01-01T00:05:00Z","observedGeneration":{og}}},{{"type":"Reconciling","status":"False","reason":"Done","message":"","lastTransitionTime":"2024-01-01T00:05:00Z"}},{{"type":"Stalled","status":"False","reason":"Done","message":"","lastTransitionTime":"2024-01-01T00:05:00Z"}}]}}}}}}"#,
        ns = i % 50,
        rv = 1000 + i,
        g = 1 + i % 3,
        og = 1 + i % 2,
        phase = if i.is_multiple_of(7) { "Pending" } else { "Running" },
        ready = if i.is_multiple_of(7) { "False" } else { "True" },
    )
}

/// A watch for the bench target and its subscribed targets.
pub fn setup() -> (Arc<Watch>, Subscribers) {
    let c = Config::parse(CONFIG, "bench").unwrap();
    let (key, subs) = plan(&c).remove(0);
    (Arc::new(Watch::new(key, subs.clone())), subs)
}

pub fn ingest(state: &mut WatchState, subs: &Subscribers, line: &str) {
    match serde_json::from_str::<WatchLine<RawObject>>(line).unwrap() {
        WatchLine::Added(o) | WatchLine::Modified(o) => {
            state.apply(subs, &o, 1_704_070_000.0);
        }
        _ => unreachable!(),
    }
}

pub fn filled_store(n: usize) -> Arc<Store> {
    let (w, targets) = setup();
    w.write(|s| (0..n).for_each(|i| ingest(s, &targets, &event(i))));
    let store = Arc::new(Store::default());
    store.set_watches(vec![w]);
    store
}
