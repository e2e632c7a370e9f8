//! Presets: one line of config that expands into the targets a common case needs.
//!
//! The KubeArmor facts come from its real CRD and operator code (see docs/presets.md): the CR
//! reports only `status.phase` (no observedGeneration, no conditions), lives in the operator
//! namespace, and drives DaemonSets labelled `kubearmor-app=kubearmor` plus the relay and
//! controller Deployments.

use std::time::Duration;

use super::{
    ControllerRule, ImageRule, NamedRef, ObservedGeneration, Override, PhaseRule, PodsRef, Target,
    WorkloadLink,
    generic::generic_target,
    raw::{PresetName, RawTarget, StatusWrites},
};
use crate::model::{Gvk, Kind, ObjectPath};

/// API group of the KubeArmor operator's resource.
pub const KUBEARMOR_GROUP: &str = "operator.kubearmor.com";
/// Kind of the KubeArmor operator's resource.
pub const KUBEARMOR_KIND: &str = "KubeArmorConfig";
/// Namespace the KubeArmor operator installs into by default.
pub const KUBEARMOR_DEFAULT_NAMESPACE: &str = "kubearmor";
/// Phases the operator writes (defaults.go); only `Running` means converged.
pub const KUBEARMOR_PHASES: [&str; 5] = ["Created", "Updating", "Running", "Pending", "Error"];
/// Label on every KubeArmor DaemonSet (there may be several, one per enforcer/runtime).
pub const KUBEARMOR_DAEMONSET_SELECTOR: &str = "kubearmor-app=kubearmor";
/// The operator's own pods (readiness and restarts).
pub const KUBEARMOR_OPERATOR_POD_SELECTOR: &str = "kubearmor-app=kubearmor-operator";
/// The operator, relay and controller Deployments, by their `kubearmor-app` label.
pub const KUBEARMOR_DEPLOYMENT_SELECTOR: &str =
    "kubearmor-app in (kubearmor-operator,kubearmor-relay,kubearmor-controller)";

pub(crate) fn expand(
    preset: PresetName,
    raw: RawTarget,
    stalled_after: Duration,
) -> Result<Vec<Target>, String> {
    // `conventions` is the one preset that takes a resource: it applies kstatus conventions to it.
    if raw.resource.is_some() && preset != PresetName::Conventions {
        return Err(
            "key `resource`: this preset chooses its own resources; remove `resource` or `preset`".into()
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
            ("images", !raw.images.is_empty()),
            ("overriddenBy", raw.overridden_by.is_some()),
            ("conditions", raw.conditions.is_some()),
        ],
    )?;
    let ns = raw.namespace.clone().unwrap_or_else(|| KUBEARMOR_DEFAULT_NAMESPACE.into());
    super::validate::validate_dns_label(&ns).map_err(|m| format!("key `namespace`: {m}"))?;
    let name = raw.name.clone().unwrap_or_else(|| "kubearmor".into());
    let stalled = raw.stalled_after.unwrap_or(stalled_after);
    let base = |resource: Gvk, selector: Option<&str>| -> Result<Target, String> {
        let mut t = generic_target(
            name.clone(),
            resource,
            RawTarget { namespaces: vec![ns.clone()], events: true, ..Default::default() },
            stalled,
        )?;
        t.label_selector = selector.map(str::to_string);
        Ok(t)
    };
    let mut config = base(Gvk::new(KUBEARMOR_GROUP, "v1", KUBEARMOR_KIND), None)?;
    config.plural = Some("kubearmorconfigs".into());
    config.observed_generation = ObservedGeneration::Absent;
    config.phase = Some(PhaseRule {
        path: ObjectPath::parse("$.status.phase").expect("static path"),
        ready: vec!["Running".into()],
    });
    config.images = kubearmor_images();
    // The operator pods by default; a `controller:` in the config adds a Lease or other pods.
    let own = raw.controller.as_ref();
    config.controller = ControllerRule {
        lease: own
            .and_then(|c| c.lease.as_ref())
            .map(|l| NamedRef { namespace: l.namespace.clone(), name: l.name.clone() }),
        pods: Some(match own.and_then(|c| c.pods.as_ref()) {
            Some(p) => PodsRef { namespace: p.namespace.clone(), selector: p.selector.clone() },
            None => PodsRef { namespace: ns.clone(), selector: KUBEARMOR_OPERATOR_POD_SELECTOR.into() },
        }),
        // The operator reconciles every 5-10 s but writes status only when phase or message
        // change, so a status untouched for hours is normal; say `statusWrites: periodic` to
        // judge it anyway.
        status_on_change: own.and_then(|c| c.status_writes) != Some(StatusWrites::Periodic),
    };
    // The operator labels its workloads' pods like the workloads, so their pods are watched
    // with the same selectors instead of every pod of the namespace.
    let mut daemonsets = base(Gvk::new("apps", "v1", "DaemonSet"), Some(KUBEARMOR_DAEMONSET_SELECTOR))?;
    daemonsets.pods_selector = Some(KUBEARMOR_DAEMONSET_SELECTOR.into());
    let mut deployments = base(Gvk::new("apps", "v1", "Deployment"), Some(KUBEARMOR_DEPLOYMENT_SELECTOR))?;
    deployments.pods_selector = Some(KUBEARMOR_DEPLOYMENT_SELECTOR.into());
    Ok(vec![config, daemonsets, deployments])
}

