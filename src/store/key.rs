//! Watch identity: which resource, namespace and selectors a watch covers ([`WatchKey`]), what
//! its objects are read for ([`Subscribers`]), and the keys of the watches that hold a target's
//! linked objects (workloads, operator pins, leases, pods, APIServices). The watch plan and the
//! judgement both derive keys here, so they can never disagree.

use std::sync::Arc;

use crate::{
    config::{ImageRule, NamedRef, Override, PodsRef, Target, WorkloadLink},
    model::{Gvk, Kind, image::Mirrors, shard::ShardKey},
};

/// One watch: a resource type in one namespace (or all) with one selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    pub gvk: Gvk,
    /// The typed extraction for built-in kinds (derived from `gvk`).
    pub kind: Option<Kind>,
    /// Empty for all namespaces or a cluster-scoped kind.
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
    /// What the watch's objects are sharded by (its shard's share only); `None`: every object.
    pub shard: Option<ShardKey>,
}

impl WatchKey {
    /// The `selector` label: label and field selector, `;`-joined when both are set.
    pub fn selector_label(&self) -> String {
        match (self.label_selector.is_empty(), self.field_selector.is_empty()) {
            (true, true) => String::new(),
            (false, true) => self.label_selector.clone(),
            (true, false) => self.field_selector.clone(),
            (false, false) => format!("{};{}", self.label_selector, self.field_selector),
        }
    }
}

/// What a watch's objects are read for: tracked-object targets, a typed extraction for
/// built-in kinds, and the env vars of interest (operator image pins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscribers {
    pub targets: Vec<Arc<Target>>,
    pub kind: Option<Kind>,
    pub env: Vec<String>,
    /// Workload watches: the registry mirrors their images are compared through, kept on
    /// each workload's facts so every comparison (slots, outdated pods) reads them.
    pub mirrors: Mirrors,
}

impl Subscribers {
    /// Subscribers of tracked-object targets (with the typed extraction of their kind).
    pub fn targets(targets: Vec<Arc<Target>>) -> Subscribers {
        let kind = targets.first().and_then(|t| Kind::of(&t.resource));
        Subscribers { targets, kind, env: Vec::new(), mirrors: Mirrors::default() }
    }

    /// Whether `other` reads objects exactly as these do, differing at most in settings only
    /// judgement reads (`stalledAfter`): then a reload keeps the watch task and its history.
    pub fn same_ingest(&self, other: &Subscribers) -> bool {
        self.kind == other.kind
            && self.env == other.env
            && self.mirrors == other.mirrors
            && self.targets.len() == other.targets.len()
            && self
                .targets
                .iter()
                .zip(&other.targets)
                .all(|(a, b)| Target { stalled_after: b.stalled_after, ..Target::clone(a) } == **b)
    }
}

/// `metadata.name=NAME`: the field selector of a watch on one named object.
pub(crate) fn name_selector(name: &str) -> String {
    format!("metadata.name={name}")
}

/// A key with its typed extraction derived from the kind.
pub(crate) fn key(gvk: Gvk, namespace: &str, labels: &str, fields: &str) -> WatchKey {
    WatchKey {
        kind: Kind::of(&gvk),
        gvk,
        namespace: namespace.into(),
        label_selector: labels.into(),
        field_selector: fields.into(),
        shard: None,
    }
}

impl WatchKey {
    /// The same watch sharded by `by` (`None`: unsharded).
    pub(crate) fn sharded(mut self, by: Option<ShardKey>) -> WatchKey {
        self.shard = by;
        self
    }
}

/// The shard key of a target's own watch: its `shardKey` when sharded.
pub fn target_shard(t: &Target) -> Option<ShardKey> {
    t.sharded.then_some(t.shard_key)
}

/// The shard key of the watches that sit in the target's namespaces beside its objects (the
/// pods of a workload target, Warning events, workloads linked in the object's own namespace
/// and their pods): the namespace, so the join stays inside one shard. `None` (every shard
/// watches everything) when the target is sharded by UID or not at all.
pub fn namespace_shard(t: &Target) -> Option<ShardKey> {
    (t.sharded && t.shard_key == ShardKey::Namespace).then_some(ShardKey::Namespace)
}

/// The shard key of the watches of a link's workloads and pods: by namespace when they live
/// beside the objects; unsharded when the link names another namespace, which objects of every
/// shard join with.
pub fn link_shard(t: &Target, link: &WorkloadLink) -> Option<ShardKey> {
    if link.namespace.is_some() { None } else { namespace_shard(t) }
}

/// The namespace a link's workloads are watched in: the configured one, the target's single
/// namespace, or all (then matched to each object's own namespace).
pub fn link_namespace<'a>(target: &'a Target, link: &'a WorkloadLink) -> &'a str {
    link.namespace.as_deref().or(target.single_namespace()).unwrap_or("")
}

/// The watch holding the workloads of an image slot.
pub fn link_key(target: &Target, link: &WorkloadLink) -> WatchKey {
    let fields = link.name.as_deref().map(name_selector).unwrap_or_default();
    key(
        Gvk::new("apps", "v1", link.kind.name()),
        link_namespace(target, link),
        link.selector.as_deref().unwrap_or(""),
        &fields,
    )
    .sharded(link_shard(target, link))
}

/// The watch holding the operator Deployment that may pin an image slot.
pub fn override_key(target: &Target, rule: &ImageRule, o: &Override) -> WatchKey {
    let ns = o.namespace.as_deref().unwrap_or(link_namespace(target, &rule.workloads));
    key(Gvk::new("apps", "v1", "Deployment"), ns, "", &name_selector(&o.deployment))
}

/// The watch holding a Lease.
pub fn lease_key(l: &NamedRef) -> WatchKey {
    key(Gvk::new("coordination.k8s.io", "v1", "Lease"), &l.namespace, "", &name_selector(&l.name))
}

/// The watch holding an operator's pods.
pub fn pods_key(p: &PodsRef) -> WatchKey {
    key(Gvk::new("", "v1", "Pod"), &p.namespace, &p.selector, "")
}

/// The watch holding one APIService.
pub fn api_service_key(name: &str) -> WatchKey {
    key(Gvk::new("apiregistration.k8s.io", "v1", "APIService"), "", "", &name_selector(name))
}
