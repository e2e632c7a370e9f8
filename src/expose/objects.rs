//! The per-object families (docs/metrics.md): tracked objects, images, rollouts and context,
//! rendered from one [`View`] with the direct writer of [`crate::expose::writer`].

use super::links;
use crate::{
    config::Target,
    expose::writer::{Type, Writer, gauge_bool, labels},
    ingest::BuiltinFacts,
    judge::converge::LinkedWorkload,
    judge::verdict::{self, Status, Verdict},
    judge::view::{ObjView, View},
    model::Kind,
    store,
};

fn reason(v: &Verdict) -> &'static str {
    v.reason.map_or("", |r| r.label())
}

/// Escaped label sets of every object and workload, computed once per render.
struct Prefixes {
    objects: Vec<String>,
    workloads: Vec<String>,
}

impl Prefixes {
    fn new(view: &View) -> Prefixes {
        let objects = view
            .objects
            .iter()
            .map(|o| {
                labels(&[
                    ("target", &o.target.name),
                    ("kind", &o.target.resource.kind),
                    ("namespace", o.namespace),
                    ("name", o.name),
                ])
            })
            .collect();
        let workloads = view
            .workloads
            .iter()
            .map(|(t, w)| {
                labels(&[
                    ("target", t),
                    ("kind", w.facts.kind.name()),
                    ("namespace", w.namespace),
                    ("name", w.name),
                ])
            })
            .collect();
        Prefixes { objects, workloads }
    }
}

pub(super) struct ObjectFamilies<'a, 'v> {
    x: &'a mut Writer,
    view: &'a View<'v>,
    p: &'a Prefixes,
}

impl ObjectFamilies<'_, '_> {
    /// One gauge per object; `value` returns None to skip the object.
    fn obj(&mut self, name: &str, help: &str, value: impl Fn(&ObjView) -> Option<f64>) {
        let mut f = self.x.family(name, help, Type::Gauge);
        for (o, p) in self.view.objects.iter().zip(&self.p.objects) {
            if let Some(v) = value(o) {
                f.sample(p, &[], v);
            }
        }
    }

    /// Any number of series per object, with extra labels.
    pub(super) fn obj_each(
        &mut self,
        name: &str,
        help: &str,
        ty: Type,
        series: impl Fn(&ObjView, &mut dyn FnMut(&[(&str, &str)], f64)),
    ) {
        let mut f = self.x.family(name, help, ty);
        for (o, p) in self.view.objects.iter().zip(&self.p.objects) {
            series(o, &mut |extra, v| f.sample(p, extra, v));
        }
    }

    fn workload(&mut self, name: &str, help: &str, value: impl Fn(&LinkedWorkload) -> f64) {
        let mut f = self.x.family(name, help, Type::Gauge);
        for ((_, w), p) in self.view.workloads.iter().zip(&self.p.workloads) {
            f.sample(p, &[], value(w));
        }
    }
}

/// Writes every per-object family of `view`.
pub fn encode(x: &mut Writer, view: &View) {
    let p = Prefixes::new(view);
    let mut out = ObjectFamilies { x, view, p: &p };
    objects(&mut out);
    images(&mut out);
    links::workload_links(&mut out);
    rollouts(&mut out);
    links::thresholds(out.x, view);
    context(out.x, view);
}

