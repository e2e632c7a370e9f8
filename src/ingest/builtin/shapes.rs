//! Wire shapes of the built-in kinds: only the fields the facts need, borrowed from the event
//! text where they are strings.

use std::borrow::Cow;

use serde::Deserialize;

use crate::ingest::wire::{RawObject, opt_str};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct WorkloadSpec<'a> {
    pub(super) replicas: Option<i64>,
    #[serde(borrow)]
    pub(super) template: Option<PodTemplate<'a>>,
    #[serde(borrow)]
    pub(super) update_strategy: Option<UpdateStrategy<'a>>,
    #[serde(borrow)]
    pub(super) strategy: Option<UpdateStrategy<'a>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct UpdateStrategy<'a> {
    #[serde(default, borrow, rename = "type", deserialize_with = "opt_str")]
    pub(super) type_: Option<Cow<'a, str>>,
    pub(super) rolling_update: Option<RollingUpdate>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub(super) struct RollingUpdate {
    pub(super) partition: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub(super) struct PodTemplate<'a> {
    #[serde(borrow)]
    pub(super) spec: Option<PodSpec<'a>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodSpec<'a> {
    #[serde(borrow, default)]
    pub(super) containers: Vec<Container<'a>>,
    #[serde(borrow, default)]
    pub(super) init_containers: Vec<Container<'a>>,
}

/// A pod's own spec: only what the image triangle needs.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodOwnSpec<'a> {
    #[serde(borrow, default)]
    pub(crate) containers: Vec<ImageOnly<'a>>,
    #[serde(borrow, default)]
    pub(crate) init_containers: Vec<ImageOnly<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub(crate) node_name: Option<Cow<'a, str>>,
}

/// A pod's container: only name and image (env, probes, mounts are skipped unparsed).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ImageOnly<'a> {
    #[serde(borrow)]
    pub(crate) name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) image: Cow<'a, str>,
}

/// The two labels a pod's workload revision is read from; other labels are skipped.
#[derive(Debug, Clone, Deserialize, Default)]
pub(crate) struct RevisionLabels<'a> {
    #[serde(default, borrow, rename = "pod-template-hash", deserialize_with = "opt_str")]
    pub(crate) template_hash: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "controller-revision-hash", deserialize_with = "opt_str")]
    pub(crate) revision: Option<Cow<'a, str>>,
    /// The DaemonSet template generation the pod was created from.
    #[serde(default, borrow, rename = "pod-template-generation", deserialize_with = "opt_str")]
    pub(crate) template_generation: Option<Cow<'a, str>>,
}

/// The annotations a workload's current template is named by: a DaemonSet's template
/// generation (the API server bumps it on every template change; the DaemonSet controller labels
/// pods with it) and a Deployment's or ReplicaSet's revision (the Deployment controller sets the
/// Deployment's to that of the ReplicaSet of the current template).
#[derive(Deserialize, Default)]
pub(super) struct WorkloadAnnotations<'a> {
    #[serde(
        default,
        borrow,
        rename = "deprecated.daemonset.template.generation",
        deserialize_with = "opt_str"
    )]
    pub(super) template_generation: Option<Cow<'a, str>>,
    #[serde(rename = "deployment.kubernetes.io/revision", borrow)]
    pub(super) revision: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Container<'a> {
    #[serde(borrow)]
    pub(super) name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) image: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) env: Vec<EnvVar<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct EnvVar<'a> {
    #[serde(borrow)]
    pub(super) name: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub(super) value: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct WorkloadStatus<'a> {
    pub(super) observed_generation: Option<i64>,
    pub(super) replicas: Option<i64>,
    pub(super) updated_replicas: Option<i64>,
    pub(super) available_replicas: Option<i64>,
    pub(super) ready_replicas: Option<i64>,
    pub(super) desired_number_scheduled: Option<i64>,
    pub(super) current_number_scheduled: Option<i64>,
    pub(super) updated_number_scheduled: Option<i64>,
    pub(super) number_available: Option<i64>,
    pub(super) number_ready: Option<i64>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub(super) update_revision: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub(super) current_revision: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(super) conditions: Vec<Condition<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Condition<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) type_: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) status: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub(super) reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
/// A status with conditions: pods (with container statuses), nodes and APIServices.
pub(crate) struct ObjectStatus<'a> {
    #[serde(borrow, default)]
    pub(super) conditions: Vec<Condition<'a>>,
    #[serde(borrow, default)]
    pub(super) container_statuses: Vec<ContainerStatus<'a>>,
    #[serde(borrow, default)]
    pub(super) init_container_statuses: Vec<ContainerStatus<'a>>,
}

/// A pod's status as its single read decodes it: readiness is folded while the conditions are
/// read, so no condition list is built.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodStatus<'a> {
    #[serde(default, rename = "conditions")]
    pub(crate) ready: ReadyCondition,
    #[serde(borrow, default)]
    pub(crate) container_statuses: Vec<ContainerStatus<'a>>,
    #[serde(borrow, default)]
    pub(crate) init_container_statuses: Vec<ContainerStatus<'a>>,
}

/// Whether a condition list holds `Ready=True`; each condition is decoded as [`Condition`]
/// (so a list the general decode rejects is rejected here too) and then dropped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReadyCondition(pub(crate) bool);

impl<'de> Deserialize<'de> for ReadyCondition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ReadyCondition;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of conditions")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ReadyCondition, A::Error> {
                let mut ready = false;
                while let Some(c) = seq.next_element::<Condition>()? {
                    ready |= c.type_ == "Ready" && c.status == "True";
                }
                Ok(ReadyCondition(ready))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerStatus<'a> {
    #[serde(borrow)]
    pub(crate) name: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub(crate) image: Option<Cow<'a, str>>,
    #[serde(default, borrow, rename = "imageID", deserialize_with = "opt_str")]
    pub(crate) image_id: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) restart_count: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OwnerRef<'a> {
    #[serde(borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) uid: Cow<'a, str>,
    #[serde(default)]
    pub(crate) controller: bool,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct LeaseSpec<'a> {
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub(super) holder_identity: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub(super) renew_time: Option<Cow<'a, str>>,
    pub(super) lease_transitions: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct InvolvedObject<'a> {
    #[serde(borrow, default)]
    pub(super) kind: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) namespace: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(super) uid: Cow<'a, str>,
}

/// A top-level field decoded into `T`; absent is `T::default()`, malformed is `None`.
pub(super) fn field<'a, T: Deserialize<'a> + Default>(obj: &RawObject<'a>, name: &str) -> Option<T> {
    match obj.field(name) {
        None => Some(T::default()),
        Some(raw) => serde_json::from_str(raw.get()).ok(),
    }
}
