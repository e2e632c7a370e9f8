//! The built-in kinds stallwatch reads with a typed extraction (workloads, their ReplicaSets,
//! pods, nodes, leases, events, APIServices): the one table from group/version/kind to [`Kind`].

use super::Gvk;

/// Which typed extraction a watch's objects get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Deployment,
    DaemonSet,
    StatefulSet,
    /// Read only for a Deployment's current `pod-template-hash`.
    ReplicaSet,
    Pod,
    Node,
    Lease,
    Event,
    ApiService,
}

impl Kind {
    /// The built-in kind of `gvk`, if it is one.
    pub fn of(gvk: &Gvk) -> Option<Kind> {
        Some(match (gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str()) {
            ("apps", "v1", "Deployment") => Kind::Deployment,
            ("apps", "v1", "DaemonSet") => Kind::DaemonSet,
            ("apps", "v1", "StatefulSet") => Kind::StatefulSet,
            ("apps", "v1", "ReplicaSet") => Kind::ReplicaSet,
            ("", "v1", "Pod") => Kind::Pod,
            ("", "v1", "Node") => Kind::Node,
            ("coordination.k8s.io", "v1", "Lease") => Kind::Lease,
            ("", "v1", "Event") => Kind::Event,
            ("apiregistration.k8s.io", "v1", "APIService") => Kind::ApiService,
            _ => return None,
        })
    }

    /// Deployments, DaemonSets and StatefulSets: they have pods and rollouts.
    pub fn is_workload(self) -> bool {
        matches!(self, Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet)
    }

    /// The kind as the API names it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::DaemonSet => "DaemonSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Pod => "Pod",
            Kind::Node => "Node",
            Kind::Lease => "Lease",
            Kind::Event => "Event",
            Kind::ApiService => "APIService",
        }
    }
}