/// The four images the operator manages: CR field, default when empty, where it runs, and the
/// operator env var that pins it (defaults.go; `GetApplicationImage`).
fn kubearmor_images() -> Vec<ImageRule> {
    let rule = |slot: &str, field: &str, default: &str, link: WorkloadLink, env: &str| ImageRule {
        slot: slot.into(),
        desired: ObjectPath::parse(&format!("$.spec.{field}.image")).expect("static path"),
        default: Some(default.into()),
        workloads: link,
        overridden_by: Some(Override {
            namespace: None,
            deployment: "kubearmor-operator".into(),
            env: env.into(),
        }),
        // The agent DaemonSets: without them nothing enforces anything, and the operator does
        // not recreate a deleted one until it restarts. Relay and controller are optional.
        required: slot == "kubearmor",
    };
    let daemonsets = |container: &str, init: bool| WorkloadLink {
        kind: Kind::DaemonSet,
        namespace: None,
        selector: Some(KUBEARMOR_DAEMONSET_SELECTOR.into()),
        name: None,
        container: Some(container.into()),
        init,
        pod_selector: Some(KUBEARMOR_DAEMONSET_SELECTOR.into()),
    };
    let deployment = |name: &str, container: Option<&str>, pods: &str| WorkloadLink {
        kind: Kind::Deployment,
        namespace: None,
        selector: None,
        name: Some(name.into()),
        container: container.map(str::to_string),
        init: false,
        pod_selector: Some(pods.into()),
    };
    vec![
        rule(
            "kubearmor",
            "kubearmorImage",
            "docker.io/kubearmor/kubearmor:stable",
            daemonsets("kubearmor", false),
            "RELATED_IMAGE_KUBEARMOR",
        ),
        rule(
            "init",
            "kubearmorInitImage",
            "docker.io/kubearmor/kubearmor-init:stable",
            daemonsets("init", true),
            "RELATED_IMAGE_KUBEARMOR_INIT",
        ),
        rule(
            "relay",
            "kubearmorRelayImage",
            "docker.io/kubearmor/kubearmor-relay-server:latest",
            deployment("kubearmor-relay", None, KUBEARMOR_DEPLOYMENT_SELECTOR),
            "RELATED_IMAGE_KUBEARMOR_RELAY_SERVER",
        ),
        rule(
            "controller",
            "kubearmorControllerImage",
            "docker.io/kubearmor/kubearmor-controller:latest",
            deployment("kubearmor-controller", Some("manager"), KUBEARMOR_DEPLOYMENT_SELECTOR),
            "RELATED_IMAGE_KUBEARMOR_CONTROLLER",
        ),
    ]
}

