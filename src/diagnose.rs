//! `stallwatch diagnose` (F17): a one-shot, read-only report per tracked object that walks the
//! troubleshooting checklist of docs/runbooks.md and ends with the likely causes, ranked, and
//! their remedies.
//!
//! It resolves the config's watch plan ([`store::plan`]), lists every watch once into a fresh
//! store ([`watch::list_once`]) and builds the same [`View`] the exporter renders, so verdicts
//! and the image triangle are exactly the exporter's. What the store does not keep is fetched
//! once: Warning events with their messages, nodes (readiness, age, KubeArmor snitch labels)
//! and the APIService of each tracked group. A one-shot run has no history: times come from the
//! API's own records (managedFields, creationTimestamp), see docs/diagnose.md.
//!
//! [`rank`] turns a per-object [`Summary`] into causes. It is a pure function, tested with one
//! table row per cause. The JSON output (`version` 1) is documented in docs/diagnose.md.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    io::{IsTerminal, Write as _},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::{Event, Node},
    kube_aggregator::pkg::apis::apiregistration::v1::APIService,
};
use kube::{Api, Client, api::ListParams};
use serde::Serialize;

use crate::{
    app,
    cli::{DiagnoseArgs, DiagnosePreset, OutputFormat, RunArgs},
    config::{Config, ImageRule, Target},
    converge, image,
    kinds::{Kind, KindFacts, PodFacts, Strategy, WorkloadFacts},
    metrics::now,
    preset,
    store::{self, ErrorCause, Watch},
    verdict::{self, Status},
    view::{Locked, ObjView, View},
    watch::{self, Failure},
};

/// The `version` of the JSON output; bumped on any incompatible change.
pub const JSON_VERSION: u32 = 1;
pub const EXIT_CONVERGED: u8 = 0;
pub const EXIT_STUCK: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

const RUNBOOKS: &str = "https://github.com/stallwatch/stallwatch/blob/main/docs/runbooks.md";
/// One watch's list (all pages) must finish within this.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// Newest Warning events shown per object.
const EVENTS_SHOWN: usize = 8;
/// A leader Lease not renewed for this long is stale (the alert's default threshold).
const LEASE_STALE: f64 = 600.0;
const HOUR: f64 = 3600.0;
/// No status write for this long (or `stalledAfter`, if longer) while unconverged: the
/// controller is silent (the StallwatchControllerSilent alert's default).
const CONTROLLER_SILENT: f64 = 1800.0;
/// The label KubeArmor's snitch puts on every Linux node it has processed.
const SNITCH_LABEL: &str = "kubearmor.io/enforcer";

// ================================================================== the report (JSON schema)

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub generated_at: String,
    /// `converged`, `stuck` or `error`.
    pub result: &'static str,
    pub exit_code: u8,
    pub objects_total: usize,
    pub objects_not_converged: usize,
    pub errors: Vec<CheckError>,
    pub notes: Vec<String>,
    pub objects: Vec<ObjectReport>,
    pub nodes: Option<NodeReport>,
}

