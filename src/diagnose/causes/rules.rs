//! The cause rules of [`rank`](super::rank), one function per cause (or pair of exclusive
//! causes). Each reads the [`Summary`] and returns the causes its evidence supports, scored;
//! `rank` sorts them. Scores compare across rules, so a rule's score says how likely its cause
//! is relative to the others.

use std::collections::BTreeMap;

use super::{Mismatch, Pin, Summary, remedy};
use crate::{
    diagnose::{
        LEASE_STALE, SNITCH_LABEL, dur, list,
        report::{Cause, Remedy, runbook},
    },
    image,
};

/// No status write for this long (or `stalledAfter`, if longer) while unconverged: the
/// controller is silent (the StallwatchControllerSilent alert's default).
const CONTROLLER_SILENT: f64 = 1800.0;

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

/// `operator-missed-update`: the workload never got the desired image although its own rollout
/// is done.
pub(super) fn operator_missed_update(s: &Summary) -> Option<Cause> {
    let untouched: Vec<&Mismatch> = s.mismatches.iter().filter(|m| m.rollout_complete).collect();
    let first = s.mismatches.first()?;
    let score = match (untouched.is_empty(), s.kubearmor) {
        (false, true) => 100,
        (false, false) => 90,
        (true, _) => 60,
    };
    let m = untouched.first().copied().unwrap_or(first);
    let what = format!(
        "{} wants {} for slot {}, but {} {}/{} container {} still has {} in its pod template",
        s.kind, m.desired, m.slot, m.workload_kind, m.workload_namespace, m.workload, m.container, m.actual
    );
    let mut by_workload: BTreeMap<(&str, &str, &str), Vec<&Mismatch>> = BTreeMap::new();
    for m in &s.mismatches {
        by_workload.entry((&m.workload_kind, &m.workload_namespace, &m.workload)).or_default().push(m);
    }
    let status_cmds: Vec<String> = by_workload
        .keys()
        .map(|(k, ns, w)| format!("kubectl -n {ns} rollout status {}/{w} --timeout=5m", k.to_lowercase()))
        .collect();
    let set_cmds: Vec<String> = by_workload
        .iter()
        .map(|((k, ns, w), ms)| {
            let pairs: Vec<String> = ms.iter().map(|m| format!("{}={}", m.container, m.desired)).collect();
            format!("kubectl -n {ns} set image {}/{w} {}", k.to_lowercase(), pairs.join(" "))
        })
        .collect();
    let (title, detail, remedies) = if untouched.is_empty() {
        (
            format!("The desired image has not reached {} {}", m.workload_kind, m.workload),
            format!(
                "{what}, and its rollout is not complete either: the controller has not applied the new image while an earlier rollout is unfinished (see the rollout cause)."
            ),
            vec![s.restart_remedy("Restart the controller once the rollout is unblocked")],
        )
    } else if s.kubearmor {
        (
            format!(
                "The operator never pushed the new image to {} {} (KubeArmor #1842)",
                m.workload_kind, m.workload
            ),
            format!(
                "{what} and its rollout is complete: nobody asked it to change. The KubeArmor operator pushes an image change to its DaemonSets once and never retries a failed update (e.g. a conflict on a busy or autoscaling cluster); the KubeArmorConfig then stays in {}. Restarting the operator rebuilds its state and re-applies the config.",
                s.phase_text()
            ),
            vec![
                s.restart_remedy(
                    "Restart the operator (it rebuilds its node/DaemonSet state and re-pushes the images)",
                ),
                remedy("Watch the workloads roll", status_cmds),
                remedy(
                    "If the images still do not move (a restart while the config is Pending may push nothing), set them by hand, or delete the DaemonSet so the operator recreates it",
                    set_cmds,
                ),
            ],
        )
    } else {
        (
            format!("The controller has not updated {} {} to the desired image", m.workload_kind, m.workload),
            format!(
                "{what} and its rollout is complete: its controller was never told to change it, or a failed update was not retried (edge-triggered controllers miss changes after a conflict or a lost watch event)."
            ),
            vec![
                s.restart_remedy("Restart the controller so that it re-reads the desired state"),
                remedy("Watch the workloads roll", status_cmds),
            ],
        )
    };
    Some(cause("operator-missed-update", score, title, detail, remedies, "stallwatchimagenotrolledout"))
}

