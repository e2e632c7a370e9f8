//! The per-object families (docs/metrics.md): tracked objects, images, rollouts and context,
//! rendered from one [`View`] with the direct writer of [`crate::expose::writer`].

use super::links;
use crate::{
    expose::writer::{Type, Writer, gauge_bool, labels},
    judge::converge::{LinkedWorkload, SlotRow},
    judge::verdict::{self, Status, Verdict},
    judge::view::{ObjView, View},
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
    super::context::encode(out.x, view);
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
                for (r, n) in view.warning_counts(o) {
                    emit(&[("reason", r)], n as f64);
                }
            }
        },
    );
}

/// The labels that identify a slot's workload container: the same on the mismatch series and
/// on the info series that carries its references, so the two join one to one.
fn slot_labels<'s>(s: &'s SlotRow) -> [(&'static str, &'s str); 5] {
    [
        ("slot", s.slot),
        ("workload_kind", s.workload_kind.name()),
        ("workload_namespace", s.workload_namespace),
        ("workload", s.workload),
        ("container", s.container),
    ]
}

fn images(o: &mut ObjectFamilies) {
    o.obj_each(
        "image_mismatch",
        "1 when the desired image of a slot is not the workload's pod template image for that container.",
        Type::Gauge,
        |o, emit| {
            for s in &o.links.slots {
                emit(&slot_labels(s), gauge_bool(s.mismatch));
            }
        },
    );
    // The references on a series of their own: an image bump replaces this info series but
    // leaves the mismatch series (and any alert on it) untouched.
    o.obj_each(
        "image_info",
        "Always 1: the desired and actual image references (as written) of a slot and workload container.",
        Type::Gauge,
        |o, emit| {
            for s in &o.links.slots {
                let [slot, kind, ns, workload, container] = slot_labels(s);
                emit(
                    &[slot, kind, ns, workload, container, ("desired", &s.desired), ("actual", s.actual)],
                    1.0,
                );
            }
        },
    );
    o.obj_each(
        "workload_missing",
        "1 when a required image slot has no workload at all (a synced watch found none), else 0.",
        Type::Gauge,
        |o, emit| {
            for rule in o.target.images.iter().filter(|r| r.required) {
                emit(
                    &[("slot", &rule.slot)],
                    gauge_bool(o.links.required_missing.contains(&rule.slot.as_str())),
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