/// A list that failed: the reason for exit code 2.
#[derive(Debug, Clone, Serialize)]
pub struct CheckError {
    /// `group/version/Kind`, or `config` / `kubeconfig` when nothing could be listed.
    pub resource: String,
    pub namespace: String,
    pub selector: String,
    /// `forbidden`, `not_found`, `timeout`, `connect`, `throttled`, `decode`, `other`, `config`.
    pub cause: String,
    pub code: u16,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectReport {
    pub target: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub verdict: VerdictReport,
    pub generation: GenerationReport,
    pub phase: Option<PhaseReport>,
    pub conditions: Vec<ConditionReport>,
    pub status_writes: Vec<WriteReport>,
    pub images: Vec<SlotReport>,
    pub rollouts: Vec<RolloutReport>,
    pub operator: Option<OperatorReport>,
    pub lease: Option<LeaseReport>,
    pub events: Vec<EventReport>,
    pub apiservice: Option<ApiServiceReport>,
    pub causes: Vec<Cause>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictReport {
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub unconverged_since: Option<String>,
    pub unconverged_seconds: Option<f64>,
    pub stalled_since: Option<String>,
    pub stalled_after_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenerationReport {
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    /// Whether the current generation is observed; `null` when nothing can tell.
    pub observed: Option<bool>,
    /// `reported` (the object's observedGeneration), `derived` (from the linked workloads,
    /// for kinds that report none) or `unknown`.
    pub source: &'static str,
    pub first_seen: String,
    /// `managedFields` (last spec write), `creationTimestamp` or `now`.
    pub first_seen_source: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: Option<String>,
    pub ready: Option<bool>,
    pub ready_phases: Vec<String>,
    pub since: String,
    pub seconds: f64,
    /// `managedFields` (last status write), `creationTimestamp` or `now`.
    pub since_source: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConditionReport {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub since: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WriteReport {
    pub manager: String,
    pub at: String,
    pub age_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotReport {
    pub slot: String,
    pub desired: String,
    /// `object` (the object's field), `default` (the field is empty) or `operator-pin`.
    pub desired_source: &'static str,
    /// The JSONPath of the object's field.
    pub field: String,
    /// What the object's field says (`null` when empty).
    pub stated: Option<String>,
    /// The pin, e.g. `Deployment/kubearmor-operator env RELATED_IMAGE_KUBEARMOR`.
    pub override_source: Option<String>,
    pub workloads: Vec<SlotWorkload>,
    /// No workload of the slot exists (optional components).
    pub missing: bool,
    /// Where the slot's workloads are looked for, e.g. `DaemonSet kubearmor-app=kubearmor in kubearmor`.
    pub looked_for: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SlotWorkload {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub container: String,
    pub init: bool,
    pub template_image: String,
    pub mismatch: bool,
    pub pods: Vec<PodImage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PodImage {
    pub name: String,
    pub node: Option<String>,
    /// The image the container runs (status), else the one its spec names.
    pub image: String,
    /// The pod runs the workload's current template (all containers).
    pub on_template: bool,
    /// The slot's container runs the desired image.
    pub runs_desired: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RolloutReport {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// `RollingUpdate`, `OnDelete` or `Recreate`.
    pub strategy: &'static str,
    pub partition: i64,
    pub generation_observed: bool,
    pub desired: i64,
    pub updated: i64,
    pub available: i64,
    pub ready: i64,
    pub complete: bool,
    pub deadline_exceeded: bool,
    pub pods: usize,
    pub outdated_pods: Vec<String>,
    pub last_progress: String,
    pub last_progress_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorReport {
    pub namespace: String,
    /// The Deployment to restart, when the config names it (operator image pins).
    pub deployment: Option<String>,
    pub selector: Option<String>,
    pub pods: Vec<OperatorPod>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorPod {
    pub name: String,
    pub node: Option<String>,
    /// The pod's Ready condition (its readiness probe).
    pub ready: bool,
    pub restarts: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeaseReport {
    pub namespace: String,
    pub name: String,
    pub found: bool,
    pub holder: Option<String>,
    pub renewed_at: Option<String>,
    pub age_seconds: Option<f64>,
    pub transitions: Option<i64>,
    pub stale: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventReport {
    /// `Kind/name` of the involved object.
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: u64,
    pub last_seen: Option<String>,
    pub age_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiServiceReport {
    pub name: String,
    /// `null` when the APIService could not be read (see `message`).
    pub available: Option<bool>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub total: usize,
    pub not_ready: Vec<String>,
    pub created_last_hour: Vec<String>,
    pub linux: usize,
    /// Linux nodes without KubeArmor's snitch labels; `null` unless a kubearmor target is checked.
    pub without_kubearmor_labels: Option<Vec<String>>,
}

/// A likely cause with its remedies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cause {
    /// 1 is the most likely.
    pub rank: usize,
    /// Stable identifier, e.g. `operator-missed-update` (docs/diagnose.md lists them).
    pub id: &'static str,
    #[serde(skip)]
    pub score: u32,
    pub title: String,
    pub detail: String,
    pub remedies: Vec<Remedy>,
    pub runbook: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remedy {
    pub step: String,
    /// Commands to run, in order (may be empty).
    pub commands: Vec<String>,
}

fn remedy(step: impl Into<String>, commands: Vec<String>) -> Remedy {
    Remedy { step: step.into(), commands }
}

fn runbook(anchor: &str) -> String {
    format!("{RUNBOOKS}#{anchor}")
}

// ================================================================== cause ranking (pure)

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
}

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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pin {
    pub slot: String,
    pub source: String,
    pub pinned: String,
    /// What the object's own field asks for.
    pub stated: Option<String>,
}

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

fn list(items: &[String], max: usize) -> String {
    let mut s = items.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        let _ = write!(s, " and {} more", items.len() - max);
    }
    s
}

/// The likely causes of an object's state, most likely first; empty when it is converged.
pub fn rank(s: &Summary) -> Vec<Cause> {
    if s.converged {
        return Vec::new();
    }
    let mut out: Vec<Cause> = Vec::new();
    macro_rules! add {
        ($id:expr, $score:expr, $title:expr, $detail:expr, $remedies:expr, $rb:expr $(,)?) => {
            out.push(Cause {
                rank: 0,
                id: $id,
                score: $score,
                title: $title,
                detail: $detail,
                remedies: $remedies,
                runbook: runbook($rb),
            })
        };
    }
    let phase_stuck = s.phase_ready == Some(false);

    // The workload never got the desired image although its own rollout is done.
    let untouched: Vec<&Mismatch> = s.mismatches.iter().filter(|m| m.rollout_complete).collect();
    if let Some(first) = s.mismatches.first() {
        let score = match (untouched.is_empty(), s.kubearmor) {
            (false, true) => 100,
            (false, false) => 90,
            (true, _) => 60,
        };
        let m = untouched.first().copied().unwrap_or(first);
        let what = format!(
            "{} wants {} for slot {}, but {} {}/{} container {} still has {} in its pod template",
            s.kind,
            m.desired,
            m.slot,
            m.workload_kind,
            m.workload_namespace,
            m.workload,
            m.container,
            m.actual
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
                let pairs: Vec<String> =
                    ms.iter().map(|m| format!("{}={}", m.container, m.desired)).collect();
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
                    s.restart_remedy("Restart the operator (it rebuilds its node/DaemonSet state and re-pushes the images)"),
                    remedy("Watch the workloads roll", status_cmds),
                    remedy(
                        "If the images still do not move (a restart while the config is Pending may push nothing), set them by hand, or delete the DaemonSet so the operator recreates it",
                        set_cmds,
                    ),
                ],
            )
        } else {
            (
                format!(
                    "The controller has not updated {} {} to the desired image",
                    m.workload_kind, m.workload
                ),
                format!(
                    "{what} and its rollout is complete: its controller was never told to change it, or a failed update was not retried (edge-triggered controllers miss changes after a conflict or a lost watch event)."
                ),
                vec![
                    s.restart_remedy("Restart the controller so that it re-reads the desired state"),
                    remedy("Watch the workloads roll", status_cmds),
                ],
            )
        };
        add!("operator-missed-update", score, title, detail, remedies, "stallwatchimagenotrolledout");
    }

    // Operator image pins (F8).
    let overriding: Vec<&Pin> =
        s.pins.iter().filter(|p| p.stated.as_deref().is_some_and(|st| !image::same(st, &p.pinned))).collect();
    if let Some(p) = overriding.first() {
        let ns = s.operator.as_ref().map_or(s.namespace.as_str(), |o| o.namespace.as_str());
        let deploy = s.operator.as_ref().and_then(|o| o.deployment.as_deref()).unwrap_or("<operator>");
        add!(
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
        );
    } else if let Some(p) = s.pins.first() {
        add!(
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
        );
    }

    if let Some((name, Some(false), message)) = &s.apiservice {
        add!(
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
                    vec!["kubectl get --raw /readyz?verbose".into()]
                ),
            ],
            "stallwatchtargetnotsynced",
        );
    }

    if let Some(op) = &s.operator {
        let sel = op.selector.as_deref().unwrap_or("<operator selector>");
        if op.ready == 0 {
            add!(
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
            );
        } else if op.restarts > 0 {
            add!(
                "operator-restarting",
                45,
                format!("The operator restarted {} times", op.restarts),
                "Crashes lose in-memory state and may interrupt reconciles.".into(),
                vec![remedy(
                    "Read the logs of the previous container",
                    vec![format!("kubectl -n {} logs -l '{sel}' --previous --tail=100", op.namespace)],
                )],
                "stallwatchcontrollersilent",
            );
        }
    }

    if let Some((lease, age)) = &s.lease {
        let stale = age.is_none_or(|a| a > LEASE_STALE);
        if stale {
            let (ns, name) = lease.split_once('/').unwrap_or(("<namespace>", lease));
            add!(
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
            );
        }
    }

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
        add!(
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
        );
    }
    for r in s.rollouts.iter().filter(|r| r.complete && !r.outdated_pods.is_empty()) {
        add!(
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
        );
    }

    if let Some((g, o)) = s.generation_lag {
        add!(
            "generation-not-observed",
            86,
            format!("The controller has not processed generation {g} (observed {o})"),
            "The object's spec changed and its controller has not acted on it: not running, not leading, failing on this object, or it missed the change.".into(),
            vec![s.restart_remedy("Check the controller's logs and restart it")],
            "stallwatchgenerationnotobserved",
        );
    }

    if s.kubearmor && phase_stuck && !s.nodes_without_snitch.is_empty() {
        let ns = s.operator.as_ref().map_or(s.namespace.as_str(), |o| o.namespace.as_str());
        add!(
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
        );
    }

    // Every node new means a new cluster, not churn.
    let churn = !s.nodes_new.is_empty() && s.nodes_new.len() < s.nodes_total;
    if churn || !s.nodes_not_ready.is_empty() {
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
            remedies.push(s.restart_remedy(
                "Restart the operator: only a restart resets its per-DaemonSet node counters",
            ));
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
        add!(
            "node-churn",
            score,
            "Nodes came and went recently".into(),
            detail,
            remedies,
            "stallwatchphasenotready"
        );
    }

    if !s.warnings.is_empty() {
        let reasons: Vec<String> = s.warnings.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
        add!(
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
        );
    }

    let silent_after = s.stalled_after.max(CONTROLLER_SILENT);
    if let Some(age) = s.last_status_write_age
        && age > silent_after
        && s.unconverged_seconds > silent_after
        && s.rollouts.iter().all(|r| r.complete)
    {
        add!(
            "controller-silent",
            70,
            format!("The controller has not written the object's status for {}", dur(age)),
            "The object is not converged and no field manager has written its status since: the controller is most likely not reconciling (crashed, hung, not leading).".into(),
            vec![s.restart_remedy("Restart the controller")],
            "stallwatchcontrollersilent",
        );
    }

    for (t, st, reason) in &s.conditions_not_ready {
        add!(
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
        );
    }

    if phase_stuck && out.iter().all(|c| c.score < 50) {
        let phase = s.phase.as_deref().unwrap_or("(none)");
        add!(
            "phase-not-ready",
            50,
            format!("{} is in phase {phase}", s.object()),
            "No more specific cause was found; the object's status message and the controller's logs say why.".into(),
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
        );
    }

    if out.is_empty() {
        add!(
            "unknown",
            10,
            format!("No specific cause found for {}", s.object()),
            "Read the object's status and its controller's logs.".into(),
            vec![s.restart_remedy("If the controller is silent, restart it")],
            "stallwatchobjectstalled",
        );
    }

    // Most likely first; ties keep the order above (sort is stable).
    out.sort_by_key(|c| std::cmp::Reverse(c.score));
    for (i, c) in out.iter_mut().enumerate() {
        c.rank = i + 1;
    }
    out
}

// ================================================================== config and entry point

/// The config `--preset NAME [--namespace NS]` stands for.
pub fn preset_config(preset: DiagnosePreset, namespace: Option<&str>) -> Result<Config, String> {
    let ns = namespace.map(|n| serde_json::to_string(n).unwrap_or_default());
    let yaml = match (preset, ns) {
        (DiagnosePreset::Kubearmor, Some(ns)) => {
            format!("targets: [{{preset: kubearmor, namespace: {ns}}}]\n")
        }
        (DiagnosePreset::Kubearmor, None) => "targets: [{preset: kubearmor}]\n".into(),
        (DiagnosePreset::Workloads, Some(ns)) => {
            format!("targets: [{{preset: workloads, namespaces: [{ns}]}}]\n")
        }
        (DiagnosePreset::Workloads, None) => "targets: [{preset: workloads}]\n".into(),
    };
    Config::parse(&yaml, "--preset").map_err(|e| e.to_string())
}

/// `stallwatch diagnose`: prints the report and returns the exit code.
pub async fn main(run: &RunArgs, args: &DiagnoseArgs) -> u8 {
    let report = collect(run, args).await;
    let out = match args.output {
        OutputFormat::Json => {
            let mut s =
                serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            s.push('\n');
            s
        }
        OutputFormat::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            text(&report, color)
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush());
    report.exit_code
}

async fn collect(run: &RunArgs, args: &DiagnoseArgs) -> Report {
    let config = match (&run.config, args.preset) {
        (Some(_), Some(_)) => Err("--config and --preset exclude each other; give one".to_string()),
        (Some(path), None) => Config::load(path).map_err(|e| e.to_string()),
        (None, Some(p)) => preset_config(p, args.namespace.as_deref()),
        (None, None) => {
            Err("nothing to check: give --config FILE, or --preset kubearmor|workloads (with --namespace NS)"
                .into())
        }
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return Report::failed("config", "config", e),
    };
    let client = match app::client(run).await {
        Ok(c) => c,
        Err(e) => return Report::failed("kubeconfig", "connect", e.to_string()),
    };
    // With a preset the namespace shaped the config; with a file it filters the report.
    let only = if args.preset.is_none() { args.namespace.as_deref() } else { None };
    diagnose(&client, &config, only).await
}

impl Report {
    fn failed(resource: &str, cause: &str, message: String) -> Report {
        Report {
            version: JSON_VERSION,
            generated_at: rfc3339(now()),
            result: "error",
            exit_code: EXIT_ERROR,
            objects_total: 0,
            objects_not_converged: 0,
            errors: vec![CheckError {
                resource: resource.into(),
                namespace: String::new(),
                selector: String::new(),
                cause: cause.into(),
                code: 0,
                message,
            }],
            notes: Vec::new(),
            objects: Vec::new(),
            nodes: None,
        }
    }
}

/// Lists everything the config needs once and reports on every tracked object (in `only`'s
/// namespace when given).
pub async fn diagnose(client: &Client, config: &Config, only: Option<&str>) -> Report {
    let watches: Vec<Arc<Watch>> =
        store::plan(config).into_iter().map(|(k, s)| Arc::new(Watch::new(k, s))).collect();
    let results = futures::future::join_all(watches.iter().map(|w| async move {
        match tokio::time::timeout(LIST_TIMEOUT, watch::list_once(client, w)).await {
            Ok(r) => r,
            Err(_) => Err(Failure {
                cause: ErrorCause::Timeout,
                code: 0,
                message: format!("listing {} timed out after {}s", w.key.gvk.label(), LIST_TIMEOUT.as_secs()),
            }),
        }
    }))
    .await;
    let mut errors = Vec::new();
    for (w, r) in watches.iter().zip(results) {
        if let Err(f) = r {
            errors.push(CheckError {
                resource: w.key.gvk.label(),
                namespace: w.key.namespace.clone(),
                selector: w.key.selector_label(),
                cause: f.cause.label().into(),
                code: f.code,
                message: f.message,
            });
        }
    }

    // What the store does not keep, fetched once for the namespaces and groups in question.
    let mut namespaces = BTreeSet::new();
    let mut groups = BTreeSet::new();
    let mut kubearmor = false;
    for w in &watches {
        for t in &w.subs.targets {
            if !t.resource.group.is_empty() {
                groups.insert(format!("{}.{}", t.resource.version, t.resource.group));
            }
            kubearmor |= is_kubearmor(t);
        }
        if !w.subs.targets.is_empty() {
            w.read(|s| {
                for (ns, _) in s.objects.keys() {
                    if !ns.is_empty() && only.is_none_or(|o| o == &**ns) {
                        namespaces.insert(ns.to_string());
                    }
                }
            });
        }
    }
    let mut notes = Vec::new();
    let ctx = Context::fetch(client, &namespaces, &groups, &mut notes).await;

    let now = now();
    let locked = Locked::new(&watches);
    let view = View::new(&locked, now);
    let nodes = ctx.nodes.as_ref().map(|n| node_report(n, now, kubearmor));
    let mut objects = Vec::new();
    for o in &view.objects {
        if only.is_some_and(|ns| ns != o.namespace) {
            continue;
        }
        objects.push(object_report(&view, o, &ctx, nodes.as_ref(), now));
    }
    // Targets with nothing to report are worth a line (a missing KubeArmorConfig, say).
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for w in &watches {
        for t in &w.subs.targets {
            if !seen.insert((t.name.clone(), t.resource.label())) {
                continue;
            }
            let any = objects.iter().any(|o| o.target == t.name && o.kind == t.resource.kind);
            let failed = errors.iter().any(|e| e.resource == t.resource.label());
            if !any && !failed {
                let wher = if t.namespaces.is_empty() {
                    only.map_or("any namespace".into(), |n| format!("namespace {n}"))
                } else {
                    format!("namespace {}", t.namespaces.join(", "))
                };
                notes.push(format!("target {}: no {} found in {wher}", t.name, t.resource.kind));
            }
        }
    }
    drop(view);
    drop(locked);

    let not_converged = objects.iter().filter(|o| o.verdict.status != Status::Current.label()).count();
    let (result, exit_code) = if !errors.is_empty() {
        ("error", EXIT_ERROR)
    } else if not_converged > 0 {
        ("stuck", EXIT_STUCK)
    } else {
        ("converged", EXIT_CONVERGED)
    };
    // Not Current first, longest unconverged first; then by kind and name.
    objects.sort_by(|a, b| {
        let key =
            |o: &ObjectReport| (o.verdict.status == "Current", -o.verdict.unconverged_seconds.unwrap_or(0.0));
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then_with(|| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)))
    });
    Report {
        version: JSON_VERSION,
        generated_at: rfc3339(now),
        result,
        exit_code,
        objects_total: objects.len(),
        objects_not_converged: not_converged,
        errors,
        notes,
        objects,
        nodes,
    }
}

fn is_kubearmor(t: &Target) -> bool {
    t.resource.group == preset::KUBEARMOR_GROUP && t.resource.kind == preset::KUBEARMOR_KIND
}

// ================================================================== one-shot context lists

struct EventRow {
    kind: String,
    name: String,
    reason: String,
    message: String,
    count: u64,
    last_seen: Option<f64>,
}

struct NodeRow {
    name: String,
    ready: Option<bool>,
    created: Option<f64>,
    linux: bool,
    snitch: bool,
}

#[derive(Default)]
struct Context {
    /// Warning events per namespace.
    events: BTreeMap<String, Vec<EventRow>>,
    nodes: Option<Vec<NodeRow>>,
    apiservices: BTreeMap<String, ApiServiceReport>,
}

fn secs(t: &jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
        e => e.to_string(),
    }
}

impl Context {
    /// Best effort: a failure here is a note, not a failed check (the verdict does not need it).
    async fn fetch(
        client: &Client,
        namespaces: &BTreeSet<String>,
        groups: &BTreeSet<String>,
        notes: &mut Vec<String>,
    ) -> Context {
        let mut ctx = Context::default();
        let warnings = ListParams::default().fields("type=Warning");
        for ns in namespaces {
            let api: Api<Event> = Api::namespaced(client.clone(), ns);
            match tokio::time::timeout(LIST_TIMEOUT, api.list(&warnings)).await {
                Ok(Ok(list)) => {
                    let rows = list
                        .items
                        .into_iter()
                        .map(|e| {
                            let last = e
                                .series
                                .as_ref()
                                .and_then(|s| s.last_observed_time.as_ref())
                                .map(|t| secs(&t.0))
                                .or(e.last_timestamp.as_ref().map(|t| secs(&t.0)))
                                .or(e.event_time.as_ref().map(|t| secs(&t.0)))
                                .or(e.metadata.creation_timestamp.as_ref().map(|t| secs(&t.0)));
                            let count = e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1);
                            EventRow {
                                kind: e.involved_object.kind.unwrap_or_default(),
                                name: e.involved_object.name.unwrap_or_default(),
                                reason: e.reason.unwrap_or_default(),
                                message: e.message.unwrap_or_default().trim().to_string(),
                                count: count.max(1) as u64,
                                last_seen: last,
                            }
                        })
                        .collect();
                    ctx.events.insert(ns.clone(), rows);
                }
                Ok(Err(e)) => {
                    notes.push(format!("Warning events in namespace {ns} not read: {}", api_error(&e)))
                }
                Err(_) => notes.push(format!("Warning events in namespace {ns} not read: timed out")),
            }
        }
        let api: Api<Node> = Api::all(client.clone());
        match tokio::time::timeout(LIST_TIMEOUT, api.list(&ListParams::default())).await {
            Ok(Ok(list)) => {
                ctx.nodes = Some(
                    list.items
                        .into_iter()
                        .map(|n| {
                            let labels = n.metadata.labels.unwrap_or_default();
                            let ready = n
                                .status
                                .as_ref()
                                .and_then(|s| s.conditions.as_ref())
                                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                                .map(|c| c.status == "True");
                            NodeRow {
                                name: n.metadata.name.unwrap_or_default(),
                                ready,
                                created: n.metadata.creation_timestamp.as_ref().map(|t| secs(&t.0)),
                                linux: labels.get("kubernetes.io/os").is_none_or(|os| os == "linux"),
                                snitch: labels.contains_key(SNITCH_LABEL),
                            }
                        })
                        .collect(),
                );
            }
            Ok(Err(e)) => notes.push(format!("nodes not read: {}", api_error(&e))),
            Err(_) => notes.push("nodes not read: timed out".into()),
        }
        let api: Api<APIService> = Api::all(client.clone());
        for name in groups {
            let lp = ListParams::default().fields(&format!("metadata.name={name}"));
            let report = match tokio::time::timeout(LIST_TIMEOUT, api.list(&lp)).await {
                Ok(Ok(list)) => match list.items.into_iter().next() {
                    Some(a) => {
                        let cond = a
                            .status
                            .and_then(|s| s.conditions)
                            .and_then(|c| c.into_iter().find(|c| c.type_ == "Available"));
                        ApiServiceReport {
                            name: name.clone(),
                            available: Some(cond.as_ref().is_some_and(|c| c.status == "True")),
                            message: cond
                                .map(|c| {
                                    format!(
                                        "{}{}",
                                        c.reason.unwrap_or_default(),
                                        c.message.map(|m| format!(": {m}")).unwrap_or_default()
                                    )
                                })
                                .unwrap_or_else(|| "no Available condition".into()),
                        }
                    }
                    None => ApiServiceReport {
                        name: name.clone(),
                        available: Some(false),
                        message:
                            "the APIService does not exist (the CRD or the aggregated API is not installed)"
                                .into(),
                    },
                },
                Ok(Err(e)) => {
                    ApiServiceReport { name: name.clone(), available: None, message: api_error(&e) }
                }
                Err(_) => {
                    ApiServiceReport { name: name.clone(), available: None, message: "timed out".into() }
                }
            };
            ctx.apiservices.insert(name.clone(), report);
        }
        ctx
    }
}

fn node_report(rows: &[NodeRow], now: f64, kubearmor: bool) -> NodeReport {
    let names = |f: &dyn Fn(&NodeRow) -> bool| -> Vec<String> {
        let mut v: Vec<String> = rows.iter().filter(|n| f(n)).map(|n| n.name.clone()).collect();
        v.sort();
        v
    };
    NodeReport {
        total: rows.len(),
        not_ready: names(&|n| n.ready != Some(true)),
        created_last_hour: names(&|n| n.created.is_some_and(|c| now - c <= HOUR)),
        linux: rows.iter().filter(|n| n.linux).count(),
        without_kubearmor_labels: kubearmor.then(|| names(&|n| n.linux && !n.snitch)),
    }
}

// ================================================================== one object

fn rfc3339(t: f64) -> String {
    jiff::Timestamp::from_second(t as i64).map_or_else(|_| format!("{t}"), |ts| ts.to_string())
}

/// Seconds between `t` and `now`, whole (JSON stays readable and stable).
fn age(now: f64, t: f64) -> f64 {
    (now - t).max(0.0).round()
}

fn dur(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs(secs.max(0.0) as u64)).to_string()
}

fn time_source(t: f64, status_or_spec_write: Option<f64>, created: Option<f64>) -> &'static str {
    if status_or_spec_write == Some(t) {
        "managedFields"
    } else if created == Some(t) {
        "creationTimestamp"
    } else {
        "now"
    }
}

fn strategy(s: Strategy) -> &'static str {
    match s {
        Strategy::RollingUpdate => "RollingUpdate",
        Strategy::OnDelete => "OnDelete",
        Strategy::Recreate => "Recreate",
    }
}

