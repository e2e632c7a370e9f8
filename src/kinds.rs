//! Facts of the built-in kinds the convergence model joins: workloads, pods, nodes, leases,
//! events and APIServices. Each is decoded from its raw fields into a small typed struct;
//! only what the image triangle, rollouts and context signals need is kept.

use std::{borrow::Cow, collections::HashSet, sync::Arc};

use serde::Deserialize;

use crate::{config::Gvk, facts::parse_time, object::RawObject};

/// Which typed extraction a watch's objects get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Deployment,
    DaemonSet,
    StatefulSet,
    Pod,
    Node,
    Lease,
    Event,
    ApiService,
}

impl Kind {
    pub fn of(gvk: &Gvk) -> Option<Kind> {
        Some(match (gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str()) {
            ("apps", "v1", "Deployment") => Kind::Deployment,
            ("apps", "v1", "DaemonSet") => Kind::DaemonSet,
            ("apps", "v1", "StatefulSet") => Kind::StatefulSet,
            ("", "v1", "Pod") => Kind::Pod,
            ("", "v1", "Node") => Kind::Node,
            ("coordination.k8s.io", "v1", "Lease") => Kind::Lease,
            ("", "v1", "Event") => Kind::Event,
            ("apiregistration.k8s.io", "v1", "APIService") => Kind::ApiService,
            _ => return None,
        })
    }

    pub fn is_workload(self) -> bool {
        matches!(self, Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::DaemonSet => "DaemonSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::Pod => "Pod",
            Kind::Node => "Node",
            Kind::Lease => "Lease",
            Kind::Event => "Event",
            Kind::ApiService => "APIService",
        }
    }
}

