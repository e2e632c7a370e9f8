//! Churn soak on the real control plane: state that never leaks. A tracked KubeArmorConfig and
//! its agent DaemonSet (whose pods the real DaemonSet controller creates on the kwok nodes) are
//! deleted and re-created 20 times, each incarnation raising Warning events with a reason never
//! seen before on the config and on the DaemonSet. Each time:
//!
//! - the deleted incarnation's series are gone (no `warning_events_total` of an old reason),
//! - the re-created config (same name, new UID) counts from zero: exactly its own warnings,
//!
//! and the exporter's resident memory (VmRSS of the exporter process, `/proc/PID/status`) after
//! the churn is within 10% of before it (measured after two warm-up cycles, so the allocator's
//! first growth is not counted). The Warning events of a deleted incarnation are deleted with it:
//! the API server would keep them for an hour, and while they exist the exporter rightly holds
//! them; what is measured is the state keyed by objects that no longer exist.
//!
//! A second test checks on the real DaemonSet controller that an env change on an OnDelete
//! DaemonSet leaves its old pods outdated (template generation, not images), and that a pod the
//! controller re-creates counts current.
//!
//! Run: `STALLWATCH_PLANE_BIN=$(tests/cluster/build | tail -1)
//! STALLWATCH_BIN_PATH=$PWD/target/debug/stallwatch cargo test --test e2e_churn -- --nocapture`

mod common;

use std::time::Duration;

use common::{
    Ns, Stallwatch, apply,
    kubearmor::{
        CR, DS, RELEVANT, config_yaml, cr_labels, daemonset_yaml, ds_labels, ensure_crd, node_count, with,
    },
    kubectl, note, plane,
};

const CYCLES: usize = 20;
const WARM_UP: usize = 2;

fn sw_config(ns: &str) -> String {
    format!("resync: 1m\nstalledAfter: 15m\ntargets:\n  - preset: kubearmor\n    namespace: {ns}\n")
}

/// Resident memory of a process in KiB, from `/proc/PID/status` (`VmRSS`).
fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn uid_of(ns: &str, resource: &str, name: &str) -> String {
    kubectl(&["-n", ns, "get", resource, name, "-o", "jsonpath={.metadata.uid}"]).trim().to_string()
}

/// A Warning event about `kind/name` (UID `uid`) with `reason`, labelled for deletion by cycle.
fn warning(ns: &str, cycle: usize, kind: &str, api_version: &str, name: &str, uid: &str, reason: &str) {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let yaml = format!(
        r#"apiVersion: v1
kind: Event
metadata: {{name: {event}, namespace: {ns}, labels: {{churn-cycle: "{cycle}"}}}}
involvedObject: {{apiVersion: {api_version}, kind: {kind}, name: {name}, namespace: {ns}, uid: {uid}}}
type: Warning
reason: {reason}
message: "churn cycle {cycle}"
source: {{component: churn}}
count: 1
firstTimestamp: "{now}"
lastTimestamp: "{now}"
"#,
        event = common::unique("churn"),
    );
    common::kubectl_with(&["create", "-f", "-"], Some(&yaml))
        .unwrap_or_else(|e| common::fail(&format!("creating a Warning event: {e}")));
}