/// Pods owned by a workload, with their names (the index keys pods by owner without names).
fn pods_of<'a>(view: &View<'a>, ns: &str, kind: Kind, name: &str) -> Vec<(&'a str, &'a PodFacts)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for &(key, state) in &view.index.states {
        if key.kind != Some(Kind::Pod) {
            continue;
        }
        for ((pns, pname), t) in &state.objects {
            if **pns != *ns {
                continue;
            }
            if let Some(KindFacts::Pod(p)) = &t.kind
                && let Some((k, owner)) = &p.owner
                && *k == kind
                && **owner == *name
                && !p.deleting
                && seen.insert(&**pname)
            {
                out.push((&**pname, p));
            }
        }
    }
    out.sort_by_key(|(n, _)| *n);
    out
}

fn rollout(
    view: &View,
    ns: &str,
    name: &str,
    w: &WorkloadFacts,
    last_progress: f64,
    now: f64,
) -> RolloutReport {
    let pods = pods_of(view, ns, w.kind, name);
    RolloutReport {
        kind: w.kind.name(),
        namespace: ns.into(),
        name: name.into(),
        strategy: strategy(w.strategy),
        partition: w.partition,
        generation_observed: w.observed(),
        desired: w.desired,
        updated: w.updated,
        available: w.available,
        ready: w.ready,
        complete: w.complete(),
        deadline_exceeded: w.deadline_exceeded,
        pods: pods.len(),
        outdated_pods: pods
            .iter()
            .filter(|(_, p)| converge::outdated(w, p))
            .map(|(n, _)| n.to_string())
            .collect(),
        last_progress: rfc3339(last_progress),
        last_progress_seconds: age(now, last_progress),
    }
}

