//! The convergence model: joins tracked objects to the workloads that run
//! their images and to those workloads' pods, at scrape time, from stored facts only.
//!
//! Pure code over borrowed store contents: an [`Index`] is built once per render, then each
//! object's links and each workload's rollout are read from it. Pod counts come from the
//! store's per-watch pod index ([`store::PodIndex`]), so a render costs what it writes, not
//! what the cluster runs.

use std::collections::{HashMap, HashSet};

use crate::{
    config::{ImageRule, Target},
    ingest::builtin::{BuiltinFacts, PodFacts, WorkloadFacts},
    model::Kind,
    model::image,
    store::{self, ObjKey, ObjectRecord, TimedFacts, WatchKey, WatchState},
};

/// Lookups over every watch of one render.
pub struct Index<'a> {
    by_key: HashMap<&'a WatchKey, &'a WatchState>,
    /// The pod watches in watch order: a pod several of them hold counts once, from the first
    /// whose copy names a controlling workload.
    pod_watches: Vec<&'a WatchState>,
    /// The ReplicaSet watches (Deployments' current template hashes).
    replica_set_watches: Vec<&'a WatchState>,
    /// Every watch's state, in watch order (operator pods by selector watch, diagnose).
    pub states: Vec<(&'a WatchKey, &'a WatchState)>,
}

impl<'a> Index<'a> {
    /// Indexes the watches' states by key: O(watches), the pods are indexed by the store.
    pub fn new(states: Vec<(&'a WatchKey, &'a WatchState)>) -> Index<'a> {
        let of = |kind: Kind| states.iter().filter(|(k, _)| k.kind == Some(kind)).map(|(_, s)| *s).collect();
        let (pod_watches, replica_set_watches) = (of(Kind::Pod), of(Kind::ReplicaSet));
        let by_key = states.iter().map(|(k, s)| (*k, *s)).collect();
        Index { by_key, pod_watches, replica_set_watches, states }
    }

    /// The state of the watch with `key`, if it is running.
    pub fn state(&self, key: &WatchKey) -> Option<&'a WatchState> {
        self.by_key.get(key).copied()
    }

    /// A Deployment's current `pod-template-hash`: that of the ReplicaSet it controls (`uid`)
    /// whose revision is the Deployment's own. `None` when that is not known (no ReplicaSet
    /// watch, not listed yet, no ReplicaSet of that revision seen, or two that disagree): its
    /// pods are then compared by image only, never called outdated on missing data.
    ///
    /// A ReplicaSet is named `<deployment>-<hash>`, so only the records under that prefix are
    /// read: O(log records + the Deployment's ReplicaSets), not a scan.
    pub fn current_hash(&self, namespace: &str, name: &str, uid: &str, w: &WorkloadFacts) -> Option<&'a str> {
        let revision = w.revision.filter(|_| w.kind == Kind::Deployment)?;
        let prefix = format!("{name}-");
        let from: ObjKey = (namespace.into(), prefix.as_str().into());
        let mut found: Option<&'a str> = None;
        for s in &self.replica_set_watches {
            let under = s
                .objects
                .range(from.clone()..)
                .take_while(|((ns, n), _)| **ns == *namespace && n.starts_with(&prefix));
            for (_, r) in under {
                let Some(BuiltinFacts::ReplicaSet(rs)) = &r.kind else { continue };
                if rs.revision != Some(revision) || rs.owner_uid.as_deref() != Some(uid) {
                    continue;
                }
                let hash = rs.template_hash.as_deref()?;
                if found.is_some_and(|f| f != hash) {
                    return None;
                }
                found = Some(hash);
            }
        }
        found
    }

    /// Pods total and outdated (not running the current template: [`outdated`]), not counting
    /// pods being deleted. `uid` is the workload's (a Deployment's current ReplicaSet is found
    /// by it).
    ///
    /// One [`outdated`] call per distinct thing the workload's pods run, not per pod: the
    /// store groups them by [`store::pods::template_part`]. Only a workload whose pods a later
    /// pod watch also holds (overlapping pod watches) is counted pod by pod, to count each pod
    /// once.
    pub fn pod_counts(&self, namespace: &str, name: &str, uid: &str, w: &WorkloadFacts) -> (usize, usize) {
        let hash = self.current_hash(namespace, name, uid, w);
        let (mut total, mut old) = (0, 0);
        for (i, s) in self.pod_watches.iter().enumerate() {
            let Some(o) = s.pods.get(namespace, w.kind, name) else { continue };
            if i == 0 {
                for (p, n) in &o.groups {
                    total += n;
                    old += if outdated(w, hash, p) { *n } else { 0 };
                }
                continue;
            }
            let earlier = &self.pod_watches[..i];
            for (pod, e) in &o.pods {
                let key = (namespace.into(), pod.clone());
                let held = |s: &&WatchState| {
                    s.objects
                        .get(&key)
                        .is_some_and(|r| matches!(&r.kind, Some(BuiltinFacts::Pod(p)) if p.owner.is_some()))
                };
                if e.deleting || earlier.iter().any(held) {
                    continue;
                }
                total += 1;
                old += usize::from(outdated(w, hash, &e.template));
            }
        }
        (total, old)
    }
}

