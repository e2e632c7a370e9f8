//! The pod join stays exact: random pod and workload event sequences (adds, image and owner
//! changes, template revisions, deletions, deleting pods, re-lists, cleared watches, the same
//! pod in two watches, workload template changes, ReplicaSets of several revisions, owners and
//! names coming and going) applied incrementally give the same per-workload pod counts as a
//! from-scratch join of every pod and every ReplicaSet, and the same pod index as one rebuilt
//! from the records.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::converge::{Index, outdated};
use crate::{
    ingest::{
        builtin::{BuiltinFacts, WorkloadFacts},
        wire::RawObject,
    },
    model::{Gvk, Kind},
    store::{ObjKey, OwnerKey, OwnerPods, PodIndex, Reconcile, Subscribers, WatchKey, WatchState},
};

const WORKLOADS: [(Kind, &str); 4] =
    [(Kind::DaemonSet, "d0"), (Kind::DaemonSet, "d1"), (Kind::StatefulSet, "s0"), (Kind::Deployment, "w0")];
const NAMESPACES: [&str; 2] = ["a", "b"];

#[derive(Debug, Clone)]
struct Pod {
    ns: usize,
    name: usize,
    uid: usize,
    /// An index into [`WORKLOADS`], or none.
    owner: Option<usize>,
    image: usize,
    revision: usize,
    node: usize,
    ready: bool,
    restarts: u32,
    deleting: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Put(usize, Pod),
    Delete(usize, Pod),
    Relist(usize, Vec<Pod>),
    Clear(usize),
    Workload { which: usize, ns: usize, image: usize, revision: usize },
    ReplicaSet(ReplicaSet),
}

/// A ReplicaSet of `w0` (or of another owner, or a namesake `w0-api` one).
#[derive(Debug, Clone)]
struct ReplicaSet {
    ns: usize,
    hash: usize,
    revision: usize,
    ours: bool,
    namesake: bool,
    delete: bool,
}

fn replica_set() -> impl Strategy<Value = ReplicaSet> {
    (
        0..2usize,
        0..2usize,
        1..4usize,
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(ns, hash, revision, ours, namesake, delete)| ReplicaSet {
            ns,
            hash,
            revision,
            ours,
            namesake,
            delete,
        })
}

fn pod() -> impl Strategy<Value = Pod> {
    (0..2usize, 0..5usize, 0..2usize, prop::option::of(0..4usize), 0..2usize, 0..2usize, 0..3usize)
        .prop_flat_map(|(ns, name, uid, owner, image, revision, node)| {
            (any::<bool>(), 0..3u32, prop::bool::weighted(0.2)).prop_map(
                move |(ready, restarts, deleting)| Pod {
                    ns,
                    name,
                    uid,
                    owner,
                    image,
                    revision,
                    node,
                    ready,
                    restarts,
                    deleting,
                },
            )
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..2usize, pod()).prop_map(|(w, p)| Op::Put(w, p)),
        2 => (0..2usize, pod()).prop_map(|(w, p)| Op::Delete(w, p)),
        1 => (0..2usize, prop::collection::vec(pod(), 0..6)).prop_map(|(w, ps)| Op::Relist(w, ps)),
        1 => (0..2usize).prop_map(Op::Clear),
        2 => (0..4usize, 0..2usize, 0..2usize, 0..2usize)
            .prop_map(|(which, ns, image, revision)| Op::Workload { which, ns, image, revision }),
        2 => replica_set().prop_map(Op::ReplicaSet),
    ]
}

