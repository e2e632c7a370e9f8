//! Presets (F14): one line of config that expands into the targets a common case needs.
//!
//! The KubeArmor facts come from its real CRD and operator code (see docs/presets.md): the CR
//! reports only `status.phase` (no observedGeneration, no conditions), lives in the operator
//! namespace, and drives DaemonSets labelled `kubearmor-app=kubearmor` plus the relay and
//! controller Deployments.

use std::time::Duration;

use crate::{
    config::{Gvk, ObservedGeneration, PhaseRule, PresetName, RawTarget, Target, generic_target},
    path::ObjectPath,
};

pub const KUBEARMOR_GROUP: &str = "operator.kubearmor.com";
pub const KUBEARMOR_KIND: &str = "KubeArmorConfig";
pub const KUBEARMOR_DEFAULT_NAMESPACE: &str = "kubearmor";
/// Phases the operator writes (defaults.go); only `Running` means converged.
pub const KUBEARMOR_PHASES: [&str; 5] = ["Created", "Updating", "Running", "Pending", "Error"];
/// Label on every KubeArmor DaemonSet (there may be several, one per enforcer/runtime).
pub const KUBEARMOR_DAEMONSET_SELECTOR: &str = "kubearmor-app=kubearmor";
/// The operator, relay and controller Deployments, by their `kubearmor-app` label.
pub const KUBEARMOR_DEPLOYMENT_SELECTOR: &str =
    "kubearmor-app in (kubearmor-operator,kubearmor-relay,kubearmor-controller)";

pub(crate) fn expand(
    preset: PresetName,
    raw: RawTarget,
    stalled_after: Duration,
) -> Result<Vec<Target>, String> {
    if raw.resource.is_some() {
        return Err(
            "key `resource`: a preset chooses its own resources; remove `resource` or `preset`".into()
        );
    }
    match preset {
        PresetName::Kubearmor => kubearmor(raw, stalled_after),
        PresetName::Workloads => workloads(raw, stalled_after),
        PresetName::Conventions => conventions(raw, stalled_after),
    }
}

fn reject(preset: &str, keys: &[(&str, bool)]) -> Result<(), String> {
    for (key, present) in keys {
        if *present {
            return Err(format!("key `{key}`: the {preset} preset does not take `{key}`"));
        }
    }
    Ok(())
}

fn kubearmor(raw: RawTarget, stalled_after: Duration) -> Result<Vec<Target>, String> {
    reject(
        "kubearmor",
        &[
            ("namespaces", !raw.namespaces.is_empty()),
            ("labelSelector", raw.label_selector.is_some()),
            ("fieldSelector", raw.field_selector.is_some()),
            ("phase", raw.phase.is_some()),
            ("observedGeneration", raw.observed_generation.is_some()),
        ],
    )?;
    let ns = raw.namespace.clone().unwrap_or_else(|| KUBEARMOR_DEFAULT_NAMESPACE.into());
    crate::config::validate_dns_label(&ns).map_err(|m| format!("key `namespace`: {m}"))?;
    let name = raw.name.clone().unwrap_or_else(|| "kubearmor".into());
    let stalled = raw.stalled_after.unwrap_or(stalled_after);
    let base = |resource: Gvk, selector: Option<&str>| {
        let mut t = generic_target(
            name.clone(),
            resource,
            RawTarget { namespaces: vec![ns.clone()], ..Default::default() },
            stalled,
        );
        t.label_selector = selector.map(str::to_string);
        t
    };
    let mut config = base(Gvk::new(KUBEARMOR_GROUP, "v1", KUBEARMOR_KIND), None);
    config.observed_generation = ObservedGeneration::Absent;
    config.phase = Some(PhaseRule {
        path: ObjectPath::parse("$.status.phase").expect("static path"),
        ready: vec!["Running".into()],
    });
    Ok(vec![
        config,
        base(Gvk::new("apps", "v1", "DaemonSet"), Some(KUBEARMOR_DAEMONSET_SELECTOR)),
        base(Gvk::new("apps", "v1", "Deployment"), Some(KUBEARMOR_DEPLOYMENT_SELECTOR)),
    ])
}

