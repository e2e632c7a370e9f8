//! The least-privilege RBAC a config needs, computed from the real watch plan ([`plan`]): every
//! watch needs get/list/watch on its resource, in its namespace (a Role there) or cluster-wide
//! (a ClusterRole). Pure; `stallwatch rbac` prints it and the chart's RBAC is checked against it.
//!
//! Plurals: RBAC names resources by plural. The exporter learns a CRD's plural from discovery at
//! run time; here it is the target's `resource.plural` when the config gives one, the known
//! plural of a built-in kind, else derived from the kind the way CRD tooling defaults it
//! (lowercase; `-s`, `-x`, `-z`, `-ch`, `-sh` take `es`; a consonant then `y` becomes `ies`;
//! otherwise `s`). Set `resource.plural` when a CRD's `spec.names.plural` differs.

use std::collections::{BTreeMap, BTreeSet};

use super::plan::plan;
use crate::{
    config::Config,
    model::{Gvk, Kind},
};

/// Rules per scope: `None` is cluster-wide, else a namespace; per API group the plurals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rbac {
    pub scopes: BTreeMap<Option<String>, BTreeMap<String, BTreeSet<String>>>,
}

/// The plural of a built-in kind the plan can watch.
fn builtin_plural(kind: Kind) -> &'static str {
    match kind {
        Kind::Deployment => "deployments",
        Kind::DaemonSet => "daemonsets",
        Kind::StatefulSet => "statefulsets",
        Kind::ReplicaSet => "replicasets",
        Kind::Pod => "pods",
        Kind::Node => "nodes",
        Kind::Lease => "leases",
        Kind::Event => "events",
        Kind::ApiService => "apiservices",
    }
}

/// The default plural of a kind (see the module docs).
pub fn default_plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    let consonant_y = k.len() > 1
        && k.ends_with('y')
        && !matches!(k.as_bytes()[k.len() - 2], b'a' | b'e' | b'i' | b'o' | b'u');
    if ["s", "x", "z", "ch", "sh"].iter().any(|s| k.ends_with(s)) {
        format!("{k}es")
    } else if consonant_y {
        format!("{}ies", &k[..k.len() - 1])
    } else {
        format!("{k}s")
    }
}

/// The plural RBAC uses for `gvk` under `config`.
pub fn plural(config: &Config, gvk: &Gvk) -> String {
    if let Some(k) = Kind::of(gvk) {
        return builtin_plural(k).to_string();
    }
    config
        .targets
        .iter()
        .find(|t| &t.resource == gvk && t.plural.is_some())
        .and_then(|t| t.plural.clone())
        .unwrap_or_else(|| default_plural(&gvk.kind))
}

impl Rbac {
    /// The rules the watches of `config` need.
    pub fn of(config: &Config) -> Rbac {
        let mut r = Rbac::default();
        for (key, _) in plan(config) {
            let scope = (!key.namespace.is_empty()).then(|| key.namespace.clone());
            // Cluster-scoped built-ins are watched without a namespace anyway.
            r.scopes
                .entry(scope)
                .or_default()
                .entry(key.gvk.group.clone())
                .or_default()
                .insert(plural(config, &key.gvk));
        }
        r
    }

