//! Cause ranking: [`rank`] turns a per-object [`Summary`] (plain data, built from the object's
//! report) into the likely causes, ranked, with their remedies. It is a pure function, tested
//! below with one table row per cause. The rules, one function per cause, are in [`rules`].

mod rules;

use super::report::{Cause, Remedy};

/// What the ranking reads of one object: plain data, built from its report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub converged: bool,
    /// A KubeArmorConfig of the kubearmor preset: KubeArmor's known failure modes apply.
    pub kubearmor: bool,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub phase: Option<String>,
    pub phase_ready: Option<bool>,
    /// The object reports an observed generation below its generation: (generation, observed).
    pub generation_lag: Option<(i64, i64)>,
    pub mismatches: Vec<Mismatch>,
    pub pins: Vec<Pin>,
    /// Rollouts that are incomplete or leave outdated pods.
    pub rollouts: Vec<RolloutState>,
    pub operator: Option<OperatorState>,
    /// (namespace/name, seconds since the last renew or `None` when the Lease is missing).
    pub lease: Option<(String, Option<f64>)>,
    pub last_status_write_age: Option<f64>,
    pub unconverged_seconds: f64,
    pub stalled_after: f64,
    /// (type, status, reason) of conditions that hold the object back.
    pub conditions_not_ready: Vec<(String, String, String)>,
    /// Warning events by reason: (reason, count).
    pub warnings: Vec<(String, u64)>,
    /// (name, available, message).
    pub apiservice: Option<(String, Option<bool>, String)>,
    pub nodes_without_snitch: Vec<String>,
    pub nodes_not_ready: Vec<String>,
    pub nodes_new: Vec<String>,
    pub nodes_total: usize,
    /// Warning events last seen before the object stopped being Current: (reason, count).
    pub old_warnings: Vec<(String, u64)>,
    /// Required image slots whose workloads do not exist.
    pub missing_required: Vec<String>,
    /// The controller writes status only when it changes: an old status write means nothing.
    pub status_on_change: bool,
}

/// A workload container whose template or pods do not run the desired image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mismatch {
    pub slot: String,
    pub workload_kind: String,
    pub workload_namespace: String,
    pub workload: String,
    pub container: String,
    pub init: bool,
    pub desired: String,
    pub actual: String,
    /// The workload's rollout is complete: its controller was never asked to change it.
    pub rollout_complete: bool,
}

/// An operator image pin of one slot, and whether it differs from what the object asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pin {
    pub slot: String,
    pub source: String,
    pub pinned: String,
    /// What the object's own field asks for.
    pub stated: Option<String>,
}

/// One linked workload's rollout, as the ranking reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutState {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub strategy: String,
    pub desired: i64,
    pub updated: i64,
    pub available: i64,
    pub complete: bool,
    pub failed: bool,
    pub outdated_pods: Vec<String>,
    pub stalled_seconds: f64,
}

/// The operator's pods, as the ranking reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorState {
    pub namespace: String,
    pub deployment: Option<String>,
    pub selector: Option<String>,
    pub pods: usize,
    pub ready: usize,
    pub restarts: u32,
}

impl Summary {
    /// `kubectl -n NS rollout restart deployment/NAME`, or a placeholder when the config does
    /// not name the controller's Deployment.
    fn restart_command(&self) -> Option<String> {
        let op = self.operator.as_ref()?;
        let d = op.deployment.as_ref()?;
        Some(format!("kubectl -n {} rollout restart deployment/{d}", op.namespace))
    }

    fn restart_remedy(&self, why: &str) -> Remedy {
        match (&self.operator, self.restart_command()) {
            (Some(op), Some(cmd)) => remedy(
                why,
                vec![
                    cmd,
                    format!(
                        "kubectl -n {} rollout status deployment/{} --timeout=2m",
                        op.namespace,
                        op.deployment.as_deref().unwrap_or_default()
                    ),
                ],
            ),
            _ => remedy(
                format!(
                    "{why} (the config does not name its Deployment: kubectl -n <namespace> rollout restart deployment/<controller of {}>)",
                    self.kind
                ),
                vec![],
            ),
        }
    }