fn workloads(raw: RawTarget, stalled_after: Duration) -> Result<Vec<Target>, String> {
    reject(
        "workloads",
        &[
            ("namespace", raw.namespace.is_some()),
            ("phase", raw.phase.is_some()),
            ("observedGeneration", raw.observed_generation.is_some()),
            ("images", !raw.images.is_empty()),
            ("overriddenBy", raw.overridden_by.is_some()),
            ("controller", raw.controller.is_some()),
            ("conditions", raw.conditions.is_some()),
        ],
    )?;
    let name = raw.name.clone().unwrap_or_else(|| "workloads".into());
    let kinds = ["Deployment", "DaemonSet", "StatefulSet"];
    kinds
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
                    events: raw.events,
                    shard_key: raw.shard_key,
                    ..Default::default()
                },
                stalled_after,
            )?;
            // Deployments report `Available`; DaemonSets and StatefulSets report no conditions,
            // so their readiness comes from the rollout counters.
            t.conditions.ready = vec!["Available".into()];
            Ok(t)
        })
        .collect()
}

fn conventions(raw: RawTarget, stalled_after: Duration) -> Result<Vec<Target>, String> {
    reject("conventions", &[("namespace", raw.namespace.is_some())])?;
    let Some(resource) = raw.resource.clone() else {
        return Err("key `resource`: the conventions preset needs `resource: {group, version, kind}`".into());
    };
    let Some(name) = raw.name.clone() else {
        return Err("key `name`: the conventions preset needs a `name`".into());
    };
    let resource = Gvk::new(&resource.group, &resource.version, &resource.kind);
    Ok(vec![generic_target(name, resource, raw, stalled_after)?])
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn kubearmor_preset_takes_a_lease_and_rejects_what_it_would_ignore() {
        let c = Config::parse(
            "targets: [{preset: kubearmor, controller: {lease: {namespace: kubearmor, name: kubearmor-operator-lock}}}]\n",
            "c",
        )
        .unwrap();
        let ctl = &c.targets[0].controller;
        assert_eq!(ctl.lease.as_ref().unwrap().name, "kubearmor-operator-lock");
        assert_eq!(ctl.pods.as_ref().unwrap().selector, KUBEARMOR_OPERATOR_POD_SELECTOR);
        for bad in ["images: []", "conditions: {ready: [X]}", "overriddenBy: {name: x, env: Y}"] {
            let text = format!("targets: [{{preset: kubearmor, {bad}}}]\n");
            let e = Config::parse(&text, "c").err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("does not take") || bad.starts_with("images"), "{bad}: {e}");
        }
        let e = Config::parse(
            "targets: [{preset: workloads, controller: {pods: {namespace: a, selector: b=c}}}]\n",
            "c",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not take `controller`"), "{e}");
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
    fn conventions_preset_loads_as_documented() {
        let c = Config::parse(
            "targets: [{preset: conventions, name: c, resource: {group: example.com, version: v1, kind: Widget}}]\n",
            "c",
        )
        .unwrap();
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.targets[0].resource.label(), "example.com/v1/Widget");
        assert_eq!(c.targets[0].conditions.ready, vec!["Ready"]);
    }

    #[test]
    fn kubearmor_agent_slot_is_required_and_status_written_on_change() {
        let c = Config::parse("targets: [{preset: kubearmor}]\n", "c").unwrap();
        let required: Vec<_> =
            c.targets[0].images.iter().filter(|i| i.required).map(|i| i.slot.as_str()).collect();
        assert_eq!(required, ["kubearmor"]);
        assert!(c.targets[0].controller.status_on_change);
        let c = Config::parse("targets: [{preset: kubearmor, controller: {statusWrites: periodic}}]\n", "c")
            .unwrap();
        assert!(!c.targets[0].controller.status_on_change);
    }

    #[test]
    fn duplicate_namespaces_collapse_and_cluster_kinds_take_none() {
        let c = Config::parse("targets: [{preset: workloads, namespaces: [a, b, a]}]\n", "c").unwrap();
        assert!(c.targets.iter().all(|t| t.namespaces == vec!["a", "b"]));
        let e = Config::parse(
            "targets: [{name: n, resource: {version: v1, kind: Node}, namespaces: [a]}]\n",
            "c",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cluster-scoped") && e.contains("remove `namespaces`"), "{e}");
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
