//! The watch plan: which watches a config needs, and what each watch's objects are read for.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    config::Config,
    model::{Gvk, Kind},
    store::{
        Subscribers, WatchKey,
        key::{
            api_service_key, key, lease_key, link_key, link_namespace, link_shard, namespace_shard,
            override_key, pods_key, target_shard,
        },
    },
};

/// The watches a config asks for. Targets, linked workloads, their pods and the context
/// sources that share a resource, namespace and selector share one watch, so the API server
/// sees each list/watch once.
pub fn plan(config: &Config) -> Vec<(WatchKey, Subscribers)> {
    let mut by_key: BTreeMap<WatchKey, Subscribers> = BTreeMap::new();
    fn add(by_key: &mut BTreeMap<WatchKey, Subscribers>, k: WatchKey) -> &mut Subscribers {
        let kind = k.kind;
        by_key.entry(k).or_insert_with(|| Subscribers { kind, ..Default::default() })
    }
    /// A workload's pods, and a Deployment's ReplicaSets beside them with the pods' selector
    /// (its current template hash is on its ReplicaSets, which carry its pods' labels).
    fn add_pods(
        by_key: &mut BTreeMap<WatchKey, Subscribers>,
        workload: Option<Kind>,
        ns: &str,
        selector: &str,
        shard: Option<crate::model::shard::ShardKey>,
    ) {
        add(by_key, key(Gvk::new("", "v1", "Pod"), ns, selector, "").sharded(shard));
        if workload == Some(Kind::Deployment) {
            add(by_key, key(Gvk::new("apps", "v1", "ReplicaSet"), ns, selector, "").sharded(shard));
        }
    }
    for t in &config.targets {
        let namespaces: Vec<&str> = if t.namespaces.is_empty() {
            vec![""]
        } else {
            t.namespaces.iter().map(String::as_str).collect()
        };
        let arc = Arc::new(t.clone());
        for ns in &namespaces {
            let labels = t.label_selector.as_deref().unwrap_or("");
            let fields = t.field_selector.as_deref().unwrap_or("");
            let own = key(t.resource.clone(), ns, labels, fields).sharded(target_shard(t));
            add(&mut by_key, own).targets.push(arc.clone());
            // Workloads need their pods to count outdated ones (OnDelete).
            if Kind::of(&t.resource).is_some_and(Kind::is_workload) {
                let selector = t.pods_selector.as_deref().unwrap_or("");
                add_pods(&mut by_key, Kind::of(&t.resource), ns, selector, namespace_shard(t));
            }
            if t.events {
                let k = key(Gvk::new("", "v1", "Event"), ns, "", "type=Warning");
                add(&mut by_key, k.sharded(namespace_shard(t)));
            }
        }
        for rule in &t.images {
            let link = &rule.workloads;
            add(&mut by_key, link_key(t, link));
            let selector = link.pod_selector.as_deref().unwrap_or("");
            add_pods(&mut by_key, Some(link.kind), link_namespace(t, link), selector, link_shard(t, link));
            if let Some(o) = &rule.overridden_by {
                let subs = add(&mut by_key, override_key(t, rule, o));
                if !subs.env.contains(&o.env) {
                    subs.env.push(o.env.clone());
                }
            }
        }
        // A controller's Lease and pods are one set of objects whatever the shard: exported
        // by the leader shard only, so no series is duplicated across shards.
        if !config.shard.is_leader() {
            continue;
        }
        if let Some(l) = &t.controller.lease {
            add(&mut by_key, lease_key(l));
        }
        if let Some(p) = &t.controller.pods {
            add(&mut by_key, pods_key(p));
        }
    }
    if !config.shard.is_leader() {
        return by_key.into_iter().collect();
    }
    if config.context.nodes {
        add(&mut by_key, key(Gvk::new("", "v1", "Node"), "", "", ""));
    }
    for name in &config.context.api_services {
        add(&mut by_key, api_service_key(name));
    }
    for (k, subs) in by_key.iter_mut() {
        if k.kind.is_some_and(Kind::is_workload) {
            subs.mirrors = config.registry_mirrors.clone();
        }
    }
    by_key.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::preset::{
        KUBEARMOR_DAEMONSET_SELECTOR, KUBEARMOR_DEPLOYMENT_SELECTOR, KUBEARMOR_OPERATOR_POD_SELECTOR,
    };

    #[test]
    fn plan_shares_watches_and_splits_namespaces() {
        let c = Config::parse(
            "targets:\n  - {name: a, resource: {version: v1, kind: ConfigMap}, namespaces: [x, y]}\n  - {name: b, resource: {version: v1, kind: ConfigMap}, namespaces: [x]}\n",
            "t",
        )
        .unwrap();
        let p = plan(&c);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0.namespace, "x");
        assert_eq!(p[0].1.targets.len(), 2);
        assert_eq!(p[1].1.targets.len(), 1);
    }

    #[test]
    fn kubearmor_preset_watches_no_pod_of_the_namespace_it_does_not_need() {
        let c = Config::parse("targets: [{preset: kubearmor, namespace: ka}]\n", "c").unwrap();
        let plan = plan(&c);
        let pods: Vec<&str> = plan
            .iter()
            .filter(|(k, _)| k.gvk.kind == "Pod")
            .map(|(k, _)| k.label_selector.as_str())
            .collect();
        assert_eq!(
            pods,
            [KUBEARMOR_DEPLOYMENT_SELECTOR, KUBEARMOR_DAEMONSET_SELECTOR, KUBEARMOR_OPERATOR_POD_SELECTOR]
        );
        assert!(plan.iter().all(|(k, _)| k.namespace == "ka" || k.gvk.kind == "Node"), "{plan:?}");
        let replica_sets: Vec<&str> = plan
            .iter()
            .filter(|(k, _)| k.gvk.kind == "ReplicaSet")
            .map(|(k, _)| k.label_selector.as_str())
            .collect();
        assert_eq!(
            replica_sets,
            [KUBEARMOR_DEPLOYMENT_SELECTOR],
            "the relay's and controller's, like their pods"
        );
        assert_eq!(plan.len(), 12, "{:?}", plan.iter().map(|(k, _)| k).collect::<Vec<_>>());
    }

    #[test]
    fn sharded_plan_shards_beside_the_objects_and_leaves_context_to_shard_zero() {
        use crate::model::shard::{Shard, ShardKey};
        let yaml = "context: {nodes: true, apiServices: [v1.example.com]}\ntargets:\n  - preset: workloads\n  - name: w\n    resource: {group: example.com, version: v1, kind: Widget}\n    shardKey: uid\n    controller: {lease: {namespace: op, name: w-leader}}\n";
        let c = Config::parse(yaml, "c").unwrap();
        let unsharded = plan(&c);
        assert!(unsharded.iter().all(|(k, _)| k.shard.is_none()), "a single shard filters nothing");
        let one = plan(&c.clone().with_shard(Shard::new(1, 3).unwrap()));
        let zero = plan(&c.with_shard(Shard::new(0, 3).unwrap()));
        let by = |p: &[(WatchKey, Subscribers)], kind: &str| -> Vec<Option<ShardKey>> {
            p.iter().filter(|(k, _)| k.gvk.kind == kind).map(|(k, _)| k.shard).collect()
        };
        assert_eq!(by(&one, "Widget"), [Some(ShardKey::Uid)]);
        assert_eq!(by(&one, "Deployment"), [Some(ShardKey::Namespace)]);
        assert_eq!(by(&one, "Pod"), [Some(ShardKey::Namespace)], "workload pods beside their workloads");
        assert_eq!(by(&one, "ReplicaSet"), [Some(ShardKey::Namespace)], "and the Deployments' ReplicaSets");
        for kind in ["Node", "APIService", "Lease"] {
            assert!(by(&one, kind).is_empty(), "{kind} only on shard 0");
            assert_eq!(by(&zero, kind), [None], "{kind} whole on shard 0");
        }
    }
}
