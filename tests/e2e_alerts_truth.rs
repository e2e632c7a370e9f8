//! End-to-end: the pages that must and must not come, through Debian's Prometheus (evaluating
//! the shipped rules, thresholds shortened with `alerts/generate override`) and Alertmanager,
//! with the test operator playing KubeArmor's operator on the real control plane.
//!
//! 1. A slow fresh install: the KubeArmorConfig exists and its agent DaemonSet appears only
//!    after longer than `StallwatchWorkloadMissing`'s `for`, but within `stalledAfter`. No page.
//! 2. A late pin change: a Helm upgrade sets `RELATED_IMAGE_KUBEARMOR` on the operator
//!    Deployment of a config far older than `stalledAfter`; the operator's own rollout (three
//!    replicas, `minReadySeconds`) moves every few seconds but takes longer than `stalledAfter`
//!    in all, and only its new pods apply the pin. No page (the old clock, the config's age,
//!    paged at once), verdict InProgress meanwhile.
//! 3. The agent DaemonSet deleted and not recreated: `StallwatchWorkloadMissing` pages, and
//!    diagnose's first cause is `workload-missing`.
//!
//! Run: `STALLWATCH_PLANE_BIN=$(tests/cluster/build | tail -1)
//! STALLWATCH_BIN_PATH=$PWD/target/debug/stallwatch cargo test --test e2e_alerts_truth -- --nocapture`

mod alerting;
mod common;

use std::time::{Duration, Instant};