/// The operator pin of a slot, looked up like the convergence model does.
fn pin_of(view: &View, target: &Target, rule: &ImageRule) -> Option<(String, String)> {
    let o = rule.overridden_by.as_ref()?;
    let state = view.index.state(&store::override_key(target, rule, o))?;
    state.objects.values().find_map(|t| match &t.kind {
        Some(KindFacts::Workload(w)) => w
            .env
            .iter()
            .find(|(n, _)| **n == *o.env)
            .map(|(_, v)| (v.to_string(), format!("Deployment/{} env {}", o.deployment, o.env))),
        _ => None,
    })
}

fn slots(view: &View, o: &ObjView) -> Vec<SlotReport> {
    let mut out = Vec::new();
    for (i, rule) in o.target.images.iter().enumerate() {
        let stated = o.tf.facts.desired_images.get(i).cloned().flatten().map(String::from);
        let rows: Vec<_> = o.links.slots.iter().filter(|s| s.slot == rule.slot).collect();
        let (desired, override_source) = match rows.first() {
            Some(r) => (r.desired.clone(), r.override_source.clone()),
            None => match pin_of(view, o.target, rule) {
                Some((v, src)) => (v, Some(src)),
                None => (stated.clone().or_else(|| rule.default.clone()).unwrap_or_default(), None),
            },
        };
        let desired_source = if override_source.is_some() {
            "operator-pin"
        } else if stated.is_some() {
            "object"
        } else {
            "default"
        };
        let link = &rule.workloads;
        let lns = store::link_namespace(o.target, link);
        let lns = if lns.is_empty() { o.namespace } else { lns };
        let looked_for = format!(
            "{} {} in {}",
            link.kind.name(),
            link.name.as_deref().or(link.selector.as_deref()).unwrap_or(""),
            if lns.is_empty() { "any namespace" } else { lns }
        );
        let workloads = rows
            .iter()
            .map(|r| {
                let facts = o
                    .links
                    .workloads
                    .iter()
                    .find(|w| w.namespace == r.workload_namespace && w.name == r.workload);
                let pods = pods_of(view, r.workload_namespace, r.workload_kind, r.workload)
                    .into_iter()
                    .map(|(name, p)| {
                        let c = p.containers.iter().find(|c| &*c.name == r.container && c.init == link.init);
                        PodImage {
                            name: name.into(),
                            node: p.node.as_deref().map(String::from),
                            image: c.map_or(String::new(), |c| {
                                c.status_image.as_deref().unwrap_or(&c.spec_image).to_string()
                            }),
                            on_template: facts.is_some_and(|w| !converge::outdated(w.facts, p)),
                            runs_desired: c.is_some_and(|c| {
                                image::runs(
                                    &desired,
                                    &c.spec_image,
                                    c.status_image.as_deref(),
                                    c.image_id.as_deref(),
                                )
                            }),
                        }
                    })
                    .collect();
                SlotWorkload {
                    kind: r.workload_kind.name(),
                    namespace: r.workload_namespace.into(),
                    name: r.workload.into(),
                    container: r.container.into(),
                    init: link.init,
                    template_image: r.actual.into(),
                    mismatch: r.mismatch,
                    pods,
                }
            })
            .collect();
        out.push(SlotReport {
            slot: rule.slot.clone(),
            desired,
            desired_source,
            field: rule.desired.source().to_string(),
            stated,
            override_source,
            workloads,
            missing: o.links.missing.contains(&rule.slot.as_str()),
            looked_for,
        });
    }
    out
}