/// A reason no incarnation has used: distinct per cycle and per object, 100 bytes long so that
/// a leak of reasons would show.
fn reason(cycle: usize, of: &str) -> String {
    let r = format!("Churn{cycle:02}{of}");
    format!("{r}{}", "x".repeat(100 - r.len()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churned_objects_leave_no_series_and_no_memory() {
    plane();
    ensure_crd();
    let ns = Ns::new("ka-churn");
    let ns = ns.name.as_str();
    let cr = cr_labels(ns);
    let nodes = node_count();
    let sw = Stallwatch::start("churn", &sw_config(ns), &plane().kubeconfig);
    let relevant: Vec<&str> = RELEVANT.iter().copied().chain(["stallwatch_warning_events"]).collect();
    let mut before = None;
    for cycle in 0..CYCLES {
        apply(&config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
        apply(&daemonset_yaml(ns));
        common::eventually("the DaemonSet's pods on every node", Duration::from_secs(60), || {
            let pods = kubectl(&["-n", ns, "get", "pods", "-l", "kubearmor-app=kubearmor", "-o", "name"]);
            let n = pods.lines().filter(|l| !l.is_empty()).count();
            if n == nodes { Ok(()) } else { Err(format!("{n} of {nodes} pods")) }
        });
        let (cr_uid, ds_uid) =
            (uid_of(ns, "kubearmorconfigs.operator.kubearmor.com", CR), uid_of(ns, "daemonset", DS));
        let (own, of_ds) = (reason(cycle, "Config"), reason(cycle, "DaemonSet"));
        warning(ns, cycle, "KubeArmorConfig", "operator.kubearmor.com/v1", CR, &cr_uid, &own);
        warning(ns, cycle, "DaemonSet", "apps/v1", DS, &ds_uid, &of_ds);
        let m = sw.wait_for(
            &format!("cycle {cycle}: the new incarnation's two warnings, counted from zero"),
            Duration::from_secs(30),
            &relevant,
            |m| {
                m.is("stallwatch_warning_events_total", &with(&cr, &[("reason", &own)]), 1.0)
                    && m.is("stallwatch_warning_events_total", &with(&cr, &[("reason", &of_ds)]), 1.0)
            },
        );
        // The config's series (its own and its DaemonSet's warnings) and the DaemonSet's own.
        let series: Vec<String> = m
            .find("stallwatch_warning_events_total", &[])
            .iter()
            .map(|s| format!("{}/{}", s.label("kind"), s.label("reason")))
            .collect();
        let this = format!("Churn{cycle:02}");
        assert_eq!(m.find("stallwatch_warning_events_total", &cr).len(), 2, "{series:?}");
        assert!(
            series.len() == 3
                && series.iter().all(|s| s.split_once('/').is_some_and(|(_, r)| r.starts_with(&this))),
            "only this incarnation's reasons, none of a deleted one: {series:?}"
        );
        if cycle == WARM_UP {
            before = Some(vm_rss_kib(sw.pid()));
            note(format!("VmRSS after {WARM_UP} warm-up cycles: {} KiB", before.unwrap()));
        }
        // Gone: the config, the DaemonSet (its pods by garbage collection) and their events.
        kubectl(&["-n", ns, "delete", "kubearmorconfigs.operator.kubearmor.com", CR, "--wait=true"]);
        kubectl(&["-n", ns, "delete", "daemonset", DS, "--wait=true", "--cascade=foreground"]);
        kubectl(&["-n", ns, "delete", "events", "-l", &format!("churn-cycle={cycle}")]);
        sw.wait_for(
            &format!("cycle {cycle}: no series of the deleted config"),
            Duration::from_secs(30),
            &relevant,
            |m| {
                m.find("stallwatch_status", &cr).is_empty()
                    && m.find("stallwatch_warning_events_total", &[]).is_empty()
            },
        );
    }
    // Let the prune timer run once without help from the scrapes.
    std::thread::sleep(Duration::from_secs(65));
    let after = vm_rss_kib(sw.pid());
    let before = before.expect("measured after the warm-up");
    let ratio = after as f64 / before as f64;
    note(format!(
        "VmRSS before {before} KiB, after {CYCLES} cycles {after} KiB: ratio {ratio:.3} (bound 1.10)"
    ));
    assert!(ratio <= 1.10, "RSS grew by more than 10% over the churn: {before} KiB → {after} KiB");
    sw.capture();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_change_on_an_on_delete_daemonset_leaves_its_old_pods_outdated() {
    plane();
    ensure_crd();
    let ns = Ns::new("ka-ondelete");
    let ns = ns.name.as_str();
    let ds = ds_labels(ns);
    let nodes = node_count() as f64;
    apply(&config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
    apply(&daemonset_yaml(ns).replace(
        "updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}",
        "updateStrategy: {type: OnDelete}",
    ));
    let sw = Stallwatch::start("ondelete", &sw_config(ns), &plane().kubeconfig);
    let relevant = RELEVANT;
    sw.wait_for("every pod current", Duration::from_secs(60), relevant, |m| {
        m.is("stallwatch_workload_pods", &ds, nodes) && m.is("stallwatch_workload_pods_outdated", &ds, 0.0)
    });
    let labels = kubectl(&[
        "-n",
        ns,
        "get",
        "pods",
        "-l",
        "kubearmor-app=kubearmor",
        "-o",
        "jsonpath={.items[*].metadata.labels.pod-template-generation}",
    ]);
    note(format!("pod-template-generation labels the controller set: {labels:?}"));
    note("same images, a new env var: the template changes, OnDelete replaces nothing");
    kubectl(&["-n", ns, "set", "env", &format!("daemonset/{DS}"), "-c", "kubearmor", "CHURN_TEST=1"]);
    sw.wait_for("every old pod outdated although its images match", Duration::from_secs(30), relevant, |m| {
        m.is("stallwatch_workload_pods_outdated", &ds, nodes) && m.is("stallwatch_rollout_complete", &ds, 1.0)
    });
    let victim = kubectl(&[
        "-n",
        ns,
        "get",
        "pods",
        "-l",
        "kubearmor-app=kubearmor",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    kubectl(&["-n", ns, "delete", "pod", victim.trim(), "--wait=true"]);
    sw.wait_for("the re-created pod counts current", Duration::from_secs(60), relevant, |m| {
        m.is("stallwatch_workload_pods", &ds, nodes)
            && m.is("stallwatch_workload_pods_outdated", &ds, nodes - 1.0)
    });
}