fn workloads(raw: RawTarget, stalled_after: Duration) -> Result<Vec<Target>, String> {
    reject(
        "workloads",
        &[
            ("namespace", raw.namespace.is_some()),
            ("phase", raw.phase.is_some()),
            ("observedGeneration", raw.observed_generation.is_some()),
            ("conditions", raw.conditions.is_some()),
        ],
    )?;
    let name = raw.name.clone().unwrap_or_else(|| "workloads".into());
    let kinds = ["Deployment", "DaemonSet", "StatefulSet"];
    Ok(kinds
        .iter()
        .map(|kind| {
            let mut t = generic_target(
                name.clone(),
                Gvk::new("apps", "v1", kind),
                RawTarget {
                    namespaces: raw.namespaces.clone(),
                    label_selector: raw.label_selector.clone(),
                    field_selector: raw.field_selector.clone(),
                    stalled_after: raw.stalled_after,
                    ..Default::default()
                },
                stalled_after,
            );
            // Deployments report `Available`; DaemonSets and StatefulSets report no conditions,
            // so their readiness comes from the rollout counters.
            t.conditions.ready = vec!["Available".into()];
            t
        })
        .collect())
}

fn conventions(raw: RawTarget, stalled_after: Duration) -> Result<Vec<Target>, String> {
    reject("conventions", &[("namespace", raw.namespace.is_some())])?;
    let Some(resource) = raw.resource.clone() else {
        return Err("key `resource`: the conventions preset needs `resource: {group, version, kind}`".into());
    };
    let Some(name) = raw.name.clone() else {
        return Err("key `name`: the conventions preset needs a `name`".into());
    };
    Ok(vec![generic_target(name, resource, raw, stalled_after)])
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ObservedGeneration};

    #[test]
    fn kubearmor_preset_expands_with_namespace() {
        let c = Config::parse("targets:\n  - preset: kubearmor\n    namespace: security\n", "c").unwrap();
        assert_eq!(c.targets.len(), 3);
        let cr = &c.targets[0];
        assert_eq!(cr.name, "kubearmor");
        assert_eq!(cr.resource.label(), "operator.kubearmor.com/v1/KubeArmorConfig");
        assert_eq!(cr.namespaces, vec!["security"]);
        assert!(matches!(cr.observed_generation, ObservedGeneration::Absent));
        assert_eq!(cr.phase.as_ref().unwrap().path.source(), "$.status.phase");
        assert_eq!(c.targets[1].label_selector.as_deref(), Some("kubearmor-app=kubearmor"));
        assert_eq!(c.targets[2].resource.kind, "Deployment");
    }

    #[test]
    fn kubearmor_default_namespace() {
        let c = Config::parse("targets: [{preset: kubearmor}]\n", "c").unwrap();
        assert!(c.targets.iter().all(|t| t.namespaces == vec!["kubearmor"]));
    }

    #[test]
    fn workloads_preset() {
        let c = Config::parse("targets: [{preset: workloads, namespaces: [a]}]\n", "c").unwrap();
        let kinds: Vec<_> = c.targets.iter().map(|t| t.resource.kind.as_str()).collect();
        assert_eq!(kinds, ["Deployment", "DaemonSet", "StatefulSet"]);
        assert!(c.targets.iter().all(|t| t.name == "workloads" && t.namespaces == vec!["a"]));
    }

    #[test]
    fn conventions_preset_needs_resource() {
        let e = Config::parse("targets: [{preset: conventions, name: c}]\n", "c").unwrap_err().to_string();
        assert!(e.contains("needs `resource"), "{e}");
    }

    #[test]
    fn preset_rejects_foreign_keys() {
        let e =
            Config::parse("targets: [{preset: kubearmor, namespaces: [a]}]\n", "c").unwrap_err().to_string();
        assert!(e.contains("does not take `namespaces`"), "{e}");
        let e = Config::parse("targets: [{preset: workloads, resource: {version: v1, kind: Pod}}]\n", "c")
            .unwrap_err()
            .to_string();
        assert!(e.contains("remove `resource`"), "{e}");
    }
}
