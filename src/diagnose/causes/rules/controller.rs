//! Controller rules: the API group, the operator pods, the leader Lease, status writes.

use super::{
    super::{Summary, remedy},
    CONTROLLER_SILENT, cause,
};
use crate::diagnose::{LEASE_STALE, dur, report::Cause};

/// `apiservice-unavailable`: the API server cannot serve the object's group.
pub(in crate::diagnose) fn apiservice_unavailable(s: &Summary) -> Option<Cause> {
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
pub(in crate::diagnose) fn operator_not_running_or_restarting(s: &Summary) -> Option<Cause> {
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
pub(in crate::diagnose) fn lease_stale(s: &Summary) -> Option<Cause> {
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

/// `controller-silent`: no status write for [`CONTROLLER_SILENT`] (or `stalledAfter`, if
/// longer) while unconverged and no rollout is under way.
pub(in crate::diagnose) fn controller_silent(s: &Summary) -> Option<Cause> {
    let silent_after = s.stalled_after.max(CONTROLLER_SILENT);
    // A controller that writes status only on change (KubeArmor) is not silent for it.
    if s.status_on_change {
        return None;
    }
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