use alerting::{Prom, Stack, StackConfig, Webhook};
use common::{
    Ns, Stallwatch, apply,
    kubearmor::{
        CR, DS, Mode, OPERATOR, Operator, PIN_ENV, RELEVANT, config_yaml, cr_labels, daemonset_yaml,
        diagnose_cr, ensure_crd, image_of, operator_deployment_yaml, status_is, with,
    },
    kubectl, note, plane,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::Api;

const JOB: &str = "stallwatch";
/// The verdict's stalledAfter, and so the gate of StallwatchWorkloadMissing on a fresh generation.
const STALLED_AFTER: u64 = 30;
/// StallwatchWorkloadMissing's shortened `for`: shorter than the slow install of step 1.
const MISSING_FOR: u64 = 10;
/// The slow install: the DaemonSet appears this long after the config.
const INSTALL_DELAY: u64 = 16;
/// The operator Deployment: replicas replaced one at a time, each available after
/// minReadySeconds, so its rollout moves every 12 s and takes longer than stalledAfter in all.
const OPERATOR_REPLICAS: i64 = 3;
const OPERATOR_MIN_READY: u64 = 12;

fn sw_config(ns: &str) -> String {
    format!(
        "resync: 1m\nstalledAfter: {STALLED_AFTER}s\ntargets:\n  - preset: kubearmor\n    namespace: {ns}\n"
    )
}

/// Critical alerts of the namespace that Prometheus holds as firing.
fn firing_pages(prom: &Prom, ns: &str) -> Vec<String> {
    let alerts = prom.alerts().unwrap_or_else(|e| common::fail(&format!("GET /api/v1/alerts: {e}")));
    alerts
        .iter()
        .filter(|a| {
            a["labels"]["namespace"] == ns && a["labels"]["severity"] == "critical" && a["state"] == "firing"
        })
        .map(|a| format!("{} {}", a["labels"]["alertname"].as_str().unwrap_or(""), a["labels"]))
        .collect()
}

/// Polls until `done` holds (at most `timeout`), failing on any page of the namespace meanwhile.
fn quiet_until(
    prom: &Prom,
    hook: &Webhook,
    ns: &str,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) {
    let t0 = Instant::now();
    loop {
        let pages = firing_pages(prom, ns);
        assert!(pages.is_empty(), "{what}: paged: {pages:#?}\nwebhook:\n{}", hook.dump());
        if done() {
            note(format!("ok: {what}, no page ({:.1}s)", t0.elapsed().as_secs_f64()));
            return;
        }
        if t0.elapsed() >= timeout {
            common::fail(&format!("timed out after {timeout:?}: {what}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `(updated, available, replicas, observed ≥ generation)` of the operator Deployment.
fn operator_rollout(ns: &str) -> (i64, i64, i64, bool) {
    let out = kubectl(&[
        "-n",
        ns,
        "get",
        "deployment",
        OPERATOR,
        "-o",
        "jsonpath={.status.updatedReplicas},{.status.availableReplicas},{.status.replicas},{.status.observedGeneration},{.metadata.generation}",
    ]);
    let f: Vec<i64> = out.trim().split(',').map(|v| v.parse().unwrap_or(0)).collect();
    (f[0], f[1], f[2], f.len() == 5 && f[3] >= f[4])
}

/// The id of the first cause diagnose gives for the namespace's KubeArmorConfig.
fn diagnose_first_cause(ns: &str) -> String {
    diagnose_cr(ns)["causes"][0]["id"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_on_a_slow_install_or_a_late_pin_and_a_page_for_the_missing_daemonset() {
    let missing = alerting::missing_tools();
    assert!(missing.is_empty(), "missing {missing:?}: apt-get install -y prometheus prometheus-alertmanager");
    plane();
    ensure_crd();
    let ns_guard = Ns::new("ka-pages");
    let ns = ns_guard.name.as_str();
    let client = common::client().await;
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let cr = cr_labels(ns);
    let work = std::env::temp_dir().join("stallwatch-e2e-runs").join(common::unique("pages"));
    std::fs::create_dir_all(&work).expect("creating the work dir");

    let sets = [
        "StallwatchObjectStalled.for=1s".to_string(),
        format!("StallwatchWorkloadMissing.for={MISSING_FOR}s"),
        "StallwatchExporterDown.for=10s".to_string(),
        "StallwatchExporterAbsent.for=10s".to_string(),
    ];
    let rules = work.join("short.rules.yml");
    let mut gen_cmd = std::process::Command::new(common::repo().join("alerts/generate"));
    gen_cmd.arg("override");
    for s in &sets {
        gen_cmd.args(["--set", s]);
    }
    let out = gen_cmd.arg("-o").arg(&rules).output().expect("running alerts/generate");
    assert!(out.status.success(), "alerts/generate override: {}", String::from_utf8_lossy(&out.stderr));
    note(format!("rules: alerts/generate override --set {}", sets.join(" --set ")));

    let hook = Webhook::start(&work.join("notifications.jsonl"));
    let sw = Stallwatch::start("pages", &sw_config(ns), &plane().kubeconfig);
    let stack = Stack::start(
        &work.join("promstack"),
        &StackConfig {
            rules: std::slice::from_ref(&rules),
            scrape: sw.addr,
            job: JOB,
            webhook: &hook.url(),
            group_by: &["alertname", "target", "namespace", "name"],
            repeat_interval: "1m",
            shipped: None,
        },
    );
    let prom = &stack.prom;
    common::eventually(
        "Prometheus scrapes stallwatch and evaluates the rules",
        Duration::from_secs(30),
        || {
            let up = prom.query(&format!("up{{job=\"{JOB}\"}} == 1"), None)?;
            let bad: Vec<String> =
                prom.rules()?.iter().filter(|r| r["health"] != "ok").map(|r| r.to_string()).collect();
            if up.len() == 1 && bad.is_empty() {
                Ok(())
            } else {
                Err(format!("up {up:?}, rules not ok: {bad:?}"))
            }
        },
    );

    // ---- 1. a slow fresh install
    note("step 1: the config and the operator exist; the DaemonSet comes late");
    apply(&config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
    apply(&operator_deployment_yaml(ns));
    kubectl(&[
        "-n",
        ns,
        "patch",
        "deployment",
        OPERATOR,
        "-p",
        &format!(r#"{{"spec":{{"replicas":{OPERATOR_REPLICAS},"minReadySeconds":{OPERATOR_MIN_READY}}}}}"#),
    ]);
    let operator = Operator::start(client.clone(), ns);
    let t_install = Instant::now();
    sw.wait_for("step 1: the slot is missing", Duration::from_secs(15), RELEVANT, |m| {
        m.is("stallwatch_workload_missing", &with(&cr, &[("slot", "kubearmor")]), 1.0)
    });
    quiet_until(
        prom,
        &hook,
        ns,
        "step 1: installing, past the alert's `for`",
        Duration::from_secs(INSTALL_DELAY + 10),
        || t_install.elapsed() >= Duration::from_secs(INSTALL_DELAY),
    );
    // The old rule (`for` alone) had fired by now.
    let pending =
        prom.query(&format!("ALERTS{{alertname=\"StallwatchWorkloadMissing\",namespace=\"{ns}\"}}"), None);
    note(format!("StallwatchWorkloadMissing in ALERTS {INSTALL_DELAY}s into the install: {pending:?}"));
    apply(&daemonset_yaml(ns));
    let converged = std::cell::Cell::new(false);
    quiet_until(prom, &hook, ns, "step 1: the install completes", Duration::from_secs(60), || {
        let m = sw.scrape();
        converged.set(m.is_ok_and(|m| status_is(&m, &cr, "Current")));
        converged.get()
    });
    assert!(
        t_install.elapsed() > Duration::from_secs(MISSING_FOR + 2),
        "the DaemonSet was missing longer than the alert's `for`"
    );

    // ---- 2. a late pin change whose operator rollout outlasts stalledAfter
    std::thread::sleep(Duration::from_secs(STALLED_AFTER.saturating_sub(t_install.elapsed().as_secs()) + 2));
    note(
        "step 2: the config is older than stalledAfter; a Helm upgrade sets the pin on a slow operator rollout",
    );
    let n = OPERATOR_REPLICAS;
    common::eventually("the operator Deployment available", Duration::from_secs(60), || {
        let (updated, available, replicas, observed) = operator_rollout(ns);
        if observed && updated == n && available == n && replicas == n {
            Ok(())
        } else {
            Err(format!("updated {updated}, available {available}, replicas {replicas}, observed {observed}"))
        }
    });
    operator.set(Mode::Unaware);
    let t_pin = Instant::now();
    kubectl(&[
        "-n",
        ns,
        "set",
        "env",
        &format!("deployment/{OPERATOR}"),
        &format!("{PIN_ENV}=docker.io/kubearmor/kubearmor:pinned"),
    ]);
    sw.wait_for(
        "step 2: the pin is desired and not rolled out: InProgress",
        Duration::from_secs(15),
        RELEVANT,
        |m| {
            m.is("stallwatch_image_mismatch", &with(&cr, &[("slot", "kubearmor")]), 1.0)
                && status_is(m, &cr, "InProgress")
        },
    );
    quiet_until(
        prom,
        &hook,
        ns,
        "step 2: the operator Deployment rolls out",
        Duration::from_secs(120),
        || {
            let (updated, available, replicas, observed) = operator_rollout(ns);
            observed
                && updated == n
                && available == n
                && replicas == n
                && t_pin.elapsed() > Duration::from_secs(5)
        },
    );
    let rollout = t_pin.elapsed();
    note(format!("operator rollout took {:.1}s (stalledAfter {STALLED_AFTER}s)", rollout.as_secs_f64()));
    assert!(
        rollout > Duration::from_secs(STALLED_AFTER),
        "the operator rollout outlasted stalledAfter: {rollout:?}"
    );
    // The new operator pod applies the pin.
    operator.set(Mode::Working);
    quiet_until(prom, &hook, ns, "step 2: the pin rolls out", Duration::from_secs(60), || {
        sw.scrape().is_ok_and(|m| status_is(&m, &cr, "Current"))
    });
    let ds = dss.get(DS).await.expect("the DaemonSet");
    assert_eq!(image_of(&ds, false, "kubearmor"), "docker.io/kubearmor/kubearmor:pinned");
    // A few evaluations more: nothing was pending on the way.
    quiet_until(prom, &hook, ns, "step 2: settled", Duration::from_secs(10), {
        let t = Instant::now();
        move || t.elapsed() >= Duration::from_secs(5)
    });
    let pages: Vec<String> =
        hook.alerts().iter().filter(|a| a.label("namespace") == ns).map(|a| a.to_string()).collect();
    assert!(pages.is_empty(), "no notification for steps 1 and 2: {pages:#?}");

    // ---- 3. the agent DaemonSet deleted, not recreated
    note("step 3: the DaemonSet is deleted; the operator does not recreate it");
    let t_delete = Instant::now();
    kubectl(&["-n", ns, "delete", "daemonset", DS, "--wait=false"]);
    let a = hook.wait_for(
        "step 3: StallwatchWorkloadMissing pages",
        Duration::from_secs(MISSING_FOR + 30),
        |a| a.name() == "StallwatchWorkloadMissing" && a.status == "firing" && a.label("namespace") == ns,
        || stack.am_alerts(),
    );
    let took = t_delete.elapsed().as_secs_f64();
    note(format!("page {took:.1}s after the delete (for {MISSING_FOR}s)"));
    assert!(took >= MISSING_FOR as f64, "not before `for`: {took:.1}s");
    assert_eq!(a.label("severity"), "critical");
    assert_eq!(a.label("slot"), "kubearmor");
    assert_eq!(a.label("name"), CR);
    assert!(a.annotation("summary").contains("do not exist"), "{:?}", a.annotations);
    assert_eq!(diagnose_first_cause(ns), "workload-missing");
    drop(operator);
    sw.capture();
}