/// `image-pinned`: operator image pins (F8). A pin that overrides what the object asks for
/// is a likely cause; one that agrees is only context.
pub(super) fn image_pinned(s: &Summary) -> Option<Cause> {
    let overriding: Vec<&Pin> =
        s.pins.iter().filter(|p| p.stated.as_deref().is_some_and(|st| !image::same(st, &p.pinned))).collect();
    if let Some(p) = overriding.first() {
        let ns = s.operator.as_ref().map_or(s.namespace.as_str(), |o| o.namespace.as_str());
        let deploy = s.operator.as_ref().and_then(|o| o.deployment.as_deref()).unwrap_or("<operator>");
        return Some(cause(
            "image-pinned",
            80,
            format!("The operator pins slot {} to {}; the object's image is ignored", p.slot, p.pinned),
            format!(
                "{} asks for {} in slot {}, but {} is set and wins over the object{}. Changing the object's image has no effect while the pin is set.",
                s.kind,
                p.stated.as_deref().unwrap_or_default(),
                p.slot,
                p.source,
                if overriding.len() > 1 {
                    format!(
                        " (also slots {})",
                        list(&overriding[1..].iter().map(|p| p.slot.clone()).collect::<Vec<_>>(), 5)
                    )
                } else {
                    String::new()
                }
            ),
            vec![remedy(
                "Change or drop the pin (Helm imagePinning, OLM bundle) rather than the object",
                vec![format!(
                    "kubectl -n {ns} get deployment {deploy} -o jsonpath='{{range .spec.template.spec.containers[*].env[*]}}{{.name}}={{.value}}{{\"\\n\"}}{{end}}'"
                )],
            )],
            "kubearmor-in-one-paragraph",
        ));
    }
    let p = s.pins.first()?;
    Some(cause(
        "image-pinned",
        25,
        format!("Images are pinned by the operator (slot {})", p.slot),
        format!(
            "The desired image of slot {} comes from {} = {}, not from the object; {}.",
            p.slot,
            p.source,
            p.pinned,
            if p.stated.is_some() {
                "the object asks for the same image"
            } else {
                "the object's field is empty"
            }
        ),
        vec![],
        "kubearmor-in-one-paragraph",
    ))
}

/// `apiservice-unavailable`: the API server cannot serve the object's group.
pub(super) fn apiservice_unavailable(s: &Summary) -> Option<Cause> {
    let Some((name, Some(false), message)) = &s.apiservice else {
        return None;
    };
    Some(cause(
        "apiservice-unavailable",
        97,
        format!("APIService {name} is not Available"),
        format!(
            "The API server cannot serve the object's API group ({message}). Controllers that watch it get errors or nothing, so nothing converges."
        ),
        vec![
            remedy(
                "Read the APIService's Available condition and fix the service behind it",
                vec![format!("kubectl get apiservice {name} -o yaml")],
            ),
            remedy(
                "Check that the API server serves the group",
                vec!["kubectl get --raw /readyz?verbose".into()],
            ),
        ],
        "stallwatchtargetnotsynced",
    ))
}

