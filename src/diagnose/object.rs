//! One object's report: its verdict, generation, phase, conditions and status writes, the image
//! slots (desired image, workload templates, what each pod runs), rollouts, operator pods,
//! leader Lease, Warning events and APIService, all read from the same [`View`] the exporter
//! renders. [`summarize`] then reduces the report to the [`Summary`] the ranking reads.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    LEASE_STALE,
    causes::{Mismatch, OperatorState, Pin, RolloutState, Summary, rank},
    context::{Context, EventRow},
    is_kubearmor,
    report::{
        ConditionReport, EventReport, GenerationReport, LeaseReport, NodeReport, ObjectReport, OperatorPod,
        OperatorReport, PhaseReport, RolloutReport, VerdictReport, WriteReport,
    },
    rfc3339,
    workloads::{pods_of, rollout, slots},
};
use crate::{
    ingest::builtin::BuiltinFacts,
    judge::verdict::{self, Status},
    judge::view::{ObjView, View},
    model::Kind,
    store,
};

/// Newest Warning events shown per object.
const EVENTS_SHOWN: usize = 8;

/// Seconds between `t` and `now`, whole (JSON stays readable and stable).
pub(super) fn age(now: f64, t: f64) -> f64 {
    (now - t).max(0.0).round()
}

fn time_source(t: f64, status_or_spec_write: Option<f64>, created: Option<f64>) -> &'static str {
    if status_or_spec_write == Some(t) {
        "managedFields"
    } else if created == Some(t) {
        "creationTimestamp"
    } else {
        "now"
    }
}