fn object_report(
    view: &View,
    o: &ObjView,
    ctx: &Context,
    nodes: Option<&NodeReport>,
    now: f64,
) -> ObjectReport {
    let f = &o.tf.facts;
    let v = &o.verdict;
    let reported = verdict::generation_observed(o.tf);
    let generation = GenerationReport {
        generation: f.generation,
        observed_generation: f.observed_generation,
        observed: o.generation_observed(),
        source: if reported.is_some() {
            "reported"
        } else if o.evidence.derived_generation_observed.is_some() {
            "derived"
        } else {
            "unknown"
        },
        first_seen: rfc3339(o.tf.generation_first_seen),
        first_seen_source: time_source(o.tf.generation_first_seen, f.last_spec_write, f.created),
    };
    let phase = o.target.phase.as_ref().map(|rule| PhaseReport {
        phase: f.phase.as_deref().map(String::from),
        ready: verdict::phase_ready(o.target, o.tf),
        ready_phases: rule.ready.clone(),
        since: rfc3339(o.tf.phase_since),
        seconds: age(now, o.tf.phase_since),
        since_source: time_source(o.tf.phase_since, f.last_status_write(), f.created),
    });
    let conditions = f
        .conditions
        .iter()
        .map(|c| ConditionReport {
            type_: c.type_.to_string(),
            status: c.status.to_string(),
            reason: c.reason.to_string(),
            since: c.last_transition.map(rfc3339),
        })
        .collect();
    let mut status_writes: Vec<WriteReport> = f
        .status_writes
        .iter()
        .map(|(m, t)| WriteReport { manager: m.to_string(), at: rfc3339(*t), age_seconds: age(now, *t) })
        .collect();
    status_writes.sort_by(|a, b| a.age_seconds.total_cmp(&b.age_seconds));

    let images = slots(view, o);
    let mut rollouts: Vec<RolloutReport> = o
        .links
        .workloads
        .iter()
        .map(|w| rollout(view, w.namespace, w.name, w.facts, w.last_progress, now))
        .collect();
    if let Some(KindFacts::Workload(w)) = &o.tracked.kind {
        rollouts.insert(0, rollout(view, o.namespace, o.name, w, o.tracked.last_progress, now));
    }

    // The operator: its pods (readiness, restarts) and the Deployment that pins images.
    let deployment = o.target.images.iter().find_map(|r| r.overridden_by.as_ref());
    let operator = match (o.target.controller.pods.as_ref(), deployment) {
        (None, None) => None,
        (pods_ref, dep) => {
            let namespace = pods_ref
                .map(|p| p.namespace.clone())
                .or_else(|| dep.and_then(|d| d.namespace.clone()))
                .unwrap_or_else(|| o.namespace.to_string());
            let mut pods = Vec::new();
            if let Some(p) = pods_ref
                && let Some(state) = view.index.state(&store::pods_key(p))
            {
                for ((_, name), t) in &state.objects {
                    if let Some(KindFacts::Pod(f)) = &t.kind
                        && !f.deleting
                    {
                        pods.push(OperatorPod {
                            name: name.to_string(),
                            node: f.node.as_deref().map(String::from),
                            ready: f.ready,
                            restarts: f.restarts,
                        });
                    }
                }
            }
            Some(OperatorReport {
                namespace,
                deployment: dep.map(|d| d.deployment.clone()),
                selector: pods_ref.map(|p| p.selector.clone()),
                pods,
            })
        }
    };
    let lease = o.target.controller.lease.as_ref().map(|l| {
        let facts = view.index.state(&store::lease_key(l)).and_then(|s| {
            s.objects.values().find_map(|t| match &t.kind {
                Some(KindFacts::Lease(f)) => Some(f),
                _ => None,
            })
        });
        let lease_age = facts.and_then(|f| f.renew).map(|r| age(now, r));
        LeaseReport {
            namespace: l.namespace.clone(),
            name: l.name.clone(),
            found: facts.is_some(),
            holder: facts.and_then(|f| f.holder.as_deref().map(String::from)),
            renewed_at: facts.and_then(|f| f.renew).map(rfc3339),
            age_seconds: lease_age,
            transitions: facts.and_then(|f| f.transitions),
            stale: lease_age.is_none_or(|a| a > LEASE_STALE),
        }
    });

    // Warning events of the object, its workloads, their pods and the operator's pods.
    let mut involved: BTreeSet<(String, String)> = BTreeSet::new();
    involved.insert((o.target.resource.kind.clone(), o.name.to_string()));
    let mut workloads: Vec<(Kind, &str)> = o.links.workloads.iter().map(|w| (w.facts.kind, w.name)).collect();
    if let Some(KindFacts::Workload(w)) = &o.tracked.kind {
        workloads.push((w.kind, o.name));
    }
    for (kind, name) in workloads {
        involved.insert((kind.name().to_string(), name.to_string()));
        for (p, _) in pods_of(view, o.namespace, kind, name) {
            involved.insert(("Pod".into(), p.to_string()));
        }
    }
    for p in operator.iter().flat_map(|op| &op.pods) {
        involved.insert(("Pod".into(), p.name.clone()));
    }
    let mut events: Vec<&EventRow> = ctx
        .events
        .get(o.namespace)
        .into_iter()
        .flatten()
        .filter(|e| involved.contains(&(e.kind.clone(), e.name.clone())))
        .collect();
    events.sort_by(|a, b| b.last_seen.unwrap_or(0.0).total_cmp(&a.last_seen.unwrap_or(0.0)));
    let mut warning_totals: Vec<(String, u64)> = Vec::new();
    for e in &events {
        match warning_totals.iter_mut().find(|(r, _)| *r == e.reason) {
            Some((_, n)) => *n += e.count,
            None => warning_totals.push((e.reason.clone(), e.count)),
        }
    }
    let events: Vec<EventReport> = events
        .into_iter()
        .take(EVENTS_SHOWN)
        .map(|e| EventReport {
            object: format!("{}/{}", e.kind, e.name),
            reason: e.reason.clone(),
            message: e.message.clone(),
            count: e.count,
            last_seen: e.last_seen.map(rfc3339),
            age_seconds: e.last_seen.map(|t| age(now, t)),
        })
        .collect();
    let apiservice = (!o.target.resource.group.is_empty())
        .then(|| {
            ctx.apiservices
                .get(&format!("{}.{}", o.target.resource.version, o.target.resource.group))
                .cloned()
        })
        .flatten();

    let mut report = ObjectReport {
        target: o.target.name.clone(),
        kind: o.target.resource.kind.clone(),
        namespace: o.namespace.into(),
        name: o.name.into(),
        verdict: VerdictReport {
            status: v.status.label(),
            reason: v.reason.map(|r| r.label()),
            unconverged_since: v.unconverged_since.map(rfc3339),
            unconverged_seconds: v.unconverged_since.map(|s| age(now, s)),
            stalled_since: v.stalled_since.map(rfc3339),
            stalled_after_seconds: o.target.stalled_after.as_secs_f64(),
        },
        generation,
        phase,
        conditions,
        status_writes,
        images,
        rollouts,
        operator,
        lease,
        events,
        apiservice,
        causes: Vec::new(),
    };
    let summary = summarize(&report, o, nodes, warning_totals);
    report.causes = rank(&summary);
    report
}

