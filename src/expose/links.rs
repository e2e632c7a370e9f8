//! The link and threshold families: which workloads each tracked object owns, and each
//! target's `stalledAfter`, so dashboards and alert rules select an object's own workloads and
//! draw thresholds that follow the config.

use super::{
    objects::ObjectFamilies,
    writer::{Type, Writer, labels},
};
use crate::{ingest::BuiltinFacts, judge::View};

/// One series per workload that runs a tracked object's images (a tracked workload links to
/// itself), so dashboards and alerts can select exactly an object's own workloads.
pub(super) fn workload_links(o: &mut ObjectFamilies) {
    o.obj_each(
        "object_workload_info",
        "1 for each workload linked to the tracked object (a tracked workload links to itself).",
        Type::Gauge,
        |o, emit| {
            let mut done: Vec<(&str, &str, &str)> = Vec::new();
            if let Some(BuiltinFacts::Workload(w)) = &o.tracked.kind {
                done.push((w.kind.name(), o.namespace, o.name));
            }
            for w in &o.links.workloads {
                let key = (w.facts.kind.name(), w.namespace, w.name);
                if !done.contains(&key) {
                    done.push(key);
                }
            }
            for (kind, ns, name) in done {
                emit(&[("workload_kind", kind), ("workload_namespace", ns), ("workload", name)], 1.0);
            }
        },
    );
}

/// Each target's `stalledAfter`, so thresholds on dashboards and alerts follow the config.
pub(super) fn thresholds(x: &mut Writer, view: &View) {
    let mut f = x.family(
        "stalled_after_seconds",
        "The target's stalledAfter: unconverged longer than this is Stalled.",
        Type::Gauge,
    );
    let mut done: Vec<&str> = Vec::new();
    for t in view.targets.iter().filter(|_| view.per_target) {
        if !done.contains(&t.name.as_str()) {
            done.push(&t.name);
            f.sample(&labels(&[("target", &t.name)]), &[], t.stalled_after.as_secs_f64());
        }
    }
}
