//! What to do about a row of the landing page: its top cause, the first remedy and the runbook.
//!
//! Rendered from the verdict's reason and the object's own evidence (the watched state), not
//! from `diagnose`'s ranking: that one needs a one-shot read of the cluster (events, operator
//! logs, nodes) that the exporter does not hold, and `diagnose` is declared below the server.
//! The page links to `stallwatch diagnose` for the full ranking.

use crate::judge::{verdict::Reason, view::ObjView};

/// Where the runbooks live (the alert rules link the same anchors).
pub const RUNBOOKS: &str = "https://github.com/stallwatch/stallwatch/blob/main/docs/runbooks.md";

/// The top cause, the first remedy (a command where there is one) and the runbook anchor.
pub struct Advice {
    pub cause: String,
    pub remedy: String,
    pub command: Option<String>,
    pub runbook: String,
}

/// The operator Deployment that pins the target's images, when the config names one.
fn operator(o: &ObjView) -> Option<(String, String)> {
    o.target.images.iter().find_map(|i| {
        let p = i.overridden_by.as_ref()?;
        let ns = p.namespace.clone().unwrap_or_else(|| o.namespace.to_string());
        Some((ns, p.deployment.clone()))
    })
}

fn restart_operator(o: &ObjView) -> (String, Option<String>) {
    match operator(o) {
        Some((ns, name)) => (
            format!(
                "Restart the operator (Deployment {ns}/{name}) so it reconciles again, then watch this row."
            ),
            Some(format!("kubectl -n {ns} rollout restart deployment/{name}")),
        ),
        None => (
            "Restart the operator that manages this kind and read its logs for update errors.".into(),
            Some("kubectl -n <operator namespace> rollout restart deployment/<operator>".into()),
        ),
    }
}

fn anchor(alert: &str) -> String {
    format!("{RUNBOOKS}#{}", alert.to_ascii_lowercase())
}

/// The advice for a not-Current object with `reason`.
pub fn advice(o: &ObjView, reason: Reason) -> Advice {
    let kind = o.target.resource.kind.as_str();
    let (ns, name) = (o.namespace, o.name);
    let ns_flag = if ns.is_empty() { String::new() } else { format!("-n {ns} ") };
    let facts = &o.tf.facts;
    match reason {
        Reason::ImageNotRolledOut => {
            let s = o.links.slots.iter().find(|s| s.mismatch);
            let cause = s.map_or_else(
                || "the operator has not pushed the desired image to its workloads".to_string(),
                |s| {
                    format!(
                        "the operator has not pushed image {} to {} {}/{} (container {} still has {})",
                        s.desired,
                        s.workload_kind.name(),
                        s.workload_namespace,
                        s.workload,
                        s.container,
                        s.actual
                    )
                },
            );
            let (remedy, command) = restart_operator(o);
            Advice { cause, remedy, command, runbook: anchor("StallwatchImageNotRolledOut") }
        }
        Reason::RolloutNotProgressing => {
            let w = o.links.workloads.iter().find(|w| !w.facts.complete());
            let (k, wns, wname) = w.map_or((kind, ns, name), |w| (w.facts.kind.name(), w.namespace, w.name));
            Advice {
                cause: format!("the rollout of {k} {wns}/{wname} does not move: its new pods do not become available"),
                remedy: "See why the new pods are not available (image pull, crash loop, scheduling, readiness), and fix that.".into(),
                command: Some(format!("kubectl -n {wns} rollout status {}/{wname} --timeout=10s", k.to_ascii_lowercase())),
                runbook: anchor("StallwatchRolloutNotProgressing"),
            }
        }
        Reason::GenerationNotObserved => {
            let g = facts.generation.map_or("-".into(), |g| g.to_string());
            let (remedy, command) = restart_operator(o);
            Advice {
                cause: format!("the controller has not processed the latest spec (generation {g})"),
                remedy,
                command,
                runbook: anchor("StallwatchGenerationNotObserved"),
            }
        }
        Reason::PhaseNotReady => Advice {
            cause: format!(
                "phase {} is not one of the ready phases {:?}",
                facts.phase.as_deref().unwrap_or("(none)"),
                o.target.phase.as_ref().map(|p| p.ready.clone()).unwrap_or_default()
            ),
            remedy:
                "Read the status message and the operator's logs; restart the operator if it does not move."
                    .into(),
            command: Some(format!(
                "kubectl {ns_flag}get {} {name} -o jsonpath='{{.status}}'",
                kind.to_ascii_lowercase()
            )),
            runbook: anchor("StallwatchPhaseNotReady"),
        },
        Reason::ConditionNotReady => Advice {
            cause: format!("condition {} is not True", o.target.conditions.ready.join(", ")),
            remedy: "Read the condition's reason and message and the controller's events.".into(),
            command: Some(format!("kubectl {ns_flag}describe {} {name}", kind.to_ascii_lowercase())),
            runbook: anchor("StallwatchObjectStalled"),
        },
        Reason::WorkloadMissing => {
            let slots = o.links.missing.join(", ");
            let (_, command) = restart_operator(o);
            Advice {
                cause: format!(
                    "the workloads of image slot {slots} do not exist (deleted and not recreated?)"
                ),
                remedy:
                    "Restart the operator so it creates them again, then check that the rollout completes."
                        .into(),
                command,
                runbook: anchor("StallwatchWorkloadMissing"),
            }
        }
        Reason::RolloutInProgress => {
            let w = o.links.workloads.iter().find(|w| !w.facts.complete());
            let (k, wns, wname) = w.map_or((kind, ns, name), |w| (w.facts.kind.name(), w.namespace, w.name));
            Advice {
                cause: format!("the rollout of {k} {wns}/{wname} is still moving"),
                remedy: "Nothing yet: it progressed recently. Watch it; it pages only if it stops moving."
                    .into(),
                command: Some(format!(
                    "kubectl -n {wns} rollout status {}/{wname} --timeout=10s",
                    k.to_ascii_lowercase()
                )),
                runbook: anchor("StallwatchRolloutNotProgressing"),
            }
        }
        Reason::PodsOutdated => {
            let w = o.links.workloads.iter().find(|w| w.outdated > 0);
            let (k, wns, wname) = w.map_or((kind, ns, name), |w| (w.facts.kind.name(), w.namespace, w.name));
            Advice {
                cause: format!("pods of {k} {wns}/{wname} run an outdated template (updateStrategy OnDelete?)"),
                remedy: "Replace the outdated pods: restart the workload (or delete them one by one with OnDelete)."
                    .into(),
                command: Some(format!("kubectl -n {wns} rollout restart {}/{wname}", k.to_ascii_lowercase())),
                runbook: anchor("StallwatchPodsOutdated"),
            }
        }
    }
}
