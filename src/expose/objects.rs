//! The per-object families (docs/metrics.md): tracked objects, images, rollouts and context,
//! rendered from one [`View`] with the direct writer of [`crate::expose::writer`].

use super::{
    cache::Chunk,
    links,
    own::{FAMILIES, Lines, seconds_since},
};
use crate::{
    expose::writer::{Type, Writer, gauge_bool, labels},
    judge::converge::{LinkedWorkload, SlotRow},
    judge::view::{ObjView, View},
};

/// Escaped label sets of every workload, computed once per render (the objects' are cached).
struct Prefixes {
    workloads: Vec<String>,
}

impl Prefixes {
    fn new(view: &View) -> Prefixes {
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
        Prefixes { workloads }
    }
}

pub(super) struct ObjectFamilies<'a, 'v> {
    x: &'a mut Writer,
    view: &'a View<'v>,
    /// The cached lines of `view.objects`, in the same order.
    chunks: &'a [&'a Chunk],
    /// The escaped label set of each of `view.objects`.
    prefixes: &'a [&'a str],
    p: &'a Prefixes,
}

impl ObjectFamilies<'_, '_> {
    /// Any number of series per object, with extra labels.
    pub(super) fn obj_each(
        &mut self,
        name: &str,
        help: &str,
        ty: Type,
        series: impl Fn(&ObjView, &mut dyn FnMut(&[(&str, &str)], f64)),
    ) {
        let mut f = self.x.family(name, help, ty);
        for (o, prefix) in self.view.objects.iter().zip(self.prefixes) {
            series(o, &mut |extra, v| f.sample(prefix, extra, v));
        }
    }

    fn workload(&mut self, name: &str, help: &str, value: impl Fn(&LinkedWorkload) -> f64) {
        let mut f = self.x.family(name, help, Type::Gauge);
        for ((_, w), p) in self.view.workloads.iter().zip(&self.p.workloads) {
            f.sample(p, &[], value(w));
        }
    }
}

/// Writes every per-object family of `view`; `chunks` are the cached lines of
/// `view.objects`, in the same order ([`super::cache::LineCache::refresh`]).
pub(super) fn encode(x: &mut Writer, view: &View, chunks: &[&Chunk]) {
    let p = Prefixes::new(view);
    let prefixes: Vec<&str> = chunks.iter().flat_map(|c| (0..c.len()).map(|k| c.prefix(k))).collect();
    let mut out = ObjectFamilies { x, view, chunks, prefixes: &prefixes, p: &p };
    own(&mut out);
    warnings(&mut out);
    images(&mut out);
    links::workload_links(&mut out);
    rollouts(&mut out);
    links::thresholds(out.x, view);
    super::context::encode(out.x, view);
}

/// The tracked objects' own families: pre-rendered lines copied from the cache, durations
/// from the clock ([`super::own`]).
fn own(o: &mut ObjectFamilies) {
    let now = o.view.now;
    let mut clock = 0;
    for (i, f) in FAMILIES.iter().enumerate() {
        let mut fam = o.x.family(f.name, f.help, Type::Gauge);
        match f.lines {
            // One sequential copy per chunk.
            Lines::Whole(_) => o.chunks.iter().for_each(|c| fam.raw(c.lines(i))),
            // Heads and starts from the cache, the value from the clock: the objects are not read.
            Lines::Clock { .. } => {
                for c in o.chunks {
                    for k in 0..c.len() {
                        let head = c.head(i, clock, k);
                        if !head.is_empty() {
                            fam.value_after(head, seconds_since(c.since(clock, k), now));
                        }
                    }
                }
                clock += 1;
            }
        }
    }
}

/// Warning events of each tracked object: counters kept by the renderer, so never cached.
fn warnings(o: &mut ObjectFamilies) {
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
