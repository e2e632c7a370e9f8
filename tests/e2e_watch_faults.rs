//! API faults against the watch loop, on the real test control plane and the real binary, each
//! asserted on scraped `/metrics` (and, for request counts, on the API server's own
//! `apiserver_request_total`): etcd compaction forcing 410 Gone, the API server frozen with
//! SIGSTOP (a black-holed connection), and RBAC that grants list but not watch.
//!
//! Each test uses its own CRD so that the API server's request counters for that resource count
//! stallwatch's requests only.

mod common;

use std::{
    collections::BTreeSet,
    process::Command,
    time::{Duration, Instant},
};

use common::{Metrics, Ns, Restore, Stallwatch, apply, apply_crd, kubectl, note, plane};
use serde_json::{Value, json};

const RELEVANT: &[&str] = &[
    "stallwatch_synced",
    "stallwatch_objects",
    "stallwatch_watch_errors",
    "stallwatch_relists",
    "stallwatch_api_requests",
    "stallwatch_resync_drift",
];

/// Every test here stops, restarts or starves the shared API server, or measures its request
/// counts: they run one at a time.
static PLANE_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn with<'a>(base: &[(&'a str, &'a str)], extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(extra).copied().collect()
}

/// A namespaced CRD of its own group, deleted when dropped.
struct Gadgets {
    group: String,
}

impl Gadgets {
    fn create() -> Gadgets {
        let g = Gadgets { group: format!("{}.stallwatch.test", common::unique("faults")) };
        apply_crd(
            &format!(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: gadgets.{0}}}\n\
                 spec:\n  group: {0}\n  names: {{kind: Gadget, listKind: GadgetList, plural: gadgets, singular: gadget}}\n  \
                 scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      \
                 schema:\n        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n",
                g.group
            ),
            &format!("gadgets.{}", g.group),
        );
        g
    }
    fn resource(&self) -> String {
        format!("{}/v1/Gadget", self.group)
    }
    fn add(&self, ns: &str, name: &str) {
        apply(&format!(
            "apiVersion: {}/v1\nkind: Gadget\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{size: 1}}\n",
            self.group
        ));
    }
    fn config(&self, ns: &str, extra: &str) -> String {
        format!(
            "{extra}targets:\n  - name: gadgets\n    resource: {{group: {}, version: v1, kind: Gadget}}\n    namespaces: [{ns}]\n",
            self.group
        )
    }
    /// The API server's own count of requests for gadgets with this verb (all codes).
    fn apiserver_requests(&self, verb: &str) -> f64 {
        let text = kubectl(&["get", "--raw", "/metrics"]);
        let m = Metrics::parse(&text).expect("parsing the API server's /metrics");
        m.sum("apiserver_request_total", &[("group", &self.group), ("resource", "gadgets"), ("verb", verb)])
    }
}

impl Drop for Gadgets {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let name = format!("gadgets.{}", self.group);
            let _ = common::try_kubectl(&["delete", "crd", &name, "--ignore-not-found", "--wait=false"]);
        }
    }
}

/// A ServiceAccount allowed `verbs` on gadgets in `ns`, and a kubeconfig with its token.
fn sa_kubeconfig(ns: &str, name: &str, group: &str, verbs: &[&str]) -> std::path::PathBuf {
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
         "rules": [{"apiGroups": [group], "resources": ["gadgets"], "verbs": verbs}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
    ]});
    apply(&objects.to_string());
    let token = kubectl(&["-n", ns, "create", "token", name, "--duration=1h"]);
    let dir = std::env::temp_dir().join(common::unique("stallwatch-e2e-sa"));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    common::write_kubeconfig(&kubeconfig, plane().apiserver_url(), Some(token.trim()));
    kubeconfig
}

fn served(m: &Metrics, ns: &str) -> BTreeSet<String> {
    m.find("stallwatch_status", &[("kind", "Gadget"), ("namespace", ns)])
        .iter()
        .map(|s| s.label("name").to_string())
        .collect()
}

