//! A tracked object's own families (docs/metrics.md): generation, phase, conditions, verdict
//! and status writes, one table in exposition order.
//!
//! These are most of `/metrics` at scale (about 25 series per object), and nearly all of their
//! bytes change only when the object or its verdict does: the table says, per family, which
//! lines can be pre-rendered whole and which carry a value read from the clock at each render,
//! so [`super::cache`] keeps the first and the render writes only the second.

use crate::{
    expose::writer::gauge_bool,
    judge::verdict::{self, Status, Verdict},
    judge::view::ObjView,
};

/// Where a family writes an object's series: `(extra labels, value)`.
pub(super) type Emit<'e> = &'e mut dyn FnMut(&[(&str, &str)], f64);

/// How one family's series of an object are written.
#[derive(Clone, Copy)]
pub(super) enum Lines {
    /// Any number of series, each `(extra labels, value)`; what they say depends only on the
    /// object's record, its target and its verdict (what [`super::cache`] keys on), never on
    /// the clock, so they are pre-rendered whole.
    Whole(fn(&ObjView, Emit<'_>)),
    /// At most one series, without extra labels, whose value is the seconds from `since` to
    /// the clock at render (`now`; 0 when `since` is `None`, never negative): its head (name
    /// and labels) and `since` are pre-rendered when `present`. Like [`Lines::Whole`], neither
    /// may depend on the clock, so a render reads only the cache, never the object.
    Clock { present: fn(&ObjView) -> bool, since: fn(&ObjView) -> Option<f64> },
}

/// The value of a [`Lines::Clock`] series at `now` for its `since`.
pub(super) fn seconds_since(since: Option<f64>, now: f64) -> f64 {
    since.map_or(0.0, |s| (now - s).max(0.0))
}

/// One gauge family of the table.
pub(super) struct Family {
    /// Without the `stallwatch_` prefix.
    pub name: &'static str,
    pub help: &'static str,
    pub lines: Lines,
}

fn reason(v: &Verdict) -> &'static str {
    v.reason.map_or("", |r| r.label())
}

/// Emits `value` as the object's one series when there is one.
fn one(emit: Emit<'_>, value: Option<f64>) {
    if let Some(v) = value {
        emit(&[], v);
    }
}

const fn whole(name: &'static str, help: &'static str, lines: fn(&ObjView, Emit<'_>)) -> Family {
    Family { name, help, lines: Lines::Whole(lines) }
}

/// The families, in the order `/metrics` writes them.
pub(super) const FAMILIES: [Family; 18] = [
    whole("generation", "metadata.generation of the tracked object.", |o, e| {
        one(e, o.tf.facts.generation.map(|g| g as f64))
    }),
    whole(
        "observed_generation",
        "Observed generation the object reports (absent when it reports none).",
        |o, e| one(e, o.tf.facts.observed_generation.map(|g| g as f64)),
    ),
    whole("generation_lag", "metadata.generation minus the observed generation, when reported.", |o, e| {
        let f = &o.tf.facts;
        one(e, f.generation.zip(f.observed_generation).map(|(g, og)| (g - og) as f64))
    }),
    // Derived from the object's workloads for kinds that report no observed generation: the
    // cache keys on it alongside the verdict.
    whole(
        "generation_observed",
        "1 when the current generation has been observed: reported by the object, or for kinds that report none derived from its workloads.",
        |o, e| one(e, o.generation_observed().map(gauge_bool)),
    ),
    whole(
        "generation_first_seen_timestamp_seconds",
        "When the current generation was first seen.",
        |o, e| e(&[], o.tf.generation_first_seen),
    ),
    Family {
        name: "generation_unobserved_seconds",
        help: "Seconds since the current generation was first seen while it is not observed; 0 once observed.",
        lines: Lines::Clock {
            present: |o| o.generation_observed().is_some(),
            since: |o| (o.generation_observed() != Some(true)).then_some(o.tf.generation_first_seen),
        },
    },
    whole("phase", "1 for the current phase of the object.", |o, e| {
        if let (Some(_), Some(p)) = (&o.target.phase, &o.tf.facts.phase) {
            e(&[("phase", p)], 1.0);
        }
    }),
    whole("phase_ready", "1 when the current phase is one of the target's ready phases.", |o, e| {
        one(e, verdict::phase_ready(o.target, o.tf).map(gauge_bool))
    }),
    whole("phase_since_timestamp_seconds", "When the current phase began.", |o, e| {
        one(e, o.target.phase.as_ref().map(|_| o.tf.phase_since))
    }),
    Family {
        name: "phase_duration_seconds",
        help: "Seconds in the current phase, computed at scrape time.",
        lines: Lines::Clock { present: |o| o.target.phase.is_some(), since: |o| Some(o.tf.phase_since) },
    },
    whole("condition", "1 per condition present on the object.", |o, e| {
        for c in &o.tf.facts.conditions {
            e(&[("type", &c.type_), ("status", &c.status), ("reason", &c.reason)], 1.0);
        }
    }),
    whole("condition_since_timestamp_seconds", "The condition's lastTransitionTime.", |o, e| {
        for c in &o.tf.facts.conditions {
            if let Some(t) = c.last_transition {
                e(&[("type", &c.type_)], t);
            }
        }
    }),
    whole(
        "status",
        "The verdict: 1 for the current status (Current, InProgress, Stalled, Failed, Terminating) with its reason.",
        |o, e| e(&[("status", o.verdict.status.label()), ("reason", reason(&o.verdict))], 1.0),
    ),
    whole("unconverged_since_timestamp_seconds", "When the object stopped being Current.", |o, e| {
        one(e, o.verdict.unconverged_since)
    }),
    Family {
        name: "unconverged_seconds",
        help: "Seconds since the object stopped being Current; 0 while Current.",
        lines: Lines::Clock { present: |_| true, since: |o| o.verdict.unconverged_since },
    },
    whole("stalled", "1 while the verdict is Stalled or Failed, with its reason; else 0.", |o, e| {
        let stalled = matches!(o.verdict.status, Status::Stalled | Status::Failed);
        e(&[("reason", if stalled { reason(&o.verdict) } else { "" })], gauge_bool(stalled));
    }),
    whole("stalled_since_timestamp_seconds", "When the verdict became Stalled or Failed.", |o, e| {
        one(e, o.verdict.stalled_since)
    }),
    whole(
        "status_write_timestamp_seconds",
        "Last write of the status subresource per field manager (metadata.managedFields).",
        |o, e| {
            for (m, t) in &o.tf.facts.status_writes {
                e(&[("manager", m)], *t);
            }
        },
    ),
];
