//! Pods by controlling workload, per watch, kept up to date as pods come and go, so that a
//! render reads a workload's pod counts without looking at every pod.
//!
//! A workload's outdated pods depend on its template, which lives in another watch; so the
//! index does not count "outdated" itself. It groups a workload's pods by what they run (the
//! pod facts without node, readiness, restarts and deletion: [`template_part`]); pods of one
//! workload run a handful of distinct things, so judgement calls its outdated predicate once per
//! group instead of once per pod. Deleting pods are kept (they still speak for the pod over
//! other watches' copies) but not counted.
//!
//! Like the records, the map and each workload's entry are shared with renders by reference
//! counts ([`Arc`]): a writer copies only what it changes while a render holds the old one.

use std::{collections::HashMap, sync::Arc};

use crate::{ingest::builtin::PodFacts, model::Kind};

/// `(namespace, owner kind, owner name)`.
pub type OwnerKey = (Arc<str>, Kind, Arc<str>);

/// One pod of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEntry {
    /// What the pod runs ([`template_part`]), shared with the other pods that run the same.
    pub template: Arc<PodFacts>,
    pub deleting: bool,
}

/// The pods of one workload in one watch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnerPods {
    /// Every pod by name, deleting ones included.
    pub pods: HashMap<Arc<str>, PodEntry>,
    /// Pods not being deleted, counted per distinct [`template_part`].
    pub groups: HashMap<Arc<PodFacts>, usize>,
}

impl OwnerPods {
    /// Pods not being deleted.
    pub fn live(&self) -> usize {
        self.groups.values().sum()
    }
}

/// The facts of a pod that say what it runs: all but node, readiness, restarts and deletion,
/// which differ pod by pod. A predicate over a workload's pods that reads only these can be
/// evaluated once per group (judgement's outdated predicate does).
pub fn template_part(p: &PodFacts) -> PodFacts {
    PodFacts { node: None, ready: false, restarts: 0, deleting: false, ..p.clone() }
}

/// Every pod with a controlling workload in one watch, by that workload.
#[derive(Debug, Clone, Default)]
pub struct PodIndex(Arc<HashMap<OwnerKey, Arc<OwnerPods>>>);

impl PodIndex {
    /// The pods of the workload `kind` `namespace/name` in this watch.
    pub fn get(&self, namespace: &str, kind: Kind, name: &str) -> Option<&OwnerPods> {
        self.0.get(&(Arc::from(namespace), kind, Arc::from(name))).map(|o| &**o)
    }

    /// Every workload with pods, and its pods.
    pub fn iter(&self) -> impl Iterator<Item = (&OwnerKey, &OwnerPods)> {
        self.0.iter().map(|(k, o)| (k, &**o))
    }

    /// Adds pod `name` of `namespace` (nothing when it has no controlling workload).
    pub(crate) fn insert(&mut self, namespace: &str, name: &str, p: &PodFacts) {
        let Some((kind, owner)) = &p.owner else { return };
        let key = (Arc::from(namespace), *kind, owner.clone());
        let o = Arc::make_mut(Arc::make_mut(&mut self.0).entry(key).or_default());
        let part = template_part(p);
        let template = match o.groups.get_key_value(&part) {
            Some((t, _)) => t.clone(),
            None => Arc::new(part),
        };
        if !p.deleting {
            *o.groups.entry(template.clone()).or_default() += 1;
        }
        let old = o.pods.insert(name.into(), PodEntry { template, deleting: p.deleting });
        debug_assert!(old.is_none(), "a pod is indexed once: removed before it is changed");
    }

    /// Removes pod `name` of `namespace`, as `p` was indexed.
    pub(crate) fn remove(&mut self, namespace: &str, name: &str, p: &PodFacts) {
        let Some((kind, owner)) = &p.owner else { return };
        let key = (Arc::from(namespace), *kind, owner.clone());
        let map = Arc::make_mut(&mut self.0);
        let Some(o) = map.get_mut(&key) else { return };
        let o = Arc::make_mut(o);
        if let Some(e) = o.pods.remove(name)
            && !e.deleting
            && let Some(n) = o.groups.get_mut(&e.template)
        {
            *n -= 1;
            if *n == 0 {
                o.groups.remove(&e.template);
            }
        }
        if o.pods.is_empty() {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::builtin::PodContainer;

    fn pod(owner: &str, image: &str, node: &str, deleting: bool) -> PodFacts {
        PodFacts {
            owner: Some((Kind::DaemonSet, owner.into())),
            node: Some(node.into()),
            ready: true,
            restarts: 1,
            revision: None,
            template_generation: None,
            containers: vec![PodContainer {
                name: "c".into(),
                init: false,
                spec_image: image.into(),
                status_image: None,
                image_id: None,
            }],
            deleting,
        }
    }

    #[test]
    fn pods_on_different_nodes_share_a_group_and_deleting_ones_are_not_counted() {
        let mut ix = PodIndex::default();
        ix.insert("n", "a", &pod("d", "i:1", "x", false));
        ix.insert("n", "b", &pod("d", "i:1", "y", false));
        ix.insert("n", "c", &pod("d", "i:2", "y", true));
        let o = ix.get("n", Kind::DaemonSet, "d").unwrap();
        assert_eq!((o.pods.len(), o.live(), o.groups.len()), (3, 2, 1));
        ix.remove("n", "a", &pod("d", "i:1", "x", false));
        ix.remove("n", "b", &pod("d", "i:1", "y", false));
        assert_eq!(ix.get("n", Kind::DaemonSet, "d").unwrap().groups.len(), 0);
        ix.remove("n", "c", &pod("d", "i:2", "y", true));
        assert!(ix.get("n", Kind::DaemonSet, "d").is_none());
    }
}
