//! Resolution of one raw target into validated [`Target`]s: presets are expanded by
//! [`super::preset`]; a generic target is checked key by key here.

use std::time::Duration;

use super::{
    ConditionRule, ControllerRule, ImageRule, NamedRef, ObservedGeneration, Override, PhaseRule, PodsRef,
    Target, WorkloadLink, preset,
    raw::{RawImage, RawOverride, RawTarget, StatusWrites},
    selector::{check_field_selector, check_label_selector},
    validate::{validate_dns_label, validate_name},
};
use crate::model::{Gvk, Kind, ObjectPath};

/// One raw target: a preset's expansion, or a generic target checked key by key.
pub(super) fn resolve_target(mut raw: RawTarget, stalled_after: Duration) -> Result<Vec<Target>, String> {
    if let Some(name) = &raw.name {
        validate_name(name)?;
    }
    for ns in &raw.namespaces {
        validate_dns_label(ns).map_err(|m| format!("key `namespaces`: {m}"))?;
    }
    // `namespaces: [a, a]` means `[a]`: one watch, each object once.
    let mut seen = std::collections::HashSet::new();
    raw.namespaces.retain(|ns| seen.insert(ns.clone()));
    if let Some(r) = &raw.resource
        && !raw.namespaces.is_empty()
        && cluster_scoped(&r.group, &r.kind)
    {
        return Err(format!(
            "key `namespaces`: {} is cluster-scoped, its objects have no namespace; remove `namespaces`",
            r.kind
        ));
    }
    if let Some(preset) = raw.preset {
        return preset::expand(preset, raw, stalled_after);
    }
    let Some(resource) = raw.resource.clone() else {
        return Err("a target needs either `preset` (kubearmor, workloads, conventions) or `resource: {group, version, kind}`".into());
    };
    let Some(name) = raw.name.clone() else {
        return Err(
            "key `name`: a target with `resource` needs a `name` (it becomes the `target` label)".into()
        );
    };
    if raw.namespace.is_some() {
        return Err(
            "key `namespace`: only the kubearmor preset takes `namespace`; use `namespaces: [..]`".into()
        );
    }
    let plural = resource.plural.clone();
    let mut t = generic_target(
        name,
        Gvk::new(&resource.group, &resource.version, &resource.kind),
        raw,
        stalled_after,
    )?;
    t.plural = plural;
    Ok(vec![t])
}

/// Built-in kinds known to be cluster-scoped (a custom kind's scope is known only to discovery).
fn cluster_scoped(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "Node" | "Namespace" | "PersistentVolume")
            | ("apiregistration.k8s.io", "APIService")
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("rbac.authorization.k8s.io", "ClusterRole" | "ClusterRoleBinding")
            | ("storage.k8s.io", "StorageClass" | "CSIDriver" | "CSINode" | "VolumeAttachment")
            | ("scheduling.k8s.io", "PriorityClass")
            | (
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
            )
    )
}

