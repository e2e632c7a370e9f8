//! Image rules: the operator never pushed the desired image, or a pin overrides it.

use std::collections::BTreeMap;

use super::{
    super::{Mismatch, Pin, Summary, remedy},
    cause,
};
use crate::{
    diagnose::{list, report::Cause},
    model::image,
};

/// `operator-missed-update`: the workload never got the desired image although its own rollout
/// is done.
pub(in crate::diagnose) fn operator_missed_update(s: &Summary) -> Option<Cause> {
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
        let ns = s.operator.as_ref().map_or(s.namespace.as_str(), |o| o.namespace.as_str());
        let deploy =
            s.operator.as_ref().and_then(|o| o.deployment.as_deref()).unwrap_or("kubearmor-operator");
        let evidence = remedy(
            "Evidence: the operator logged the failed push (a Warn it never retries)",
            vec![format!("kubectl -n {ns} logs deploy/{deploy} | grep -i 'cannot update daemonset'")],
        );
        // A restart re-pushes the images only when it finds the config Running; from Pending or
        // Error it rebuilds the node bookkeeping (the phase goes Running) and pushes nothing.
        let running = s.phase.as_deref() == Some("Running");
        let mut remedies = vec![evidence];
        if running {
            remedies.push(s.restart_remedy(
                "Restart the operator: it finds the config Running, rebuilds its state and re-pushes the images",
            ));
        } else {
            remedies.push(s.restart_remedy(&format!(
                "Restart the operator: from {} this rebuilds its node bookkeeping so the phase goes Running, but it does not push the images yet",
                s.phase_text()
            )));
            remedies.push(s.restart_remedy(
                "Once the config is Running, restart the operator a second time: now it re-pushes the images",
            ));
        }
        remedies.push(remedy("Watch the workloads roll", status_cmds));
        remedies.push(remedy(
            "If the images still do not move, set them by hand (do not delete the DaemonSet: the operator does not recreate it until it restarts)",
            set_cmds,
        ));
        (
            format!(
                "The operator never pushed the new image to {} {} (KubeArmor #1842)",
                m.workload_kind, m.workload
            ),
            format!(
                "{what} and its rollout is complete: nobody asked it to change. The KubeArmor operator pushes an image change to its DaemonSets once and never retries a failed update (e.g. a conflict on a busy or autoscaling cluster); the phase does not show it (the KubeArmorConfig is in {}).",
                s.phase_text()
            ),
            remedies,
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

/// `image-pinned`: operator image pins. A pin that overrides what the object asks for
/// is a likely cause; one that agrees is only context.
pub(in crate::diagnose) fn image_pinned(s: &Summary) -> Option<Cause> {
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

/// `workload-missing`: a required slot's workloads do not exist (the KubeArmor agent DaemonSet
/// deleted); nothing runs the product whatever the phase says.
pub(in crate::diagnose) fn workload_missing(s: &Summary) -> Option<Cause> {
    let slot = s.missing_required.first()?;
    let ns = s.operator.as_ref().map_or(s.namespace.as_str(), |o| o.namespace.as_str());
    let (detail, check) = if s.kubearmor {
        (
            format!(
                "{} expects the agent DaemonSets (slot {slot}, label kubearmor-app=kubearmor) and none exists. The KubeArmor operator creates them only while it processes nodes and does not recreate a deleted one until it restarts, so nothing enforces policies whatever the phase ({}) says.",
                s.object(),
                s.phase_text()
            ),
            format!("kubectl -n {ns} get daemonsets -l kubearmor-app=kubearmor -o wide"),
        )
    } else {
        (
            format!("{} expects workloads for image slot {slot} and none exists.", s.object()),
            format!("kubectl -n {ns} get deployments,daemonsets,statefulsets"),
        )
    };
    Some(cause(
        "workload-missing",
        110,
        format!("The workloads of slot {slot} do not exist"),
        detail,
        vec![
            s.restart_remedy("Restart the operator: it recreates its workloads from the config"),
            remedy("Check that they are back", vec![check]),
        ],
        "stallwatchworkloadmissing",
    ))
}