/// `operator-not-running` (no operator pod is Ready), else `operator-restarting`.
pub(super) fn operator_not_running_or_restarting(s: &Summary) -> Option<Cause> {
    let op = s.operator.as_ref()?;
    let sel = op.selector.as_deref().unwrap_or("<operator selector>");
    if op.ready == 0 {
        Some(cause(
            "operator-not-running",
            96,
            if op.pods == 0 {
                format!("No operator pod exists ({sel} in {})", op.namespace)
            } else {
                format!("No operator pod is Ready ({} pods, {sel})", op.pods)
            },
            "The controller is not running, so nothing reconciles the object.".into(),
            vec![
                remedy(
                    "Find out why the operator is not running",
                    vec![
                        format!("kubectl -n {} get pods -l '{sel}' -o wide", op.namespace),
                        format!("kubectl -n {} describe pods -l '{sel}'", op.namespace),
                        format!("kubectl -n {} logs -l '{sel}' --previous --tail=100", op.namespace),
                    ],
                ),
                s.restart_remedy("Restart it once the cause is fixed"),
            ],
            "stallwatchcontrollersilent",
        ))
    } else if op.restarts > 0 {
        Some(cause(
            "operator-restarting",
            45,
            format!("The operator restarted {} times", op.restarts),
            "Crashes lose in-memory state and may interrupt reconciles.".into(),
            vec![remedy(
                "Read the logs of the previous container",
                vec![format!("kubectl -n {} logs -l '{sel}' --previous --tail=100", op.namespace)],
            )],
            "stallwatchcontrollersilent",
        ))
    } else {
        None
    }
}

/// `lease-stale`: the leader Lease is missing or not renewed for [`LEASE_STALE`].
pub(super) fn lease_stale(s: &Summary) -> Option<Cause> {
    let (lease, age) = s.lease.as_ref()?;
    let stale = age.is_none_or(|a| a > LEASE_STALE);
    if !stale {
        return None;
    }
    let (ns, name) = lease.split_once('/').unwrap_or(("<namespace>", lease));
    Some(cause(
        "lease-stale",
        94,
        match age {
            Some(a) => format!("Leader Lease {lease} not renewed for {}", dur(*a)),
            None => format!("Leader Lease {lease} does not exist"),
        },
        "No replica of the controller is leading, so nothing reconciles.".into(),
        vec![
            remedy("Check the holder", vec![format!("kubectl -n {ns} get lease {name} -o yaml")]),
            s.restart_remedy("Restart the controller"),
        ],
        "stallwatchleasestale",
    ))
}

