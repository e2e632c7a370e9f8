//! The KubeArmor story (a stuck image update, its detection and recovery) on the real test control
//! plane, against the real binary.
//!
//! A test operator plays KubeArmor's operator: it reads the KubeArmorConfig, updates the
//! `kubearmor-app=kubearmor` DaemonSet when it "works", and writes `status.phase` through the
//! status subresource as field manager `kubearmor-operator`. In "stuck" mode it marks the
//! config `Pending` and never touches the DaemonSet (KubeArmor issue #1842).
//!
//! 1. Converged.
//! 2. Image changed, operator stuck: mismatch, time in Pending, generation not observed, Stalled.
//! 3. Operator "restarted": every signal converges.
//! 4. A healthy rollout while nodes come and go is never Stalled.
//! 5. (A separate test) watch events lost by a proxy are found and corrected at the next re-list.

mod common;

use std::time::{Duration, Instant};

use common::{Ns, Stallwatch, apply, eventually_async, kubectl, note, plane, proxy::DropProxy};
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::{Api, api::DynamicObject};

use common::kubearmor::{
    CR, DS, MANAGER, Mode, Operator, PIN_ENV, RELEVANT, config_yaml, cr_labels, daemonset_yaml, diagnose_cr,
    ds_labels, ds_pod_lines, ensure_crd, image_of, image_row, kac, node_count, operator_deployment_yaml,
    rolled_out, set_cr_image, set_phase, status_is, status_of, with,
};

// ------------------------------------------------------------------ fixtures (the rest are in
// tests/common/kubearmor.rs, shared with the suites that tell the same story)

/// The stallwatch config of the story: the kubearmor preset on the test namespace.
fn sw_config(ns: &str, stalled_after: &str, resync: &str) -> String {
    format!(
        "resync: {resync}\nstalledAfter: {stalled_after}\ntargets:\n  - preset: kubearmor\n    namespace: {ns}\n"
    )
}

async fn daemonset_state(dss: &Api<DaemonSet>) -> Result<DaemonSet, String> {
    dss.get(DS).await.map_err(|e| e.to_string())
}

// ------------------------------------------------------------------ label sets

/// The cluster after node churn: the deleted node is gone, no pod is left on it, and every node
/// runs exactly one live pod of the DaemonSet with `image`.
fn settled_after_churn(ns: &str, victim: &str, image: &str) -> Result<(), String> {
    if common::try_kubectl(&["get", "node", victim]).is_ok() {
        return Err(format!("node {victim} still exists"));
    }
    let pods = ds_pod_lines(
        ns,
        "{.spec.nodeName}|{.spec.containers[0].image}|{.metadata.deletionTimestamp}|{.status.phase}",
    );
    let pods: Vec<&str> = pods.lines().filter(|l| !l.is_empty()).collect();
    let ok = pods.len() == node_count()
        && pods.iter().all(|p| {
            let f: Vec<&str> = p.split('|').collect();
            f.len() == 4 && f[0] != victim && f[1] == image && f[2].is_empty() && f[3] == "Running"
        });
    if ok { Ok(()) } else { Err(format!("pods (node|image|deleting|phase): {pods:?}")) }
}