/// Whether a pod runs something other than its workload's current template. The template
/// revision decides where the pod says which one it came from: a StatefulSet's
/// `controller-revision-hash` against its `updateRevision`, a DaemonSet's
/// `pod-template-generation` against its template generation, a Deployment's
/// `pod-template-hash` against `hash`, its current ReplicaSet's ([`Index::current_hash`]), so an
/// env, args or resources change leaves the old pods outdated. Images are compared too: a pod
/// without the labels, or an image the kubelet was not told to run. Where the current revision
/// is not known (`hash` `None`, no label), only the images decide.
/// The store groups pods by [`store::pods::template_part`], so this must read only those facts
/// (not node, readiness, restarts or deletion).
pub fn outdated(w: &WorkloadFacts, hash: Option<&str>, p: &PodFacts) -> bool {
    if w.kind == Kind::StatefulSet
        && let (Some(want), Some(have)) = (&w.update_revision, &p.revision)
        && **want != **have
    {
        return true;
    }
    if w.kind == Kind::DaemonSet
        && let (Some(want), Some(have)) = (w.template_generation, p.template_generation)
        && want != have
    {
        return true;
    }
    if w.kind == Kind::Deployment
        && let (Some(want), Some(have)) = (hash, &p.revision)
        && want != &**have
    {
        return true;
    }
    w.containers.iter().any(|c| {
        p.containers.iter().find(|pc| pc.name == c.name && pc.init == c.init).is_none_or(|pc| {
            !image::runs_via(
                &w.mirrors,
                &c.image,
                &pc.spec_image,
                pc.status_image.as_deref(),
                pc.image_id.as_deref(),
            )
        })
    })
}

/// One image slot of one object against one linked workload.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRow<'a> {
    pub slot: &'a str,
    pub desired: String,
    /// Where an operator pin came from, e.g. `Deployment/kubearmor-operator env RELATED_IMAGE_KUBEARMOR`.
    pub override_source: Option<String>,
    pub workload_kind: Kind,
    pub workload_namespace: &'a str,
    pub workload: &'a str,
    pub container: &'a str,
    pub actual: &'a str,
    pub mismatch: bool,
}

/// A linked workload's state as it matters to the object.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedWorkload<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub facts: &'a WorkloadFacts,
    /// Deployments: the current `pod-template-hash`, when known ([`Index::current_hash`]).
    pub template_hash: Option<&'a str>,
    pub last_progress: f64,
    pub pods: usize,
    pub outdated: usize,
}

/// What the convergence model adds to an object's verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Links<'a> {
    pub slots: Vec<SlotRow<'a>>,
    /// Slots whose desired image is configured but whose workloads were not found.
    pub missing: Vec<&'a str>,
    pub workloads: Vec<LinkedWorkload<'a>>,
    /// When the earliest mismatching slot's desired image became expected: the latest of the
    /// generation first seen, the stated reference last changed, the operator pin last changed
    /// (or the pinning operator Deployment last moved while it rolls out) and the workload's
    /// template last changed. A pin or default change is a new goal, not an old one.
    pub mismatch_since: Option<f64>,
    /// Required slots whose workloads do not exist (a synced watch found none), and since when.
    pub required_missing: Vec<&'a str>,
    pub required_missing_since: Option<f64>,
}

impl Links<'_> {
    /// Some slot's workloads or pods do not run the desired image.
    pub fn any_mismatch(&self) -> bool {
        self.slots.iter().any(|s| s.mismatch)
    }

    /// For kinds without observedGeneration: observed once every linked workload's
    /// template carries the desired images and its rollout is complete with no outdated pods.
    /// Slots whose workloads do not exist (optional components) do not count; with no linked
    /// workload at all there is no evidence either way.
    pub fn generation_observed(&self) -> Option<bool> {
        if self.slots.is_empty() {
            return None;
        }
        Some(!self.any_mismatch() && self.workloads.iter().all(|w| w.facts.complete() && w.outdated == 0))
    }

    /// The earliest last-progress of an incomplete linked rollout.
    pub fn rollout_incomplete_since(&self) -> Option<f64> {
        self.workloads.iter().filter(|w| !w.facts.complete()).map(|w| w.last_progress).reduce(f64::min)
    }

    /// Complete rollouts that still leave pods on an old template (OnDelete).
    pub fn pods_outdated_since(&self) -> Option<f64> {
        self.workloads
            .iter()
            .filter(|w| w.facts.complete() && w.outdated > 0)
            .map(|w| w.last_progress)
            .reduce(f64::min)
    }
}

