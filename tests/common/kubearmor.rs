//! The KubeArmor story's fixtures and test operator, shared by the suites that tell it
//! (the KubeArmor story): the KubeArmorConfig CRD, a KubeArmorConfig, its `kubearmor-app=kubearmor`
//! DaemonSet, the operator's Deployment (so that its pod, readiness and restarts are real), and
//! a small in-process operator that plays KubeArmor's role.
//!
//! The test operator reads the KubeArmorConfig, updates the DaemonSet when it "works" and writes
//! `status.phase` through the status subresource as field manager `kubearmor-operator`. In
//! `Stuck` mode it marks the config `Pending` and never touches the DaemonSet (KubeArmor #1842).
//! Started with [`Operator::start_with_lease`] it also renews a leader Lease every second (also
//! while stuck), and [`Operator::restart`] plays a new operator process winning the Lease.

use std::{
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use kube::{
    Api,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::{Metrics, apply_crd, kubectl, note, repo};

pub const CR: &str = "kubearmorconfig-default";
pub const DS: &str = "kubearmor-bpf-containerd-98c2c";
pub const MANAGER: &str = "kubearmor-operator";
pub const OPERATOR: &str = "kubearmor-operator";
pub const CRD_NAME: &str = "kubearmorconfigs.operator.kubearmor.com";
/// The operator's leader Lease (renewed by [`Operator::start_with_lease`]).
pub const LEASE: &str = "kubearmor-operator-lock";

/// The stallwatch series the KubeArmor story reads.
pub const RELEVANT: &[&str] = &[
    "stallwatch_status",
    "stallwatch_phase",
    "stallwatch_generation",
    "stallwatch_image",
    "stallwatch_rollout",
    "stallwatch_workload",
    "stallwatch_stalled",
    "stallwatch_synced",
    "stallwatch_watch_errors",
];

/// The real KubeArmorConfig CRD when ../shared is checked out (as in CI), else our own minimal one.
pub fn ensure_crd() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let real = repo().join("../shared/fixtures/kubearmor/operator.kubearmor.com_kubearmorconfigs.yaml");
        let path = if real.exists() { real } else { repo().join("tests/fixtures/kubearmorconfig-crd.yaml") };
        note(format!("applying the KubeArmorConfig CRD from {}", path.display()));
        apply_crd(&std::fs::read_to_string(&path).expect("reading the CRD"), CRD_NAME);
    });
}

pub fn lease_resource() -> ApiResource {
    ApiResource {
        group: "coordination.k8s.io".into(),
        version: "v1".into(),
        api_version: "coordination.k8s.io/v1".into(),
        kind: "Lease".into(),
        plural: "leases".into(),
    }
}

/// RFC 3339 with microseconds (a Lease's `MicroTime`).
pub fn micro_time() -> String {
    let now = jiff::Timestamp::now();
    format!("{}.{:06}Z", now.strftime("%Y-%m-%dT%H:%M:%S"), now.subsec_microsecond())
}

pub fn kac() -> ApiResource {
    ApiResource {
        group: "operator.kubearmor.com".into(),
        version: "v1".into(),
        api_version: "operator.kubearmor.com/v1".into(),
        kind: "KubeArmorConfig".into(),
        plural: "kubearmorconfigs".into(),
    }
}

pub fn config_yaml(ns: &str, image: &str, init: &str) -> String {
    format!(
        r#"apiVersion: operator.kubearmor.com/v1
kind: KubeArmorConfig
metadata: {{name: {CR}, namespace: {ns}}}
spec:
  defaultFilePosture: audit
  kubearmorImage: {{image: "{image}", imagePullPolicy: Always}}
  kubearmorInitImage: {{image: "{init}", imagePullPolicy: Always}}
"#
    )
}

pub fn daemonset_yaml(ns: &str) -> String {
    daemonset_yaml_min_ready(ns, 0)
}

