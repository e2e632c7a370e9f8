//! Fixtures of the generic reliability scenarios (Deployments under the `workloads` preset),
//! shared by tests/e2e_generic.rs and tests/e2e_apiserver_kill.rs.

use std::collections::BTreeSet;

use super::{Metrics, kubectl};

/// `base` and `extra` label pairs together.
pub fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(extra).copied().collect()
}

/// A Deployment of `replicas` pods running `image`, tolerating every taint (kwok nodes).
pub fn deployment_yaml(ns: &str, name: &str, image: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}, labels: {{app: {name}}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      tolerations: [{{operator: Exists}}]
      containers: [{{name: {name}, image: "{image}"}}]
"#
    )
}

/// A config of the `workloads` preset in `ns`, with more targets appended.
pub fn workloads_config(ns: &str, stalled_after: &str, extra_targets: &str) -> String {
    format!(
        "resync: 1m\nstalledAfter: {stalled_after}\ntargets:\n  - preset: workloads\n    namespaces: [{ns}]\n{extra_targets}"
    )
}

/// The names of the objects of `kind` in `ns` that stallwatch serves (from `stallwatch_status`).
pub fn served(m: &Metrics, kind: &str, ns: &str) -> BTreeSet<String> {
    m.find("stallwatch_status", &[("kind", kind), ("namespace", ns)])
        .iter()
        .map(|s| s.label("name").to_string())
        .collect()
}

/// The names of the objects of `resource` in `ns`, as the API server lists them.
pub fn api_names(resource: &str, ns: &str) -> BTreeSet<String> {
    kubectl(&["-n", ns, "get", resource, "-o", "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}"])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The families a failed wait prints.
pub const RELEVANT: &[&str] = &[
    "stallwatch_status",
    "stallwatch_generation",
    "stallwatch_observed_generation",
    "stallwatch_rollout",
    "stallwatch_synced",
    "stallwatch_objects",
    "stallwatch_watch_errors",
    "stallwatch_relists",
    "stallwatch_config",
];