fn resolve_images(
    raw: Vec<RawImage>,
    target_override: Option<RawOverride>,
) -> Result<Vec<ImageRule>, String> {
    if raw.is_empty() && target_override.is_some() {
        return Err(
            "key `overriddenBy`: it pins the images of the target's `images` slots, and the target has none"
                .into(),
        );
    }
    let mut out: Vec<ImageRule> = Vec::new();
    for i in raw {
        if out.iter().any(|o| o.slot == i.slot) {
            return Err(format!("key `images`: slot {:?} appears twice", i.slot));
        }
        validate_name(&i.slot).map_err(|m| m.replace("key `name`", "key `images.slot`"))?;
        let w = i.workloads;
        let kind = match Kind::of(&Gvk::new("apps", "v1", &w.kind)) {
            Some(k) if k.is_workload() => k,
            _ => {
                return Err(format!(
                    "key `images.workloads.kind`: {:?} is not a workload kind; expected Deployment, DaemonSet or StatefulSet",
                    w.kind
                ));
            }
        };
        if w.selector.is_none() && w.name.is_none() {
            return Err("key `images.workloads`: give `selector` or `name` to find the workloads".into());
        }
        for (key, sel) in [("selector", &w.selector), ("podSelector", &w.pod_selector)] {
            if let Some(sel) = sel {
                check_label_selector(sel).map_err(|m| format!("key `images.workloads.{key}`: {m}"))?;
            }
        }
        if w.container.is_some() && w.init_container.is_some() {
            return Err("key `images.workloads`: give either `container` or `initContainer`, not both".into());
        }
        if let Some(ns) = &w.namespace {
            validate_dns_label(ns).map_err(|m| format!("key `images.workloads.namespace`: {m}"))?;
        }
        let overridden_by = match i.overridden_by.or_else(|| target_override.clone()) {
            None => None,
            Some(o) if o.kind == "Deployment" => {
                Some(Override { namespace: o.namespace, deployment: o.name, env: o.env })
            }
            Some(o) => {
                return Err(format!(
                    "key `images.overriddenBy.kind`: only Deployment is supported, not {:?}",
                    o.kind
                ));
            }
        };
        out.push(ImageRule {
            slot: i.slot,
            desired: i.desired,
            default: i.default.filter(|d| !d.is_empty()),
            workloads: WorkloadLink {
                kind,
                namespace: w.namespace,
                pod_selector: w.pod_selector.or_else(|| w.selector.clone()),
                selector: w.selector,
                name: w.name,
                init: w.init_container.is_some(),
                container: w.init_container.or(w.container),
            },
            overridden_by,
            required: i.required,
        });
    }
    Ok(out)
}

/// A target with conventional defaults (kstatus), overridden by what the file says.
pub(crate) fn generic_target(
    name: String,
    resource: Gvk,
    raw: RawTarget,
    stalled_after: Duration,
) -> Result<Target, String> {
    let observed_generation = match raw.observed_generation {
        Some(p) => ObservedGeneration::Path(p),
        None => ObservedGeneration::Conventional,
    };
    let conditions = match raw.conditions {
        Some(c) => ConditionRule {
            path: c.path.unwrap_or_else(ObjectPath::conditions),
            ready: if c.ready.is_empty() { vec!["Ready".into()] } else { c.ready },
        },
        None => ConditionRule { path: ObjectPath::conditions(), ready: vec!["Ready".into()] },
    };
    if let Some(sel) = &raw.label_selector {
        check_label_selector(sel).map_err(|m| format!("key `labelSelector`: {m}"))?;
    }
    if let Some(sel) = &raw.field_selector {
        check_field_selector(sel).map_err(|m| format!("key `fieldSelector`: {m}"))?;
    }
    if let Some(p) = raw.controller.as_ref().and_then(|c| c.pods.as_ref()) {
        check_label_selector(&p.selector).map_err(|m| format!("key `controller.pods.selector`: {m}"))?;
    }
    let controller = match raw.controller {
        None => ControllerRule::default(),
        Some(c) => ControllerRule {
            lease: c.lease.map(|l| NamedRef { namespace: l.namespace, name: l.name }),
            pods: c.pods.map(|p| PodsRef { namespace: p.namespace, selector: p.selector }),
            status_on_change: c.status_writes == Some(StatusWrites::OnChange),
        },
    };
    Ok(Target {
        name,
        resource,
        namespaces: raw.namespaces,
        label_selector: raw.label_selector.filter(|s| !s.is_empty()),
        field_selector: raw.field_selector.filter(|s| !s.is_empty()),
        observed_generation,
        phase: raw.phase.map(|p| PhaseRule { path: p.path, ready: p.ready }),
        conditions,
        stalled_after: raw.stalled_after.unwrap_or(stalled_after),
        images: resolve_images(raw.images, raw.overridden_by)?,
        controller,
        events: raw.events,
        plural: None,
        pods_selector: None,
        shard_key: match raw.shard_key {
            Some(super::raw::RawShardKey::Uid) => crate::model::shard::ShardKey::Uid,
            _ => crate::model::shard::ShardKey::Namespace,
        },
        sharded: false,
    })
}