/// `rollout-not-progressing`, one per incomplete rollout: failed, stuck (no progress for
/// `stalledAfter`) or, scored low, still moving.
pub(super) fn rollouts_not_progressing(s: &Summary) -> Vec<Cause> {
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
pub(super) fn pods_outdated(s: &Summary) -> Vec<Cause> {
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
pub(super) fn generation_not_observed(s: &Summary) -> Option<Cause> {
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

/// `nodes-without-snitch-labels`: a KubeArmorConfig held in a not-ready phase by Linux nodes
/// its snitch has not labelled; below the image when both apply.
pub(super) fn nodes_without_snitch_labels(s: &Summary) -> Option<Cause> {
    let phase_stuck = s.phase_ready == Some(false);
    let applies = s.kubearmor && phase_stuck && !s.nodes_without_snitch.is_empty();
    if !applies {
        return None;
    }
    let ns = s.operator.as_ref().map_or(s.namespace.as_str(), |o| o.namespace.as_str());
    Some(cause(
        "nodes-without-snitch-labels",
        if s.mismatches.is_empty() { 88 } else { 50 },
        format!(
            "{} Linux nodes have no KubeArmor snitch labels ({SNITCH_LABEL} missing)",
            s.nodes_without_snitch.len()
        ),
        format!(
            "The operator keeps the KubeArmorConfig Pending until every node is labelled by its snitch job: {}. Snitch jobs fail on image pull errors, taints they do not tolerate, or read-only host mounts; Fargate and GKE Autopilot nodes never get one.",
            list(&s.nodes_without_snitch, 5)
        ),
        vec![remedy(
            "Find the nodes and the failing snitch jobs",
            vec![
                format!("kubectl get nodes -l 'kubernetes.io/os=linux,!{SNITCH_LABEL}'"),
                format!("kubectl -n {ns} get jobs,pods -l kubearmor-app=kubearmor-snitch"),
                format!("kubectl -n {ns} describe pod -l kubearmor-app=kubearmor-snitch"),
            ],
        )],
        "kubearmor-in-one-paragraph",
    ))
}

/// `node-churn`: nodes created in the last hour or NotReady. It is the story when the KubeArmor
/// operator's node counters are inflated or a rollout waits on NotReady nodes; else context.
pub(super) fn node_churn(s: &Summary) -> Option<Cause> {
    let phase_stuck = s.phase_ready == Some(false);
    // Every node new means a new cluster, not churn.
    let churn = !s.nodes_new.is_empty() && s.nodes_new.len() < s.nodes_total;
    if !churn && s.nodes_not_ready.is_empty() {
        return None;
    }
    let counter_inflation = s.kubearmor && phase_stuck && s.mismatches.is_empty();
    let rollout_blocked = s.rollouts.iter().any(|r| !r.complete) && !s.nodes_not_ready.is_empty();
    let score = if counter_inflation {
        84
    } else if rollout_blocked {
        80
    } else {
        30
    };
    let mut facts = Vec::new();
    if churn {
        facts.push(format!("{} created in the last hour ({})", s.nodes_new.len(), list(&s.nodes_new, 5)));
    }
    if !s.nodes_not_ready.is_empty() {
        facts.push(format!("{} NotReady ({})", s.nodes_not_ready.len(), list(&s.nodes_not_ready, 5)));
    }
    let mut remedies = vec![remedy(
        "Look at the nodes",
        vec!["kubectl get nodes -o wide --sort-by=.metadata.creationTimestamp".into()],
    )];
    let detail = if counter_inflation {
        remedies.push(
            s.restart_remedy("Restart the operator: only a restart resets its per-DaemonSet node counters"),
        );
        format!(
            "Nodes: {}. On node churn the KubeArmor operator counts re-labelled nodes twice, so the node count never matches the pods and the config stays {}.",
            facts.join("; "),
            s.phase_text()
        )
    } else if rollout_blocked {
        format!("Nodes: {}. DaemonSet pods on NotReady nodes never become available.", facts.join("; "))
    } else {
        format!("Nodes: {}. Context only: churn slows rollouts but does not stop them.", facts.join("; "))
    };
    Some(cause(
        "node-churn",
        score,
        "Nodes came and went recently".into(),
        detail,
        remedies,
        "stallwatchphasenotready",
    ))
}

/// `warning-events`: Warning events of the object, its workloads, their pods or the operator.
pub(super) fn warning_events(s: &Summary) -> Option<Cause> {
    if s.warnings.is_empty() {
        return None;
    }
    let reasons: Vec<String> = s.warnings.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
    Some(cause(
        "warning-events",
        60,
        format!("Warning events: {}", list(&reasons, 5)),
        "Events of the object, its workloads and their pods often name the real problem (see the events above).".into(),
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

/// `controller-silent`: no status write for [`CONTROLLER_SILENT`] (or `stalledAfter`, if
/// longer) while unconverged and no rollout is under way.
pub(super) fn controller_silent(s: &Summary) -> Option<Cause> {
    let silent_after = s.stalled_after.max(CONTROLLER_SILENT);
    if let Some(age) = s.last_status_write_age
        && age > silent_after
        && s.unconverged_seconds > silent_after
        && s.rollouts.iter().all(|r| r.complete)
    {
        return Some(cause(
            "controller-silent",
            70,
            format!("The controller has not written the object's status for {}", dur(age)),
            "The object is not converged and no field manager has written its status since: the controller is most likely not reconciling (crashed, hung, not leading).".into(),
            vec![s.restart_remedy("Restart the controller")],
            "stallwatchcontrollersilent",
        ));
    }
    None
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