    fn object(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }

    fn phase_text(&self) -> String {
        self.phase.as_deref().map_or("no phase".into(), |p| format!("phase {p}"))
    }
}

fn remedy(step: impl Into<String>, commands: Vec<String>) -> Remedy {
    Remedy { step: step.into(), commands }
}

/// The likely causes of an object's state, most likely first; empty when it is converged.
pub fn rank(s: &Summary) -> Vec<Cause> {
    if s.converged {
        return Vec::new();
    }
    // Each rule adds the causes its evidence supports, scored; the order here only breaks ties.
    let mut out: Vec<Cause> = Vec::new();
    out.extend(rules::workload_missing(s));
    out.extend(rules::operator_missed_update(s));
    out.extend(rules::image_pinned(s));
    out.extend(rules::apiservice_unavailable(s));
    out.extend(rules::operator_not_running_or_restarting(s));
    out.extend(rules::lease_stale(s));
    out.extend(rules::rollouts_not_progressing(s));
    out.extend(rules::pods_outdated(s));
    out.extend(rules::generation_not_observed(s));
    out.extend(rules::nodes_without_snitch_labels(s));
    out.extend(rules::node_churn(s));
    out.extend(rules::operator_node_counter(s));
    out.extend(rules::warning_events(s));
    out.extend(rules::controller_silent(s));
    out.extend(rules::conditions_not_ready(s));
    // The fallbacks: a phase that is not ready when nothing more specific scores 50 or more,
    // and `unknown` when nothing was found at all.
    if s.phase_ready == Some(false) && out.iter().all(|c| c.score < 50) {
        out.push(rules::phase_not_ready(s));
    }
    if out.is_empty() {
        out.push(rules::unknown(s));
    }

    // Most likely first; ties keep the order above (sort is stable).
    out.sort_by_key(|c| std::cmp::Reverse(c.score));
    for (i, c) in out.iter_mut().enumerate() {
        c.rank = i + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::report::RUNBOOKS;

    /// The stuck KubeArmor update (the operator never pushed the new image), as the summary sees it.
    fn kubearmor_stuck() -> Summary {
        Summary {
            kubearmor: true,
            kind: "KubeArmorConfig".into(),
            namespace: "kubearmor".into(),
            name: "kubearmorconfig-default".into(),
            phase: Some("Pending".into()),
            phase_ready: Some(false),
            mismatches: vec![Mismatch {
                slot: "kubearmor".into(),
                workload_kind: "DaemonSet".into(),
                workload_namespace: "kubearmor".into(),
                workload: "kubearmor-bpf-containerd-98c2c".into(),
                container: "kubearmor".into(),
                init: false,
                desired: "kubearmor/kubearmor:v2".into(),
                actual: "docker.io/kubearmor/kubearmor:v1".into(),
                rollout_complete: true,
            }],
            operator: Some(OperatorState {
                namespace: "kubearmor".into(),
                deployment: Some("kubearmor-operator".into()),
                selector: Some("kubearmor-app=kubearmor-operator".into()),
                pods: 1,
                ready: 1,
                restarts: 0,
            }),
            unconverged_seconds: 1200.0,
            stalled_after: 900.0,
            last_status_write_age: Some(60.0),
            ..Default::default()
        }
    }

    /// A generic object that is not converged and shows nothing specific.
    fn plain() -> Summary {
        Summary {
            kind: "Widget".into(),
            namespace: "ns".into(),
            name: "w".into(),
            unconverged_seconds: 100.0,
            stalled_after: 900.0,
            ..Default::default()
        }
    }

    fn top(s: &Summary) -> Cause {
        rank(s).into_iter().next().expect("a cause")
    }

    #[test]
    fn converged_has_no_causes() {
        let s = Summary { converged: true, ..kubearmor_stuck() };
        assert!(rank(&s).is_empty());
    }

    #[test]
    fn stuck_kubearmor_update_ranks_the_operator_restart_first() {
        let causes = rank(&kubearmor_stuck());
        let c = &causes[0];
        assert_eq!((c.rank, c.id), (1, "operator-missed-update"));
        assert!(c.title.contains("KubeArmor #1842"), "{c:?}");
        // Evidence first: the operator's own log of the failed push.
        assert_eq!(
            c.remedies[0].commands[0],
            "kubectl -n kubearmor logs deploy/kubearmor-operator | grep -i 'cannot update daemonset'"
        );
        // Pending: a restart fixes the phase, a second one (once Running) the image.
        assert_eq!(
            c.remedies[1].commands[0],
            "kubectl -n kubearmor rollout restart deployment/kubearmor-operator"
        );
        assert!(c.remedies[1].step.contains("does not push the images yet"), "{:?}", c.remedies[1]);
        assert!(c.remedies[2].step.contains("second time"), "{:?}", c.remedies[2]);
        let last = c.remedies.last().unwrap();
        assert!(
            last.commands[0].contains(
                "set image daemonset/kubearmor-bpf-containerd-98c2c kubearmor=kubearmor/kubearmor:v2"
            )
        );
        // Never: "delete the DaemonSet so the operator recreates it".
        for r in &c.remedies {
            assert!(!r.step.contains("so the operator recreates"), "{r:?}");
            assert!(r.commands.iter().all(|cmd| !cmd.contains("delete daemonset")), "{r:?}");
        }
        // Running: one restart re-pushes the images.
        let running = Summary { phase: Some("Running".into()), phase_ready: Some(true), ..kubearmor_stuck() };
        let c = top(&running);
        assert!(c.remedies[1].step.contains("re-pushes the images"), "{:?}", c.remedies[1]);
        assert!(!c.remedies.iter().any(|r| r.step.contains("second time")));
        assert!(c.runbook.ends_with("#stallwatchimagenotrolledout"));
        let ranks: Vec<usize> = causes.iter().map(|c| c.rank).collect();
        assert_eq!(ranks, (1..=causes.len()).collect::<Vec<_>>());
    }

    /// One row per cause: (name, summary, expected top cause, text the title must contain).
    fn rows() -> Vec<(&'static str, Summary, &'static str, &'static str)> {
        vec![
            ("kubearmor image not pushed", kubearmor_stuck(), "operator-missed-update", "KubeArmor #1842"),
            (
                "generic controller did not update its workload",
                Summary { kubearmor: false, kind: "Widget".into(), ..kubearmor_stuck() },
                "operator-missed-update",
                "controller has not updated",
            ),
            (
                "operator pin overrides the object",
                Summary {
                    mismatches: vec![],
                    pins: vec![Pin {
                        slot: "kubearmor".into(),
                        source: "Deployment/kubearmor-operator env RELATED_IMAGE_KUBEARMOR".into(),
                        pinned: "registry.local/kubearmor:pinned".into(),
                        stated: Some("kubearmor/kubearmor:v2".into()),
                    }],
                    phase_ready: Some(true),
                    ..kubearmor_stuck()
                },
                "image-pinned",
                "object's image is ignored",
            ),
            (
                "APIService unavailable",
                Summary {
                    apiservice: Some(("v1.example.com".into(), Some(false), "MissingEndpoints".into())),
                    ..plain()
                },
                "apiservice-unavailable",
                "v1.example.com",
            ),
            (
                "no operator pod ready",
                Summary {
                    operator: Some(OperatorState {
                        namespace: "ns".into(),
                        selector: Some("app=op".into()),
                        pods: 1,
                        ..Default::default()
                    }),
                    ..plain()
                },
                "operator-not-running",
                "No operator pod is Ready",
            ),
            (
                "operator crash-looping but ready",
                Summary {
                    operator: Some(OperatorState {
                        namespace: "ns".into(),
                        pods: 1,
                        ready: 1,
                        restarts: 7,
                        ..Default::default()
                    }),
                    ..plain()
                },
                "operator-restarting",
                "restarted 7 times",
            ),
            (
                "stale leader lease",
                Summary { lease: Some(("ns/op-leader".into(), Some(3600.0))), ..plain() },
                "lease-stale",
                "not renewed for 1h",
            ),
            (
                "rollout stuck",
                Summary {
                    rollouts: vec![RolloutState {
                        kind: "DaemonSet".into(),
                        namespace: "ns".into(),
                        name: "agent".into(),
                        desired: 3,
                        updated: 1,
                        available: 2,
                        stalled_seconds: 1800.0,
                        ..Default::default()
                    }],
                    ..plain()
                },
                "rollout-not-progressing",
                "is not progressing",
            ),
            (
                "rollout failed",
                Summary {
                    rollouts: vec![RolloutState {
                        kind: "Deployment".into(),
                        name: "web".into(),
                        failed: true,
                        ..Default::default()
                    }],
                    ..plain()
                },
                "rollout-not-progressing",
                "ProgressDeadlineExceeded",
            ),
            (
                "OnDelete pods left behind",
                Summary {
                    rollouts: vec![RolloutState {
                        kind: "DaemonSet".into(),
                        name: "agent".into(),
                        strategy: "OnDelete".into(),
                        complete: true,
                        outdated_pods: vec!["agent-x".into()],
                        ..Default::default()
                    }],
                    ..plain()
                },
                "pods-outdated",
                "outdated template",
            ),
            (
                "generation not observed",
                Summary { generation_lag: Some((5, 4)), ..plain() },
                "generation-not-observed",
                "generation 5 (observed 4)",
            ),
            (
                "nodes without snitch labels",
                Summary { mismatches: vec![], nodes_without_snitch: vec!["n1".into()], ..kubearmor_stuck() },
                "nodes-without-snitch-labels",
                "kubearmor.io/enforcer",
            ),
            (
                "node churn inflates the operator's counters",
                Summary {
                    mismatches: vec![],
                    nodes_new: vec!["n9".into()],
                    nodes_total: 3,
                    ..kubearmor_stuck()
                },
                "operator-node-counter",
                "node counter is out of sync",
            ),
            (
                "Pending with every node labelled, pods == desired, images right, no churn visible",
                Summary { mismatches: vec![], nodes_total: 3, ..kubearmor_stuck() },
                "operator-node-counter",
                "node counter is out of sync",
            ),
            (
                "the agent DaemonSet is gone",
                Summary {
                    mismatches: vec![],
                    missing_required: vec!["kubearmor".into()],
                    ..kubearmor_stuck()
                },
                "workload-missing",
                "slot kubearmor do not exist",
            ),
            (
                "warning events",
                Summary { warnings: vec![("FailedCreate".into(), 3)], ..plain() },
                "warning-events",
                "FailedCreate ×3",
            ),
            (
                "controller silent",
                Summary { last_status_write_age: Some(7200.0), unconverged_seconds: 3600.0, ..plain() },
                "controller-silent",
                "has not written",
            ),
            (
                "condition not ready",
                Summary {
                    conditions_not_ready: vec![("Ready".into(), "False".into(), "Waiting".into())],
                    ..plain()
                },
                "condition-not-ready",
                "Ready=False (Waiting)",
            ),
            (
                "phase not ready and nothing else",
                Summary { phase: Some("Error".into()), phase_ready: Some(false), ..plain() },
                "phase-not-ready",
                "phase Error",
            ),
            ("nothing known", plain(), "unknown", "No specific cause"),
        ]
    }

    #[test]
    fn each_cause_ranks_first_when_it_is_the_story() {
        for (name, summary, id, title) in rows() {
            let c = top(&summary);
            assert_eq!(c.id, id, "{name}: {:#?}", rank(&summary));
            assert!(c.title.contains(title), "{name}: title {:?} lacks {title:?}", c.title);
            assert!(c.runbook.starts_with(RUNBOOKS), "{name}: {}", c.runbook);
        }
    }

    /// Every cause is documented in docs/diagnose.md and links to a runbook section that exists.
    #[test]
    fn causes_are_documented_and_their_runbooks_exist() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(root.join("docs/diagnose.md")).expect("docs/diagnose.md");
        let runbooks = std::fs::read_to_string(root.join("docs/runbooks.md")).expect("docs/runbooks.md");
        let slug = |h: &str| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect::<String>()
        };
        let anchors: Vec<String> = runbooks
            .lines()
            .filter_map(|l| {
                l.strip_prefix("<a id=\"")
                    .and_then(|r| r.split('"').next())
                    .map(String::from)
                    .or_else(|| l.starts_with('#').then(|| slug(l)))
            })
            .collect();
        for (name, summary, _, _) in rows() {
            for c in rank(&summary) {
                assert!(doc.contains(&format!("| `{}` |", c.id)), "docs/diagnose.md lacks cause `{}`", c.id);
                let anchor = c.runbook.rsplit_once('#').map(|(_, a)| a).unwrap_or_default();
                assert!(
                    anchors.iter().any(|a| a == anchor),
                    "{name}: runbook anchor #{anchor} not in docs/runbooks.md"
                );
            }
        }
    }

    #[test]
    fn old_events_rank_low_and_a_status_on_change_controller_is_not_silent() {
        // A 30-minute-old install-time FailedCreate, last seen before the object got stuck.
        let s = Summary { old_warnings: vec![("FailedCreate".into(), 1)], ..kubearmor_stuck() };
        let causes = rank(&s);
        assert_eq!(causes[0].id, "operator-missed-update");
        let w = causes.iter().find(|c| c.id == "warning-events").unwrap();
        assert!(w.score < 50 && w.detail.contains("history"), "{w:?}");
        let silent = Summary { last_status_write_age: Some(7200.0), unconverged_seconds: 3600.0, ..plain() };
        assert_eq!(top(&silent).id, "controller-silent");
        let on_change = Summary { status_on_change: true, ..silent };
        assert!(rank(&on_change).iter().all(|c| c.id != "controller-silent"));
    }

    #[test]
    fn pin_that_agrees_is_only_context() {
        let s = Summary {
            pins: vec![Pin {
                slot: "kubearmor".into(),
                source: "Deployment/kubearmor-operator env RELATED_IMAGE_KUBEARMOR".into(),
                pinned: "docker.io/kubearmor/kubearmor:v2".into(),
                stated: Some("kubearmor/kubearmor:v2".into()),
            }],
            ..kubearmor_stuck()
        };
        let causes = rank(&s);
        assert_eq!(causes[0].id, "operator-missed-update");
        let pin = causes.iter().find(|c| c.id == "image-pinned").expect("pin mentioned");
        assert!(pin.score < 50, "{pin:?}");
    }

    #[test]
    fn a_moving_rollout_is_not_blamed() {
        let s = Summary {
            rollouts: vec![RolloutState {
                kind: "DaemonSet".into(),
                name: "agent".into(),
                desired: 3,
                updated: 2,
                stalled_seconds: 10.0,
                ..Default::default()
            }],
            ..plain()
        };
        let c = top(&s);
        assert_eq!(c.id, "rollout-not-progressing");
        assert!(c.title.contains("in progress") && c.score < 50, "{c:?}");
    }

    #[test]
    fn a_new_cluster_is_not_churn() {
        let s = Summary { nodes_new: vec!["a".into(), "b".into()], nodes_total: 2, ..kubearmor_stuck() };
        assert!(rank(&s).iter().all(|c| c.id != "node-churn"), "{:#?}", rank(&s));
        let s = Summary { nodes_not_ready: vec!["a".into()], nodes_total: 2, ..kubearmor_stuck() };
        assert!(rank(&s).iter().any(|c| c.id == "node-churn"));
    }

    #[test]
    fn snitch_labels_rank_below_the_image_when_both_apply() {
        let s = Summary { nodes_without_snitch: vec!["n1".into()], ..kubearmor_stuck() };
        let ids: Vec<&str> = rank(&s).iter().map(|c| c.id).collect();
        assert_eq!(ids[0], "operator-missed-update");
        assert!(ids.contains(&"nodes-without-snitch-labels"), "{ids:?}");
    }
}