/// Shares repeated strings (images, node names, container names) between objects.
#[derive(Debug, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(v) = self.0.get(s) {
            return v.clone();
        }
        let v: Arc<str> = Arc::from(s);
        self.0.insert(v.clone());
        v
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum KindFacts {
    /// Boxed: workloads are few, and the enum stays as small as the pod variant (pods are many).
    Workload(Box<WorkloadFacts>),
    Pod(PodFacts),
    Node {
        ready: Option<bool>,
    },
    Lease(LeaseFacts),
    Event(EventFacts),
    ApiService {
        available: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RollingUpdate,
    OnDelete,
    Recreate,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerImage {
    pub name: Arc<str>,
    pub image: Arc<str>,
    pub init: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadFacts {
    pub kind: Kind,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub containers: Vec<ContainerImage>,
    /// Literal env values of the names the config asks about (operator image pins, F8).
    pub env: Vec<(Box<str>, Box<str>)>,
    pub strategy: Strategy,
    pub partition: i64,
    pub desired: i64,
    pub updated: i64,
    pub available: i64,
    pub ready: i64,
    /// Pods of any revision (status.replicas / currentNumberScheduled).
    pub total: i64,
    pub update_revision: Option<Box<str>>,
    pub current_revision: Option<Box<str>>,
    /// Deployment `Progressing=False, reason=ProgressDeadlineExceeded`.
    pub deadline_exceeded: bool,
}

impl WorkloadFacts {
    pub fn observed(&self) -> bool {
        match (self.generation, self.observed_generation) {
            (Some(g), Some(o)) => o >= g,
            _ => false,
        }
    }

    /// Whether the controller finished rolling out the current template (partition and
    /// OnDelete aware). OnDelete is complete once the controller has nothing left to do;
    /// pods still on the old template are reported as outdated, never hidden.
    pub fn complete(&self) -> bool {
        if !self.observed() {
            return false;
        }
        match (self.kind, self.strategy) {
            (_, Strategy::OnDelete) => self.available >= self.desired,
            (Kind::StatefulSet, _) => {
                let wanted = (self.desired - self.partition).max(0);
                self.updated >= wanted
                    && self.ready >= self.desired
                    && (self.partition > 0 || self.update_revision == self.current_revision)
            }
            (Kind::DaemonSet, _) => self.updated >= self.desired && self.available >= self.desired,
            _ => self.updated >= self.desired && self.available >= self.desired && self.total <= self.desired,
        }
    }

    /// The counters moved toward desired since `prev` (the last-progress clock, F9).
    pub fn progressed_since(&self, prev: &WorkloadFacts) -> bool {
        self.generation != prev.generation
            || self.updated > prev.updated
            || self.available > prev.available
            || self.ready > prev.ready
            || (self.total < prev.total && self.total >= self.desired)
    }

    pub fn container(&self, name: &str, init: bool) -> Option<&ContainerImage> {
        self.containers.iter().find(|c| &*c.name == name && c.init == init)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodContainer {
    pub name: Arc<str>,
    pub init: bool,
    pub spec_image: Arc<str>,
    pub status_image: Option<Arc<str>>,
    pub image_id: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodFacts {
    /// The controlling workload: (kind, name); a ReplicaSet's pod maps to its Deployment.
    pub owner: Option<(Kind, Arc<str>)>,
    pub node: Option<Arc<str>>,
    pub ready: bool,
    pub restarts: u32,
    pub revision: Option<Arc<str>>,
    pub containers: Vec<PodContainer>,
    pub deleting: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LeaseFacts {
    pub holder: Option<Box<str>>,
    pub renew: Option<f64>,
    pub transitions: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventFacts {
    pub warning: bool,
    pub involved_kind: Box<str>,
    pub involved_namespace: Box<str>,
    pub involved_name: Box<str>,
    pub reason: Box<str>,
    pub count: u64,
}

// === wire shapes (only the fields we read) ===

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WSpec<'a> {
    replicas: Option<i64>,
    #[serde(borrow)]
    template: Option<PodTemplate<'a>>,
    #[serde(borrow)]
    update_strategy: Option<UpdateStrategy<'a>>,
    #[serde(borrow)]
    strategy: Option<UpdateStrategy<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UpdateStrategy<'a> {
    #[serde(rename = "type", borrow)]
    type_: Option<Cow<'a, str>>,
    rolling_update: Option<RollingUpdate>,
}

#[derive(Deserialize, Default)]
struct RollingUpdate {
    partition: Option<i64>,
}

#[derive(Deserialize, Default)]
struct PodTemplate<'a> {
    #[serde(borrow)]
    spec: Option<PodSpec<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec<'a> {
    #[serde(borrow, default)]
    containers: Vec<Container<'a>>,
    #[serde(borrow, default)]
    init_containers: Vec<Container<'a>>,
}

/// A pod's own spec: only what the image triangle needs.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodOwnSpec<'a> {
    #[serde(borrow, default)]
    containers: Vec<ImageOnly<'a>>,
    #[serde(borrow, default)]
    init_containers: Vec<ImageOnly<'a>>,
    #[serde(borrow)]
    node_name: Option<Cow<'a, str>>,
}

/// A pod's container: only name and image (env, probes, mounts are skipped unparsed).
#[derive(Deserialize)]
struct ImageOnly<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    image: Cow<'a, str>,
}

/// The two labels a pod's workload revision is read from; other labels are skipped.
#[derive(Deserialize, Default)]
struct RevisionLabels<'a> {
    #[serde(rename = "pod-template-hash", borrow)]
    template_hash: Option<Cow<'a, str>>,
    #[serde(rename = "controller-revision-hash", borrow)]
    revision: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Container<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    image: Cow<'a, str>,
    #[serde(borrow, default)]
    env: Vec<EnvVar<'a>>,
}

#[derive(Deserialize)]
struct EnvVar<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    value: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WStatus<'a> {
    observed_generation: Option<i64>,
    replicas: Option<i64>,
    updated_replicas: Option<i64>,
    available_replicas: Option<i64>,
    ready_replicas: Option<i64>,
    desired_number_scheduled: Option<i64>,
    current_number_scheduled: Option<i64>,
    updated_number_scheduled: Option<i64>,
    number_available: Option<i64>,
    number_ready: Option<i64>,
    #[serde(borrow)]
    update_revision: Option<Cow<'a, str>>,
    #[serde(borrow)]
    current_revision: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    conditions: Vec<Cond<'a>>,
}

#[derive(Deserialize)]
struct Cond<'a> {
    #[serde(rename = "type", borrow)]
    type_: Cow<'a, str>,
    #[serde(borrow, default)]
    status: Cow<'a, str>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PStatus<'a> {
    #[serde(borrow, default)]
    conditions: Vec<Cond<'a>>,
    #[serde(borrow, default)]
    container_statuses: Vec<CStatus<'a>>,
    #[serde(borrow, default)]
    init_container_statuses: Vec<CStatus<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CStatus<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    image: Option<Cow<'a, str>>,
    #[serde(rename = "imageID", borrow)]
    image_id: Option<Cow<'a, str>>,
    #[serde(default)]
    restart_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OwnerRef<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    controller: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LeaseSpec<'a> {
    #[serde(borrow)]
    holder_identity: Option<Cow<'a, str>>,
    #[serde(borrow)]
    renew_time: Option<Cow<'a, str>>,
    lease_transitions: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct InvolvedObject<'a> {
    #[serde(borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Cow<'a, str>,
}

fn field<'a, T: Deserialize<'a> + Default>(obj: &RawObject<'a>, name: &str) -> Option<T> {
    match obj.field(name) {
        None => Some(T::default()),
        Some(raw) => serde_json::from_str(raw.get()).ok(),
    }
}

/// Extracts the facts of a built-in kind; `None` when the object is malformed (it is then
/// tracked without kind facts and counted as a decode problem by the caller).
pub fn extract(
    kind: Kind,
    obj: &RawObject,
    env_names: &[String],
    strings: &mut Interner,
) -> Option<KindFacts> {
    Some(match kind {
        Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet => {
            KindFacts::Workload(Box::new(workload(kind, obj, env_names, strings)?))
        }
        Kind::Pod => KindFacts::Pod(pod(obj, strings)?),
        Kind::Node => {
            let st: PStatus = field(obj, "status")?;
            let ready = st.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.status == "True");
            KindFacts::Node { ready }
        }
        Kind::Lease => {
            let spec: LeaseSpec = field(obj, "spec")?;
            KindFacts::Lease(LeaseFacts {
                holder: spec.holder_identity.map(|h| h.into()),
                renew: spec.renew_time.as_deref().and_then(parse_time),
                transitions: spec.lease_transitions,
            })
        }
        Kind::Event => {
            let involved: InvolvedObject = field(obj, "involvedObject")?;
            let text = |name: &str| -> Option<String> {
                obj.field(name)
                    .and_then(|r| serde_json::from_str::<Cow<str>>(r.get()).ok())
                    .map(|c| c.into_owned())
            };
            let count =
                obj.field("count").and_then(|r| serde_json::from_str::<u64>(r.get()).ok()).unwrap_or(1);
            KindFacts::Event(EventFacts {
                warning: text("type").as_deref() == Some("Warning"),
                involved_kind: involved.kind.into(),
                involved_namespace: involved.namespace.into(),
                involved_name: involved.name.into(),
                reason: text("reason").unwrap_or_default().into(),
                count: count.max(1),
            })
        }
        Kind::ApiService => {
            let st: PStatus = field(obj, "status")?;
            KindFacts::ApiService {
                available: st.conditions.iter().any(|c| c.type_ == "Available" && c.status == "True"),
            }
        }
    })
}

fn workload(
    kind: Kind,
    obj: &RawObject,
    env_names: &[String],
    strings: &mut Interner,
) -> Option<WorkloadFacts> {
    let spec: WSpec = field(obj, "spec")?;
    let st: WStatus = field(obj, "status")?;
    let strategy_src = if kind == Kind::Deployment { &spec.strategy } else { &spec.update_strategy };
    let strategy = match strategy_src.as_ref().and_then(|s| s.type_.as_deref()) {
        Some("OnDelete") => Strategy::OnDelete,
        Some("Recreate") => Strategy::Recreate,
        _ => Strategy::RollingUpdate,
    };
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let pod_spec = spec.template.and_then(|t| t.spec).unwrap_or_default();
    let mut containers = Vec::new();
    let mut env = Vec::new();
    for (list, init) in [(&pod_spec.containers, false), (&pod_spec.init_containers, true)] {
        for c in list {
            containers.push(ContainerImage {
                name: strings.get(&c.name),
                image: strings.get(&c.image),
                init,
            });
            for e in &c.env {
                if let Some(v) = &e.value
                    && env_names.iter().any(|n| *n == e.name)
                {
                    env.push((Box::from(&*e.name), Box::from(&**v)));
                }
            }
        }
    }
    let n = |v: Option<i64>| v.unwrap_or(0);
    let (desired, updated, available, ready, total) = match kind {
        Kind::DaemonSet => (
            n(st.desired_number_scheduled),
            n(st.updated_number_scheduled),
            n(st.number_available),
            n(st.number_ready),
            n(st.current_number_scheduled),
        ),
        _ => (
            spec.replicas.unwrap_or(1),
            n(st.updated_replicas),
            n(st.available_replicas),
            n(st.ready_replicas),
            n(st.replicas),
        ),
    };
    let deadline_exceeded = st.conditions.iter().any(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    Some(WorkloadFacts {
        kind,
        generation: obj.meta.generation,
        observed_generation: st.observed_generation,
        containers,
        env,
        strategy,
        partition,
        desired,
        updated,
        available,
        ready,
        total,
        update_revision: st.update_revision.map(|s| s.into()),
        current_revision: st.current_revision.map(|s| s.into()),
        deadline_exceeded,
    })
}

fn pod(obj: &RawObject, strings: &mut Interner) -> Option<PodFacts> {
    let spec: PodOwnSpec = field(obj, "spec")?;
    let st: PStatus = field(obj, "status")?;
    let owners: Vec<OwnerRef> =
        obj.meta.owner_references.map_or(Some(Vec::new()), |r| serde_json::from_str(r.get()).ok())?;
    let labels: RevisionLabels =
        obj.meta.labels.map_or(Some(RevisionLabels::default()), |r| serde_json::from_str(r.get()).ok())?;
    let owner = owners.iter().find(|o| o.controller).and_then(|o| match &*o.kind {
        "DaemonSet" => Some((Kind::DaemonSet, strings.get(&o.name))),
        "StatefulSet" => Some((Kind::StatefulSet, strings.get(&o.name))),
        // A ReplicaSet is named `<deployment>-<pod-template-hash>`.
        "ReplicaSet" => {
            let hash = labels.template_hash.as_deref()?;
            let deployment = o.name.strip_suffix(hash)?.strip_suffix('-')?;
            Some((Kind::Deployment, strings.get(deployment)))
        }
        _ => None,
    });
    let mut containers = Vec::new();
    let mut restarts = 0;
    for (list, statuses, init) in [
        (&spec.containers, &st.container_statuses, false),
        (&spec.init_containers, &st.init_container_statuses, true),
    ] {
        for c in list {
            let status = statuses.iter().find(|s| s.name == c.name);
            if !init {
                restarts += status.map_or(0, |s| s.restart_count);
            }
            containers.push(PodContainer {
                name: strings.get(&c.name),
                init,
                spec_image: strings.get(&c.image),
                status_image: status
                    .and_then(|s| s.image.as_deref())
                    .filter(|s| !s.is_empty())
                    .map(|s| strings.get(s)),
                image_id: status
                    .and_then(|s| s.image_id.as_deref())
                    .filter(|s| !s.is_empty())
                    .map(|s| strings.get(s)),
            });
        }
    }
    Some(PodFacts {
        owner,
        node: spec.node_name.as_deref().map(|n| strings.get(n)),
        ready: st.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"),
        restarts,
        revision: labels.revision.as_deref().map(|r| strings.get(r)),
        containers,
        deleting: obj.meta.deletion_timestamp.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawObject<'_> {
        serde_json::from_str(json).unwrap()
    }

    fn ds(updated: i64, available: i64, strategy: &str) -> String {
        format!(
            r#"{{"metadata":{{"name":"ka","generation":2}},"spec":{{"updateStrategy":{{"type":"{strategy}"}},"template":{{"spec":{{
            "containers":[{{"name":"kubearmor","image":"kubearmor/kubearmor:v2"}}],"initContainers":[{{"name":"init","image":"kubearmor/kubearmor-init:v2"}}]}}}}}},
            "status":{{"observedGeneration":2,"desiredNumberScheduled":3,"currentNumberScheduled":3,"updatedNumberScheduled":{updated},"numberAvailable":{available},"numberReady":{available}}}}}"#
        )
    }

    fn wl(json: &str) -> WorkloadFacts {
        match extract(
            Kind::of(&Gvk::new("apps", "v1", "DaemonSet")).unwrap(),
            &raw(json),
            &[],
            &mut Interner::default(),
        ) {
            Some(KindFacts::Workload(w)) => *w,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn daemonset_rollout() {
        let w = wl(&ds(3, 3, "RollingUpdate"));
        assert!(w.complete());
        assert_eq!(w.container("init", true).unwrap().image.as_ref(), "kubearmor/kubearmor-init:v2");
        assert!(!wl(&ds(2, 3, "RollingUpdate")).complete());
        assert!(!wl(&ds(3, 2, "RollingUpdate")).complete());
        // OnDelete: nothing to do for the controller once pods are available, even if not updated.
        assert!(wl(&ds(0, 3, "OnDelete")).complete());
        assert!(wl(&ds(2, 3, "RollingUpdate")).progressed_since(&wl(&ds(1, 3, "RollingUpdate"))));
        assert!(!wl(&ds(1, 3, "RollingUpdate")).progressed_since(&wl(&ds(1, 3, "RollingUpdate"))));
    }

    #[test]
    fn statefulset_partition() {
        let sts = |updated: i64, partition: i64, cur: &str| {
            let j = format!(
                r#"{{"metadata":{{"generation":1}},"spec":{{"replicas":4,"updateStrategy":{{"type":"RollingUpdate","rollingUpdate":{{"partition":{partition}}}}}}},
                "status":{{"observedGeneration":1,"replicas":4,"readyReplicas":4,"updatedReplicas":{updated},"currentRevision":"{cur}","updateRevision":"r2"}}}}"#
            );
            match extract(Kind::StatefulSet, &raw(&j), &[], &mut Interner::default()) {
                Some(KindFacts::Workload(w)) => *w,
                _ => unreachable!(),
            }
        };
        assert!(sts(2, 2, "r1").complete());
        assert!(!sts(1, 2, "r1").complete());
        assert!(!sts(4, 0, "r1").complete());
        assert!(sts(4, 0, "r2").complete());
    }

    #[test]
    fn deployment_old_pods_block_completion_and_env_pins_are_kept() {
        let j = r#"{"metadata":{"generation":3},"spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"operator","image":"op:1",
            "env":[{"name":"RELATED_IMAGE_KUBEARMOR","value":"docker.io/kubearmor/kubearmor:pinned"},{"name":"OTHER","value":"x"},
            {"name":"FROM","valueFrom":{"fieldRef":{"fieldPath":"metadata.namespace"}}}]}]}}},
            "status":{"observedGeneration":3,"replicas":3,"updatedReplicas":2,"availableReplicas":2,"readyReplicas":2,
            "conditions":[{"type":"Progressing","status":"False","reason":"ProgressDeadlineExceeded"}]}}"#;
        let w = match extract(
            Kind::Deployment,
            &raw(j),
            &["RELATED_IMAGE_KUBEARMOR".into()],
            &mut Interner::default(),
        ) {
            Some(KindFacts::Workload(w)) => *w,
            _ => unreachable!(),
        };
        assert!(!w.complete(), "an old pod is still running");
        assert!(w.deadline_exceeded);
        assert_eq!(
            w.env,
            vec![(Box::from("RELATED_IMAGE_KUBEARMOR"), Box::from("docker.io/kubearmor/kubearmor:pinned"))]
        );
    }

    #[test]
    fn pod_owner_images_and_readiness() {
        let j = r#"{"metadata":{"name":"web-7d4b9-abcde","labels":{"pod-template-hash":"7d4b9"},
            "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9","uid":"x","controller":true}]},
            "spec":{"nodeName":"n1","containers":[{"name":"app","image":"web:2"}]},
            "status":{"conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"app","image":"docker.io/library/web:2",
            "imageID":"docker.io/library/web@sha256:abc","restartCount":3}]}}"#;
        let mut s = Interner::default();
        let p = match extract(Kind::Pod, &raw(j), &[], &mut s) {
            Some(KindFacts::Pod(p)) => p,
            _ => unreachable!(),
        };
        assert_eq!(p.owner, Some((Kind::Deployment, Arc::from("web"))));
        assert_eq!(p.node.as_deref(), Some("n1"));
        assert!(p.ready);
        assert_eq!(p.restarts, 3);
        assert_eq!(p.containers[0].status_image.as_deref(), Some("docker.io/library/web:2"));
    }

    #[test]
    fn malformed_kinds_are_none() {
        assert!(
            extract(
                Kind::Pod,
                &raw(r#"{"metadata":{},"spec":{"containers":"x"}}"#),
                &[],
                &mut Interner::default()
            )
            .is_none()
        );
        assert!(
            extract(
                Kind::DaemonSet,
                &raw(r#"{"metadata":{},"status":{"numberReady":"x"}}"#),
                &[],
                &mut Interner::default()
            )
            .is_none()
        );
    }

    #[test]
    fn lease_event_apiservice_node() {
        let mut s = Interner::default();
        let l = extract(
            Kind::Lease,
            &raw(
                r#"{"metadata":{},"spec":{"holderIdentity":"op-1","renewTime":"2024-01-01T00:00:00.000000Z","leaseTransitions":4}}"#,
            ),
            &[],
            &mut s,
        );
        assert_eq!(
            l,
            Some(KindFacts::Lease(LeaseFacts {
                holder: Some("op-1".into()),
                renew: Some(1_704_067_200.0),
                transitions: Some(4)
            }))
        );
        let e = extract(
            Kind::Event,
            &raw(
                r#"{"metadata":{},"type":"Warning","reason":"FailedCreate","count":5,"involvedObject":{"kind":"DaemonSet","namespace":"ka","name":"d"}}"#,
            ),
            &[],
            &mut s,
        );
        assert!(matches!(e, Some(KindFacts::Event(EventFacts { warning: true, count: 5, .. }))));
        let a = extract(
            Kind::ApiService,
            &raw(r#"{"metadata":{},"status":{"conditions":[{"type":"Available","status":"False"}]}}"#),
            &[],
            &mut s,
        );
        assert_eq!(a, Some(KindFacts::ApiService { available: false }));
        let n = extract(
            Kind::Node,
            &raw(r#"{"metadata":{},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#),
            &[],
            &mut s,
        );
        assert_eq!(n, Some(KindFacts::Node { ready: Some(true) }));
    }
}