/// [`daemonset_yaml`] with `spec.minReadySeconds` (left out when 0, the default).
pub fn daemonset_yaml_min_ready(ns: &str, min_ready_seconds: u32) -> String {
    let min_ready = if min_ready_seconds > 0 {
        format!("  minReadySeconds: {min_ready_seconds}\n")
    } else {
        String::new()
    };
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {DS}
  namespace: {ns}
  labels: {{kubearmor-app: kubearmor}}
spec:
  selector: {{matchLabels: {{kubearmor-app: kubearmor}}}}
{min_ready}  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 1}}}}
  template:
    metadata:
      labels: {{kubearmor-app: kubearmor}}
    spec:
      tolerations: [{{operator: Exists}}]
      initContainers:
        - {{name: init, image: "docker.io/kubearmor/kubearmor-init:v1"}}
      containers:
        - {{name: kubearmor, image: "docker.io/kubearmor/kubearmor:v1"}}
"#
    )
}

/// The operator's Deployment as KubeArmor ships it (label `kubearmor-app=kubearmor-operator`);
/// kwok runs its pod, so readiness, restarts and `kubectl rollout restart` are real. The
/// reconciling itself is done by [`Operator`].
pub fn operator_deployment_yaml(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {OPERATOR}
  namespace: {ns}
  labels: {{kubearmor-app: kubearmor-operator}}
spec:
  replicas: 1
  selector: {{matchLabels: {{kubearmor-app: kubearmor-operator}}}}
  template:
    metadata:
      labels: {{kubearmor-app: kubearmor-operator}}
    spec:
      tolerations: [{{operator: Exists}}]
      containers:
        - {{name: kubearmor-operator, image: "docker.io/kubearmor/kubearmor-operator:v1"}}
"#
    )
}