fn names(prefix: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// POST a JSON body to etcd's v3 gateway.
fn etcd(path: &str, body: &Value) -> Value {
    let url = format!("{}{path}", plane().env["ETCD_URL"]);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-X", "POST", &url, "-d", &body.to_string()])
        .output()
        .expect("running curl");
    assert!(out.status.success(), "curl {url}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("etcd {path}: {e}"))
}

fn etcd_revision() -> u64 {
    let v = etcd("/v3/kv/range", &json!({"key": "AA==", "limit": 1}));
    v["header"]["revision"].as_str().and_then(|s| s.parse().ok()).expect("etcd header.revision")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_compaction_forces_gone_and_no_object_is_lost_or_duplicated() {
    let _exclusive = PLANE_LOCK.lock().await;
    let ns = Ns::new("faults-compact");
    let ns = ns.name.as_str();
    let other = Ns::new("faults-compact-other");
    let g = Gadgets::create();
    for name in names("g", 5) {
        g.add(ns, &name);
    }
    let res = g.resource();
    let w = [("resource", res.as_str()), ("watch_namespace", ns)];
    let sw = Stallwatch::start("compact", &g.config(ns, "resync: 10s\n"), &plane().kubeconfig);
    let m0 = sw.wait_for("five gadgets served, synced", Duration::from_secs(30), RELEVANT, |m| {
        m.is("stallwatch_synced", &w, 1.0) && served(m, ns) == names("g", 5)
    });
    let gone0 = m0.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "gone")]));
    let relist_gone0 = m0.sum("stallwatch_relists_total", &with(&w, &[("cause", "gone")]));

    // Compact etcd past every revision the watch has seen (after a write elsewhere, so the
    // watch's resourceVersion is strictly older). The running API server serves exact-version
    // lists and watches from its watch cache, which an external compaction does not touch, so
    // it is restarted: its new cache starts at the newest revision, and the watch's version
    // exists neither there nor in etcd. A gadget is added meanwhile: it must not be lost.
    g.add(ns, "g5");
    kubectl(&["-n", &other.name, "create", "configmap", "bump"]);
    let rev = etcd_revision();
    let v = etcd("/v3/kv/compaction", &json!({"revision": rev.to_string(), "physical": true}));
    assert!(v.get("error").is_none(), "compaction at {rev}: {v}");
    note(format!("etcd compacted at revision {rev}"));
    let _restore = Restore("apiserver");
    plane().ctl(&["restart", "apiserver"]);
    let m = sw.wait_for("410 counted", Duration::from_secs(60), RELEVANT, |m| {
        m.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "gone")])) > gone0
    });
    note(m.dump(&["stallwatch_watch_errors", "stallwatch_relists", "stallwatch_api_requests"]));
    let m =
        sw.wait_for("re-listed after 410, all six gadgets once", Duration::from_secs(40), RELEVANT, |m| {
            m.sum("stallwatch_relists_total", &with(&w, &[("cause", "gone")])) > relist_gone0
                && m.is("stallwatch_synced", &w, 1.0)
                && served(m, ns) == names("g", 6)
                && m.is("stallwatch_objects", &w, 6.0)
        });
    // The 410 was handled by a re-list, not by counting the watch as broken.
    let drift = m.sum("stallwatch_resync_drift_total", &w);
    assert_eq!(drift, 0.0, "a 410 re-list must not be counted as drift:\n{}", m.dump(RELEVANT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_api_server_is_stalled_within_the_idle_deadline_and_recovers() {
    let _exclusive = PLANE_LOCK.lock().await;
    let ns = Ns::new("faults-stop");
    let ns = ns.name.as_str();
    let g = Gadgets::create();
    g.add(ns, "a");
    let res = g.resource();
    let w = [("resource", res.as_str()), ("watch_namespace", ns)];
    let config = g.config(ns, "resync: 1h\nwatchIdleTimeout: 30s\n");
    let sw = Stallwatch::start("sigstop", &config, &plane().kubeconfig);
    let m0 = sw.wait_for("gadget served, synced", Duration::from_secs(30), RELEVANT, |m| {
        m.is("stallwatch_synced", &w, 1.0) && served(m, ns).contains("a")
    });
    let stalled0 = m0.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "stalled")]));
    let relists0 = m0.sum("stallwatch_relists_total", &w);

    let pid: i32 = std::fs::read_to_string(plane().dir.join("apiserver.pid"))
        .expect("apiserver.pid")
        .trim()
        .parse()
        .expect("a pid");
    struct Cont(i32);
    impl Drop for Cont {
        fn drop(&mut self) {
            // SAFETY: kill(2) on the plane's apiserver, which this test froze.
            unsafe { libc::kill(self.0, libc::SIGCONT) };
        }
    }
    note(format!("SIGSTOP kube-apiserver (pid {pid}) for 50s"));
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    let cont = Cont(pid);
    let stopped = Instant::now();
    // Silent for the 30s idle deadline, then the probing reopen gets no answer in 10s.
    let m = sw.wait_for("stalled counted, not synced", Duration::from_secs(50), RELEVANT, |m| {
        m.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "stalled")])) > stalled0
            && m.is("stallwatch_synced", &w, 0.0)
    });
    let took = stopped.elapsed();
    assert!(took <= Duration::from_secs(46), "stall noticed after {took:?} with a 30s idle deadline");
    assert!(served(&m, ns).contains("a"), "objects must be kept while the API server is frozen");
    let rest = Duration::from_secs(50).saturating_sub(stopped.elapsed());
    tokio::time::sleep(rest).await;
    drop(cont);
    note("SIGCONT kube-apiserver");
    g.add(ns, "b");
    let m =
        sw.wait_for("recovered: synced, the new gadget arrived", Duration::from_secs(90), RELEVANT, |m| {
            m.is("stallwatch_synced", &w, 1.0) && served(m, ns) == BTreeSet::from(["a".into(), "b".into()])
        });
    // Resumed from the last resourceVersion: no full re-list for a stall.
    assert_eq!(m.sum("stallwatch_relists_total", &w), relists0, "{}", m.dump(RELEVANT));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_without_watch_does_not_storm_the_api_server() {
    let _exclusive = PLANE_LOCK.lock().await;
    let ns = Ns::new("faults-rbac");
    let ns = ns.name.as_str();
    let g = Gadgets::create();
    g.add(ns, "a");
    let kubeconfig = sa_kubeconfig(ns, "lister", &g.group, &["get", "list"]);

    let res = g.resource();
    let w = [("resource", res.as_str()), ("watch_namespace", ns)];
    let lists0 = g.apiserver_requests("LIST");
    let watches0 = g.apiserver_requests("WATCH");
    let sw = Stallwatch::start("lister", &g.config(ns, "resync: 1h\n"), &kubeconfig);
    let t0 = Instant::now();
    sw.wait_for("listed, watch forbidden", Duration::from_secs(30), RELEVANT, |m| {
        served(m, ns).contains("a")
            && m.sum("stallwatch_api_requests_total", &with(&w, &[("verb", "watch"), ("code", "403")])) >= 1.0
            && m.is("stallwatch_synced", &w, 0.0)
    });
    // Two minutes of a watch the API server refuses.
    tokio::time::sleep(Duration::from_secs(120).saturating_sub(t0.elapsed())).await;
    let m = sw.scrape().expect("scrape");
    let lists = g.apiserver_requests("LIST") - lists0;
    let watches = g.apiserver_requests("WATCH") - watches0;
    let own_lists = m.sum("stallwatch_api_requests_total", &with(&w, &[("verb", "list")]));
    let own_watches = m.sum("stallwatch_api_requests_total", &with(&w, &[("verb", "watch")]));
    note(format!(
        "in 120s: API server counted {lists} LIST, {watches} WATCH for gadgets; stallwatch counted {own_lists} list, {own_watches} watch"
    ));
    assert!(own_lists <= 2.0, "re-list storm: {own_lists} LISTs in 2 minutes\n{}", m.dump(RELEVANT));
    // The API server counts every client's LISTs of the kind (the controller manager's metadata
    // informers list a new CRD too), by verb and resource but not by user agent: it must see at
    // least stallwatch's, and no storm from anyone.
    assert!(lists >= own_lists, "API server saw {lists} LIST, stallwatch counted {own_lists}");
    assert!(lists <= own_lists + 2.0, "re-list storm on the API server: {lists} LISTs in 2 minutes");
    // Backoff 0.8 s doubling to 30 s (+ jitter): about 7–10 attempts in two minutes, not 120.
    assert!(
        (4.0..=14.0).contains(&own_watches),
        "{own_watches} watch attempts in 2 minutes\n{}",
        m.dump(RELEVANT)
    );
    // The API server may not count requests its authorizer refused; it must not see more.
    assert!(watches <= own_watches, "API server saw {watches} WATCH, stallwatch counted {own_watches}");
    assert!(
        m.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "forbidden")])) >= 4.0,
        "{}",
        m.dump(RELEVANT)
    );
}
