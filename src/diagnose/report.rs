//! The report of `stallwatch diagnose`: the JSON schema (`version` [`JSON_VERSION`]), documented
//! in docs/diagnose.md. The text output renders the same structs.

use serde::Serialize;

/// The `version` of the JSON output; bumped on any incompatible change.
pub const JSON_VERSION: u32 = 1;

pub(super) const RUNBOOKS: &str = "https://github.com/stallwatch/stallwatch/blob/main/docs/runbooks.md";

/// The whole report (`-o json`, version [`JSON_VERSION`]).
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

/// One tracked object: its state, the evidence and the ranked causes.
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

/// The verdict, as `/metrics` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictReport {
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub unconverged_since: Option<String>,
    pub unconverged_seconds: Option<f64>,
    pub stalled_since: Option<String>,
    pub stalled_after_seconds: f64,
}

/// Generation and observed generation, and since when the generation is unobserved.
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

/// The phase and since when it holds.
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

/// One condition of the object.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionReport {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub since: Option<String>,
}

/// The last status write of one field manager.
#[derive(Debug, Clone, Serialize)]
pub struct WriteReport {
    pub manager: String,
    pub at: String,
    pub age_seconds: f64,
}

/// One image slot: desired image, pin, and what each workload and pod runs.
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

/// One workload of a slot: its template image and its pods' images.
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

/// What one pod runs for a slot's container.
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

/// One linked workload's rollout progress.
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

/// The operator's pods.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorReport {
    pub namespace: String,
    /// The Deployment to restart, when the config names it (operator image pins).
    pub deployment: Option<String>,
    pub selector: Option<String>,
    pub pods: Vec<OperatorPod>,
}

/// One operator pod's readiness and restarts.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorPod {
    pub name: String,
    pub node: Option<String>,
    /// The pod's Ready condition (its readiness probe).
    pub ready: bool,
    pub restarts: u32,
}

/// The leader Lease: holder and last renewal.
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

/// One Warning event of the object, its workloads, their pods or the operator.
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

/// Availability of the APIService that serves the object's group.
#[derive(Debug, Clone, Serialize)]
pub struct ApiServiceReport {
    pub name: String,
    /// `null` when the APIService could not be read (see `message`).
    pub available: Option<bool>,
    pub message: String,
}

/// Node churn and, for KubeArmor, nodes its snitch has not labelled.
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

/// One remedy step with the commands that carry it out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remedy {
    pub step: String,
    /// Commands to run, in order (may be empty).
    pub commands: Vec<String>,
}

/// The link to section `anchor` of docs/runbooks.md.
pub(super) fn runbook(anchor: &str) -> String {
    format!("{RUNBOOKS}#{anchor}")
}
