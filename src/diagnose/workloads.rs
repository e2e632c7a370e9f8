//! The workload parts of one object's report: each image slot (desired image, workload
//! templates, what each pod runs) and each linked workload's rollout.

use std::collections::BTreeSet;

use super::{
    object::age,
    report::{PodImage, RolloutReport, SlotReport, SlotWorkload},
    rfc3339,
};
use crate::{
    ingest::builtin::{BuiltinFacts, PodFacts, Strategy, WorkloadFacts},
    judge::converge,
    judge::view::{ObjView, View},
    model::Kind,
    model::image,
    store,
};

fn strategy(s: Strategy) -> &'static str {
    match s {
        Strategy::RollingUpdate => "RollingUpdate",
        Strategy::OnDelete => "OnDelete",
        Strategy::Recreate => "Recreate",
    }
}

/// Pods owned by a workload, with their names (the index keys pods by owner without names).
pub(super) fn pods_of<'a>(view: &View<'a>, ns: &str, kind: Kind, name: &str) -> Vec<(&'a str, &'a PodFacts)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &(key, state) in &view.index.states {
        if key.kind != Some(Kind::Pod) {
            continue;
        }
        for ((pns, pname), t) in &state.objects {
            if **pns != *ns {
                continue;
            }
            if let Some(BuiltinFacts::Pod(p)) = &t.kind
                && let Some((k, owner)) = &p.owner
                && *k == kind
                && **owner == *name
                && !p.deleting
                && seen.insert(&**pname)
            {
                out.push((&**pname, p));
            }
        }
    }
    out.sort_by_key(|(n, _)| *n);
    out
}

/// The rollout of workload `ns/name` (UID `uid`).
pub(super) fn rollout(
    view: &View,
    (ns, name, uid): (&str, &str, &str),
    w: &WorkloadFacts,
    last_progress: f64,
    now: f64,
) -> RolloutReport {
    let pods = pods_of(view, ns, w.kind, name);
    let hash = view.index.current_hash(ns, name, uid, w);
    RolloutReport {
        kind: w.kind.name(),
        namespace: ns.into(),
        name: name.into(),
        strategy: strategy(w.strategy),
        partition: w.partition,
        generation_observed: w.observed(),
        desired: w.desired,
        updated: w.updated,
        available: w.available,
        ready: w.ready,
        complete: w.complete(),
        deadline_exceeded: w.deadline_exceeded,
        pods: pods.len(),
        outdated_pods: pods
            .iter()
            .filter(|(_, p)| converge::outdated(w, hash, p))
            .map(|(n, _)| n.to_string())
            .collect(),
        last_progress: rfc3339(last_progress),
        last_progress_seconds: age(now, last_progress),
    }
}

pub(super) fn slots(view: &View, o: &ObjView) -> Vec<SlotReport> {
    let mut out = Vec::new();
    for (i, rule) in o.target.images.iter().enumerate() {
        let stated = o.tf.facts.desired_images.get(i).cloned().flatten().map(String::from);
        let rows: Vec<_> = o.links.slots.iter().filter(|s| s.slot == rule.slot).collect();
        let (desired, override_source) = match rows.first() {
            Some(r) => (r.desired.clone(), r.override_source.clone()),
            None => match converge::pin(&view.index, o.target, rule) {
                Some((v, src)) => (v, Some(src)),
                None => (stated.clone().or_else(|| rule.default.clone()).unwrap_or_default(), None),
            },
        };
        let desired_source = if override_source.is_some() {
            "operator-pin"
        } else if stated.is_some() {
            "object"
        } else {
            "default"
        };
        let link = &rule.workloads;
        let lns = store::key::link_namespace(o.target, link);
        let lns = if lns.is_empty() { o.namespace } else { lns };
        let looked_for = format!(
            "{} {} in {}",
            link.kind.name(),
            link.name.as_deref().or(link.selector.as_deref()).unwrap_or(""),
            if lns.is_empty() { "any namespace" } else { lns }
        );
        let workloads = rows
            .iter()
            .map(|r| {
                let facts = o
                    .links
                    .workloads
                    .iter()
                    .find(|w| w.namespace == r.workload_namespace && w.name == r.workload);
                let pods = pods_of(view, r.workload_namespace, r.workload_kind, r.workload)
                    .into_iter()
                    .map(|(name, p)| {
                        let c = p.containers.iter().find(|c| &*c.name == r.container && c.init == link.init);
                        PodImage {
                            name: name.into(),
                            node: p.node.as_deref().map(String::from),
                            image: c.map_or(String::new(), |c| {
                                c.status_image.as_deref().unwrap_or(&c.spec_image).to_string()
                            }),
                            on_template: facts
                                .is_some_and(|w| !converge::outdated(w.facts, w.template_hash, p)),
                            runs_desired: c.is_some_and(|c| {
                                image::runs(
                                    &desired,
                                    &c.spec_image,
                                    c.status_image.as_deref(),
                                    c.image_id.as_deref(),
                                )
                            }),
                        }
                    })
                    .collect();
                SlotWorkload {
                    kind: r.workload_kind.name(),
                    namespace: r.workload_namespace.into(),
                    name: r.workload.into(),
                    container: r.container.into(),
                    init: link.init,
                    template_image: r.actual.into(),
                    mismatch: r.mismatch,
                    pods,
                }
            })
            .collect();
        out.push(SlotReport {
            slot: rule.slot.clone(),
            desired,
            desired_source,
            field: rule.desired.source().to_string(),
            stated,
            override_source,
            workloads,
            missing: o.links.missing.contains(&rule.slot.as_str()),
            looked_for,
        });
    }
    out
}