/// The ranking's input, from the report (plain data) and the target's rules.
fn summarize(
    r: &ObjectReport,
    o: &ObjView,
    nodes: Option<&NodeReport>,
    warnings: Vec<(String, u64)>,
) -> Summary {
    let complete = |kind: &str, ns: &str, name: &str| {
        r.rollouts.iter().any(|w| w.kind == kind && w.namespace == ns && w.name == name && w.complete)
    };
    let mut mismatches = Vec::new();
    let mut pins = Vec::new();
    for s in &r.images {
        for w in s.workloads.iter().filter(|w| w.mismatch) {
            mismatches.push(Mismatch {
                slot: s.slot.clone(),
                workload_kind: w.kind.into(),
                workload_namespace: w.namespace.clone(),
                workload: w.name.clone(),
                container: w.container.clone(),
                init: w.init,
                desired: s.desired.clone(),
                actual: w.template_image.clone(),
                rollout_complete: complete(w.kind, &w.namespace, &w.name),
            });
        }
        if let Some(src) = &s.override_source {
            pins.push(Pin {
                slot: s.slot.clone(),
                source: src.clone(),
                pinned: s.desired.clone(),
                stated: s.stated.clone(),
            });
        }
    }
    let rollouts = r
        .rollouts
        .iter()
        .filter(|w| !w.complete || !w.outdated_pods.is_empty())
        .map(|w| RolloutState {
            kind: w.kind.into(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            strategy: w.strategy.into(),
            desired: w.desired,
            updated: w.updated,
            available: w.available,
            complete: w.complete,
            failed: w.deadline_exceeded,
            outdated_pods: w.outdated_pods.clone(),
            stalled_seconds: w.last_progress_seconds,
        })
        .collect();
    let operator = r.operator.as_ref().map(|op| OperatorState {
        namespace: op.namespace.clone(),
        deployment: op.deployment.clone(),
        selector: op.selector.clone(),
        pods: op.pods.len(),
        ready: op.pods.iter().filter(|p| p.ready).count(),
        restarts: op.pods.iter().map(|p| p.restarts).sum(),
    });
    let ready_types = &o.target.conditions.ready;
    Summary {
        converged: r.verdict.status == Status::Current.label(),
        kubearmor: is_kubearmor(o.target),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        phase: r.phase.as_ref().and_then(|p| p.phase.clone()),
        phase_ready: r.phase.as_ref().and_then(|p| p.ready),
        generation_lag: match (r.generation.generation, r.generation.observed_generation) {
            (Some(g), Some(ob)) if ob < g => Some((g, ob)),
            _ => None,
        },
        mismatches,
        pins,
        rollouts,
        operator,
        lease: r.lease.as_ref().map(|l| (format!("{}/{}", l.namespace, l.name), l.age_seconds)),
        last_status_write_age: r.status_writes.first().map(|w| w.age_seconds),
        unconverged_seconds: r.verdict.unconverged_seconds.unwrap_or(0.0),
        stalled_after: r.verdict.stalled_after_seconds,
        conditions_not_ready: r
            .conditions
            .iter()
            .filter(|c| {
                (ready_types.contains(&c.type_) && c.status != "True")
                    || (c.type_ == "Stalled" && c.status == "True")
            })
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect(),
        warnings,
        apiservice: r.apiservice.as_ref().map(|a| (a.name.clone(), a.available, a.message.clone())),
        nodes_without_snitch: nodes.and_then(|n| n.without_kubearmor_labels.clone()).unwrap_or_default(),
        nodes_not_ready: nodes.map(|n| n.not_ready.clone()).unwrap_or_default(),
        nodes_new: nodes.map(|n| n.created_last_hour.clone()).unwrap_or_default(),
        nodes_total: nodes.map_or(0, |n| n.total),
    }
}

// ================================================================== text output

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn status(&self, s: &str) -> String {
        match s {
            "Current" => self.green(s),
            "InProgress" | "Terminating" => self.yellow(s),
            _ => self.red(s),
        }
    }
}