// ------------------------------------------------------------------ the story

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubearmor_story() {
    let t_story = Instant::now();
    plane();
    ensure_crd();
    let ns = Ns::new("ka-story");
    let ns = ns.name.as_str();
    let client = common::client().await;
    let crs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kac());
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let cr = cr_labels(ns);
    let ds = ds_labels(ns);

    // ---- 1. converged
    let t = Instant::now();
    note("step 1: KubeArmorConfig and its DaemonSet, converged");
    apply(&config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
    apply(&daemonset_yaml(ns));
    let operator = Operator::start(client.clone(), ns);
    let nodes = node_count();
    let ds_now = eventually_async(
        "DaemonSet rolled out on every node, CR Running",
        Duration::from_secs(90),
        || async {
            let d = daemonset_state(&dss).await?;
            let c = crs.get(CR).await.map_err(|e| e.to_string())?;
            let phase = c.data["status"]["phase"].as_str().unwrap_or("").to_string();
            let desired = d.status.as_ref().map_or(0, |s| s.desired_number_scheduled) as usize;
            if rolled_out(&d) && desired == nodes && phase == "Running" {
                Ok(d)
            } else {
                Err(format!("phase {phase:?}, desired {desired}/{nodes} nodes, status {:?}", d.status))
            }
        },
    )
    .await;
    assert_eq!(image_of(&ds_now, true, "init"), "docker.io/kubearmor/kubearmor-init:v1");

    let sw = Stallwatch::start("story", &sw_config(ns, "15s", "1m"), &plane().kubeconfig);
    let m = sw.wait_for(
        "step 1: KubeArmorConfig Current, images match, rollout complete",
        Duration::from_secs(30),
        RELEVANT,
        |m| {
            status_is(m, &cr, "Current")
                && m.is(
                    "stallwatch_image_mismatch",
                    &with(&cr, &[("slot", "kubearmor"), ("workload", DS), ("container", "kubearmor")]),
                    0.0,
                )
                && m.sum("stallwatch_image_mismatch", &cr) == 0.0
                && m.is("stallwatch_rollout_complete", &ds, 1.0)
        },
    );
    assert!(
        m.is("stallwatch_phase", &with(&cr, &[("phase", "Running")]), 1.0),
        "{}",
        m.dump(&["stallwatch_phase"])
    );
    assert!(m.is("stallwatch_generation_observed", &cr, 1.0), "{}", m.dump(&["stallwatch_generation"]));
    assert!(
        m.is("stallwatch_stalled", &with(&cr, &[("reason", "")]), 0.0),
        "{}",
        m.dump(&["stallwatch_stalled"])
    );
    let mm = m.find("stallwatch_image_info", &with(&cr, &[("slot", "kubearmor")]));
    assert_eq!(mm[0].label("desired"), "kubearmor/kubearmor:v1");
    assert_eq!(mm[0].label("actual"), "docker.io/kubearmor/kubearmor:v1");
    assert_eq!(mm[0].label("workload_kind"), "DaemonSet");
    assert_eq!(mm[0].label("workload_namespace"), ns);
    let writes = m.find("stallwatch_status_write_timestamp_seconds", &with(&cr, &[("manager", MANAGER)]));
    assert_eq!(writes.len(), 1, "status writes of {MANAGER}: {}", m.dump(&["stallwatch_status_write"]));
    sw.capture();
    note(format!("step 1 done in {:.1}s", t.elapsed().as_secs_f64()));

    // ---- 2. the image changes, the operator is stuck
    let t = Instant::now();
    note(
        "step 2: spec.kubearmorImage.image -> v2; the operator marks Pending and never updates the DaemonSet",
    );
    operator.set(Mode::Stuck);
    set_cr_image(&crs, "kubearmor/kubearmor:v2").await;
    let mismatch = with(
        &cr,
        &[
            ("slot", "kubearmor"),
            ("workload_kind", "DaemonSet"),
            ("workload_namespace", ns),
            ("workload", DS),
            ("container", "kubearmor"),
            ("desired", "kubearmor/kubearmor:v2"),
            ("actual", "docker.io/kubearmor/kubearmor:v1"),
        ],
    );
    let m1 = sw.wait_for(
        "step 2: image mismatch, Pending, generation not observed",
        Duration::from_secs(15),
        RELEVANT,
        |m| {
            image_row(m, &mismatch, 1.0)
                && m.is("stallwatch_phase", &with(&cr, &[("phase", "Pending")]), 1.0)
                && m.is("stallwatch_generation_observed", &cr, 0.0)
                && m.is("stallwatch_generation", &cr, 2.0)
        },
    );
    assert!(
        !status_is(&m1, &cr, "Current"),
        "not Current while the image is not rolled out: {}",
        status_of(&m1, &cr)
    );
    let d1 = m1.value("stallwatch_phase_duration_seconds", &cr).expect("phase_duration_seconds");
    sw.wait_for(
        "step 2: time in Pending grows between scrapes",
        Duration::from_secs(5),
        &["stallwatch_phase"],
        |m| m.value("stallwatch_phase_duration_seconds", &cr).is_some_and(|d2| d2 > d1),
    );
    let m = sw.wait_for(
        "step 2: Stalled once stalledAfter (15s) passes",
        Duration::from_secs(45),
        RELEVANT,
        |m| status_is(m, &cr, "Stalled"),
    );
    note(format!("step 2 verdict: {}", status_of(&m, &cr)));
    // The most specific reason wins (docs/verdict.md): the image, not the phase.
    assert!(
        m.is("stallwatch_status", &with(&cr, &[("status", "Stalled"), ("reason", "ImageNotRolledOut")]), 1.0),
        "{}",
        m.dump(&["stallwatch_status"])
    );
    assert!(image_row(&m, &mismatch, 1.0), "{}", m.dump(&["stallwatch_image"]));
    assert!(
        m.value("stallwatch_generation_unobserved_seconds", &cr).is_some_and(|s| s >= 15.0),
        "{}",
        m.dump(&["stallwatch_generation"])
    );
    assert!(
        m.value("stallwatch_stalled_since_timestamp_seconds", &cr).is_some(),
        "{}",
        m.dump(&["stallwatch_stalled"])
    );
    let stalled = m.find("stallwatch_stalled", &cr);
    assert!(
        stalled.len() == 1 && stalled[0].value == 1.0 && stalled[0].label("reason") == "ImageNotRolledOut",
        "{}",
        m.dump(&["stallwatch_stalled"])
    );
    // The DaemonSet itself is fine: nobody asked it to change (that is the bug).
    assert!(m.is("stallwatch_rollout_complete", &ds, 1.0), "{}", m.dump(&["stallwatch_rollout"]));
    assert_eq!(
        image_of(&daemonset_state(&dss).await.unwrap(), false, "kubearmor"),
        "docker.io/kubearmor/kubearmor:v1"
    );
    sw.capture();
    note(format!("step 2 done in {:.1}s", t.elapsed().as_secs_f64()));

    // ---- 3. "restart the operator"
    let t = Instant::now();
    note("step 3: the operator restarts, updates the DaemonSet; kwok rolls the pods");
    operator.set(Mode::Working);
    let converged_v2 = with(
        &cr,
        &[
            ("slot", "kubearmor"),
            ("desired", "kubearmor/kubearmor:v2"),
            ("actual", "docker.io/kubearmor/kubearmor:v2"),
        ],
    );
    let m = sw.wait_for("step 3: every signal converges", Duration::from_secs(90), RELEVANT, |m| {
        image_row(m, &converged_v2, 0.0)
            && m.sum("stallwatch_image_mismatch", &cr) == 0.0
            && m.is("stallwatch_workload_pods_outdated", &ds, 0.0)
            && m.is("stallwatch_rollout_complete", &ds, 1.0)
            && m.is("stallwatch_generation_observed", &cr, 1.0)
            && m.is("stallwatch_phase", &with(&cr, &[("phase", "Running")]), 1.0)
            && status_is(m, &cr, "Current")
            && status_is(m, &ds, "Current")
    });
    // Kubernetes agrees at that moment: the DaemonSet's rollout really is complete.
    kubectl(&["-n", ns, "rollout", "status", &format!("ds/{DS}"), "--timeout=1s"]);
    assert!(
        m.is("stallwatch_stalled", &with(&cr, &[("reason", "")]), 0.0),
        "{}",
        m.dump(&["stallwatch_stalled"])
    );
    assert!(
        m.find("stallwatch_stalled_since_timestamp_seconds", &cr).is_empty(),
        "{}",
        m.dump(&["stallwatch_stalled"])
    );
    assert_eq!(
        m.value("stallwatch_workload_pods", &ds),
        Some(node_count() as f64),
        "{}",
        m.dump(&["stallwatch_workload"])
    );
    assert_eq!(m.value("stallwatch_rollout_desired", &ds), m.value("stallwatch_rollout_updated", &ds));
    sw.capture();
    note(format!("step 3 done in {:.1}s", t.elapsed().as_secs_f64()));

    // ---- 4. a healthy rollout while nodes come and go: never Stalled
    let t = Instant::now();
    note("step 4: healthy rollout to v3 while a node is added and another deleted (stalledAfter 90s)");
    // 90s, not less: after a node is deleted, the DaemonSet controller counts the pod left on it
    // as unavailable until KCM's pod GC removes it (orphan quarantine 40 s, checked every 20 s),
    // so a healthy rolling update with maxUnavailable 1 really does not move for up to ~60 s.
    let sw4 = Stallwatch::start("story-churn", &sw_config(ns, "90s", "1m"), &plane().kubeconfig);
    sw4.wait_for("step 4: baseline Current", Duration::from_secs(30), RELEVANT, |m| {
        status_is(m, &cr, "Current") && status_is(m, &ds, "Current")
    });
    let victim = kubectl(&["get", "nodes", "-l", "type=kwok", "-o", "jsonpath={.items[0].metadata.name}"]);
    let newcomer = common::unique("kwok-churn");
    set_cr_image(&crs, "kubearmor/kubearmor:v3").await;
    let churn = {
        let (victim, newcomer) = (victim.clone(), newcomer.clone());
        std::thread::spawn(move || {
            plane().ctl(&["add-node", &newcomer]);
            note(format!("deleting node {victim}"));
            kubectl(&["delete", "node", &victim, "--wait=false"]);
        })
    };
    let deadline = Instant::now() + Duration::from_secs(150);
    let (mut samples, mut saw_in_progress) = (0u32, false);
    let mut settled: Result<(), String> = Err("not checked yet".into());
    let mut seen = std::collections::BTreeSet::new();
    let mut last_line = String::new();
    let mut last_settle_check = Instant::now() - Duration::from_secs(1);
    let converged_v3 = with(
        &cr,
        &[
            ("slot", "kubearmor"),
            ("desired", "kubearmor/kubearmor:v3"),
            ("actual", "docker.io/kubearmor/kubearmor:v3"),
        ],
    );
    loop {
        let m = match sw4.scrape() {
            Ok(m) => m,
            Err(e) => sw4.fail(&format!("step 4: scrape failed during the rollout: {e}")),
        };
        samples += 1;
        let stalled: Vec<String> = m
            .series
            .iter()
            .filter(|s| {
                s.name == "stallwatch_status"
                    && s.value == 1.0
                    && matches!(s.label("status"), "Stalled" | "Failed")
            })
            .map(|s| s.to_string())
            .collect();
        if !stalled.is_empty() {
            sw4.fail(&format!(
                "step 4: a healthy rollout with node churn was reported Stalled after {:.1}s (sample {samples}):\n  {}\n{}",
                t.elapsed().as_secs_f64(),
                stalled.join("\n  "),
                m.dump(RELEVANT)
            ));
        }
        saw_in_progress |= status_is(&m, &cr, "InProgress");
        let mut now_seen = Vec::new();
        for st in m.find("stallwatch_status", &[("namespace", ns)]) {
            if st.value == 1.0 {
                now_seen.push(format!("{}/{}/{}", st.label("kind"), st.label("status"), st.label("reason")));
            }
        }
        // A timeline of the verdicts and the DaemonSet's counters, printed on every change.
        let v = |n: &str| m.value(n, &ds).map_or("-".to_string(), |v| v.to_string());
        let line = format!(
            "{} | ds desired {} updated {} available {} complete {} pods {} outdated {}",
            now_seen.join(" "),
            v("stallwatch_rollout_desired"),
            v("stallwatch_rollout_updated"),
            v("stallwatch_rollout_available"),
            v("stallwatch_rollout_complete"),
            v("stallwatch_workload_pods"),
            v("stallwatch_workload_pods_outdated"),
        );
        if line != last_line {
            note(format!("step 4 +{:.1}s: {line}", t.elapsed().as_secs_f64()));
            last_line = line;
        }
        seen.extend(now_seen);
        // Done only when the cluster has settled too: the deleted node's pod collected by pod GC
        // (orphan quarantine, up to a minute) and a v3 pod on every node, new one included.
        let converged = churn.is_finished()
            && image_row(&m, &converged_v3, 0.0)
            && m.is("stallwatch_workload_pods_outdated", &ds, 0.0)
            && m.is("stallwatch_rollout_complete", &ds, 1.0)
            && status_is(&m, &cr, "Current")
            && status_is(&m, &ds, "Current");
        // The cluster check costs a few kubectl calls: at most once a second, so that /metrics
        // is still sampled every 250 ms.
        if converged && last_settle_check.elapsed() >= Duration::from_secs(1) {
            last_settle_check = Instant::now();
            settled = settled_after_churn(ns, &victim, "docker.io/kubearmor/kubearmor:v3");
            if settled.is_ok() && m.value("stallwatch_workload_pods", &ds) == Some(node_count() as f64) {
                break;
            }
        }
        if Instant::now() > deadline {
            sw4.fail(&format!(
                "step 4: the rollout did not settle within 150s (cluster: {settled:?})\n{}",
                m.dump(RELEVANT)
            ));
        }
        std::thread::sleep(common::POLL);
    }
    churn.join().expect("node churn thread");
    assert!(
        saw_in_progress,
        "step 4 never saw the rollout in progress ({samples} samples): the sampling missed it"
    );
    note(format!(
        "step 4 done in {:.1}s: {samples} samples, never Stalled; verdicts seen: {seen:?}",
        t.elapsed().as_secs_f64()
    ));
    sw.capture();
    drop(sw4);
    drop(operator);
    note(format!("KubeArmor story passed in {:.1}s", t_story.elapsed().as_secs_f64()));
}