fn pod_json(p: &Pod, rv: usize) -> String {
    let (owner, labels) = match p.owner.map(|o| WORKLOADS[o]) {
        Some((Kind::Deployment, n)) => (
            format!(r#"{{"kind":"ReplicaSet","name":"{n}-h{}","controller":true}}"#, p.revision),
            format!(r#""pod-template-hash":"h{}""#, p.revision),
        ),
        Some((k, n)) => (
            format!(r#"{{"kind":"{}","name":"{n}","controller":true}}"#, k.name()),
            format!(r#""controller-revision-hash":"r{0}","pod-template-generation":"{0}""#, p.revision),
        ),
        None => (String::new(), String::new()),
    };
    let deleting = if p.deleting { r#","deletionTimestamp":"2024-01-01T00:00:00Z""# } else { "" };
    let ready = if p.ready { "True" } else { "False" };
    format!(
        r#"{{"metadata":{{"name":"p{name}","namespace":"{ns}","uid":"u{name}-{uid}","resourceVersion":"{rv}","labels":{{{labels}}},"ownerReferences":[{owner}]{deleting}}},
        "spec":{{"nodeName":"n{node}","containers":[{{"name":"c","image":"img:v{image}"}}]}},
        "status":{{"conditions":[{{"type":"Ready","status":"{ready}"}}],"containerStatuses":[{{"name":"c","image":"img:v{image}","restartCount":{restarts}}}]}}}}"#,
        name = p.name,
        ns = NAMESPACES[p.ns],
        uid = p.uid,
        node = p.node,
        image = p.image,
        restarts = p.restarts,
    )
}

fn workload_json(which: usize, ns: usize, image: usize, revision: usize, rv: usize) -> String {
    let (kind, name) = WORKLOADS[which];
    let status = match kind {
        Kind::StatefulSet => format!(r#""replicas":2,"updatedReplicas":1,"updateRevision":"r{revision}""#),
        Kind::DaemonSet => r#""desiredNumberScheduled":2,"updatedNumberScheduled":1"#.to_string(),
        _ => r#""replicas":2,"updatedReplicas":1"#.to_string(),
    };
    // A DaemonSet's template generation, a Deployment's revision (that of its ReplicaSets 1..3).
    let annotations = match kind {
        Kind::DaemonSet => format!(r#""deprecated.daemonset.template.generation":"{revision}""#),
        Kind::Deployment => format!(r#""deployment.kubernetes.io/revision":"{}""#, revision + 1),
        _ => String::new(),
    };
    format!(
        r#"{{"metadata":{{"name":"{name}","namespace":"{ns}","uid":"w{which}","resourceVersion":"{rv}","generation":{rv},"annotations":{{{annotations}}}}},
        "spec":{{"template":{{"spec":{{"containers":[{{"name":"c","image":"img:v{image}"}}]}}}}}},"status":{{"observedGeneration":{rv},{status}}}}}"#,
        ns = NAMESPACES[ns],
    )
}

fn replica_set_json(r: &ReplicaSet, rv: usize) -> String {
    let name = if r.namesake { "w0-api" } else { "w0" };
    let owner = if r.ours { "w3" } else { "w9" };
    format!(
        r#"{{"metadata":{{"name":"{name}-h{hash}","namespace":"{ns}","uid":"rs{name}{hash}","resourceVersion":"{rv}",
        "labels":{{"pod-template-hash":"h{hash}"}},"annotations":{{"deployment.kubernetes.io/revision":"{revision}"}},
        "ownerReferences":[{{"kind":"Deployment","name":"{name}","uid":"{owner}","controller":true}}]}}}}"#,
        hash = r.hash,
        ns = NAMESPACES[r.ns],
        revision = r.revision,
    )
}

fn key(kind: &str, k: Kind, namespace: &str) -> WatchKey {
    WatchKey {
        gvk: Gvk::new(if k == Kind::Pod { "" } else { "apps" }, "v1", kind),
        kind: Some(k),
        namespace: namespace.into(),
        label_selector: String::new(),
        field_selector: String::new(),
        shard: None,
    }
}

fn subs(k: Kind) -> Subscribers {
    Subscribers { targets: Vec::new(), kind: Some(k), env: Vec::new(), mirrors: Default::default() }
}

/// A Deployment's current hash from every ReplicaSet record: the hashes of those it controls
/// at its revision, when they are one.
fn current_hash<'a>(rs: &'a WatchState, ns: &str, uid: &str, w: &WorkloadFacts) -> Option<&'a str> {
    let hashes: HashSet<Option<&str>> = rs
        .objects
        .iter()
        .filter_map(|(k, r)| match &r.kind {
            Some(BuiltinFacts::ReplicaSet(f))
                if *k.0 == *ns && f.owner_uid.as_deref() == Some(uid) && f.revision == w.revision =>
            {
                Some(f.template_hash.as_deref())
            }
            _ => None,
        })
        .collect();
    match (w.kind, w.revision, hashes.len()) {
        (Kind::Deployment, Some(_), 1) => hashes.into_iter().next().flatten(),
        _ => None,
    }
}

/// The join as it was computed at every render before the store kept it: every pod of every
/// pod watch, each once (the first watch whose copy names an owner), grouped by owner.
fn from_scratch(
    pods: &[&WatchState],
    ns: &str,
    kind: Kind,
    name: &str,
    w: &WorkloadFacts,
    hash: Option<&str>,
) -> (usize, usize) {
    let mut seen: HashSet<&ObjKey> = HashSet::new();
    let (mut total, mut old) = (0, 0);
    for s in pods {
        for (k, r) in &s.objects {
            if let Some(BuiltinFacts::Pod(p)) = &r.kind
                && let Some((pk, owner)) = &p.owner
                && seen.insert(k)
                && *k.0 == *ns
                && *pk == kind
                && **owner == *name
                && !p.deleting
            {
                total += 1;
                old += usize::from(outdated(w, hash, p));
            }
        }
    }
    (total, old)
}