/// Word-wraps `text` at 100 columns; the first line starts with `first`, the others with `rest`.
fn wrap(text: &str, first: &str, rest: &str) -> String {
    const WIDTH: usize = 100;
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

fn where_(ns: &str, name: &str) -> String {
    if ns.is_empty() { name.to_string() } else { format!("{ns}/{name}") }
}

/// The human report. `color` adds ANSI colours (only when stdout is a terminal).
pub fn text(r: &Report, color: bool) -> String {
    let p = Paint(color);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {}: {} of {} tracked objects not converged",
        p.bold("stallwatch diagnose"),
        r.generated_at,
        r.objects_not_converged,
        r.objects_total
    );
    for e in &r.errors {
        // Forbidden and not-found messages already name the resource and namespace.
        if e.message.starts_with(&format!("{}:", e.cause)) {
            let _ = writeln!(o, "{} {}", p.red("could not check:"), e.message);
        } else {
            let scope = if e.namespace.is_empty() { String::new() } else { format!(" in {}", e.namespace) };
            let _ = writeln!(o, "{} {}{scope}: {}", p.red("could not check:"), e.resource, e.message);
        }
    }
    if r.errors.iter().any(|e| e.cause == "forbidden" || e.cause == "not_found") {
        let _ = writeln!(
            o,
            "  -> grant get/list/watch on it, or install its CRD: {}",
            runbook("stallwatchtargetnotsynced")
        );
    }
    for n in &r.notes {
        let _ = writeln!(o, "{} {n}", p.dim("note:"));
    }
    let mut compact = Vec::new();
    for obj in &r.objects {
        if obj.verdict.status == "Current" && obj.images.is_empty() {
            compact.push(format!("{} {}", obj.kind, where_(&obj.namespace, &obj.name)));
            continue;
        }
        o.push('\n');
        object_text(&mut o, &p, obj);
    }
    if !compact.is_empty() {
        let _ = writeln!(o, "\n{} {}", p.bold("Also tracked, Current:"), compact.join(", "));
    }
    if let Some(n) = &r.nodes {
        let mut line =
            format!("{} {} ({} Linux), {} NotReady", p.bold("Nodes:"), n.total, n.linux, n.not_ready.len());
        if !n.not_ready.is_empty() {
            let _ = write!(line, " ({})", list(&n.not_ready, 5));
        }
        let _ = write!(line, ", {} created in the last hour", n.created_last_hour.len());
        if let Some(missing) = &n.without_kubearmor_labels {
            if missing.is_empty() {
                line.push_str("; every Linux node has KubeArmor snitch labels");
            } else {
                let _ = write!(
                    line,
                    "; {} Linux nodes without KubeArmor snitch labels ({})",
                    missing.len(),
                    list(missing, 5)
                );
            }
        }
        let _ = writeln!(o, "\n{line}");
    }
    let verdict = match r.result {
        "converged" => p.green("CONVERGED"),
        "stuck" => p.red("STUCK"),
        _ => p.red("COULD NOT CHECK"),
    };
    let why = match r.result {
        "converged" => "every tracked object is Current".to_string(),
        "stuck" => format!(
            "{} object{} not converged",
            r.objects_not_converged,
            if r.objects_not_converged == 1 { "" } else { "s" }
        ),
        _ => format!("{} list(s) failed", r.errors.len()),
    };
    let _ = writeln!(o, "\n{} {verdict} (exit {}): {why}", p.bold("Result:"), r.exit_code);
    o
}

