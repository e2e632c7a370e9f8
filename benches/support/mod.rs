//! Synthetic objects for benches and profiling: realistic events without a cluster.
//!
//! Not part of the library's API: benches and examples include this file with `#[path]`, and
//! `tests/bench_support.rs` checks that its events are realistic and decode.
#![allow(dead_code)] // each includer uses a different part

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::{
        Arc,
        atomic::{AtomicIsize, Ordering},
    },
};

use stallwatch::{
    config::Config,
    ingest::{
        decode::{Plan, decode_line, decode_list},
        wire::WatchLine,
    },
    store::{Reconcile, Store, Subscribers, Watch, WatchState},
    watch::plan,
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
    match decode_line(line, Plan::new(subs.kind, &subs.targets)).unwrap() {
        WatchLine::Added(o) | WatchLine::Modified(o) => {
            state.apply(subs, &o, 1_704_070_000.0);
        }
        _ => unreachable!(),
    }
}

/// A list page (`{"kind":"List","metadata":…,"items":[…]}`) of the objects of watch `lines`.
pub fn list_page(lines: &[String]) -> Vec<u8> {
    let items: Vec<&str> = lines
        .iter()
        .map(|l| {
            let start = l.find(r#""object":"#).expect("an event") + r#""object":"#.len();
            &l[start..l.len() - 1]
        })
        .collect();
    format!(r#"{{"kind":"List","apiVersion":"v1","metadata":{{"resourceVersion":"9000","continue":"next"}},"items":[{}]}}"#, items.join(","))
        .into_bytes()
}

/// Decodes a list page and reconciles its items into `state`, as a (re-)list does.
pub fn reconcile_page(state: &mut WatchState, subs: &Subscribers, page: &[u8]) {
    let list = decode_list(page, Plan::new(subs.kind, &subs.targets)).unwrap();
    let mut r = Reconcile::default();
    state.reconcile_page(subs, &list.items, 1_704_070_000.0, &mut r);
}

pub fn filled_store(n: usize) -> Arc<Store> {
    let (w, targets) = setup();
    w.write(|s| (0..n).for_each(|i| ingest(s, &targets, &event(i))));
    let store = Arc::new(Store::default());
    store.set_watches(vec![w]);
    store
}

/// A realistic pod event of about 4.6 KB (a DaemonSet pod as the API server sends it, with
/// managedFields), the size the ingest floor is measured against.
pub fn pod_event(i: usize) -> String {
    let node = i % 500;
    format!(
        r#"{{"type":"MODIFIED","object":{{"kind":"Pod","apiVersion":"v1","metadata":{{"name":"agent-{i:06}","generateName":"agent-","namespace":"ns-{ns}","uid":"0f6c2a4e-5b1d-4c8e-9a7f-{i:012}","resourceVersion":"{rv}","creationTimestamp":"2024-01-01T00:00:00Z","labels":{{"app":"agent","controller-revision-hash":"6d5f8b9c7","pod-template-generation":"3","team":"platform"}},"annotations":{{"kubectl.kubernetes.io/restartedAt":"2024-01-01T00:00:00Z"}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"DaemonSet","name":"agent","uid":"7e2a9c1b-3d4f-4a5b-8c6d-0e1f2a3b4c5d","controller":true,"blockOwnerDeletion":true}}],"managedFields":[{{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2024-01-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:generateName":{{}},"f:labels":{{".":{{}},"f:app":{{}},"f:controller-revision-hash":{{}},"f:pod-template-generation":{{}}}},"f:ownerReferences":{{".":{{}},"k:{{\"uid\":\"7e2a9c1b\"}}":{{}}}}}},"f:spec":{{"f:affinity":{{".":{{}},"f:nodeAffinity":{{}}}},"f:containers":{{"k:{{\"name\":\"agent\"}}":{{".":{{}},"f:env":{{}},"f:image":{{}},"f:imagePullPolicy":{{}},"f:name":{{}},"f:resources":{{}},"f:securityContext":{{}},"f:volumeMounts":{{}}}}}},"f:dnsPolicy":{{}},"f:tolerations":{{}},"f:volumes":{{}}}}}}}},{{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2024-01-01T00:00:05Z","fieldsType":"FieldsV1","fieldsV1":{{"f:status":{{"f:conditions":{{}},"f:containerStatuses":{{}},"f:hostIP":{{}},"f:phase":{{}},"f:podIP":{{}},"f:podIPs":{{}},"f:startTime":{{}}}}}},"subresource":"status"}}]}},"spec":{{"volumes":[{{"name":"host-proc","hostPath":{{"path":"/proc","type":""}}}},{{"name":"kube-api-access-abcde","projected":{{"sources":[{{"serviceAccountToken":{{"expirationSeconds":3607,"path":"token"}}}},{{"configMap":{{"name":"kube-root-ca.crt","items":[{{"key":"ca.crt","path":"ca.crt"}}]}}}}],"defaultMode":420}}}}],"initContainers":[{{"name":"init","image":"docker.io/example/agent-init:v1.2.3","resources":{{}},"terminationMessagePath":"/dev/termination-log","imagePullPolicy":"IfNotPresent"}}],"containers":[{{"name":"agent","image":"docker.io/example/agent:v1.2.3","args":["--log-level=info","--node=$(NODE_NAME)"],"env":[{{"name":"NODE_NAME","valueFrom":{{"fieldRef":{{"apiVersion":"v1","fieldPath":"spec.nodeName"}}}}}},{{"name":"MODE","value":"enforce"}}],"resources":{{"limits":{{"memory":"256Mi"}},"requests":{{"cpu":"100m","memory":"128Mi"}}}},"volumeMounts":[{{"name":"host-proc","readOnly":true,"mountPath":"/host/proc"}},{{"name":"kube-api-access-abcde","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}}],"livenessProbe":{{"httpGet":{{"path":"/healthz","port":8080,"scheme":"HTTP"}},"timeoutSeconds":1,"periodSeconds":10,"successThreshold":1,"failureThreshold":3}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent","securityContext":{{"privileged":true}}}}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"agent","serviceAccount":"agent","nodeName":"node-{node}","securityContext":{{}},"affinity":{{"nodeAffinity":{{"requiredDuringSchedulingIgnoredDuringExecution":{{"nodeSelectorTerms":[{{"matchFields":[{{"key":"metadata.name","operator":"In","values":["node-{node}"]}}]}}]}}}}}},"schedulerName":"default-scheduler","tolerations":[{{"operator":"Exists"}},{{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute"}},{{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute"}}],"priority":0}},"status":{{"phase":"Running","conditions":[{{"type":"PodReadyToStartContainers","status":"True","lastTransitionTime":"2024-01-01T00:00:03Z"}},{{"type":"Initialized","status":"True","lastTransitionTime":"2024-01-01T00:00:02Z"}},{{"type":"Ready","status":"True","lastTransitionTime":"2024-01-01T00:00:05Z"}},{{"type":"ContainersReady","status":"True","lastTransitionTime":"2024-01-01T00:00:05Z"}},{{"type":"PodScheduled","status":"True","lastTransitionTime":"2024-01-01T00:00:00Z"}}],"hostIP":"10.0.{a}.{b}","podIP":"10.244.{a}.{b}","startTime":"2024-01-01T00:00:00Z","initContainerStatuses":[{{"name":"init","state":{{"terminated":{{"exitCode":0,"reason":"Completed","startedAt":"2024-01-01T00:00:01Z","finishedAt":"2024-01-01T00:00:02Z","containerID":"containerd://{i:016}"}}}},"lastState":{{}},"ready":true,"restartCount":0,"image":"docker.io/example/agent-init:v1.2.3","imageID":"docker.io/example/agent-init@sha256:1111111111111111111111111111111111111111111111111111111111111111","containerID":"containerd://{i:016}","started":false}}],"containerStatuses":[{{"name":"agent","state":{{"running":{{"startedAt":"2024-01-01T00:00:04Z"}}}},"lastState":{{}},"ready":true,"restartCount":{restarts},"image":"docker.io/example/agent:v1.2.3","imageID":"docker.io/example/agent@sha256:2222222222222222222222222222222222222222222222222222222222222222","containerID":"containerd://{i:016}","started":true}}],"qosClass":"Burstable"}}}}}}"#,
        ns = i % 20,
        rv = 5000 + i,
        a = (i / 250) % 250,
        b = i % 250,
        restarts = i % 3,
    )
}

/// The pod watch of the workloads preset (pods are what the image triangle joins).
pub fn pod_setup() -> (Arc<Watch>, Subscribers) {
    let c = Config::parse("targets: [{preset: workloads}]\n", "bench").unwrap();
    let (key, subs) =
        plan(&c).into_iter().find(|(k, _)| k.gvk.kind == "Pod").expect("the workloads preset watches pods");
    (Arc::new(Watch::new(key, subs.clone())), subs)
}

/// The system allocator, counting live heap bytes: a bench that installs it as its
/// `#[global_allocator]` reads heap per item with [`live_bytes`] before and after building.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed straight to the system allocator; the counter only observes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

/// Heap bytes live now, as counted by [`Counting`] (0 where it is not the global allocator).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}