/// The pod index of `s` rebuilt from its records.
fn rebuilt(s: &WatchState) -> HashMap<OwnerKey, OwnerPods> {
    let mut ix = PodIndex::default();
    for ((ns, name), r) in &s.objects {
        if let Some(BuiltinFacts::Pod(p)) = &r.kind {
            ix.insert(ns, name, p);
        }
    }
    ix.iter().map(|(k, o)| (k.clone(), o.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn incremental_pod_counts_equal_a_from_scratch_join(ops in prop::collection::vec(op(), 1..40)) {
        let pod_keys = [key("Pod", Kind::Pod, ""), key("Pod", Kind::Pod, "a")];
        let workload_keys =
            [key("DaemonSet", Kind::DaemonSet, ""), key("StatefulSet", Kind::StatefulSet, ""), key("Deployment", Kind::Deployment, "")];
        let rs_key = key("ReplicaSet", Kind::ReplicaSet, "");
        let pod_subs = subs(Kind::Pod);
        let mut pods = [WatchState::default(), WatchState::default()];
        let mut replica_sets = WatchState::default();
        let mut workloads = [WatchState::default(), WatchState::default(), WatchState::default()];
        let slot = |k: Kind| match k { Kind::DaemonSet => 0, Kind::StatefulSet => 1, _ => 2 };
        for (rv, op) in ops.into_iter().enumerate() {
            let now = rv as f64;
            match op {
                Op::Put(w, p) => {
                    let text = pod_json(&p, rv);
                    let obj: RawObject = serde_json::from_str(&text).unwrap();
                    pods[w].apply(&pod_subs, &obj, now);
                }
                Op::Delete(w, p) => {
                    let text = pod_json(&p, rv);
                    let obj: RawObject = serde_json::from_str(&text).unwrap();
                    pods[w].delete_at(&obj, now);
                }
                Op::Relist(w, list) => {
                    let texts: Vec<String> = list.iter().map(|p| pod_json(p, rv)).collect();
                    let items: Vec<RawObject> = texts.iter().map(|t| serde_json::from_str(t).unwrap()).collect();
                    // Two pages, as a paged list arrives.
                    let mut r = Reconcile::default();
                    let (a, b) = items.split_at(items.len() / 2);
                    pods[w].reconcile_page(&pod_subs, a, now, &mut r);
                    pods[w].reconcile_page(&pod_subs, b, now, &mut r);
                    pods[w].finish_reconcile(r);
                }
                Op::Clear(w) => pods[w].clear_objects(),
                Op::Workload { which, ns, image, revision } => {
                    let kind = WORKLOADS[which].0;
                    let text = workload_json(which, ns, image, revision, rv + 1);
                    let obj: RawObject = serde_json::from_str(&text).unwrap();
                    workloads[slot(kind)].apply(&subs(kind), &obj, now);
                }
                Op::ReplicaSet(r) => {
                    let text = replica_set_json(&r, rv);
                    let obj: RawObject = serde_json::from_str(&text).unwrap();
                    if r.delete {
                        replica_sets.delete_at(&obj, now);
                    } else {
                        replica_sets.apply(&subs(Kind::ReplicaSet), &obj, now);
                    }
                }
            }
            for s in &pods {
                prop_assert_eq!(rebuilt(s), s.pods.iter().map(|(k, o)| (k.clone(), o.clone())).collect::<HashMap<_, _>>());
            }
            let states: Vec<(&WatchKey, &WatchState)> = workload_keys
                .iter()
                .zip(&workloads)
                .chain(pod_keys.iter().zip(&pods))
                .chain([(&rs_key, &replica_sets)])
                .collect();
            let index = Index::new(states);
            for s in &workloads {
                for ((ns, name), r) in &s.objects {
                    let Some(BuiltinFacts::Workload(w)) = &r.kind else { continue };
                    let hash = current_hash(&replica_sets, ns, &r.uid, w);
                    prop_assert_eq!(index.current_hash(ns, name, &r.uid, w), hash);
                    prop_assert_eq!(
                        index.pod_counts(ns, name, &r.uid, w),
                        from_scratch(&[&pods[0], &pods[1]], ns, w.kind, name, w, hash),
                        "{} {}/{}", w.kind.name(), ns, name
                    );
                }
            }
        }
    }
}