/// The operator pin of a slot: the value of the configured env var on the operator
/// Deployment, and where it came from (`Deployment/NAME env VAR`).
pub fn pin(index: &Index, target: &Target, rule: &ImageRule) -> Option<(String, String)> {
    pin_source(index, target, rule).and_then(|(p, _)| p)
}

/// The operator Deployment that may pin a slot, with the pin when its env sets one, and the
/// time from which its state is a goal: its template last changed (a pin set, changed or
/// removed; an operator upgrade), or later while its own rollout moves.
fn pin_source(index: &Index, target: &Target, rule: &ImageRule) -> Option<(Option<(String, String)>, f64)> {
    let o = rule.overridden_by.as_ref()?;
    let state = index.state(&store::key::override_key(target, rule, o))?;
    state.objects.values().find_map(|t| match &t.kind {
        Some(BuiltinFacts::Workload(w)) => {
            let pin = w
                .env
                .iter()
                .find(|(n, _)| **n == *o.env)
                .map(|(_, v)| (v.to_string(), format!("Deployment/{} env {}", o.deployment, o.env)));
            // Its own rollout after a template change is progress toward the new goal, for at
            // most `stalledAfter`: a crash-looping operator moves its counters forever and
            // must not hold the clock.
            let grace = t.template_changed + target.stalled_after.as_secs_f64();
            Some((pin, t.template_changed.max(t.last_progress.min(grace))))
        }
        _ => None,
    })
}

/// Joins one tracked object (in namespace `ns`) to its image slots' workloads.
pub fn links<'a>(index: &Index<'a>, target: &'a Target, ns: &'a str, tf: &TimedFacts) -> Links<'a> {
    let mut out = Links::default();
    let mut linked: HashSet<(&str, &str)> = HashSet::new();
    for (i, rule) in target.images.iter().enumerate() {
        let link = &rule.workloads;
        let stated = tf.facts.desired_images.get(i).cloned().flatten();
        let source = pin_source(index, target, rule);
        let goal_since =
            tf.generation_first_seen.max(tf.desired_changed).max(source.as_ref().map_or(0.0, |s| s.1));
        let (desired, override_source) = match source.and_then(|s| s.0) {
            Some((v, src)) => (v, Some(src)),
            None => match stated.as_deref().or(rule.default.as_deref()) {
                Some(d) => (d.to_string(), None),
                None => continue,
            },
        };
        let Some(state) = index.state(&store::key::link_key(target, link)) else {
            out.missing.push(&rule.slot);
            continue;
        };
        let explicit_ns = link.namespace.is_some() || target.single_namespace().is_some();
        let before = out.slots.len();
        for ((wns, wname), tracked) in &state.objects {
            if !explicit_ns && **wns != *ns {
                continue;
            }
            let Some(BuiltinFacts::Workload(w)) = &tracked.kind else { continue };
            let container = match &link.container {
                Some(c) => w.container(c, link.init),
                None => w.containers.iter().find(|c| !c.init),
            };
            let Some(container) = container else { continue };
            let mismatch = !image::same_via(&w.mirrors, &desired, &container.image);
            if mismatch {
                let since = goal_since.max(tracked.template_changed);
                out.mismatch_since = Some(out.mismatch_since.map_or(since, |m| m.min(since)));
            }
            out.slots.push(SlotRow {
                slot: &rule.slot,
                mismatch,
                desired: desired.clone(),
                override_source: override_source.clone(),
                workload_kind: w.kind,
                workload_namespace: wns,
                workload: wname,
                container: &container.name,
                actual: &container.image,
            });
            if linked.insert((wns, wname)) {
                out.workloads.push(linked_workload(index, wns, wname, tracked, w));
            }
        }
        if out.slots.len() == before {
            out.missing.push(&rule.slot);
            // A watch that has not listed yet knows nothing; a synced one that holds none of
            // the slot's workloads knows they are gone.
            if rule.required && state.health.synced {
                out.required_missing.push(&rule.slot);
                let since = tf.generation_first_seen.max(state.removed_at.unwrap_or(0.0));
                out.required_missing_since = Some(out.required_missing_since.map_or(since, |m| m.min(since)));
            }
        }
    }
    out
}