fn objects(o: &mut ObjectFamilies) {
    let now = o.view.now;
    o.obj("generation", "metadata.generation of the tracked object.", |o| {
        o.tf.facts.generation.map(|g| g as f64)
    });
    o.obj(
        "observed_generation",
        "Observed generation the object reports (absent when it reports none).",
        |o| o.tf.facts.observed_generation.map(|g| g as f64),
    );
    o.obj("generation_lag", "metadata.generation minus the observed generation, when reported.", |o| {
        Some((o.tf.facts.generation? - o.tf.facts.observed_generation?) as f64)
    });
    o.obj(
        "generation_observed",
        "1 when the current generation has been observed: reported by the object, or for kinds that report none derived from its workloads.",
        |o| o.generation_observed().map(gauge_bool),
    );
    o.obj("generation_first_seen_timestamp_seconds", "When the current generation was first seen.", |o| {
        Some(o.tf.generation_first_seen)
    });
    o.obj(
        "generation_unobserved_seconds",
        "Seconds since the current generation was first seen while it is not observed; 0 once observed.",
        |o| {
            o.generation_observed()
                .map(|seen| if seen { 0.0 } else { (now - o.tf.generation_first_seen).max(0.0) })
        },
    );
    o.obj_each("phase", "1 for the current phase of the object.", Type::Gauge, |o, emit| {
        if let (Some(_), Some(p)) = (&o.target.phase, &o.tf.facts.phase) {
            emit(&[("phase", p)], 1.0);
        }
    });
    o.obj("phase_ready", "1 when the current phase is one of the target's ready phases.", |o| {
        verdict::phase_ready(o.target, o.tf).map(gauge_bool)
    });
    o.obj("phase_since_timestamp_seconds", "When the current phase began.", |o| {
        o.target.phase.as_ref().map(|_| o.tf.phase_since)
    });
    o.obj("phase_duration_seconds", "Seconds in the current phase, computed at scrape time.", |o| {
        o.target.phase.as_ref().map(|_| (now - o.tf.phase_since).max(0.0))
    });
    o.obj_each("condition", "1 per condition present on the object.", Type::Gauge, |o, emit| {
        for c in &o.tf.facts.conditions {
            emit(&[("type", &c.type_), ("status", &c.status), ("reason", &c.reason)], 1.0);
        }
    });
    o.obj_each(
        "condition_since_timestamp_seconds",
        "The condition's lastTransitionTime.",
        Type::Gauge,
        |o, emit| {
            for c in &o.tf.facts.conditions {
                if let Some(t) = c.last_transition {
                    emit(&[("type", &c.type_)], t);
                }
            }
        },
    );
    o.obj_each(
        "status",
        "The verdict: 1 for the current status (Current, InProgress, Stalled, Failed, Terminating) with its reason.",
        Type::Gauge,
        |o, emit| emit(&[("status", o.verdict.status.label()), ("reason", reason(&o.verdict))], 1.0),
    );
    o.obj("unconverged_since_timestamp_seconds", "When the object stopped being Current.", |o| {
        o.verdict.unconverged_since
    });
    o.obj("unconverged_seconds", "Seconds since the object stopped being Current; 0 while Current.", |o| {
        Some(o.verdict.unconverged_since.map_or(0.0, |s| (now - s).max(0.0)))
    });
    o.obj_each(
        "stalled",
        "1 while the verdict is Stalled or Failed, with its reason; else 0.",
        Type::Gauge,
        |o, emit| {
            let stalled = matches!(o.verdict.status, Status::Stalled | Status::Failed);
            emit(&[("reason", if stalled { reason(&o.verdict) } else { "" })], gauge_bool(stalled));
        },
    );
    o.obj("stalled_since_timestamp_seconds", "When the verdict became Stalled or Failed.", |o| {
        o.verdict.stalled_since
    });
    o.obj_each(
        "status_write_timestamp_seconds",
        "Last write of the status subresource per field manager (metadata.managedFields).",
        Type::Gauge,
        |o, emit| {
            for (m, t) in &o.tf.facts.status_writes {
                emit(&[("manager", m)], *t);
            }
        },
    );
    let view = o.view;
    o.obj_each(
        "warning_events",
        "Warning events of the tracked object and its workloads, by reason.",
        Type::Counter,
        |o, emit| {
            if o.target.events {
                for (r, n) in view.warnings_of(o) {
                    emit(&[("reason", r)], n as f64);
                }
            }
        },
    );
}

fn images(o: &mut ObjectFamilies) {
    o.obj_each(
        "image_mismatch",
        "1 when the desired image of a slot is not the workload's pod template image for that container.",
        Type::Gauge,
        |o, emit| {
            for s in &o.links.slots {
                emit(
                    &[
                        ("slot", s.slot),
                        ("workload_kind", s.workload_kind.name()),
                        ("workload_namespace", s.workload_namespace),
                        ("workload", s.workload),
                        ("container", s.container),
                        ("desired", &s.desired),
                        ("actual", s.actual),
                    ],
                    gauge_bool(s.mismatch),
                );
            }
        },
    );
    o.obj_each(
        "image_overridden",
        "1 when the desired image of a slot comes from an operator pin rather than the object.",
        Type::Gauge,
        |o, emit| {
            let mut done: Vec<&str> = Vec::new();
            for s in &o.links.slots {
                if !done.contains(&s.slot) {
                    done.push(s.slot);
                    let source = s.override_source.as_deref().unwrap_or("");
                    emit(&[("slot", s.slot), ("source", source)], gauge_bool(s.override_source.is_some()));
                }
            }
        },
    );
    o.workload("workload_pods", "Pods owned by the workload.", |w| w.pods as f64);
    o.workload("workload_pods_outdated", "Pods not running the workload's current pod template.", |w| {
        w.outdated as f64
    });
}