// ------------------------------------------------------------------ 5. lost watch events

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_watch_events_are_found_at_the_next_relist() {
    plane();
    ensure_crd();
    let ns_guard = Ns::new("ka-lost");
    let ns = ns_guard.name.clone();
    let client = common::client().await;
    let crs: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &kac());
    apply(&config_yaml(&ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
    set_phase(&crs, "Running").await.expect("status Running");

    let ns_match = ns.clone();
    let proxy =
        DropProxy::start(client.clone(), move |obj| obj["metadata"]["namespace"].as_str() == Some(&ns_match))
            .await;
    let sw_dir = std::env::temp_dir().join(common::unique("stallwatch-e2e-proxy"));
    std::fs::create_dir_all(&sw_dir).unwrap();
    let kubeconfig = sw_dir.join("kubeconfig");
    common::write_kubeconfig(&kubeconfig, &proxy.url(), None);
    let sw = Stallwatch::start("lost-events", &sw_config(&ns, "15m", "10s"), &kubeconfig);

    let cr = cr_labels(&ns);
    let w = [("resource", "operator.kubearmor.com/v1/KubeArmorConfig"), ("watch_namespace", ns.as_str())];
    let m0 =
        sw.wait_for("through the proxy: synced, phase Running", Duration::from_secs(30), RELEVANT, |m| {
            m.is("stallwatch_synced", &w, 1.0)
                && m.is("stallwatch_phase", &with(&cr, &[("phase", "Running")]), 1.0)
        });
    let drift0 = m0.sum("stallwatch_resync_drift_total", &with(&w, &[("change", "modified")]));
    let relists0 = m0.sum("stallwatch_relists_total", &w);

    note("dropping watch events of the namespace; the operator writes phase Error");
    proxy.set_dropping(true);
    let t_change = Instant::now();
    set_phase(&crs, "Error").await.expect("status Error");
    eventually_async("the proxy dropped the MODIFIED event", Duration::from_secs(20), || async {
        if proxy.dropped() > 0 { Ok(()) } else { Err(format!("dropped {}", proxy.dropped())) }
    })
    .await;
    // While no re-list has happened, stallwatch must still hold the stale phase: proof that the
    // event was really lost rather than delivered some other way.
    let m1 = sw.scrape().expect("scrape");
    if m1.sum("stallwatch_relists_total", &w) == relists0 {
        assert!(
            m1.is("stallwatch_phase", &with(&cr, &[("phase", "Running")]), 1.0),
            "the dropped event reached stallwatch anyway:\n{}",
            m1.dump(&["stallwatch_phase", "stallwatch_relists"])
        );
        note("stale fact visible before the re-list: phase Running while the API says Error");
    }
    let m = sw.wait_for(
        "drift counted and the phase corrected at the next re-list",
        Duration::from_secs(40),
        &["stallwatch_phase", "stallwatch_resync_drift", "stallwatch_relists", "stallwatch_synced"],
        |m| {
            m.sum("stallwatch_resync_drift_total", &with(&w, &[("change", "modified")])) > drift0
                && m.is("stallwatch_phase", &with(&cr, &[("phase", "Error")]), 1.0)
        },
    );
    note(format!(
        "lost event found {:.1}s after the change; dropped {} watch lines, drift modified {} -> {}",
        t_change.elapsed().as_secs_f64(),
        proxy.dropped(),
        drift0,
        m.sum("stallwatch_resync_drift_total", &with(&w, &[("change", "modified")]))
    ));
    assert!(
        m.find("stallwatch_phase", &with(&cr, &[("phase", "Running")])).is_empty(),
        "{}",
        m.dump(&["stallwatch_phase"])
    );
    assert!(m.sum("stallwatch_relists_total", &with(&w, &[("cause", "periodic")])) >= 1.0);

    // With the events flowing again, a change arrives through the watch (well before a resync).
    proxy.set_dropping(false);
    set_phase(&crs, "Running").await.expect("status Running");
    sw.wait_for(
        "events flow again after the proxy stops dropping",
        Duration::from_secs(15),
        &["stallwatch_phase"],
        |m| m.is("stallwatch_phase", &with(&cr, &[("phase", "Running")]), 1.0),
    );
    drop(sw);
    let _ = std::fs::remove_dir_all(&sw_dir);
}

// ------------------------------------------------------------------ signals that must not lie

fn first_cause(obj: &serde_json::Value) -> String {
    obj["causes"][0]["id"].as_str().unwrap_or("").to_string()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The real operator's behaviours that made stallwatch's signals lie: a late pin change, the
/// agent DaemonSet deleted and not recreated, status written only on change, and `Pending` from
/// its node counter with everything else healthy; each with the verdict and diagnose's first cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubearmor_signal_truth() {
    plane();
    ensure_crd();
    let ns = Ns::new("ka-truth");
    let ns = ns.name.as_str();
    let client = common::client().await;
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let cr = cr_labels(ns);

    note("truth 0: converged, the operator Deployment without pins");
    apply(&config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
    apply(&daemonset_yaml(ns));
    apply(&operator_deployment_yaml(ns));
    let operator = Operator::start(client.clone(), ns);
    let cr_created = unix_now();
    let stalled_after = 20.0;
    let sw = Stallwatch::start("truth", &sw_config(ns, "20s", "1m"), &plane().kubeconfig);
    sw.wait_for("truth 0: Current", Duration::from_secs(90), RELEVANT, |m| status_is(m, &cr, "Current"));
    let m = sw.scrape().expect("scrape");
    // Status written only on change: the preset says so, and ControllerSilent is off for it.
    assert!(
        m.is("stallwatch_controller_status_on_change", &[("target", "kubearmor")], 1.0),
        "{}",
        m.dump(&["stallwatch_controller"])
    );

    // ---- 1. a late pin change: the CR is older than stalledAfter, the operator takes its time
    let wait = (cr_created + stalled_after + 2.0 - unix_now()).max(0.0);
    std::thread::sleep(Duration::from_secs_f64(wait));
    note("truth 1: Helm upgrade sets RELATED_IMAGE_KUBEARMOR; the operator has not applied it yet");
    operator.set(Mode::Stuck);
    let t_pin = unix_now();
    kubectl(&[
        "-n",
        ns,
        "set",
        "env",
        &format!("deployment/{}", common::kubearmor::OPERATOR),
        &format!("{PIN_ENV}=docker.io/kubearmor/kubearmor:pinned"),
    ]);
    let m = sw.wait_for(
        "truth 1: the pin is desired, not rolled out, and the clock starts at the pin change",
        Duration::from_secs(15),
        RELEVANT,
        |m| {
            image_row(
                m,
                &with(&cr, &[("slot", "kubearmor"), ("desired", "docker.io/kubearmor/kubearmor:pinned")]),
                1.0,
            ) && status_is(m, &cr, "InProgress")
                // The operator's next pass marks the config Pending; diagnose's advice depends on it.
                && m.is("stallwatch_phase", &with(&cr, &[("phase", "Pending")]), 1.0)
        },
    );
    let since = m.value("stallwatch_unconverged_since_timestamp_seconds", &cr).expect("unconverged since");
    assert!(since >= t_pin - 1.0, "clock from the pin change ({t_pin}), not the CR's age: {since}");
    assert!(
        m.is(
            "stallwatch_status",
            &with(&cr, &[("status", "InProgress"), ("reason", "ImageNotRolledOut")]),
            1.0
        ),
        "{}",
        m.dump(&["stallwatch_status"])
    );
    assert!(
        m.is("stallwatch_stalled", &cr, 0.0),
        "no page on the pin change: {}",
        m.dump(&["stallwatch_stalled"])
    );
    // Pending with the image not pushed: a restart fixes the phase, a second one the image.
    let obj = diagnose_cr(ns);
    assert_eq!(first_cause(&obj), "operator-missed-update", "{:#}", obj["causes"]);
    let steps: Vec<String> = obj["causes"][0]["remedies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["step"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(steps.iter().any(|s| s.contains("second time")), "{steps:#?}");
    assert!(!steps.iter().any(|s| s.contains("so the operator recreates")), "{steps:#?}");
    assert!(
        obj["causes"][0]["remedies"][0]["commands"][0]
            .as_str()
            .unwrap_or("")
            .contains("cannot update daemonset"),
        "{:#}",
        obj["causes"][0]
    );
    // It still catches a pin that never rolls out.
    sw.wait_for(
        "truth 1: Stalled stalledAfter after the pin change",
        Duration::from_secs(40),
        RELEVANT,
        |m| {
            m.is(
                "stallwatch_status",
                &with(&cr, &[("status", "Stalled"), ("reason", "ImageNotRolledOut")]),
                1.0,
            )
        },
    );
    operator.set(Mode::Working);
    sw.wait_for("truth 1: the operator applies the pin: Current", Duration::from_secs(90), RELEVANT, |m| {
        status_is(m, &cr, "Current")
    });
    assert_eq!(
        image_of(&dss.get(DS).await.unwrap(), false, "kubearmor"),
        "docker.io/kubearmor/kubearmor:pinned"
    );

    // ---- 2. the agent DaemonSet deleted; the operator does not recreate it
    note("truth 2: the DaemonSet is deleted and not recreated");
    kubectl(&["-n", ns, "delete", "daemonset", DS, "--wait=false"]);
    let m = sw.wait_for("truth 2: WorkloadMissing, not Current", Duration::from_secs(30), RELEVANT, |m| {
        m.is("stallwatch_workload_missing", &with(&cr, &[("slot", "kubearmor")]), 1.0)
            && m.find("stallwatch_status", &with(&cr, &[("reason", "WorkloadMissing")]))
                .iter()
                .any(|s| s.value == 1.0)
    });
    assert!(!status_is(&m, &cr, "Current"), "{}", status_of(&m, &cr));
    let obj = diagnose_cr(ns);
    assert_eq!(first_cause(&obj), "workload-missing", "{:#}", obj["causes"]);
    sw.wait_for("truth 2: Stalled while it stays missing", Duration::from_secs(45), RELEVANT, |m| {
        m.is("stallwatch_status", &with(&cr, &[("status", "Stalled"), ("reason", "WorkloadMissing")]), 1.0)
    });
    note("truth 2: the DaemonSet is back (an operator restart recreates it)");
    apply(&daemonset_yaml(ns));
    sw.wait_for("truth 2: Current again", Duration::from_secs(90), RELEVANT, |m| {
        status_is(m, &cr, "Current")
    });

    // ---- 3. Pending from the node counter, everything else healthy
    note("truth 3: every node labelled, pods == desired, images right, yet Pending (node counter)");
    let labelled: Vec<String> = kubectl(&["get", "nodes", "-o", "name"]).lines().map(String::from).collect();
    for n in &labelled {
        kubectl(&["label", n, "kubearmor.io/enforcer=bpf", "--overwrite"]);
    }
    operator.set(Mode::CounterMismatch);
    sw.wait_for("truth 3: Pending, no mismatch", Duration::from_secs(30), RELEVANT, |m| {
        m.is("stallwatch_phase", &with(&cr, &[("phase", "Pending")]), 1.0)
            && m.sum("stallwatch_image_mismatch", &cr) == 0.0
            && !status_is(m, &cr, "Current")
    });
    let obj = diagnose_cr(ns);
    for n in &labelled {
        kubectl(&["label", n, "kubearmor.io/enforcer-"]);
    }
    assert_eq!(first_cause(&obj), "operator-node-counter", "{:#}", obj["causes"]);
    operator.set(Mode::Working);
    sw.wait_for("truth 3: an operator restart resets it: Current", Duration::from_secs(60), RELEVANT, |m| {
        status_is(m, &cr, "Current")
    });
    sw.capture();
}
