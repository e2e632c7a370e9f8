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
        apply_crd(&common::schemaless_crd(&g.group, "Gadget", false), &format!("gadgets.{}", g.group));
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
    // The API server's request counter has every client's LISTs of the kind (the controller
    // manager's metadata informers list a new CRD too, and re-list it while it settles), by verb
    // and resource but not by user: it must hold at least stallwatch's. The audit log has this
    // service account's own requests: the same count as stallwatch's, so no storm hides behind
    // a counter that undercounts.
    assert!(lists >= own_lists, "API server saw {lists} LIST, stallwatch counted {own_lists}");
    let (audited_lists, audited_watches, _) = audited_gadgets(&audited(ns, "lister"), &g.group);
    note(format!("audit log of the lister: {audited_lists} LIST, {audited_watches} WATCH"));
    assert_eq!(audited_lists as f64, own_lists, "audit log vs stallwatch: LISTs of the lister");
    // Backoff 0.8 s doubling to 30 s (+ jitter): about 7–10 attempts in two minutes, not 120.
    assert!(
        (4.0..=14.0).contains(&own_watches),
        "{own_watches} watch attempts in 2 minutes\n{}",
        m.dump(RELEVANT)
    );
    // The API server may not count requests its authorizer refused; it must not see more. The
    // audit log records a request before authorization, so it holds every refused attempt.
    assert!(watches <= own_watches, "API server saw {watches} WATCH, stallwatch counted {own_watches}");
    assert_eq!(audited_watches as f64, own_watches, "audit log vs stallwatch: refused WATCHes of the lister");
    assert!(
        m.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "forbidden")])) >= 4.0,
        "{}",
        m.dump(RELEVANT)
    );
}

// ============================================================== the API server's side

/// A ServiceAccount with `rules` in `ns`, and a kubeconfig with its token. Its requests are in
/// the plane's audit log (the policy logs service accounts only) and can be matched by a
/// FlowSchema.
fn sa_with_rules(ns: &str, name: &str, rules: Value) -> (std::path::PathBuf, String) {
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]},
    ]});
    apply(&objects.to_string());
    let token = kubectl(&["-n", ns, "create", "token", name, "--duration=1h"]).trim().to_string();
    let dir = std::env::temp_dir().join(common::unique("stallwatch-e2e-sa"));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    common::write_kubeconfig(&kubeconfig, plane().apiserver_url(), Some(&token));
    (kubeconfig, token)
}

/// One request of the audit log (one line per request and stage; watches log two stages).
#[derive(Debug, Clone)]
struct Audited {
    id: String,
    verb: String,
    uri: String,
    code: u64,
}

/// The requests the API server logged for a service account, once each (the last stage).
fn audited(ns: &str, sa: &str) -> Vec<Audited> {
    let user = format!("system:serviceaccount:{ns}:{sa}");
    let text = std::fs::read_to_string(plane().dir.join("audit.log")).unwrap_or_default();
    let mut seen: std::collections::BTreeMap<String, Audited> = Default::default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        if v["user"]["username"] != user.as_str() {
            continue;
        }
        let id = v["auditID"].as_str().unwrap_or_default().to_string();
        let a = Audited {
            id: id.clone(),
            verb: v["verb"].as_str().unwrap_or_default().to_string(),
            uri: v["requestURI"].as_str().unwrap_or_default().to_string(),
            code: v["responseStatus"]["code"].as_u64().unwrap_or(0),
        };
        seen.insert(id, a);
    }
    seen.into_values().collect()
}

/// Audited requests to gadgets: (`LIST` pages, `WATCH` requests of which streamed lists).
fn audited_gadgets(reqs: &[Audited], group: &str) -> (usize, usize, usize) {
    let gadgets: Vec<_> = reqs.iter().filter(|a| a.uri.starts_with(&format!("/apis/{group}/v1/"))).collect();
    let lists = gadgets.iter().filter(|a| a.verb == "list").count();
    let watches = gadgets.iter().filter(|a| a.verb == "watch").count();
    let streams =
        gadgets.iter().filter(|a| a.verb == "watch" && a.uri.contains("sendInitialEvents=true")).count();
    (lists, watches, streams)
}

fn apiserver_metrics() -> Metrics {
    Metrics::parse(&kubectl(&["get", "--raw", "/metrics"])).expect("parsing the API server's /metrics")
}