fn rollouts(o: &mut ObjectFamilies) {
    let now = o.view.now;
    o.workload("rollout_desired", "Desired pods (replicas or desiredNumberScheduled).", |w| {
        w.facts.desired as f64
    });
    o.workload(
        "rollout_updated",
        "Pods on the current template (updatedReplicas or updatedNumberScheduled).",
        |w| w.facts.updated as f64,
    );
    o.workload("rollout_available", "Available pods.", |w| w.facts.available as f64);
    o.workload("rollout_ready", "Ready pods.", |w| w.facts.ready as f64);
    o.workload(
        "rollout_complete",
        "1 when the rollout of the current template is complete (partition and OnDelete aware).",
        |w| gauge_bool(w.facts.complete()),
    );
    o.workload(
        "rollout_last_progress_timestamp_seconds",
        "Last time the rollout moved toward desired, the template changed, or the rollout became incomplete.",
        |w| w.last_progress,
    );
    o.workload(
        "rollout_stalled_seconds",
        "Seconds since the last progress while the rollout is incomplete; 0 when complete.",
        |w| if w.facts.complete() { 0.0 } else { (now - w.last_progress).max(0.0) },
    );
}

fn context(x: &mut Writer, view: &View) {
    // Presets expand into several targets under one name; each may name its own controller.
    let mut targets: Vec<&Target> = Vec::new();
    for o in &view.objects {
        if !targets.iter().any(|t| std::ptr::eq(*t, o.target)) {
            targets.push(o.target);
        }
    }
    let mut leases = Vec::new();
    let mut pods = Vec::new();
    for t in &targets {
        if let Some(l) = &t.controller.lease
            && let Some(state) = view.index.state(&store::key::lease_key(l))
        {
            for tracked in state.objects.values() {
                if let Some(BuiltinFacts::Lease(f)) = &tracked.kind {
                    leases.push((&t.name, l, f));
                }
            }
        }
        if let Some(p) = &t.controller.pods
            && let Some(state) = view.index.state(&store::key::pods_key(p))
        {
            for ((ns, name), tracked) in &state.objects {
                if let Some(BuiltinFacts::Pod(f)) = &tracked.kind {
                    pods.push((labels(&[("target", &t.name), ("namespace", ns), ("pod", name)]), f));
                }
            }
        }
    }
    let mut f = x.family("lease_renew_timestamp_seconds", "Leader-election Lease renew time.", Type::Gauge);
    for (t, l, lf) in &leases {
        if let Some(r) = lf.renew {
            let holder = lf.holder.as_deref().unwrap_or("");
            f.sample(
                "",
                &[("target", t), ("lease_namespace", &l.namespace), ("lease", &l.name), ("holder", holder)],
                r,
            );
        }
    }
    let mut f = x.family("lease_transitions", "Leader-election Lease transitions.", Type::Gauge);
    for (t, l, lf) in &leases {
        if let Some(n) = lf.transitions {
            f.sample("", &[("target", t), ("lease_namespace", &l.namespace), ("lease", &l.name)], n as f64);
        }
    }
    let mut f = x.family("operator_pod_ready", "1 when the operator pod is Ready.", Type::Gauge);
    for (p, pf) in &pods {
        f.sample(p, &[], gauge_bool(pf.ready));
    }
    let mut f = x.family("operator_pod_restarts", "Container restarts of the operator pod.", Type::Gauge);
    for (p, pf) in &pods {
        f.sample(p, &[], pf.restarts as f64);
    }
    let states = &view.index.states;
    let nodes: Vec<_> = states.iter().filter(|(k, _)| k.kind == Some(Kind::Node)).collect();
    if !nodes.is_empty() {
        let mut counts = [0u64; 3];
        for (_, s) in &nodes {
            for t in s.objects.values() {
                match &t.kind {
                    Some(BuiltinFacts::Node { ready: Some(true) }) => counts[0] += 1,
                    Some(BuiltinFacts::Node { ready: Some(false) }) => counts[1] += 1,
                    _ => counts[2] += 1,
                }
            }
        }
        let mut f = x.family("nodes", "Nodes by Ready condition.", Type::Gauge);
        for (c, n) in ["ready", "not_ready", "unknown"].iter().zip(counts) {
            f.sample("", &[("condition", c)], n as f64);
        }
        let (added, removed) = nodes
            .iter()
            .fold((0, 0), |(a, r), (_, s)| (a + s.health.events.added, r + s.health.events.deleted));
        let mut f = x.family("node_changes", "Nodes added and removed, as seen by the watch.", Type::Counter);
        f.sample("", &[("change", "added")], added as f64);
        f.sample("", &[("change", "removed")], removed as f64);
    }
    let mut f =
        x.family("apiservice_available", "1 when the APIService's Available condition is True.", Type::Gauge);
    for (_, s) in states.iter().filter(|(k, _)| k.kind == Some(Kind::ApiService)) {
        for ((_, name), t) in &s.objects {
            if let Some(BuiltinFacts::ApiService { available }) = &t.kind {
                f.sample("", &[("name", name)], gauge_bool(*available));
            }
        }
    }
}
