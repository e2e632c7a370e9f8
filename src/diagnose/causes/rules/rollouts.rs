//! Rollout rules: rollouts that do not progress, pods left on the old template, generations not observed.

use super::{
    super::{Summary, remedy},
    cause,
};
use crate::diagnose::{dur, list, report::Cause};

/// `rollout-not-progressing`, one per incomplete rollout: failed, stuck (no progress for
/// `stalledAfter`) or, scored low, still moving.
pub(in crate::diagnose) fn rollouts_not_progressing(s: &Summary) -> Vec<Cause> {
    let mut out = Vec::new();
    for r in s.rollouts.iter().filter(|r| !r.complete) {
        let w = format!("{}/{}", r.kind.to_lowercase(), r.name);
        let stuck = r.failed || r.stalled_seconds >= s.stalled_after;
        let (score, title) = if r.failed {
            (93, format!("The rollout of {} {} failed (ProgressDeadlineExceeded)", r.kind, r.name))
        } else if stuck {
            (
                92,
                format!(
                    "The rollout of {} {} is not progressing ({}/{} updated, {}/{} available, no progress for {})",
                    r.kind,
                    r.name,
                    r.updated,
                    r.desired,
                    r.available,
                    r.desired,
                    dur(r.stalled_seconds)
                ),
            )
        } else {
            (
                40,
                format!(
                    "The rollout of {} {} is in progress ({}/{} updated, last progress {} ago)",
                    r.kind,
                    r.name,
                    r.updated,
                    r.desired,
                    dur(r.stalled_seconds)
                ),
            )
        };
        out.push(cause(
            "rollout-not-progressing",
            score,
            title,
            if stuck {
                "New pods do not become available: image pull errors, crash loops, unschedulable pods (resources, taints, node selectors), failing readiness probes or no room for surge pods.".into()
            } else {
                "A rollout that keeps moving is healthy; wait for it, and look again if it stops.".into()
            },
            vec![remedy(
                "Look at the new pods and their events",
                vec![
                    format!("kubectl -n {} rollout status {w} --timeout=10s", r.namespace),
                    format!("kubectl -n {} describe {w}", r.namespace),
                    format!("kubectl -n {} get pods -o wide | grep -v Running", r.namespace),
                    format!(
                        "kubectl -n {} get events --field-selector type=Warning --sort-by=.lastTimestamp",
                        r.namespace
                    ),
                ],
            )],
            "stallwatchrolloutnotprogressing",
        ));
    }
    out
}

/// `pods-outdated`, one per complete rollout that leaves pods on the previous template.
pub(in crate::diagnose) fn pods_outdated(s: &Summary) -> Vec<Cause> {
    let mut out = Vec::new();
    for r in s.rollouts.iter().filter(|r| r.complete && !r.outdated_pods.is_empty()) {
        out.push(cause(
            "pods-outdated",
            75,
            format!(
                "{} pods of {} {} run an outdated template ({} strategy)",
                r.outdated_pods.len(),
                r.kind,
                r.name,
                r.strategy
            ),
            format!(
                "The controller considers the rollout complete, but {} still run the previous template; with OnDelete nothing replaces them until they are deleted.",
                list(&r.outdated_pods, 5)
            ),
            vec![remedy(
                "Delete the outdated pods one at a time, waiting for each replacement to be Ready",
                r.outdated_pods
                    .iter()
                    .take(3)
                    .map(|p| format!("kubectl -n {} delete pod {p}", r.namespace))
                    .collect(),
            )],
            "stallwatchpodsoutdated",
        ));
    }
    out
}

/// `generation-not-observed`: the object reports an observed generation below its generation.
pub(in crate::diagnose) fn generation_not_observed(s: &Summary) -> Option<Cause> {
    let (g, o) = s.generation_lag?;
    Some(cause(
        "generation-not-observed",
        86,
        format!("The controller has not processed generation {g} (observed {o})"),
        "The object's spec changed and its controller has not acted on it: not running, not leading, failing on this object, or it missed the change.".into(),
        vec![s.restart_remedy("Check the controller's logs and restart it")],
        "stallwatchgenerationnotobserved",
    ))
}
