//! Node rules: KubeArmor snitch labels and node churn.

use super::{
    super::{Summary, remedy},
    cause,
};
use crate::diagnose::{SNITCH_LABEL, list, report::Cause};

/// `nodes-without-snitch-labels`: a KubeArmorConfig held in a not-ready phase by Linux nodes
/// its snitch has not labelled; below the image when both apply.
pub(in crate::diagnose) fn nodes_without_snitch_labels(s: &Summary) -> Option<Cause> {
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
pub(in crate::diagnose) fn node_churn(s: &Summary) -> Option<Cause> {
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

/// `operator-node-counter`: a KubeArmorConfig permanently Pending although every Linux node is
/// labelled, every rollout is complete (pods == desired) and the images are right: the
/// operator's per-DaemonSet node counter is out of sync (it counts a node again when it is
/// re-snitched after a reboot, a cordon/uncordon or a late readiness), whether or not the
/// churn is still visible. Only a restart rebuilds it.
pub(in crate::diagnose) fn operator_node_counter(s: &Summary) -> Option<Cause> {
    let applies = s.kubearmor
        && s.phase.as_deref() == Some("Pending")
        && s.nodes_total > 0
        && s.nodes_without_snitch.is_empty()
        && s.mismatches.is_empty()
        && s.missing_required.is_empty()
        && s.rollouts.is_empty();
    if !applies {
        return None;
    }
    Some(cause(
        "operator-node-counter",
        86,
        "The operator's node counter is out of sync (Pending with everything healthy)".into(),
        format!(
            "{} is Pending, yet every Linux node carries the snitch labels, every agent DaemonSet has all its pods on the desired image and its rollout is complete. The operator leaves Pending only when the pods it counts equal its per-DaemonSet node counters, and those count a node again whenever it is re-labelled (after it joins, reboots, or is cordoned and uncordoned). Only an operator restart rebuilds them.",
            s.object()
        ),
        vec![s.restart_remedy(
            "Restart the operator: it rebuilds its node counters and the phase goes Running",
        )],
        "kubearmor-in-one-paragraph",
    ))
}