fn object_text(o: &mut String, p: &Paint, obj: &ObjectReport) {
    let v = &obj.verdict;
    let _ = writeln!(
        o,
        "{}  {}",
        p.bold(&format!("{} {}", obj.kind, where_(&obj.namespace, &obj.name))),
        p.dim(&format!("[target {}]", obj.target))
    );
    let mut verdict = p.status(v.status);
    if let Some(reason) = v.reason {
        let _ = write!(verdict, " ({reason})");
    }
    if let (Some(s), Some(since)) = (v.unconverged_seconds, &v.unconverged_since) {
        let _ = write!(verdict, ", not converged for {} (since {since})", dur(s));
    }
    let _ = writeln!(o, "  verdict      {verdict}");
    let g = &obj.generation;
    let observed = match g.observed {
        Some(true) => "observed",
        Some(false) => "NOT observed",
        None => "observation unknown",
    };
    let how = match g.source {
        "reported" => format!("observedGeneration {}", g.observed_generation.unwrap_or_default()),
        "derived" => "derived from the linked workloads: the kind reports no observedGeneration".into(),
        _ => "the kind reports no observedGeneration and has no linked workloads".into(),
    };
    let _ = writeln!(
        o,
        "  generation   {}, {observed} ({how}); first seen {} (from {})",
        g.generation.map_or("-".into(), |g| g.to_string()),
        g.first_seen,
        g.first_seen_source
    );
    if let Some(ph) = &obj.phase {
        let name = ph.phase.as_deref().unwrap_or("(none)");
        let name = match ph.ready {
            Some(false) => p.yellow(name),
            _ => name.to_string(),
        };
        let source = match ph.since_source {
            "managedFields" => {
                "since the last status write, from managedFields: a one-shot run has no history"
            }
            "creationTimestamp" => "since the object's creation",
            _ => "no record of when it began",
        };
        let _ = writeln!(
            o,
            "  phase        {name} for {} ({source}); ready phases: {}",
            dur(ph.seconds),
            if ph.ready_phases.is_empty() { "-".into() } else { ph.ready_phases.join(", ") }
        );
    }
    for c in &obj.conditions {
        let _ = writeln!(
            o,
            "  condition    {}={} {}{}",
            c.type_,
            c.status,
            c.reason,
            c.since.as_deref().map(|s| format!(" since {s}")).unwrap_or_default()
        );
    }
    if obj.status_writes.is_empty() {
        let _ = writeln!(o, "  status write none recorded in managedFields");
    }
    for w in &obj.status_writes {
        let _ = writeln!(o, "  status write {} {} ago ({})", w.manager, dur(w.age_seconds), w.at);
    }
    if !obj.images.is_empty() {
        let _ = writeln!(o, "  images");
    }
    for s in &obj.images {
        let from = match s.desired_source {
            "operator-pin" => format!(
                "operator pin {}; the object's {} = {}",
                s.override_source.as_deref().unwrap_or_default(),
                s.field,
                s.stated.as_deref().unwrap_or("(empty)")
            ),
            "object" => format!("from {}", s.field),
            _ => format!("default: {} is empty", s.field),
        };
        let _ = writeln!(o, "    {:<11} desired {} ({from})", s.slot, s.desired);
        if s.missing {
            let _ = writeln!(o, "      no workload found ({})", s.looked_for);
        }
        for w in &s.workloads {
            let state = if w.mismatch { p.red("MISMATCH") } else { p.green("matches") };
            let _ = writeln!(
                o,
                "      {} {} {} {}: template {}  {state}",
                w.kind,
                where_(&w.namespace, &w.name),
                if w.init { "init container" } else { "container" },
                w.container,
                w.template_image
            );
            let on_template = w.pods.iter().filter(|p| p.on_template).count();
            let desired = w.pods.iter().filter(|p| p.runs_desired).count();
            let _ = writeln!(
                o,
                "        pods {}: {on_template} on the current template, {desired} running the desired image",
                w.pods.len()
            );
            let stale: Vec<&PodImage> = w.pods.iter().filter(|p| !p.runs_desired).collect();
            if !stale.is_empty() {
                let _ = writeln!(o, "        not running the desired image:");
            }
            for pod in stale.iter().take(6) {
                let _ = writeln!(
                    o,
                    "          {} on {} runs {}{}",
                    pod.name,
                    pod.node.as_deref().unwrap_or("no node"),
                    pod.image,
                    if pod.on_template { "" } else { " (outdated template)" }
                );
            }
            if stale.len() > 6 {
                let _ = writeln!(o, "          and {} more", stale.len() - 6);
            }
        }
    }
    if !obj.rollouts.is_empty() {
        let _ = writeln!(o, "  rollouts");
    }
    for w in &obj.rollouts {
        let state = if w.complete {
            p.green("complete")
        } else if w.deadline_exceeded {
            p.red("FAILED (ProgressDeadlineExceeded)")
        } else {
            p.yellow("in progress")
        };
        let _ = writeln!(
            o,
            "    {} {}  {}{}  desired {}, updated {}, available {}, ready {}: {state}; last progress {} ago; pods {}{}",
            w.kind,
            where_(&w.namespace, &w.name),
            w.strategy,
            if w.partition > 0 { format!(" partition {}", w.partition) } else { String::new() },
            w.desired,
            w.updated,
            w.available,
            w.ready,
            dur(w.last_progress_seconds),
            w.pods,
            if w.outdated_pods.is_empty() {
                String::new()
            } else {
                format!(", outdated: {}", list(&w.outdated_pods, 5))
            }
        );
    }
    if let Some(op) = &obj.operator {
        let what = match (&op.deployment, &op.selector) {
            (Some(d), Some(s)) => format!("Deployment {d}, pods {s}"),
            (Some(d), None) => format!("Deployment {d}"),
            (None, Some(s)) => format!("pods {s}"),
            (None, None) => String::new(),
        };
        if op.pods.is_empty() {
            let none =
                if op.selector.is_some() { p.red("no pod found") } else { "pods not configured".into() };
            let _ = writeln!(o, "  operator     {none} ({what} in {})", op.namespace);
        }
        for pod in &op.pods {
            let ready = if pod.ready { p.green("Ready") } else { p.red("not Ready") };
            let _ = writeln!(
                o,
                "  operator     {}/{} on {}: {ready}, {} restarts ({what})",
                op.namespace,
                pod.name,
                pod.node.as_deref().unwrap_or("no node"),
                pod.restarts
            );
        }
    }
    match &obj.lease {
        Some(l) if !l.found => {
            let _ = writeln!(o, "  lease        {}/{}: {}", l.namespace, l.name, p.red("not found"));
        }
        Some(l) => {
            let age = l.age_seconds.map_or("never".into(), |a| format!("{} ago", dur(a)));
            let fresh = if l.stale { p.red("STALE") } else { p.green("fresh") };
            let _ = writeln!(
                o,
                "  lease        {}/{} held by {}, renewed {age}: {fresh}; {} transitions",
                l.namespace,
                l.name,
                l.holder.as_deref().unwrap_or("nobody"),
                l.transitions.unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(o, "  lease        not configured");
        }
    }
    if obj.events.is_empty() {
        let _ = writeln!(
            o,
            "  events       no Warning events for the object, its workloads, their pods or the operator"
        );
    } else {
        let _ = writeln!(o, "  events       newest Warning events first");
    }
    for e in &obj.events {
        let _ = writeln!(
            o,
            "    {} ago  {}  {} ×{}: {}",
            e.age_seconds.map_or("?".into(), dur),
            e.object,
            e.reason,
            e.count,
            e.message
        );
    }
    if let Some(a) = &obj.apiservice {
        let state = match a.available {
            Some(true) => p.green("Available"),
            Some(false) => p.red("NOT Available"),
            None => p.yellow("unknown"),
        };
        let detail = if a.available == Some(true) { String::new() } else { format!(" ({})", a.message) };
        let _ = writeln!(o, "  apiservice   {}: {state}{detail}", a.name);
    }
    if obj.causes.is_empty() {
        return;
    }
    let _ = writeln!(o, "  {}", p.bold("likely causes, most likely first"));
    for c in &obj.causes {
        let _ = writeln!(o, "    {}. {}  {}", c.rank, p.bold(&c.title), p.dim(&format!("[{}]", c.id)));
        o.push_str(&wrap(&c.detail, "       ", "       "));
        for r in &c.remedies {
            o.push_str(&wrap(&r.step, "       -> ", "          "));
            for cmd in &r.commands {
                let _ = writeln!(o, "          $ {cmd}");
            }
        }
        let _ = writeln!(o, "       runbook: {}", c.runbook);
    }
}

// ================================================================== tests

#[cfg(test)]
mod tests {
    use super::*;

    /// The stuck KubeArmor update of PRODUCT §1, as the summary sees it.
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
        assert_eq!(
            c.remedies[0].commands[0],
            "kubectl -n kubearmor rollout restart deployment/kubearmor-operator"
        );
        assert!(
            c.remedies[2].commands[0].contains(
                "set image daemonset/kubearmor-bpf-containerd-98c2c kubearmor=kubearmor/kubearmor:v2"
            )
        );
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
                "node-churn",
                "Nodes came and went",
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

    #[test]
    fn preset_configs() {
        let c = preset_config(DiagnosePreset::Kubearmor, Some("security")).unwrap();
        assert!(c.targets.iter().all(|t| t.namespaces == ["security"]));
        assert!(c.context.nodes);
        let c = preset_config(DiagnosePreset::Workloads, None).unwrap();
        assert!(c.targets.iter().all(|t| t.namespaces.is_empty()));
        let c = preset_config(DiagnosePreset::Workloads, Some("a")).unwrap();
        assert!(c.targets.iter().all(|t| t.namespaces == ["a"]));
        let e = preset_config(DiagnosePreset::Kubearmor, Some("Bad NS}")).unwrap_err();
        assert!(e.contains("not a valid namespace"), "{e}");
    }

    #[test]
    fn wrap_keeps_words_and_indents() {
        let w = wrap(&"word ".repeat(40), "  1. ", "     ");
        assert!(w.lines().all(|l| l.chars().count() <= 100), "{w}");
        assert!(w.starts_with("  1. word") && w.lines().skip(1).all(|l| l.starts_with("     word")), "{w}");
        assert_eq!(w.split_whitespace().filter(|x| *x == "word").count(), 40);
    }

    #[test]
    fn text_without_colour_has_no_escapes() {
        let r = Report::failed("config", "config", "nothing to check".into());
        let t = text(&r, false);
        assert!(!t.contains('\x1b'), "{t}");
        assert!(t.contains("COULD NOT CHECK (exit 2)"), "{t}");
        assert!(text(&r, true).contains('\x1b'));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["version"], 1);
        assert_eq!(j["result"], "error");
    }
}