fn linked_workload<'a>(
    index: &Index<'a>,
    ns: &'a str,
    name: &'a str,
    tracked: &'a ObjectRecord,
    w: &'a WorkloadFacts,
) -> LinkedWorkload<'a> {
    let (pods, outdated) = index.pod_counts(ns, name, &tracked.uid, w);
    LinkedWorkload {
        namespace: ns,
        name,
        uid: &tracked.uid,
        facts: w,
        template_hash: index.current_hash(ns, name, &tracked.uid, w),
        last_progress: tracked.last_progress,
        pods,
        outdated,
    }
}

/// Every workload to report rollout series for, with the target that tracks or links it;
/// each (target, workload) once.
pub fn workloads<'a>(index: &Index<'a>, targets: &[&'a Target]) -> Vec<(&'a str, LinkedWorkload<'a>)> {
    let mut out = Vec::new();
    let mut seen: HashSet<(&str, &str, Kind, &str)> = HashSet::new();
    let mut push =
        |target: &'a str, ns: &'a str, name: &'a str, tracked: &'a ObjectRecord, w: &'a WorkloadFacts| {
            if seen.insert((target, ns, w.kind, name)) {
                out.push((target, linked_workload(index, ns, name, tracked, w)));
            }
        };
    for (key, state) in &index.states {
        if !key.kind.is_some_and(Kind::is_workload) {
            continue;
        }
        for t in targets {
            let tracks = t.resource == key.gvk
                && (t.namespaces.is_empty() || t.namespaces.contains(&key.namespace))
                && t.label_selector.as_deref().unwrap_or("") == key.label_selector
                && t.field_selector.as_deref().unwrap_or("") == key.field_selector
                // An unsharded watch of the same objects (an operator pin) is not the target's.
                && key.shard == store::key::target_shard(t);
            let links = t.images.iter().any(|r| store::key::link_key(t, &r.workloads) == **key);
            if !(tracks || links) {
                continue;
            }
            for ((ns, name), tracked) in &state.objects {
                if let Some(BuiltinFacts::Workload(w)) = &tracked.kind {
                    push(&t.name, ns, name, tracked, w);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        config::Config,
        ingest::wire::RawObject,
        store::{Subscribers, Watch},
        watch::plan,
    };

    const NOW: f64 = 1_704_070_000.0;

    fn setup(config: &str) -> Vec<Watch> {
        let c = Config::parse(config, "t").unwrap();
        plan(&c).into_iter().map(|(k, s): (WatchKey, Subscribers)| Watch::new(k, s)).collect()
    }

    /// Applies `json` to the watches of `gvk` only.
    fn put(watches: &[Watch], kind: &str, json: &str) {
        let obj: RawObject = serde_json::from_str(json).unwrap();
        for w in watches.iter().filter(|w| w.key.gvk.kind == kind) {
            w.write(|s| {
                s.apply(&w.subs, &obj, NOW);
            });
        }
    }

    type Summary = (Option<bool>, Vec<(String, String, bool)>, Vec<(usize, usize)>);

    /// (generation observed, (slot, desired, mismatch) rows, (pods, outdated) per workload).
    fn kubearmor_links(watches: &[Watch]) -> Summary {
        let guards: Vec<_> = watches.iter().map(|w| (&w.key, w.state.read().unwrap())).collect();
        let states: Vec<_> = guards.iter().map(|(k, g)| (*k, &**g)).collect();
        let index = Index::new(states);
        let cr = watches.iter().find(|w| w.key.gvk.kind == "KubeArmorConfig").unwrap();
        let target = &cr.subs.targets[0];
        let g = cr.state.read().unwrap();
        let (key, tracked) = g.objects.iter().next().unwrap();
        let l = links(&index, target, &key.0, &tracked.per_target[0]);
        let slots = l.slots.iter().map(|s| (s.slot.to_string(), s.desired.clone(), s.mismatch)).collect();
        let pods = l.workloads.iter().map(|w| (w.pods, w.outdated)).collect();
        (l.generation_observed(), slots, pods)
    }

    const KA: &str = "targets: [{preset: kubearmor, namespace: ka}]\n";

    fn cr(image: &str) -> String {
        format!(
            r#"{{"metadata":{{"name":"cfg","namespace":"ka","uid":"c","resourceVersion":"1","generation":2}},
            "spec":{{"kubearmorImage":{{"image":"{image}"}}}},"status":{{"phase":"Running"}}}}"#
        )
    }

    fn ds(image: &str, updated: i64) -> String {
        format!(
            r#"{{"metadata":{{"name":"kubearmor-bpf-containerd-98c2c","namespace":"ka","uid":"d","resourceVersion":"2","generation":1}},
            "spec":{{"template":{{"spec":{{"containers":[{{"name":"kubearmor","image":"{image}"}}],
            "initContainers":[{{"name":"init","image":"docker.io/kubearmor/kubearmor-init:stable"}}]}}}}}},
            "status":{{"observedGeneration":1,"desiredNumberScheduled":2,"currentNumberScheduled":2,"updatedNumberScheduled":{updated},"numberAvailable":2,"numberReady":2}}}}"#
        )
    }

    fn pod(name: &str, image: &str) -> String {
        format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"ka","uid":"{name}","resourceVersion":"3","labels":{{"kubearmor-app":"kubearmor"}},
            "ownerReferences":[{{"kind":"DaemonSet","name":"kubearmor-bpf-containerd-98c2c","controller":true}}]}},
            "spec":{{"nodeName":"n","containers":[{{"name":"kubearmor","image":"{image}"}}],"initContainers":[{{"name":"init","image":"docker.io/kubearmor/kubearmor-init:stable"}}]}},
            "status":{{"conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
        )
    }

    #[test]
    fn stuck_update_is_a_mismatch_and_unobserved_generation() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        put(&w, "DaemonSet", &ds("docker.io/kubearmor/kubearmor:v1", 2));
        put(&w, "Pod", &pod("p1", "docker.io/kubearmor/kubearmor:v1"));
        put(&w, "Pod", &pod("p2", "docker.io/kubearmor/kubearmor:v1"));
        let (observed, slots, pods) = kubearmor_links(&w);
        assert_eq!(observed, Some(false));
        assert!(slots.contains(&("kubearmor".into(), "kubearmor/kubearmor:v2".into(), true)));
        // The init slot's CR field is empty: the default applies and matches.
        assert!(slots.contains(&("init".into(), "docker.io/kubearmor/kubearmor-init:stable".into(), false)));
        assert_eq!(pods, vec![(2, 0)]);
    }

    #[test]
    fn a_registry_mirror_rewrite_is_not_a_mismatch_when_configured() {
        // An admission webhook rewrote the DaemonSet and one pod to the mirror; the other pod
        // was created before the webhook and names Docker Hub.
        let load = |config: &str| {
            let w = setup(config);
            put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
            put(&w, "DaemonSet", &ds("mirror.example/hub/kubearmor/kubearmor:v2", 2));
            put(&w, "Pod", &pod("p1", "mirror.example/hub/kubearmor/kubearmor:v2"));
            put(&w, "Pod", &pod("p2", "kubearmor/kubearmor:v2"));
            kubearmor_links(&w)
        };
        let (observed, slots, pods) =
            load(&format!("registryMirrors: [{{from: docker.io, to: mirror.example/hub}}]\n{KA}"));
        assert_eq!(observed, Some(true));
        assert!(slots.iter().all(|s| !s.2), "{slots:?}");
        assert_eq!(pods, vec![(2, 0)]);
        // Without the option the rewrite reads as a permanent mismatch.
        let (observed, slots, pods) = load(KA);
        assert_eq!(observed, Some(false));
        assert!(slots.contains(&("kubearmor".into(), "kubearmor/kubearmor:v2".into(), true)));
        assert_eq!(pods, vec![(2, 1)]);
    }

    /// The DaemonSet at template generation `generation` (OnDelete), its pods labelled with theirs.
    fn on_delete_ds(generation: i64) -> String {
        ds("docker.io/kubearmor/kubearmor:v2", 0)
            .replace(r#""generation":1}"#, &format!(r#""generation":{generation},"annotations":{{"deprecated.daemonset.template.generation":"{generation}"}}}}"#))
            .replace(r#""spec":{"template""#, r#""spec":{"updateStrategy":{"type":"OnDelete"},"template""#)
            .replace(r#""observedGeneration":1"#, &format!(r#""observedGeneration":{generation}"#))
    }

    fn pod_of_generation(name: &str, generation: i64) -> String {
        pod(name, "kubearmor/kubearmor:v2").replace(
            r#""labels":{"kubearmor-app":"kubearmor"}"#,
            &format!(r#""labels":{{"kubearmor-app":"kubearmor","pod-template-generation":"{generation}","controller-revision-hash":"h{generation}"}}"#),
        )
    }

    #[test]
    fn an_env_change_on_an_on_delete_daemonset_leaves_old_pods_outdated() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        put(&w, "DaemonSet", &on_delete_ds(1));
        put(&w, "Pod", &pod_of_generation("p1", 1));
        put(&w, "Pod", &pod_of_generation("p2", 1));
        assert_eq!(kubearmor_links(&w).2, vec![(2, 0)]);
        // Same images, new env: the template generation moves, the pods stay on the old one.
        put(&w, "DaemonSet", &on_delete_ds(2));
        let (observed, slots, pods) = kubearmor_links(&w);
        assert!(slots.iter().all(|s| !s.2), "the images still match: {slots:?}");
        assert_eq!(pods, vec![(2, 2)]);
        assert_eq!(observed, Some(false));
        // One pod deleted and re-created by the controller from the new template.
        put(&w, "Pod", &pod_of_generation("p1", 2));
        assert_eq!(kubearmor_links(&w).2, vec![(2, 1)]);
    }

    const DEPLOY: &str =
        "targets: [{name: d, resource: {group: apps, version: v1, kind: Deployment}, namespaces: [a]}]\n";

    /// Deployment `web` (UID `dw`) at revision `revision`, template image `web:1`.
    fn web(revision: i64) -> String {
        format!(
            r#"{{"metadata":{{"name":"web","namespace":"a","uid":"dw","resourceVersion":"{revision}","generation":{revision},
            "annotations":{{"deployment.kubernetes.io/revision":"{revision}"}}}},
            "spec":{{"replicas":3,"template":{{"spec":{{"containers":[{{"name":"app","image":"web:1"}}]}}}}}},
            "status":{{"observedGeneration":{revision},"replicas":4,"updatedReplicas":1,"availableReplicas":3,"readyReplicas":3}}}}"#
        )
    }

    /// ReplicaSet `web-HASH` at `revision`, controlled by `owner`.
    fn web_rs(hash: &str, revision: i64, owner: &str) -> String {
        format!(
            r#"{{"metadata":{{"name":"web-{hash}","namespace":"a","uid":"rs-{hash}","resourceVersion":"1",
            "labels":{{"app":"web","pod-template-hash":"{hash}"}},"annotations":{{"deployment.kubernetes.io/revision":"{revision}"}},
            "ownerReferences":[{{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":"{owner}","controller":true}}]}},
            "spec":{{"template":{{"spec":{{"containers":[{{"name":"app","image":"web:1"}}]}}}}}}}}"#
        )
    }

    fn web_pod(name: &str, hash: &str, image: &str) -> String {
        format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"a","uid":"{name}","resourceVersion":"1","labels":{{"app":"web","pod-template-hash":"{hash}"}},
            "ownerReferences":[{{"kind":"ReplicaSet","name":"web-{hash}","uid":"rs-{hash}","controller":true}}]}},
            "spec":{{"containers":[{{"name":"app","image":"{image}"}}]}},"status":{{"conditions":[{{"type":"Ready","status":"True"}}]}}}}"#
        )
    }

    /// (pods, outdated) of Deployment `a/web`, and its current hash.
    fn web_counts(watches: &[Watch]) -> ((usize, usize), Option<String>) {
        let guards: Vec<_> = watches.iter().map(|w| (&w.key, w.state.read().unwrap())).collect();
        let states: Vec<_> = guards.iter().map(|(k, g)| (*k, &**g)).collect();
        let index = Index::new(states);
        let d = watches.iter().find(|w| w.key.gvk.kind == "Deployment").unwrap().state.read().unwrap();
        let r = &d.objects[&(Arc::from("a"), Arc::from("web"))];
        let Some(BuiltinFacts::Workload(w)) = &r.kind else { panic!("{:?}", r.kind) };
        (index.pod_counts("a", "web", &r.uid, w), index.current_hash("a", "web", &r.uid, w).map(String::from))
    }

    #[test]
    fn a_deployment_s_current_replica_set_is_the_one_of_its_revision() {
        let w = setup(DEPLOY);
        assert!(
            w.iter().any(|x| x.key.gvk.kind == "ReplicaSet" && x.key.namespace == "a"),
            "watched beside the pods"
        );
        put(&w, "Deployment", &web(2));
        put(&w, "ReplicaSet", &web_rs("h1", 1, "dw"));
        put(&w, "ReplicaSet", &web_rs("h2", 2, "dw"));
        // A namesake's ReplicaSet (another Deployment `web-api`) and one of a former `web`.
        put(&w, "ReplicaSet", &web_rs("api-h9", 2, "other"));
        put(&w, "ReplicaSet", &web_rs("h8", 2, "former"));
        for (name, hash) in [("p1", "h1"), ("p2", "h1"), ("p3", "h2")] {
            put(&w, "Pod", &web_pod(name, hash, "web:1"));
        }
        // Same image everywhere: only the template hash tells the old pods apart.
        assert_eq!(web_counts(&w), ((3, 2), Some("h2".into())));
        // The rollout finishes: every pod on the current ReplicaSet.
        for name in ["p1", "p2"] {
            put(&w, "Pod", &web_pod(name, "h2", "web:1"));
        }
        assert_eq!(web_counts(&w), ((3, 0), Some("h2".into())));
    }

    #[test]
    fn without_the_current_replica_set_a_deployment_s_pods_are_compared_by_image() {
        let w = setup(DEPLOY);
        put(&w, "Deployment", &web(3));
        for (name, hash, image) in [("p1", "h1", "web:1"), ("p2", "h2", "web:1"), ("p3", "h2", "web:0")] {
            put(&w, "Pod", &web_pod(name, hash, image));
        }
        // No ReplicaSet listed yet: only the image of p3 differs.
        assert_eq!(web_counts(&w), ((3, 1), None));
        // ReplicaSets of older revisions only (revision 3's not seen yet), or of another owner.
        put(&w, "ReplicaSet", &web_rs("h1", 1, "dw"));
        put(&w, "ReplicaSet", &web_rs("h2", 2, "dw"));
        put(&w, "ReplicaSet", &web_rs("h3", 3, "someone-else"));
        assert_eq!(web_counts(&w), ((3, 1), None));
        put(&w, "ReplicaSet", &web_rs("h3", 3, "dw"));
        assert_eq!(web_counts(&w), ((3, 3), Some("h3".into())));
    }

    #[test]
    fn converged_after_rollout() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        put(&w, "DaemonSet", &ds("docker.io/kubearmor/kubearmor:v2", 2));
        put(&w, "Pod", &pod("p1", "kubearmor/kubearmor:v2"));
        put(&w, "Pod", &pod("p2", "kubearmor/kubearmor:v2"));
        assert_eq!(kubearmor_links(&w).0, Some(true));
    }

    #[test]
    fn template_updated_but_pods_old_is_not_observed() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        put(&w, "DaemonSet", &ds("docker.io/kubearmor/kubearmor:v2", 2));
        put(&w, "Pod", &pod("p1", "kubearmor/kubearmor:v2"));
        put(&w, "Pod", &pod("p2", "kubearmor/kubearmor:v1"));
        let (observed, _, pods) = kubearmor_links(&w);
        assert_eq!(observed, Some(false));
        assert_eq!(pods, vec![(2, 1)]);
    }

    #[test]
    fn operator_pin_wins_over_the_cr() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        put(&w, "DaemonSet", &ds("registry.local/kubearmor:pinned", 2));
        put(
            &w,
            "Deployment",
            r#"{"metadata":{"name":"kubearmor-operator","namespace":"ka","uid":"o","resourceVersion":"4","generation":1},
            "spec":{"template":{"spec":{"containers":[{"name":"operator","image":"op","env":[{"name":"RELATED_IMAGE_KUBEARMOR","value":"registry.local/kubearmor:pinned"}]}]}}}}"#,
        );
        put(&w, "Pod", &pod("p1", "registry.local/kubearmor:pinned"));
        let (_, slots, _) = kubearmor_links(&w);
        assert!(
            slots.contains(&("kubearmor".into(), "registry.local/kubearmor:pinned".into(), false)),
            "{slots:?}"
        );
    }

    /// Links of the one KubeArmorConfig, with `f` applied to its timed facts first.
    fn ka_links_with(
        watches: &[Watch],
        f: impl Fn(&mut TimedFacts),
    ) -> (Option<f64>, Vec<String>, Option<f64>) {
        let guards: Vec<_> = watches.iter().map(|w| (&w.key, w.state.read().unwrap())).collect();
        let states: Vec<_> = guards.iter().map(|(k, g)| (*k, &**g)).collect();
        let index = Index::new(states);
        let cr = watches.iter().find(|w| w.key.gvk.kind == "KubeArmorConfig").unwrap();
        let g = cr.state.read().unwrap();
        let (key, tracked) = g.objects.iter().next().unwrap();
        let mut tf = tracked.per_target[0].clone();
        f(&mut tf);
        let l = links(&index, &cr.subs.targets[0], &key.0, &tf);
        let missing = l.required_missing.iter().map(|s| s.to_string()).collect();
        (l.mismatch_since, missing, l.required_missing_since)
    }

    fn mark_synced(watches: &[Watch]) {
        for w in watches {
            w.write(|s| s.health.synced = true);
        }
    }

    /// Applies the operator Deployment to the watches that would hold it (not the relay's or
    /// the controller's by-name watches).
    fn put_operator(watches: &[Watch], json: &str, at: f64) {
        let obj: RawObject = serde_json::from_str(json).unwrap();
        for w in watches.iter().filter(|w| {
            w.key.gvk.kind == "Deployment"
                && (w.key.field_selector.is_empty() || w.key.field_selector.contains("kubearmor-operator"))
        }) {
            w.write(|s| {
                s.apply(&w.subs, &obj, at);
            });
        }
    }

    fn operator(pin: Option<&str>, generation: i64, updated: i64) -> String {
        let env = pin
            .map(|p| format!(r#","env":[{{"name":"RELATED_IMAGE_KUBEARMOR","value":"{p}"}}]"#))
            .unwrap_or_default();
        format!(
            r#"{{"metadata":{{"name":"kubearmor-operator","namespace":"ka","uid":"o","resourceVersion":"{generation}{updated}","generation":{generation}}},
            "spec":{{"replicas":1,"template":{{"spec":{{"containers":[{{"name":"operator","image":"op"{env}}}]}}}}}},
            "status":{{"observedGeneration":{generation},"replicas":1,"updatedReplicas":{updated},"availableReplicas":1,"readyReplicas":1}}}}"#
        )
    }

    #[test]
    fn a_pin_change_restarts_the_image_clock_and_an_operator_rollout_holds_it() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        put(&w, "DaemonSet", &ds("registry.local/kubearmor:p1", 2));
        put_operator(&w, &operator(Some("registry.local/kubearmor:p1"), 1, 1), NOW);
        // The CR's generation was first seen weeks ago; the pin matches: no mismatch.
        let old = |tf: &mut TimedFacts| {
            tf.generation_first_seen = 1000.0;
            tf.desired_changed = 1000.0;
        };
        assert_eq!(ka_links_with(&w, old).0, None);
        // A Helm upgrade changes the pin (template changes at NOW); the operator rolls out.
        let later = NOW + 50.0;
        put_operator(&w, &operator(Some("registry.local/kubearmor:p2"), 2, 0), NOW);
        put_operator(&w, &operator(Some("registry.local/kubearmor:p2"), 2, 1), later);
        // The clock starts at the pin change (and the operator's last rollout step), not at
        // the generation first seen.
        assert_eq!(ka_links_with(&w, old).0, Some(later));
        // An operator that keeps moving its counters (crash loop) holds it for at most
        // stalledAfter (15m default) after its template change.
        put_operator(&w, &operator(Some("registry.local/kubearmor:p2"), 2, 0), NOW + 5000.0);
        put_operator(&w, &operator(Some("registry.local/kubearmor:p2"), 2, 1), NOW + 6000.0);
        assert_eq!(ka_links_with(&w, old).0, Some(NOW + 900.0));
    }

    #[test]
    fn a_stated_reference_change_without_a_generation_starts_the_clock() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        put(&w, "DaemonSet", &ds("docker.io/kubearmor/kubearmor:v1", 2));
        let since = ka_links_with(&w, |tf| {
            tf.generation_first_seen = 1000.0;
            tf.desired_changed = NOW + 100.0;
        })
        .0;
        assert_eq!(since, Some(NOW + 100.0));
    }

    #[test]
    fn a_required_slot_without_workloads_is_missing_once_synced() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        // Not listed yet: no verdict on absence.
        assert_eq!(ka_links_with(&w, |_| {}).1, Vec::<String>::new());
        mark_synced(&w);
        put(&w, "DaemonSet", &ds("docker.io/kubearmor/kubearmor:v2", 2));
        assert_eq!(ka_links_with(&w, |_| {}).1, Vec::<String>::new());
        let text = ds("x", 2);
        let gone: RawObject = serde_json::from_str(&text).unwrap();
        for x in w.iter().filter(|x| x.key.gvk.kind == "DaemonSet") {
            x.write(|s| s.delete_at(&gone, NOW + 30.0));
        }
        let (_, missing, since) = ka_links_with(&w, |tf| tf.generation_first_seen = 1000.0);
        // Only the agent slot is required; the init slot lives in the same DaemonSets.
        assert_eq!(missing, vec!["kubearmor".to_string()]);
        assert_eq!(since, Some(NOW + 30.0));
    }

    #[test]
    fn missing_workloads_are_reported_not_hidden() {
        let w = setup(KA);
        put(&w, "KubeArmorConfig", &cr("kubearmor/kubearmor:v2"));
        let (observed, slots, _) = kubearmor_links(&w);
        assert_eq!(observed, None);
        assert!(slots.is_empty());
    }
}