/// Everything stallwatch counted in `api_requests_total` for one watch, by verb.
fn own_requests(m: &Metrics, w: &[(&str, &str)], verb: &str) -> f64 {
    m.sum("stallwatch_api_requests_total", &with(w, &[("verb", verb)]))
}

/// Cluster-scoped APF objects, deleted when dropped.
struct Apf(Vec<String>);

impl Drop for Apf {
    fn drop(&mut self) {
        for o in &self.0 {
            let _ = common::try_kubectl(&["delete", o, "--ignore-not-found", "--wait=false"]);
        }
    }
}

/// A client of the same priority level that holds its only seat: a streamed list (WatchList)
/// of `path` whose response it never reads. The API server releases a watch's seat only once
/// the initial events are written, and with the socket full it cannot write them, so the
/// request stays executing; a level whose concurrency limit is 0 then rejects everything else.
/// The script stops by itself after `secs`.
const HOG: &str = r#"
import socket, ssl, sys, time
host, port, path, token, ca, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, port))
t = ctx.wrap_socket(s, server_hostname=host)
t.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\nUser-Agent: apf-hog\r\n\r\n" % (path, host, port, token)).encode())
print(t.recv(12).decode(errors="replace"), flush=True)
time.sleep(secs)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_and_fairness_rejections_are_counted_throttled_and_paced() {
    let _exclusive = PLANE_LOCK.lock().await;
    let ns = Ns::new("faults-apf");
    let ns = ns.name.as_str();
    let g = Gadgets::create();
    g.add(ns, "a");
    let rules =
        json!([{"apiGroups": [&g.group], "resources": ["gadgets"], "verbs": ["get", "list", "watch"]}]);
    let (kubeconfig, _) = sa_with_rules(ns, "apf-watcher", rules);
    let hog_rules = json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]}]);
    let (_, hog_token) = sa_with_rules(ns, "apf-hog", hog_rules);
    // 200 configmaps of 64 KiB: about 13 MB of initial events, more than the sockets buffer.
    let blob = "x".repeat(64 * 1024);
    for batch in 0..10 {
        let items: Vec<Value> = (0..20)
            .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("ballast-{batch}-{i}"), "namespace": ns}, "data": {"blob": blob}}))
            .collect();
        common::kubectl_with(
            &["create", "-f", "-"],
            Some(&json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()),
        )
        .expect("creating ballast configmaps");
    }

    let res = g.resource();
    let w = [("resource", res.as_str()), ("watch_namespace", ns)];
    // A 10 s watch timeout, so the watch asks the API server again every 10 s.
    let sw = Stallwatch::start("apf", &g.config(ns, "resync: 1h\nwatchTimeout: 10s\n"), &kubeconfig);
    sw.wait_for("gadget served, synced", Duration::from_secs(30), RELEVANT, |m| {
        m.is("stallwatch_synced", &w, 1.0) && served(m, ns).contains("a")
    });

    // A priority level with no seats of its own, none to borrow, no queue; one FlowSchema for
    // stallwatch's service account and one for the hog, so the API server counts each apart.
    let pl = common::unique("sw-apf");
    let (fs_sw, fs_hog) = (format!("{pl}-stallwatch"), format!("{pl}-hog"));
    let _apf = Apf(vec![
        format!("flowschema/{fs_sw}"),
        format!("flowschema/{fs_hog}"),
        format!("prioritylevelconfiguration/{pl}"),
    ]);
    let fs = |name: &str, sa: &str| {
        json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": {"name": name},
          "spec": {"priorityLevelConfiguration": {"name": &pl}, "matchingPrecedence": 50,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{"subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": sa, "namespace": ns}}],
              "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": true, "namespaces": ["*"]}],
              "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}})
    };
    apply(
        &json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration", "metadata": {"name": &pl},
             "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 0, "lendablePercent": 0,
               "borrowingLimitPercent": 0, "limitResponse": {"type": "Reject"}}}},
            fs(&fs_sw, "apf-watcher"),
            fs(&fs_hog, "apf-hog"),
        ]})
        .to_string(),
    );
    let port = plane().env["APISERVER_PORT"].clone();
    let path = format!(
        "/api/v1/namespaces/{ns}/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=280"
    );
    struct Hog(std::process::Child);
    impl Drop for Hog {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let executing = |m: &Metrics| {
        m.sum(
            "apiserver_flowcontrol_current_executing_requests",
            &[("priority_level", &pl), ("flow_schema", &fs_hog)],
        )
    };
    // The level's configuration takes a moment to reach the dispatcher; the hog is admitted only
    // while nothing else of its level executes: try until it holds the seat.
    let mut hog = None;
    for attempt in 0..20 {
        let child = Command::new("python3")
            .args(["-c", HOG, "127.0.0.1", &port, &path, &hog_token, &plane().env["CA_CERT"], "240"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("starting python3");
        let h = Hog(child);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let m = apiserver_metrics();
        if executing(&m) >= 1.0 {
            note(format!("hog holds the level's seat (attempt {attempt})"));
            hog = Some(h);
            break;
        }
    }
    let hog = hog.unwrap_or_else(|| panic!("the hog never held the seat of {pl}"));

    let m0 = sw.scrape().expect("scrape");
    let t0 = Instant::now();
    let throttled0 = m0.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "throttled")]));
    let m1 = sw.wait_for("429 counted throttled", Duration::from_secs(30), RELEVANT, |m| {
        m.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "throttled")])) >= throttled0 + 2.0
            && m.sum("stallwatch_api_requests_total", &with(&w, &[("code", "429")])) >= 2.0
            && m.is("stallwatch_synced", &w, 0.0)
    });
    note(m1.dump(&["stallwatch_watch_errors", "stallwatch_api_requests"]));
    // Throttled for 90 s more: the attempts back off instead of hammering the level.
    let before = m1.sum("stallwatch_api_requests_total", &w);
    tokio::time::sleep(Duration::from_secs(90)).await;
    let m2 = sw.scrape().expect("scrape");
    let window = t0.elapsed();
    let during = m2.sum("stallwatch_api_requests_total", &w) - before;
    let throttled =
        m2.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "throttled")])) - throttled0;
    note(format!(
        "throttled for {window:?}: {during} requests in the last 90 s, {throttled} counted throttled"
    ));
    assert!(during >= 2.0, "the watch must keep trying while throttled: {during}\n{}", m2.dump(RELEVANT));
    assert!(during <= 12.0, "{during} attempts in 90 s while throttled: not paced\n{}", m2.dump(RELEVANT));
    assert!(served(&m2, ns).contains("a"), "objects are kept while throttled");

    // The API server's side: every rejection of stallwatch's FlowSchema, counted by stallwatch.
    drop(hog);
    drop(_apf);
    sw.wait_for("recovered after throttling", Duration::from_secs(90), RELEVANT, |m| {
        m.is("stallwatch_synced", &w, 1.0)
    });
    let m = sw.scrape().expect("scrape");
    let own_429 = m.sum("stallwatch_api_requests_total", &[("code", "429")]);
    let rejected =
        apiserver_metrics().sum("apiserver_flowcontrol_rejected_requests_total", &[("flow_schema", &fs_sw)]);
    let audited_429 = audited(ns, "apf-watcher").iter().filter(|a| a.code == 429).count() as f64;
    note(format!(
        "429: stallwatch counted {own_429}; API server rejected {rejected} of {fs_sw}; audit log {audited_429}"
    ));
    assert!(own_429 >= 2.0);
    assert_eq!(
        own_429,
        rejected,
        "stallwatch's 429 count must match the API server's rejections\n{}",
        m.dump(RELEVANT)
    );
    assert_eq!(own_429, audited_429, "stallwatch's 429 count must match the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restart_is_counted_and_recovered_without_a_storm() {
    let _exclusive = PLANE_LOCK.lock().await;
    let ns = Ns::new("faults-restart");
    let ns = ns.name.as_str();
    let g = Gadgets::create();
    g.add(ns, "a");
    let rules =
        json!([{"apiGroups": [&g.group], "resources": ["gadgets"], "verbs": ["get", "list", "watch"]}]);
    let (kubeconfig, _) = sa_with_rules(ns, "restart-watcher", rules);
    let res = g.resource();
    let w = [("resource", res.as_str()), ("watch_namespace", ns)];
    let sw = Stallwatch::start("restart", &g.config(ns, "resync: 1h\n"), &kubeconfig);
    let m0 = sw.wait_for("gadget served, synced", Duration::from_secs(30), RELEVANT, |m| {
        m.is("stallwatch_synced", &w, 1.0) && served(m, ns).contains("a")
    });
    let relists0 = m0.sum("stallwatch_relists_total", &w);
    let gone0 = m0.sum("stallwatch_relists_total", &with(&w, &[("cause", "gone")]));
    let lists0 = own_requests(&m0, &w, "list");
    let before: BTreeSet<String> = audited(ns, "restart-watcher").into_iter().map(|a| a.id).collect();
    let (l0, wa0, s0) = audited_gadgets(&audited(ns, "restart-watcher"), &g.group);
    note(format!("start: audit log {l0} LIST, {wa0} WATCH ({s0} streamed lists)\n{}", m0.dump(RELEVANT)));

    let _restore = Restore("apiserver");
    plane().ctl(&["stop", "apiserver"]);
    // Down: the reopen fails (refused connection; 429 with Retry-After while it drains).
    let outage = |m: &Metrics| {
        ["connect", "unavailable", "throttled", "timeout"]
            .iter()
            .map(|c| m.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", c)])))
            .sum::<f64>()
    };
    let failed0 = outage(&m0);
    let m = sw.wait_for("outage counted, not synced", Duration::from_secs(60), RELEVANT, |m| {
        outage(m) >= failed0 + 2.0 && m.is("stallwatch_synced", &w, 0.0)
    });
    note(m.dump(&["stallwatch_watch_errors", "stallwatch_api_requests"]));
    assert!(
        m.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "connect")])) >= 1.0,
        "a stopped API server refuses connections: connect must be counted\n{}",
        m.dump(RELEVANT)
    );
    // Failures while it is down resume the watch; they never list.
    assert_eq!(own_requests(&m, &w, "list"), lists0, "{}", m.dump(RELEVANT));
    assert_eq!(m.sum("stallwatch_relists_total", &w), relists0, "{}", m.dump(RELEVANT));
    assert!(served(&m, ns).contains("a"), "objects are kept while the API server is down");

    plane().ctl(&["start", "apiserver"]);
    g.add(ns, "b");
    let m =
        sw.wait_for("recovered: synced, the new gadget arrived", Duration::from_secs(90), RELEVANT, |m| {
            m.is("stallwatch_synced", &w, 1.0) && served(m, ns) == BTreeSet::from(["a".into(), "b".into()])
        });
    let relists = m.sum("stallwatch_relists_total", &w) - relists0;
    let gone = m.sum("stallwatch_relists_total", &with(&w, &[("cause", "gone")])) - gone0;
    let after: Vec<Audited> =
        audited(ns, "restart-watcher").into_iter().filter(|a| !before.contains(&a.id)).collect();
    let (lists, watches, streams) = audited_gadgets(&after, &g.group);
    let codes: std::collections::BTreeMap<u64, usize> =
        after.iter().fold(Default::default(), |mut acc, a| {
            *acc.entry(a.code).or_default() += 1;
            acc
        });
    note(format!(
        "after the restart: stallwatch re-listed {relists} times ({gone} for 410 Gone); the audit log has \
         {lists} LIST, {watches} WATCH ({streams} streamed lists) since the stop, by code {codes:?}\n{}",
        m.dump(RELEVANT)
    ));
    // A resumed watch re-lists nothing; a new watch cache that no longer holds the watch's
    // resourceVersion answers 410, which costs exactly one full list, counted `gone`.
    assert!(relists <= 1.0, "a restart must cost at most one full list: {relists}\n{}", m.dump(RELEVANT));
    assert_eq!(relists, gone, "only a 410 may re-list after a restart\n{}", m.dump(RELEVANT));
    // The API server's side agrees: at most one full list (one stream, or the pages of one LIST).
    assert!(streams + lists <= 1, "audit log: {lists} LIST + {streams} streamed lists after the restart");
    assert_eq!((streams + lists) as f64, relists, "audit log and stallwatch disagree on re-lists");
    // Every request the API server logged is one stallwatch counted. The 429s of a draining
    // server are answered before authentication, so the audit log cannot hold those.
    let delta = |code: &str| {
        let l = with(&w, &[("code", code)]);
        m.sum("stallwatch_api_requests_total", &l) - m0.sum("stallwatch_api_requests_total", &l)
    };
    let answered =
        m.sum("stallwatch_api_requests_total", &w) - m0.sum("stallwatch_api_requests_total", &w) - delta("0");
    let logged = after.len() as f64;
    assert!(
        logged <= answered && logged >= answered - delta("429"),
        "audit log {logged} requests, stallwatch counted {answered} answered ({} of them 429)",
        delta("429")
    );
}