pub(super) fn object_report(
    view: &View,
    o: &ObjView,
    ctx: &Context,
    nodes: Option<&NodeReport>,
    now: f64,
) -> ObjectReport {
    let f = &o.tf.facts;
    let v = &o.verdict;
    let reported = verdict::generation_observed(o.tf);
    let generation = GenerationReport {
        generation: f.generation,
        observed_generation: f.observed_generation,
        observed: o.generation_observed(),
        source: if reported.is_some() {
            "reported"
        } else if o.evidence.derived_generation_observed.is_some() {
            "derived"
        } else {
            "unknown"
        },
        first_seen: rfc3339(o.tf.generation_first_seen),
        first_seen_source: time_source(o.tf.generation_first_seen, f.last_spec_write, f.created),
    };
    let phase = o.target.phase.as_ref().map(|rule| PhaseReport {
        phase: f.phase.as_deref().map(String::from),
        ready: verdict::phase_ready(o.target, o.tf),
        ready_phases: rule.ready.clone(),
        since: rfc3339(o.tf.phase_since),
        seconds: age(now, o.tf.phase_since),
        since_source: time_source(o.tf.phase_since, f.last_status_write(), f.created),
    });
    let conditions = f
        .conditions
        .iter()
        .map(|c| ConditionReport {
            type_: c.type_.to_string(),
            status: c.status.to_string(),
            reason: c.reason.to_string(),
            since: c.last_transition.map(rfc3339),
        })
        .collect();
    let mut status_writes: Vec<WriteReport> = f
        .status_writes
        .iter()
        .map(|(m, t)| WriteReport { manager: m.to_string(), at: rfc3339(*t), age_seconds: age(now, *t) })
        .collect();
    status_writes.sort_by(|a, b| a.age_seconds.total_cmp(&b.age_seconds));

    let images = slots(view, o);
    let mut rollouts: Vec<RolloutReport> = o
        .links
        .workloads
        .iter()
        .map(|w| rollout(view, (w.namespace, w.name, w.uid), w.facts, w.last_progress, now))
        .collect();
    if let Some(BuiltinFacts::Workload(w)) = &o.tracked.kind {
        let at = (o.namespace, o.name, &*o.tracked.uid);
        rollouts.insert(0, rollout(view, at, w, o.tracked.last_progress, now));
    }

    // The operator: its pods (readiness, restarts) and the Deployment that pins images.
    let deployment = o.target.images.iter().find_map(|r| r.overridden_by.as_ref());
    let operator = match (o.target.controller.pods.as_ref(), deployment) {
        (None, None) => None,
        (pods_ref, dep) => {
            let namespace = pods_ref
                .map(|p| p.namespace.clone())
                .or_else(|| dep.and_then(|d| d.namespace.clone()))
                .unwrap_or_else(|| o.namespace.to_string());
            let mut pods = Vec::new();
            if let Some(p) = pods_ref
                && let Some(state) = view.index.state(&store::key::pods_key(p))
            {
                for ((_, name), t) in &state.objects {
                    if let Some(BuiltinFacts::Pod(f)) = &t.kind
                        && !f.deleting
                    {
                        pods.push(OperatorPod {
                            name: name.to_string(),
                            node: f.node.as_deref().map(String::from),
                            ready: f.ready,
                            restarts: f.restarts,
                        });
                    }
                }
            }
            Some(OperatorReport {
                namespace,
                deployment: dep.map(|d| d.deployment.clone()),
                selector: pods_ref.map(|p| p.selector.clone()),
                pods,
            })
        }
    };
    let lease = o.target.controller.lease.as_ref().map(|l| {
        let facts = view.index.state(&store::key::lease_key(l)).and_then(|s| {
            s.objects.values().find_map(|t| match &t.kind {
                Some(BuiltinFacts::Lease(f)) => Some(f),
                _ => None,
            })
        });
        let lease_age = facts.and_then(|f| f.renew).map(|r| age(now, r));
        LeaseReport {
            namespace: l.namespace.clone(),
            name: l.name.clone(),
            found: facts.is_some(),
            holder: facts.and_then(|f| f.holder.as_deref().map(String::from)),
            renewed_at: facts.and_then(|f| f.renew).map(rfc3339),
            age_seconds: lease_age,
            transitions: facts.and_then(|f| f.transitions),
            stale: lease_age.is_none_or(|a| a > LEASE_STALE),
        }
    });

    // Warning events of the object, its workloads, their pods and the operator's pods.
    // By (kind, name), and by UID where the store knows it: events of a deleted namesake
    // belong to another object.
    let mut involved: BTreeSet<(String, String)> = BTreeSet::new();
    let mut uids: BTreeMap<(String, String), &str> = BTreeMap::new();
    involved.insert((o.target.resource.kind.clone(), o.name.to_string()));
    uids.insert((o.target.resource.kind.clone(), o.name.to_string()), &o.tracked.uid);
    let mut workloads: Vec<(Kind, &str)> = o.links.workloads.iter().map(|w| (w.facts.kind, w.name)).collect();
    for w in &o.links.workloads {
        uids.insert((w.facts.kind.name().to_string(), w.name.to_string()), w.uid);
    }
    if let Some(BuiltinFacts::Workload(w)) = &o.tracked.kind {
        workloads.push((w.kind, o.name));
    }
    for (kind, name) in workloads {
        involved.insert((kind.name().to_string(), name.to_string()));
        for (p, _) in pods_of(view, o.namespace, kind, name) {
            involved.insert(("Pod".into(), p.to_string()));
        }
    }
    for p in operator.iter().flat_map(|op| &op.pods) {
        involved.insert(("Pod".into(), p.name.clone()));
    }
    let mut events: Vec<&EventRow> = ctx
        .events
        .get(o.namespace)
        .into_iter()
        .flatten()
        .filter(|e| {
            let key = (e.kind.clone(), e.name.clone());
            involved.contains(&key)
                && match (e.uid.as_deref(), uids.get(&key)) {
                    (Some(have), Some(want)) => have == *want,
                    _ => true,
                }
        })
        .collect();
    events.sort_by(|a, b| b.last_seen.unwrap_or(0.0).total_cmp(&a.last_seen.unwrap_or(0.0)));
    // Events last seen before the object stopped being Current (an install-time FailedCreate)
    // are history, not the story: they are counted apart and rank low.
    let since = v.unconverged_since.unwrap_or(f64::INFINITY);
    let mut warning_totals: Vec<(String, u64)> = Vec::new();
    let mut old_warnings: Vec<(String, u64)> = Vec::new();
    for e in &events {
        let totals =
            if e.last_seen.is_some_and(|t| t < since) { &mut old_warnings } else { &mut warning_totals };
        match totals.iter_mut().find(|(r, _)| *r == e.reason) {
            Some((_, n)) => *n += e.count,
            None => totals.push((e.reason.clone(), e.count)),
        }
    }
    let events: Vec<EventReport> = events
        .into_iter()
        .take(EVENTS_SHOWN)
        .map(|e| EventReport {
            object: format!("{}/{}", e.kind, e.name),
            reason: e.reason.clone(),
            message: e.message.clone(),
            count: e.count,
            last_seen: e.last_seen.map(rfc3339),
            age_seconds: e.last_seen.map(|t| age(now, t)),
        })
        .collect();
    let apiservice = (!o.target.resource.group.is_empty())
        .then(|| {
            ctx.apiservices
                .get(&format!("{}.{}", o.target.resource.version, o.target.resource.group))
                .cloned()
        })
        .flatten();

    let mut report = ObjectReport {
        target: o.target.name.clone(),
        kind: o.target.resource.kind.clone(),
        namespace: o.namespace.into(),
        name: o.name.into(),
        verdict: VerdictReport {
            status: v.status.label(),
            reason: v.reason.map(|r| r.label()),
            unconverged_since: v.unconverged_since.map(rfc3339),
            unconverged_seconds: v.unconverged_since.map(|s| age(now, s)),
            stalled_since: v.stalled_since.map(rfc3339),
            stalled_after_seconds: o.target.stalled_after.as_secs_f64(),
        },
        generation,
        phase,
        conditions,
        status_writes,
        images,
        rollouts,
        operator,
        lease,
        events,
        apiservice,
        causes: Vec::new(),
    };
    let mut summary = summarize(&report, o, nodes, warning_totals);
    summary.old_warnings = old_warnings;
    report.causes = rank(&summary);
    report
}