    /// Kubernetes YAML: a ClusterRole (if any cluster-wide watch) then a Role per namespace,
    /// each named `name`, one rule per API group, verbs get/list/watch.
    pub fn yaml(&self, name: &str) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
        let mut out = String::new();
        out.push_str(&format!(
            "# Least-privilege, read-only RBAC for the watches of this config, from `stallwatch rbac`\n\
             # (stallwatch {}). Bind each role to the exporter's ServiceAccount.\n",
            crate::build::LONG_VERSION
        ));
        for (scope, groups) in &self.scopes {
            out.push_str("---\napiVersion: rbac.authorization.k8s.io/v1\n");
            match scope {
                None => out.push_str(&format!("kind: ClusterRole\nmetadata:\n  name: {}\n", q(name))),
                Some(ns) => out.push_str(&format!(
                    "kind: Role\nmetadata:\n  name: {}\n  namespace: {}\n",
                    q(name),
                    q(ns)
                )),
            }
            out.push_str("rules:\n");
            for (group, resources) in groups {
                let res: Vec<String> = resources.iter().map(|r| q(r)).collect();
                out.push_str(&format!(
                    "  - apiGroups: [{}]\n    resources: [{}]\n    verbs: [\"get\", \"list\", \"watch\"]\n",
                    q(group),
                    res.join(", ")
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rbac(yaml: &str) -> Rbac {
        Rbac::of(&Config::parse(yaml, "c.yaml").unwrap())
    }

    fn scope<'a>(r: &'a Rbac, ns: Option<&str>) -> BTreeMap<&'a str, Vec<&'a str>> {
        r.scopes
            .get(&ns.map(str::to_string))
            .map(|g| g.iter().map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect())).collect())
            .unwrap_or_default()
    }

    #[test]
    fn kubearmor_preset_needs_its_namespace_and_nodes() {
        let r = rbac("targets: [{preset: kubearmor, namespace: ka}]\n");
        assert_eq!(scope(&r, None), BTreeMap::from([("", vec!["nodes"])]));
        assert_eq!(
            scope(&r, Some("ka")),
            BTreeMap::from([
                ("", vec!["events", "pods"]),
                ("apps", vec!["daemonsets", "deployments", "replicasets"]),
                ("operator.kubearmor.com", vec!["kubearmorconfigs"]),
            ])
        );
        // context.nodes: false is honoured: no Node watch, no nodes grant.
        let r = rbac("targets: [{preset: kubearmor, namespace: ka}]\ncontext: {nodes: false}\n");
        assert_eq!(scope(&r, None), BTreeMap::new());
    }

    #[test]
    fn controller_pods_elsewhere_and_workload_pods_are_granted() {
        let r = rbac(
            "targets:\n  - name: w\n    resource: {group: example.com, version: v1, kind: Widget}\n    namespaces: [a]\n    controller: {pods: {namespace: ops, selector: app=op}, lease: {namespace: ops, name: l}}\n  - name: d\n    resource: {group: apps, version: v1, kind: Deployment}\n    namespaces: [b]\n",
        );
        assert_eq!(scope(&r, Some("a")), BTreeMap::from([("example.com", vec!["widgets"])]));
        assert_eq!(
            scope(&r, Some("ops")),
            BTreeMap::from([("", vec!["pods"]), ("coordination.k8s.io", vec!["leases"])])
        );
        // A Deployment's current template is named by its ReplicaSets.
        assert_eq!(
            scope(&r, Some("b")),
            BTreeMap::from([("", vec!["pods"]), ("apps", vec!["deployments", "replicasets"])])
        );
    }

    #[test]
    fn plurals_come_from_the_config_builtins_or_the_default_rule() {
        let r = rbac(
            "targets:\n  - {name: p, resource: {group: x.io, version: v1, kind: Policy, plural: policys}}\n  - {name: q, resource: {group: y.io, version: v1, kind: Policy}}\n",
        );
        assert_eq!(scope(&r, None), BTreeMap::from([("x.io", vec!["policys"]), ("y.io", vec!["policies"])]));
        for (k, p) in
            [("Ingress", "ingresses"), ("Gateway", "gateways"), ("Box", "boxes"), ("Mesh", "meshes")]
        {
            assert_eq!(default_plural(k), p);
        }
    }

    #[test]
    fn yaml_is_read_only_and_parses() {
        let y = rbac("targets: [{preset: workloads, namespaces: [a]}]\ncontext: {apiServices: [v1.x.io]}\n")
            .yaml("sw");
        assert!(y.contains("kind: ClusterRole\nmetadata:\n  name: \"sw\"\n"), "{y}");
        assert!(y.contains("kind: Role\nmetadata:\n  name: \"sw\"\n  namespace: \"a\"\n"), "{y}");
        assert!(
            y.contains("apiGroups: [\"apiregistration.k8s.io\"]\n    resources: [\"apiservices\"]"),
            "{y}"
        );
        assert_eq!(y.matches("verbs:").count(), y.matches("verbs: [\"get\", \"list\", \"watch\"]").count());
        let docs: Vec<serde_json::Value> =
            y.split("\n---\n").skip(1).map(|d| serde_saphyr::from_str(d).unwrap()).collect();
        assert_eq!(docs.len(), 2);
    }
}