/// `N` gadgets of about 1 KiB in `ns`, created 100 per request batch.
fn many_gadgets(g: &Gadgets, ns: &str, n: usize) {
    let pad = "p".repeat(1000);
    for batch in 0..n.div_ceil(100) {
        let items: Vec<Value> = (batch * 100..((batch + 1) * 100).min(n))
            .map(|i| {
                json!({"apiVersion": format!("{}/v1", g.group), "kind": "Gadget",
                "metadata": {"name": format!("m{i}"), "namespace": ns}, "spec": {"size": i, "pad": pad}})
            })
            .collect();
        common::kubectl_with(
            &["create", "-f", "-"],
            Some(&json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()),
        )
        .expect("creating gadgets");
    }
}

/// The API server's bytes for gadgets of `group`: (LIST response bytes, watch event bytes).
fn apiserver_bytes(m: &Metrics, group: &str) -> (f64, f64) {
    let list =
        m.sum("apiserver_response_sizes_sum", &[("group", group), ("resource", "gadgets"), ("verb", "LIST")]);
    let watch = m.sum("apiserver_watch_events_sizes_sum", &[("group", group)]);
    (list, watch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initial_list_is_streamed_and_lists_are_gzipped() {
    let _exclusive = PLANE_LOCK.lock().await;
    let ns = Ns::new("watch-list");
    let ns = ns.name.as_str();
    let g = Gadgets::create();
    many_gadgets(&g, ns, 1200);
    let rules =
        json!([{"apiGroups": [&g.group], "resources": ["gadgets"], "verbs": ["get", "list", "watch"]}]);
    let (kubeconfig, _) = sa_with_rules(ns, "streamer", rules);
    let res = g.resource();
    let w = [("resource", res.as_str()), ("watch_namespace", ns)];
    let a0 = apiserver_metrics();
    let sw = Stallwatch::start("watch-list", &g.config(ns, "resync: 15s\n"), &kubeconfig);
    let m = sw.wait_for("1200 gadgets listed, synced", Duration::from_secs(60), RELEVANT, |m| {
        m.is("stallwatch_synced", &w, 1.0) && m.is("stallwatch_objects", &w, 1200.0)
    });
    let a1 = apiserver_metrics();
    // Streamed: no LIST at start; one WATCH carried the state (its initial-events-end bookmark).
    assert_eq!(own_requests(&m, &w, "list"), 0.0, "the start list must be streamed\n{}", m.dump(RELEVANT));
    assert!(own_requests(&m, &w, "watch") >= 1.0);
    assert_eq!(m.sum("stallwatch_relists_total", &with(&w, &[("cause", "start")])), 1.0);
    let (lists, watches, streams) = audited_gadgets(&audited(ns, "streamer"), &g.group);
    assert_eq!((lists, streams), (0, 1), "audit log: {lists} LIST, {watches} WATCH, {streams} streamed");
    let (list_bytes, watch_bytes) = apiserver_bytes(&a1, &g.group);
    let (list_bytes0, watch_bytes0) = apiserver_bytes(&a0, &g.group);
    note(format!(
        "streamed start of 1200 gadgets: API server sent {} bytes of watch events, {} bytes of LIST responses",
        watch_bytes - watch_bytes0,
        list_bytes - list_bytes0
    ));
    assert!(watch_bytes - watch_bytes0 > 1_000_000.0, "1200 objects of ~1 KiB went through the watch");
    // The discovery request is counted like every other.
    assert!(own_requests(&m, &w, "discovery") >= 1.0, "{}", m.dump(RELEVANT));
    assert!(m.is("stallwatch_api_requests_total", &with(&w, &[("verb", "discovery"), ("code", "200")]), 1.0));

    // The exact-version re-list is still a LIST (page by page), and finds no drift.
    let m = sw.wait_for("periodic exact re-list", Duration::from_secs(40), RELEVANT, |m| {
        m.sum("stallwatch_relists_total", &with(&w, &[("cause", "periodic")])) >= 1.0
    });
    assert!(own_requests(&m, &w, "list") >= 3.0, "1200 objects are three pages\n{}", m.dump(RELEVANT));
    assert_eq!(m.sum("stallwatch_resync_drift_total", &w), 0.0, "{}", m.dump(RELEVANT));
    let (lists, _, _) = audited_gadgets(&audited(ns, "streamer"), &g.group);
    assert_eq!(lists as f64, own_requests(&m, &w, "list"), "audit log vs stallwatch: LIST pages");

    // gzip: the same page of 500 as stallwatch asks for, with and without Accept-Encoding.
    let env = &plane().env;
    let url = format!("{}/apis/{}/v1/namespaces/{ns}/gadgets?limit=500", plane().apiserver_url(), g.group);
    let fetch = |gzip: bool| -> usize {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "20", "--cacert", &env["CA_CERT"], "--cert", &env["ADMIN_CERT"]])
            .args(["--key", &env["ADMIN_KEY"], &url]);
        if gzip {
            c.args(["-H", "Accept-Encoding: gzip"]);
        }
        let out = c.output().expect("curl");
        assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
        if gzip {
            assert_eq!(
                &out.stdout[..2],
                &[0x1f, 0x8b],
                "the API server answers gzip to Accept-Encoding: gzip"
            );
        }
        out.stdout.len()
    };
    let (plain, gz) = (fetch(false), fetch(true));
    note(format!(
        "one LIST page of 500 gadgets: {plain} bytes plain, {gz} bytes gzip ({:.1}x)",
        plain as f64 / gz as f64
    ));
    assert!(gz * 2 < plain, "gzip must at least halve a page of objects: {gz} vs {plain}");
}