/// The reference the test operator writes into the DaemonSet for a CR image.
pub fn qualified(image: &str) -> String {
    if image.split('/').next().is_some_and(|first| first.contains('.') || first.contains(':')) {
        image.to_string()
    } else {
        format!("docker.io/{image}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rolls the CR's images into the DaemonSet; Running once rolled out, else Pending.
    Working,
    /// The bug: Pending while the DaemonSet differs from the CR, and never updates it.
    Stuck,
    /// The old operator process after a pin change it cannot see (the pin is in its new pod's
    /// env): its goal has not changed, so it changes nothing, phase included.
    Unaware,
    /// The node-counter bug: the DaemonSet is right and rolled out, yet the operator's node
    /// counter exceeds the pods, so it writes `Pending` and keeps it (nothing else is wrong).
    CounterMismatch,
}

#[derive(Debug, Clone)]
struct OpState {
    mode: Mode,
    holder: String,
    transitions: i64,
}

/// Reconciles every 300 ms and writes status only when phase or message change (as KubeArmor
/// does); honours a `RELATED_IMAGE_KUBEARMOR` pin on its Deployment; does not recreate a
/// deleted DaemonSet (it logs and retries). With a Lease, also renews it every second (also while stuck: the
/// process is alive and leading, it just does not do its job).
pub struct Operator {
    state: Arc<Mutex<OpState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Operator {
    pub fn start(client: kube::Client, ns: &str) -> Operator {
        Operator::spawn(client, ns, None)
    }

    /// [`Operator::start`], renewing the leader Lease `lease` (which must exist) every second as
    /// holder `kubearmor-operator-<transitions>`.
    pub fn start_with_lease(client: kube::Client, ns: &str, lease: &str) -> Operator {
        Operator::spawn(client, ns, Some(lease.to_string()))
    }

    fn spawn(client: kube::Client, ns: &str, lease: Option<String>) -> Operator {
        let state = Arc::new(Mutex::new(OpState {
            mode: Mode::Working,
            holder: format!("{OPERATOR}-0"),
            transitions: 0,
        }));
        let crs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kac());
        let dss: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
        let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let leases: Api<DynamicObject> = Api::namespaced_with(client, ns, &lease_resource());
        let st = state.clone();
        let task = tokio::spawn(async move {
            let mut last_err = String::new();
            let mut last_renew = Instant::now() - Duration::from_secs(10);
            loop {
                let s = st.lock().unwrap().clone();
                let mut r = reconcile(&crs, &dss, &deploys, s.mode).await;
                if let Some(lease) = &lease
                    && r.is_ok()
                    && last_renew.elapsed() >= Duration::from_secs(1)
                {
                    r = renew(&leases, lease, &s).await;
                    last_renew = Instant::now();
                }
                if let Err(e) = r {
                    let e = e.to_string();
                    if e != last_err {
                        note(format!("test operator: {e} (retrying)"));
                        last_err = e;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Operator { state, task }
    }

    pub fn set(&self, mode: Mode) {
        note(format!("test operator: {mode:?}"));
        self.state.lock().unwrap().mode = mode;
    }

    /// A new operator process: it wins the Lease under a new identity and works again.
    pub fn restart(&self) {
        let mut s = self.state.lock().unwrap();
        s.transitions += 1;
        s.holder = format!("{OPERATOR}-{}", s.transitions);
        s.mode = Mode::Working;
        note(format!("test operator: restarted as {} (Working)", s.holder));
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn renew(leases: &Api<DynamicObject>, lease: &str, s: &OpState) -> Result<(), kube::Error> {
    let pp = PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() };
    let spec = json!({"spec": {
        "holderIdentity": s.holder,
        "renewTime": micro_time(),
        "leaseTransitions": s.transitions,
    }});
    leases.patch(lease, &pp, &Patch::Merge(spec)).await?;
    Ok(())
}

pub fn rolled_out(ds: &DaemonSet) -> bool {
    let Some(s) = &ds.status else { return false };
    s.observed_generation.unwrap_or(0) >= ds.metadata.generation.unwrap_or(0)
        && s.desired_number_scheduled > 0
        && s.updated_number_scheduled.unwrap_or(0) == s.desired_number_scheduled
        && s.number_available.unwrap_or(0) == s.desired_number_scheduled
        && s.number_unavailable.unwrap_or(0) == 0
}

pub fn image_of(ds: &DaemonSet, init: bool, name: &str) -> String {
    let spec = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref());
    let list = spec.and_then(|s| if init { s.init_containers.as_ref() } else { Some(&s.containers) });
    list.and_then(|l| l.iter().find(|c| c.name == name)).and_then(|c| c.image.clone()).unwrap_or_default()
}

/// The operator's `RELATED_IMAGE_KUBEARMOR` pin, when its Deployment exists and sets one.
async fn pin(deploys: &Api<Deployment>) -> Option<String> {
    let d = deploys.get_opt(OPERATOR).await.ok().flatten()?;
    let spec = d.spec?.template.spec?;
    spec.containers
        .iter()
        .flat_map(|c| c.env.iter().flatten())
        .find(|e| e.name == PIN_ENV)
        .and_then(|e| e.value.clone())
}

/// The env var on the operator's Deployment that pins the agent image (wins over the CR).
pub const PIN_ENV: &str = "RELATED_IMAGE_KUBEARMOR";

async fn reconcile(
    crs: &Api<DynamicObject>,
    dss: &Api<DaemonSet>,
    deploys: &Api<Deployment>,
    mode: Mode,
) -> Result<(), kube::Error> {
    if mode == Mode::Unaware {
        return Ok(());
    }
    let cr = crs.get(CR).await?;
    let want_main = match pin(deploys).await {
        Some(p) => p,
        None => qualified(
            cr.data["spec"]["kubearmorImage"]["image"].as_str().unwrap_or("kubearmor/kubearmor:stable"),
        ),
    };
    let want_init = qualified(
        cr.data["spec"]["kubearmorInitImage"]["image"].as_str().unwrap_or("kubearmor/kubearmor-init:stable"),
    );
    let mut ds = dss.get(DS).await?;
    let differs = image_of(&ds, false, "kubearmor") != want_main || image_of(&ds, true, "init") != want_init;
    let phase = match (mode, differs) {
        (Mode::Working, true) => {
            let spec = ds.spec.as_mut().and_then(|s| s.template.spec.as_mut()).expect("pod spec");
            for c in spec.containers.iter_mut().filter(|c| c.name == "kubearmor") {
                c.image = Some(want_main.clone());
            }
            for c in spec.init_containers.iter_mut().flatten().filter(|c| c.name == "init") {
                c.image = Some(want_init.clone());
            }
            // A conflict is retried on the next pass (unlike the real operator).
            dss.replace(DS, &PostParams { field_manager: Some(MANAGER.into()), ..Default::default() }, &ds)
                .await?;
            "Pending"
        }
        (_, true) => "Pending",
        (Mode::CounterMismatch, false) => "Pending",
        (_, false) if rolled_out(&ds) => "Running",
        (_, false) => "Pending",
    };
    if cr.data["status"]["phase"].as_str() != Some(phase) {
        set_phase(crs, phase).await?;
    }
    Ok(())
}

pub async fn set_phase(crs: &Api<DynamicObject>, phase: &str) -> Result<(), kube::Error> {
    let message = match phase {
        "Running" => "Kubearmor Application is Up and Running",
        "Pending" => "Kubearmor Installation is in-progress",
        "Error" => "Failed to install KubeArmor component(s)",
        _ => "",
    };
    let pp = PatchParams { field_manager: Some(MANAGER.into()), ..Default::default() };
    crs.patch_status(CR, &pp, &Patch::Merge(json!({"status": {"phase": phase, "message": message}}))).await?;
    Ok(())
}

pub async fn set_cr_image(crs: &Api<DynamicObject>, image: &str) {
    note(format!("platform team: spec.kubearmorImage.image = {image}"));
    let pp = PatchParams { field_manager: Some("platform-team".into()), ..Default::default() };
    crs.patch(CR, &pp, &Patch::Merge(json!({"spec": {"kubearmorImage": {"image": image}}})))
        .await
        .expect("patching the KubeArmorConfig");
}

/// One line per pod of the story's DaemonSet (`kubearmor-app=kubearmor`): the jsonpath `fields`
/// of the pod, e.g. `{.spec.nodeName}|{.status.phase}`.
pub fn ds_pod_lines(ns: &str, fields: &str) -> String {
    let jsonpath = format!(r#"jsonpath={{range .items[*]}}{fields}{{"\n"}}{{end}}"#);
    kubectl(&["-n", ns, "get", "pods", "-l", "kubearmor-app=kubearmor", "-o", &jsonpath])
}

pub fn node_count() -> usize {
    kubectl(&["get", "nodes", "-o", "name"]).lines().filter(|l| !l.trim().is_empty()).count()
}

// ------------------------------------------------------------------ label sets

pub fn cr_labels(ns: &str) -> [(&'static str, &str); 3] {
    [("kind", "KubeArmorConfig"), ("namespace", ns), ("name", CR)]
}

pub fn ds_labels(ns: &str) -> [(&'static str, &str); 3] {
    [("kind", "DaemonSet"), ("namespace", ns), ("name", DS)]
}

pub fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(extra).copied().collect()
}

/// One image row: `labels` carry `desired`/`actual`, which live on `stallwatch_image_info`; the
/// label-stable `stallwatch_image_mismatch` of the same row (without them) has value `mismatch`.
pub fn image_row(m: &Metrics, labels: &[(&str, &str)], mismatch: f64) -> bool {
    let stable: Vec<(&str, &str)> =
        labels.iter().copied().filter(|(k, _)| *k != "desired" && *k != "actual").collect();
    m.is("stallwatch_image_info", labels, 1.0) && m.is("stallwatch_image_mismatch", &stable, mismatch)
}

pub fn status_is(m: &Metrics, base: &[(&str, &str)], status: &str) -> bool {
    m.is("stallwatch_status", &with(base, &[("status", status)]), 1.0)
}

/// The status series of an object, for messages.
pub fn status_of(m: &Metrics, base: &[(&str, &str)]) -> String {
    m.find("stallwatch_status", base)
        .iter()
        .map(|s| format!("{}/{}", s.label("status"), s.label("reason")))
        .collect()
}

/// `stallwatch diagnose --preset kubearmor -n NS -o json`: the one KubeArmorConfig's report.
pub fn diagnose_cr(ns: &str) -> serde_json::Value {
    let out = std::process::Command::new(super::stallwatch_bin())
        .args(["diagnose", "--preset", "kubearmor", "-n", ns, "-o", "json", "--kubeconfig"])
        .arg(&super::plane().kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .expect("running stallwatch diagnose");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "diagnose stdout is not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let objs = v["objects"].as_array().cloned().unwrap_or_default();
    objs.into_iter()
        .find(|o| o["kind"] == "KubeArmorConfig")
        .unwrap_or_else(|| panic!("no KubeArmorConfig in {v:#}"))
}