/// The ranking's input, from the report (plain data) and the target's rules.
fn summarize(
    r: &ObjectReport,
    o: &ObjView,
    nodes: Option<&NodeReport>,
    warnings: Vec<(String, u64)>,
) -> Summary {
    let complete = |kind: &str, ns: &str, name: &str| {
        r.rollouts.iter().any(|w| w.kind == kind && w.namespace == ns && w.name == name && w.complete)
    };
    let mut mismatches = Vec::new();
    let mut pins = Vec::new();
    for s in &r.images {
        for w in s.workloads.iter().filter(|w| w.mismatch) {
            mismatches.push(Mismatch {
                slot: s.slot.clone(),
                workload_kind: w.kind.into(),
                workload_namespace: w.namespace.clone(),
                workload: w.name.clone(),
                container: w.container.clone(),
                init: w.init,
                desired: s.desired.clone(),
                actual: w.template_image.clone(),
                rollout_complete: complete(w.kind, &w.namespace, &w.name),
            });
        }
        if let Some(src) = &s.override_source {
            pins.push(Pin {
                slot: s.slot.clone(),
                source: src.clone(),
                pinned: s.desired.clone(),
                stated: s.stated.clone(),
            });
        }
    }
    let rollouts = r
        .rollouts
        .iter()
        .filter(|w| !w.complete || !w.outdated_pods.is_empty())
        .map(|w| RolloutState {
            kind: w.kind.into(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            strategy: w.strategy.into(),
            desired: w.desired,
            updated: w.updated,
            available: w.available,
            complete: w.complete,
            failed: w.deadline_exceeded,
            outdated_pods: w.outdated_pods.clone(),
            stalled_seconds: w.last_progress_seconds,
        })
        .collect();
    let operator = r.operator.as_ref().map(|op| OperatorState {
        namespace: op.namespace.clone(),
        deployment: op.deployment.clone(),
        selector: op.selector.clone(),
        pods: op.pods.len(),
        ready: op.pods.iter().filter(|p| p.ready).count(),
        restarts: op.pods.iter().map(|p| p.restarts).sum(),
    });
    let ready_types = &o.target.conditions.ready;
    Summary {
        converged: r.verdict.status == Status::Current.label(),
        kubearmor: is_kubearmor(o.target),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        phase: r.phase.as_ref().and_then(|p| p.phase.clone()),
        phase_ready: r.phase.as_ref().and_then(|p| p.ready),
        generation_lag: match (r.generation.generation, r.generation.observed_generation) {
            (Some(g), Some(ob)) if ob < g => Some((g, ob)),
            _ => None,
        },
        mismatches,
        pins,
        rollouts,
        operator,
        lease: r.lease.as_ref().map(|l| (format!("{}/{}", l.namespace, l.name), l.age_seconds)),
        last_status_write_age: r.status_writes.first().map(|w| w.age_seconds),
        unconverged_seconds: r.verdict.unconverged_seconds.unwrap_or(0.0),
        stalled_after: r.verdict.stalled_after_seconds,
        conditions_not_ready: r
            .conditions
            .iter()
            .filter(|c| {
                (ready_types.contains(&c.type_) && c.status != "True")
                    || (c.type_ == "Stalled" && c.status == "True")
            })
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect(),
        warnings,
        apiservice: r.apiservice.as_ref().map(|a| (a.name.clone(), a.available, a.message.clone())),
        nodes_without_snitch: nodes.and_then(|n| n.without_kubearmor_labels.clone()).unwrap_or_default(),
        nodes_not_ready: nodes.map(|n| n.not_ready.clone()).unwrap_or_default(),
        nodes_new: nodes.map(|n| n.created_last_hour.clone()).unwrap_or_default(),
        nodes_total: nodes.map_or(0, |n| n.total),
        old_warnings: Vec::new(),
        missing_required: o.links.required_missing.iter().map(|s| s.to_string()).collect(),
        status_on_change: o.target.controller.status_on_change,
    }
}