/// Steady-state cost of one quiet watch, measured on the API server's side (audit log) for this
/// build and, side by side, for `STALLWATCH_BASELINE_BIN` if set (another build, e.g. main's):
/// `STALLWATCH_BASELINE_BIN=… STALLWATCH_MEASURE_SECS=600 cargo test --test e2e_watch_faults -- \
/// --ignored --test-threads=1 steady_state`. Defaults: resync 10m, watchTimeout 200s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of ten minutes; run by hand"]
async fn steady_state_requests_per_watch_per_hour() {
    let _exclusive = PLANE_LOCK.lock().await;
    let secs: u64 = std::env::var("STALLWATCH_MEASURE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let ns = Ns::new("steady");
    let ns = ns.name.as_str();
    let mut runs = vec![("this build".to_string(), common::stallwatch_bin())];
    if let Some(b) = std::env::var_os("STALLWATCH_BASELINE_BIN").filter(|b| !b.is_empty()) {
        runs.push(("baseline".to_string(), b.into()));
    }
    let mut started = vec![];
    let original = std::env::var_os("STALLWATCH_BIN_PATH");
    for (i, (label, bin)) in runs.iter().enumerate() {
        let g = Gadgets::create();
        many_gadgets(&g, ns, 50);
        let sa = format!("steady-{i}");
        let rules =
            json!([{"apiGroups": [&g.group], "resources": ["gadgets"], "verbs": ["get", "list", "watch"]}]);
        let (kubeconfig, _) = sa_with_rules(ns, &sa, rules);
        // SAFETY of the env switch: tests here run one at a time (PLANE_LOCK).
        unsafe { std::env::set_var("STALLWATCH_BIN_PATH", bin) };
        let sw = Stallwatch::start(&format!("steady-{i}"), &g.config(ns, ""), &kubeconfig);
        note(format!("{label}: {}", bin.display()));
        started.push((label.clone(), g, sa, sw));
    }
    match original {
        Some(o) => unsafe { std::env::set_var("STALLWATCH_BIN_PATH", o) },
        None => unsafe { std::env::remove_var("STALLWATCH_BIN_PATH") },
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    for (label, g, sa, sw) in &started {
        let reqs = audited(ns, sa);
        let (lists, watches, streams) = audited_gadgets(&reqs, &g.group);
        let discovery = reqs.iter().filter(|a| a.uri == format!("/apis/{}/v1", g.group)).count();
        let per_hour = |n: usize| n as f64 * 3600.0 / secs as f64;
        let m = sw.scrape().expect("scrape");
        note(format!(
            "{label}, {secs}s, one quiet watch of 50 objects (API server's audit log): {lists} LIST pages, \
             {watches} WATCH ({streams} streamed lists), {discovery} discovery, {} requests in all = {:.0}/h \
             (LIST {:.0}/h, WATCH {:.0}/h)\n{}",
            reqs.len(),
            per_hour(reqs.len()),
            per_hour(lists),
            per_hour(watches),
            m.dump(&["stallwatch_api_requests", "stallwatch_relists"])
        ));
        assert!(watches >= 1, "{label}: no watch in {secs}s");
    }
}
