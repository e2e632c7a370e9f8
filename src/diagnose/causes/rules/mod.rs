//! The cause rules of [`rank`](super::rank), one function per cause (or pair of exclusive
//! causes). Each reads the [`Summary`] and returns the causes its evidence supports, scored;
//! `rank` sorts them. Scores compare across rules, so a rule's score says how likely its cause
//! is relative to the others.

//!
//! The rules are grouped by what they look at: [`images`], [`controller`], [`rollouts`],
//! [`nodes`]; the status fallbacks are here.

mod controller;
mod images;
mod nodes;
mod rollouts;

use super::{Summary, remedy};
use crate::diagnose::{
    list,
    report::{Cause, Remedy, runbook},
};

/// No status write for this long (or `stalledAfter`, if longer) while unconverged: the
/// controller is silent (the StallwatchControllerSilent alert's default).
pub(super) const CONTROLLER_SILENT: f64 = 1800.0;

/// A cause with its runbook link; `rank` numbers it after sorting.
fn cause(
    id: &'static str,
    score: u32,
    title: String,
    detail: String,
    remedies: Vec<Remedy>,
    runbook_anchor: &str,
) -> Cause {
    Cause { rank: 0, id, score, title, detail, remedies, runbook: runbook(runbook_anchor) }
}

pub(in crate::diagnose) use self::{
    controller::{
        apiservice_unavailable, controller_silent, lease_stale, operator_not_running_or_restarting,
    },
    images::{image_pinned, operator_missed_update, workload_missing},
    nodes::{node_churn, nodes_without_snitch_labels, operator_node_counter},
    rollouts::{generation_not_observed, pods_outdated, rollouts_not_progressing},
};

/// `warning-events`: Warning events of the object, its workloads, their pods or the operator.
/// Events last seen before the object stopped being Current are history and rank low.
pub(super) fn warning_events(s: &Summary) -> Option<Cause> {
    let (events, score, detail) = if !s.warnings.is_empty() {
        (
            &s.warnings,
            60,
            "Events of the object, its workloads and their pods often name the real problem (see the events above).",
        )
    } else if !s.old_warnings.is_empty() {
        (
            &s.old_warnings,
            20,
            "These events were last seen before the object stopped being Current: history (e.g. from the install), most likely not why it is stuck now.",
        )
    } else {
        return None;
    };
    let reasons: Vec<String> = events.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
    Some(cause(
        "warning-events",
        score,
        format!("Warning events: {}", list(&reasons, 5)),
        detail.into(),
        vec![remedy(
            "Read them in full",
            vec![format!(
                "kubectl -n {} get events --field-selector type=Warning --sort-by=.lastTimestamp",
                s.namespace
            )],
        )],
        "stallwatchobjectstalled",
    ))
}

/// `condition-not-ready`, one per condition that holds the object back.
pub(super) fn conditions_not_ready(s: &Summary) -> Vec<Cause> {
    let mut out = Vec::new();
    for (t, st, reason) in &s.conditions_not_ready {
        out.push(cause(
            "condition-not-ready",
            55,
            format!(
                "Condition {t}={st}{}",
                if reason.is_empty() { String::new() } else { format!(" ({reason})") }
            ),
            "The object reports this condition; its message and the controller's logs say why.".into(),
            vec![remedy(
                "Read the condition's message",
                vec![format!(
                    "kubectl -n {} get {} {} -o jsonpath='{{range .status.conditions[*]}}{{.type}}={{.status}} {{.reason}}: {{.message}}{{\"\\n\"}}{{end}}'",
                    s.namespace,
                    s.kind.to_lowercase(),
                    s.name
                )],
            )],
            "stallwatchobjectstalled",
        ));
    }
    out
}

/// `phase-not-ready`: the fallback for a phase that is not ready when no more specific cause
/// scores 50 or more.
pub(super) fn phase_not_ready(s: &Summary) -> Cause {
    let phase = s.phase.as_deref().unwrap_or("(none)");
    cause(
        "phase-not-ready",
        50,
        format!("{} is in phase {phase}", s.object()),
        "No more specific cause was found; the object's status message and the controller's logs say why."
            .into(),
        vec![remedy(
            "Read the status message",
            vec![format!(
                "kubectl -n {} get {} {} -o jsonpath='{{.status.phase}}: {{.status.message}}'",
                s.namespace,
                s.kind.to_lowercase(),
                s.name
            )],
        )],
        "stallwatchphasenotready",
    )
}

/// `unknown`: the fallback when no rule found anything.
pub(super) fn unknown(s: &Summary) -> Cause {
    cause(
        "unknown",
        10,
        format!("No specific cause found for {}", s.object()),
        "Read the object's status and its controller's logs.".into(),
        vec![s.restart_remedy("If the controller is silent, restart it")],
        "stallwatchobjectstalled",
    )
}
