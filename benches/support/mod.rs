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
        proto::{self, encode::Message as M},
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

/// The pod of [`pod_event`]`(i)` as the API server serves it in protobuf: the `MODIFIED` watch
/// event (without the stream's length prefix) whose object is the enveloped `v1.Pod`. Every
/// field of the JSON is written, so the two forms are the same object (`tests/bench_support.rs`
/// checks it against Kubernetes' own encoder of the JSON, `tests/fixtures/protobuf`).
pub fn pod_proto(i: usize) -> Vec<u8> {
    proto::encode::watch_frame("MODIFIED", &proto::encode::envelope("v1", "Pod", pod_message(i)))[4..]
        .to_vec()
}

/// [`pod_proto`]`(i)`'s `v1.Pod` message.
pub fn pod_message(i: usize) -> M {
    let (node, ns, rv, a, b) = (i % 500, i % 20, 5000 + i, (i / 250) % 250, i % 250);
    let t = |s: i64| 1_704_067_200 + s;
    let name = format!("agent-{i:06}");
    let meta = M::new()
        .str(1, &name)
        .str(2, "agent-")
        .str(3, &format!("ns-{ns}"))
        .str(4, "")
        .str(5, &format!("0f6c2a4e-5b1d-4c8e-9a7f-{i:012}"))
        .str(6, &rv.to_string())
        .time(8, t(0))
        .entry(11, "app", "agent")
        .entry(11, "controller-revision-hash", "6d5f8b9c7")
        .entry(11, "pod-template-generation", "3")
        .entry(11, "team", "platform")
        .entry(12, "kubectl.kubernetes.io/restartedAt", "2024-01-01T00:00:00Z")
        .msg(
            13,
            M::new()
                .str(1, "DaemonSet")
                .str(3, "agent")
                .str(4, "7e2a9c1b-3d4f-4a5b-8c6d-0e1f2a3b4c5d")
                .str(5, "apps/v1")
                .bool(6, true)
                .bool(7, true),
        )
        .msg(17, managed("kube-controller-manager", t(0), r#"{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:controller-revision-hash":{},"f:pod-template-generation":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"7e2a9c1b\"}":{}}},"f:spec":{"f:affinity":{".":{},"f:nodeAffinity":{}},"f:containers":{"k:{\"name\":\"agent\"}":{".":{},"f:env":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:securityContext":{},"f:volumeMounts":{}}},"f:dnsPolicy":{},"f:tolerations":{},"f:volumes":{}}}"#, ""))
        .msg(17, managed("kubelet", t(5), r#"{"f:status":{"f:conditions":{},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:podIPs":{},"f:startTime":{}}}"#, "status"));
    let quantity = |s: &str| M::new().str(1, s);
    let res = |m: M, field: u32, k: &str, v: &str| m.msg(field, M::new().str(1, k).msg(2, quantity(v)));
    let volumes = [
        M::new().str(1, "host-proc").msg(2, M::new().msg(1, M::new().str(1, "/proc").str(2, ""))),
        M::new().str(1, "kube-api-access-abcde").msg(
            2,
            M::new().msg(
                26,
                M::new()
                    .msg(1, M::new().msg(4, M::new().str(1, "").int(2, 3607).str(3, "token")))
                    .msg(
                        1,
                        M::new().msg(
                            3,
                            M::new()
                                .msg(1, M::new().str(1, "kube-root-ca.crt"))
                                .msg(2, M::new().str(1, "ca.crt").str(2, "ca.crt")),
                        ),
                    )
                    .int(2, 420),
            ),
        ),
    ];
    let init = M::new()
        .str(1, "init")
        .str(2, "docker.io/example/agent-init:v1.2.3")
        .str(5, "")
        .msg(8, M::new())
        .str(13, "/dev/termination-log")
        .str(14, "IfNotPresent")
        .str(20, "");
    let agent = M::new()
        .str(1, "agent")
        .str(2, "docker.io/example/agent:v1.2.3")
        .str(4, "--log-level=info")
        .str(4, "--node=$(NODE_NAME)")
        .str(5, "")
        .msg(
            7,
            M::new()
                .str(1, "NODE_NAME")
                .str(2, "")
                .msg(3, M::new().msg(1, M::new().str(1, "v1").str(2, "spec.nodeName"))),
        )
        .msg(7, M::new().str(1, "MODE").str(2, "enforce"))
        .msg(8, res(res(res(M::new(), 1, "memory", "256Mi"), 2, "cpu", "100m"), 2, "memory", "128Mi"))
        .msg(9, M::new().str(1, "host-proc").bool(2, true).str(3, "/host/proc").str(4, "").str(6, ""))
        .msg(
            9,
            M::new()
                .str(1, "kube-api-access-abcde")
                .bool(2, true)
                .str(3, "/var/run/secrets/kubernetes.io/serviceaccount")
                .str(4, "")
                .str(6, ""),
        )
        .msg(
            10,
            M::new()
                .msg(
                    1,
                    M::new().msg(
                        2,
                        M::new()
                            .str(1, "/healthz")
                            .msg(2, M::new().int(1, 0).int(2, 8080).str(3, ""))
                            .str(3, "")
                            .str(4, "HTTP"),
                    ),
                )
                .int(3, 1)
                .int(4, 10)
                .int(5, 1)
                .int(6, 3),
        )
        .str(13, "/dev/termination-log")
        .str(14, "IfNotPresent")
        .msg(15, M::new().bool(2, true))
        .str(20, "File");
    let node_name = format!("node-{node}");
    let toleration = |k: &str, e: &str| M::new().str(1, k).str(2, "Exists").str(3, "").str(4, e);
    let mut spec = M::new();
    for v in volumes {
        spec = spec.msg(1, v);
    }
    let spec = spec
        .msg(2, agent)
        .str(3, "Always")
        .int(4, 30)
        .str(6, "ClusterFirst")
        .str(8, "agent")
        .str(9, "agent")
        .str(10, &node_name)
        .msg(14, M::new())
        .str(16, "")
        .str(17, "")
        .msg(
            18,
            M::new().msg(
                1,
                M::new().msg(
                    1,
                    M::new().msg(
                        1,
                        M::new().msg(2, M::new().str(1, "metadata.name").str(2, "In").str(3, &node_name)),
                    ),
                ),
            ),
        )
        .str(19, "default-scheduler")
        .msg(20, init)
        .msg(22, M::new().str(1, "").str(2, "Exists").str(3, "").str(4, ""))
        .msg(22, toleration("node.kubernetes.io/not-ready", "NoExecute"))
        .msg(22, toleration("node.kubernetes.io/unreachable", "NoExecute"))
        .str(24, "")
        .int(25, 0);
    let condition = |ty: &str, s: i64| {
        M::new().str(1, ty).str(2, "True").msg(3, M::new()).time(4, t(s)).str(5, "").str(6, "")
    };
    let id = format!("containerd://{i:016}");
    let status = M::new()
        .str(1, "Running")
        .msg(2, condition("PodReadyToStartContainers", 3))
        .msg(2, condition("Initialized", 2))
        .msg(2, condition("Ready", 5))
        .msg(2, condition("ContainersReady", 5))
        .msg(2, condition("PodScheduled", 0))
        .str(3, "")
        .str(4, "")
        .str(5, &format!("10.0.{a}.{b}"))
        .str(6, &format!("10.244.{a}.{b}"))
        .time(7, t(0))
        .msg(
            8,
            M::new()
                .str(1, "agent")
                .msg(2, M::new().msg(2, M::new().time(1, t(4))))
                .msg(3, M::new())
                .bool(4, true)
                .int(5, (i % 3) as i64)
                .str(6, "docker.io/example/agent:v1.2.3")
                .str(7, "docker.io/example/agent@sha256:2222222222222222222222222222222222222222222222222222222222222222")
                .str(8, &id)
                .bool(9, true),
        )
        .str(9, "Burstable")
        .str(11, "")
        .str(14, "")
        .msg(
            10,
            M::new()
                .str(1, "init")
                .msg(2, M::new().msg(3, M::new().int(1, 0).str(3, "Completed").str(4, "").time(5, t(1)).time(6, t(2)).str(7, &id)))
                .msg(3, M::new())
                .bool(4, true)
                .int(5, 0)
                .str(6, "docker.io/example/agent-init:v1.2.3")
                .str(7, "docker.io/example/agent-init@sha256:1111111111111111111111111111111111111111111111111111111111111111")
                .str(8, &id)
                .bool(9, false),
        );
    M::new().msg(1, meta).msg(2, spec).msg(3, status)
}

/// A `managedFields` entry with its `fieldsV1` tree (`FieldsV1.Raw`, field 1, is the JSON).
fn managed(manager: &str, at: i64, fields: &str, subresource: &str) -> M {
    M::new()
        .str(1, manager)
        .str(2, "Update")
        .str(3, "v1")
        .time(4, at)
        .str(6, "FieldsV1")
        .msg(7, M::new().bytes(1, fields.as_bytes()))
        .str(8, subresource)
}

/// Decodes one protobuf watch event and applies it, as the watch loop does for a pod watch
/// served in protobuf.
pub fn ingest_proto(state: &mut WatchState, subs: &Subscribers, frame: &[u8]) {
    match proto::decode_event(frame).unwrap() {
        WatchLine::Added(o) | WatchLine::Modified(o) => {
            state.apply(subs, &o, 1_704_070_000.0);
        }
        _ => unreachable!(),
    }
}

/// A protobuf `PodList` page of the pods `from..to` of [`pod_message`].
pub fn proto_page(from: usize, to: usize) -> Vec<u8> {
    let meta = M::new().str(2, "9000").str(3, "next");
    let list = (from..to).fold(M::new().msg(1, meta), |l, i| l.msg(2, pod_message(i)));
    proto::encode::envelope("v1", "PodList", list)
}

/// Decodes a protobuf list page and reconciles its items, as a (re-)list does.
pub fn reconcile_proto_page(state: &mut WatchState, subs: &Subscribers, page: &[u8]) {
    let list = proto::decode_list(page).unwrap();
    state.reconcile_page(subs, &list.items, 1_704_070_000.0, &mut Reconcile::default());
}
