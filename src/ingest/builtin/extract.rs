//! Extraction of the built-in kinds' facts from a decoded object. Pure: no clock, no IO.

use std::borrow::Cow;

use super::{
    BuiltinFacts, ContainerImage, EventFacts, LeaseFacts, PodContainer, PodFacts, ReplicaSetFacts, Strategy,
    WorkloadFacts,
    shapes::{
        ContainerStatus, InvolvedObject, LeaseSpec, ObjectStatus, OwnerRef, PodOwnSpec, RevisionLabels,
        WorkloadAnnotations, WorkloadSpec, WorkloadStatus, field,
    },
};
use crate::{
    ingest::{Interner, wire::RawObject},
    model::{Kind, time::parse_time},
};

/// Extracts the facts of a built-in kind; `None` when the object is malformed (it is then
/// tracked without kind facts and counted as a decode problem by the caller).
pub fn extract(
    kind: Kind,
    obj: &RawObject,
    env_names: &[String],
    strings: &mut Interner,
) -> Option<BuiltinFacts> {
    Some(match kind {
        Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet => {
            BuiltinFacts::Workload(Box::new(workload(kind, obj, env_names, strings)?))
        }
        Kind::Pod => BuiltinFacts::Pod(pod(obj, strings)?),
        Kind::ReplicaSet => BuiltinFacts::ReplicaSet(replica_set(obj)?),
        Kind::Node => {
            let st: ObjectStatus = field(obj, "status")?;
            let ready = st.conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.status == "True");
            BuiltinFacts::Node { ready }
        }
        Kind::Lease => {
            let spec: LeaseSpec = field(obj, "spec")?;
            BuiltinFacts::Lease(LeaseFacts {
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
            BuiltinFacts::Event(EventFacts {
                warning: text("type").as_deref() == Some("Warning"),
                involved_kind: involved.kind.into(),
                involved_namespace: involved.namespace.into(),
                involved_name: involved.name.into(),
                involved_uid: involved.uid.into(),
                reason: text("reason").unwrap_or_default().into(),
                count: count.max(1),
            })
        }
        Kind::ApiService => {
            let st: ObjectStatus = field(obj, "status")?;
            BuiltinFacts::ApiService {
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
    let spec: WorkloadSpec = field(obj, "spec")?;
    let st: WorkloadStatus = field(obj, "status")?;
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
    let annotations: WorkloadAnnotations = match (kind, obj.meta.annotations) {
        (Kind::DaemonSet | Kind::Deployment, Some(a)) => serde_json::from_str(a.get()).unwrap_or_default(),
        _ => WorkloadAnnotations::default(),
    };
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
        template_generation: annotations.template_generation.and_then(|g| g.parse().ok()),
        revision: annotations.revision.and_then(|r| r.parse().ok()),
        deadline_exceeded,
        mirrors: Default::default(),
    })
}

/// A ReplicaSet's controlling owner, revision and template hash; malformed owners or labels are
/// `None` (the object is then a decode problem), a malformed annotation only an unknown revision.
fn replica_set(obj: &RawObject) -> Option<ReplicaSetFacts> {
    let owners: Vec<OwnerRef> =
        obj.meta.owner_references.map_or(Some(Vec::new()), |r| serde_json::from_str(r.get()).ok())?;
    let labels: RevisionLabels =
        obj.meta.labels.map_or(Some(RevisionLabels::default()), |r| serde_json::from_str(r.get()).ok())?;
    let annotations: WorkloadAnnotations =
        obj.meta.annotations.and_then(|a| serde_json::from_str(a.get()).ok()).unwrap_or_default();
    Some(ReplicaSetFacts {
        owner_uid: owners.iter().find(|o| o.controller && !o.uid.is_empty()).map(|o| Box::from(&*o.uid)),
        revision: annotations.revision.and_then(|r| r.parse().ok()),
        template_hash: labels.template_hash.map(|h| Box::from(&*h)),
    })
}

fn pod(obj: &RawObject, strings: &mut Interner) -> Option<PodFacts> {
    if let Some(p) = &obj.typed.pod {
        let st = &p.status;
        let statuses = [&*st.container_statuses, &*st.init_container_statuses];
        return Some(pod_facts(obj, &p.spec, st.ready.0, statuses, &p.owners, &p.labels, strings));
    }
    let spec: PodOwnSpec = field(obj, "spec")?;
    let st: ObjectStatus = field(obj, "status")?;
    let owners: Vec<OwnerRef> =
        obj.meta.owner_references.map_or(Some(Vec::new()), |r| serde_json::from_str(r.get()).ok())?;
    let labels: RevisionLabels =
        obj.meta.labels.map_or(Some(RevisionLabels::default()), |r| serde_json::from_str(r.get()).ok())?;
    let ready = st.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    let statuses = [&*st.container_statuses, &*st.init_container_statuses];
    Some(pod_facts(obj, &spec, ready, statuses, &owners, &labels, strings))
}

/// A pod's facts from its decoded parts (read in the event's single read, or from raw fields).
fn pod_facts(
    obj: &RawObject,
    spec: &PodOwnSpec,
    ready: bool,
    [statuses, init_statuses]: [&[ContainerStatus]; 2],
    owners: &[OwnerRef],
    labels: &RevisionLabels,
    strings: &mut Interner,
) -> PodFacts {
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
    let mut containers = Vec::with_capacity(spec.containers.len() + spec.init_containers.len());
    let mut restarts = 0;
    for (list, statuses, init) in
        [(&spec.containers, statuses, false), (&spec.init_containers, init_statuses, true)]
    {
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
    let revision = match &owner {
        Some((Kind::Deployment, _)) => labels.template_hash.as_deref(),
        _ => labels.revision.as_deref(),
    }
    .map(|r| strings.get(r));
    PodFacts {
        owner,
        node: spec.node_name.as_deref().map(|n| strings.get(n)),
        ready,
        restarts,
        revision,
        template_generation: labels.template_generation.as_deref().and_then(|g| g.parse().ok()),
        containers,
        deleting: obj.meta.deleting,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::Gvk;

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
            Some(BuiltinFacts::Workload(w)) => *w,
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
                Some(BuiltinFacts::Workload(w)) => *w,
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
            Some(BuiltinFacts::Workload(w)) => *w,
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
            Some(BuiltinFacts::Pod(p)) => p,
            _ => unreachable!(),
        };
        assert_eq!(p.owner, Some((Kind::Deployment, Arc::from("web"))));
        assert_eq!(p.node.as_deref(), Some("n1"));
        assert!(p.ready);
        assert_eq!(p.restarts, 3);
        assert_eq!(p.containers[0].status_image.as_deref(), Some("docker.io/library/web:2"));
        assert_eq!(p.revision.as_deref(), Some("7d4b9"), "a ReplicaSet's pod: its pod-template-hash");
    }

    #[test]
    fn a_replica_set_keeps_its_controlling_owner_revision_and_hash_only() {
        let j = r#"{"metadata":{"name":"web-7d4b9","namespace":"a","labels":{"app":"web","pod-template-hash":"7d4b9"},
            "annotations":{"deployment.kubernetes.io/revision":"4","deployment.kubernetes.io/desired-replicas":"3"},
            "ownerReferences":[{"kind":"Other","name":"x","uid":"not-this"},{"apiVersion":"apps/v1","kind":"Deployment","name":"web","uid":"d-1","controller":true}]},
            "spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"app","image":"web:2"}]}}}}"#;
        let rs = extract(Kind::ReplicaSet, &raw(j), &[], &mut Interner::default());
        assert_eq!(
            rs,
            Some(BuiltinFacts::ReplicaSet(ReplicaSetFacts {
                owner_uid: Some("d-1".into()),
                revision: Some(4),
                template_hash: Some("7d4b9".into()),
            }))
        );
        // An orphan without annotations or labels: nothing known, still a ReplicaSet.
        let bare =
            extract(Kind::ReplicaSet, &raw(r#"{"metadata":{"name":"x"}}"#), &[], &mut Interner::default());
        assert_eq!(
            bare,
            Some(BuiltinFacts::ReplicaSet(ReplicaSetFacts {
                owner_uid: None,
                revision: None,
                template_hash: None
            }))
        );
        assert!(
            extract(Kind::ReplicaSet, &raw(r#"{"metadata":{"labels":"x"}}"#), &[], &mut Interner::default())
                .is_none()
        );
        // The Deployment names its current ReplicaSet's revision; a pod its ReplicaSet's hash.
        let d = r#"{"metadata":{"generation":1,"annotations":{"deployment.kubernetes.io/revision":"4"}},"spec":{},"status":{}}"#;
        match extract(Kind::Deployment, &raw(d), &[], &mut Interner::default()) {
            Some(BuiltinFacts::Workload(w)) => assert_eq!(w.revision, Some(4)),
            other => panic!("{other:?}"),
        }
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
            Some(BuiltinFacts::Lease(LeaseFacts {
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
        assert!(matches!(e, Some(BuiltinFacts::Event(EventFacts { warning: true, count: 5, .. }))));
        let a = extract(
            Kind::ApiService,
            &raw(r#"{"metadata":{},"status":{"conditions":[{"type":"Available","status":"False"}]}}"#),
            &[],
            &mut s,
        );
        assert_eq!(a, Some(BuiltinFacts::ApiService { available: false }));
        let n = extract(
            Kind::Node,
            &raw(r#"{"metadata":{},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#),
            &[],
            &mut s,
        );
        assert_eq!(n, Some(BuiltinFacts::Node { ready: Some(true) }));
    }
}
