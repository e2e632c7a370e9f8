//! Facts of the built-in kinds the convergence model joins: workloads, ReplicaSets, pods,
//! nodes, leases, events and APIServices. Each is decoded from its raw fields into a small typed struct;
//! only what the image triangle, rollouts and context signals need is kept.
//!
//! The wire shapes are in [`shapes`] (only the fields read, borrowed from the event text); the
//! extraction is in [`extract`](mod@extract).

mod extract;
pub(crate) mod shapes;

use std::sync::Arc;

pub use self::extract::extract;
use crate::model::{Kind, image::Mirrors};

/// Facts of one object of a built-in kind.
#[derive(Debug, Clone, PartialEq)]
pub enum BuiltinFacts {
    /// Boxed: workloads are few, and the enum stays as small as the pod variant (pods are many).
    Workload(Box<WorkloadFacts>),
    Pod(PodFacts),
    ReplicaSet(ReplicaSetFacts),
    Node {
        ready: Option<bool>,
    },
    Lease(LeaseFacts),
    Event(EventFacts),
    ApiService {
        available: bool,
    },
}

/// A workload's update strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RollingUpdate,
    OnDelete,
    Recreate,
}

/// One container of a workload's pod template and its image.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerImage {
    pub name: Arc<str>,
    pub image: Arc<str>,
    pub init: bool,
}

/// A Deployment, DaemonSet or StatefulSet: template images, pins, rollout counters.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadFacts {
    pub kind: Kind,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub containers: Vec<ContainerImage>,
    /// Literal env values of the names the config asks about (operator image pins).
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
    /// DaemonSets: the current template generation (`deprecated.daemonset.template.generation`),
    /// which pods of the current template carry as `pod-template-generation`.
    pub template_generation: Option<i64>,
    /// Deployments: `deployment.kubernetes.io/revision`, which the controller sets to the
    /// revision of the ReplicaSet that runs the current template.
    pub revision: Option<i64>,
    /// Deployment `Progressing=False, reason=ProgressDeadlineExceeded`.
    pub deadline_exceeded: bool,
    /// The registry mirrors this workload's images are compared through (from the config,
    /// set by the store when it keeps the facts).
    pub mirrors: Mirrors,
}

impl WorkloadFacts {
    /// The controller has seen the current generation.
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

    /// The counters moved toward desired since `prev` (the last-progress clock).
    pub fn progressed_since(&self, prev: &WorkloadFacts) -> bool {
        self.generation != prev.generation
            || self.updated > prev.updated
            || self.available > prev.available
            || self.ready > prev.ready
            || (self.total < prev.total && self.total >= self.desired)
    }

    /// The template container (or init container) named `name`.
    pub fn container(&self, name: &str, init: bool) -> Option<&ContainerImage> {
        self.containers.iter().find(|c| &*c.name == name && c.init == init)
    }
}

/// One container of a pod: the image asked for and what the runtime reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodContainer {
    pub name: Arc<str>,
    pub init: bool,
    pub spec_image: Arc<str>,
    pub status_image: Option<Arc<str>>,
    pub image_id: Option<Arc<str>>,
}

/// A pod: its controlling workload, node, readiness, restarts, revision and images. `Eq` and
/// `Hash` let the store group a workload's pods by what they run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodFacts {
    /// The controlling workload: (kind, name); a ReplicaSet's pod maps to its Deployment.
    pub owner: Option<(Kind, Arc<str>)>,
    pub node: Option<Arc<str>>,
    pub ready: bool,
    pub restarts: u32,
    /// The revision of the template the pod was created from, as its controller labels it: a
    /// ReplicaSet's pod its `pod-template-hash` (the Deployment template), any other pod its
    /// `controller-revision-hash` (StatefulSet, DaemonSet). One field, so a pod's facts (every
    /// record holds them inline) stay as small as before.
    pub revision: Option<Arc<str>>,
    /// `pod-template-generation`: the DaemonSet template generation the pod was created from.
    pub template_generation: Option<i64>,
    pub containers: Vec<PodContainer>,
    pub deleting: bool,
}

/// A ReplicaSet, only as far as it says which template is a Deployment's current one: the
/// Deployment's current ReplicaSet is the one it controls whose revision is the Deployment's
/// own. Namespace and name are the record's key; a few dozen bytes per ReplicaSet.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSetFacts {
    /// The UID of the controlling owner (`ownerReferences[controller=true]`).
    pub owner_uid: Option<Box<str>>,
    /// `deployment.kubernetes.io/revision`.
    pub revision: Option<i64>,
    /// The `pod-template-hash` label its pods carry.
    pub template_hash: Option<Box<str>>,
}

/// A Lease: holder, last renewal, transitions.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseFacts {
    pub holder: Option<Box<str>>,
    pub renew: Option<f64>,
    pub transitions: Option<i64>,
}

/// An Event: whether it is a Warning, what it is about, its reason and count.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFacts {
    pub warning: bool,
    pub involved_kind: Box<str>,
    pub involved_namespace: Box<str>,
    pub involved_name: Box<str>,
    /// Empty when the event does not name it.
    pub involved_uid: Box<str>,
    pub reason: Box<str>,
    pub count: u64,
}
