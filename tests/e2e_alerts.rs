//! End-to-end alerting (issue #5): the real exporter on the real test
//! control plane, scraped by Debian's Prometheus, which evaluates the SHIPPED rules (thresholds
//! shortened with `alerts/generate override`, never a hand-edited copy) and notifies Debian's
//! Alertmanager, which delivers to a webhook receiver inside this test.
//!
//! The KubeArmor story, with a test operator playing KubeArmor's operator (Deployment
//! `kubearmor-operator`, a leader Lease it renews, status writes as field manager
//! `kubearmor-operator`):
//!
//! 1. Converged, and the API server restarted once: nothing fires for the story's objects.
//! 2. `spec.kubearmorImage.image` changes; the operator marks the config `Pending` and never
//!    updates the DaemonSet (KubeArmor #1842). `StallwatchObjectStalled` pages, with the warnings
//!    that say why; labels and annotations are checked, the time from the fault to the page is
//!    measured. A second Alertmanager with the shipped inhibition (alerts/alertmanager-inhibit.yml)
//!    sends exactly one notification for the incident, the page with its reason and next step;
//!    the old routing's notification count is measured against it. Every PromQL query of every
//!    dashboard panel returns data.
//! 3. The operator "restarts" (new pod, new Lease holder) and rolls the DaemonSet: every alert
//!    resolves, and nothing pages again on the way (no alert resolves and re-fires, no new one).
//! 4. A healthy rollout while a node joins and another leaves: no page, during the rollout and for
//!    a while after it.

mod alerting;
mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use alerting::{Alert, Notification, Prom, ShippedAm, Stack, StackConfig, Webhook, show, unix_now};
use common::{
    Ns, Restore, Stallwatch, apply,
    kubearmor::{
        CR, DS, LEASE, Mode, OPERATOR, Operator, config_yaml, cr_labels, daemonset_yaml_min_ready, ds_labels,
        ds_pod_lines, ensure_crd, image_row, kac, micro_time, node_count, operator_deployment_yaml,
        rolled_out, set_cr_image, status_is, status_of, with,
    },
    kubectl, note, plane,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::{Api, api::DynamicObject};
use serde_json::Value;

const TARGET: &str = "kubearmor";
const JOB: &str = "stallwatch";

/// The exporter's verdict turns Stalled after this (StallwatchObjectStalled follows the verdict).
const STALLED_AFTER: &str = "15s";
const RESYNC: &str = "20s";

/// The first Alertmanager routes as docs/alerts.md recommended before the inhibition shipped:
/// grouped by alert name and object, no inhibition. Every alert reaches its webhook, so the
/// labels and texts of each alert are checked there, and it measures the notifications "before".
const LEGACY_GROUP_BY: [&str; 4] = ["alertname", "target", "namespace", "name"];
/// The second one as docs/alerts.md recommends now: grouped by object, with the inhibition of
/// alerts/alertmanager-inhibit.yml ("after": one notification per stuck object).
const SHIPPED_GROUP_BY: [&str; 5] = ["cluster", "target", "kind", "namespace", "name"];

/// The alerts the stuck update raises (mismatch, time in Pending, unobserved
/// generation, and the page), and only these. Not StallwatchControllerSilent: the operator writes
/// status only on change (the kubearmor preset's `statusWrites: onChange`), so its old status
/// write says nothing; that it stays quiet is asserted with every other alert below.
const STUCK_ALERTS: [&str; 4] = [
    "StallwatchObjectStalled",
    "StallwatchImageNotRolledOut",
    "StallwatchPhaseNotReady",
    "StallwatchGenerationNotObserved",
];

/// `alerts/generate override --set ...`: the thresholds of the object, workload and controller
/// alerts shortened to seconds (each still longer than a healthy rollout of this story, about
/// 4 s); the exporter-health alerts that a healthy exporter must never raise shortened too.
/// Watch errors, throttling, unsynced targets and reload failures keep their defaults: they are
/// meant to ride out the API server restart of step 1.
fn overrides() -> Vec<String> {
    let mut s: Vec<String> = [
        "StallwatchObjectStalled",
        "StallwatchGenerationNotObserved",
        "StallwatchPhaseNotReady",
        "StallwatchImageNotRolledOut",
        "StallwatchRolloutNotProgressing",
        "StallwatchPodsOutdated",
        "StallwatchControllerSilent",
        "StallwatchLeaseStale",
        "StallwatchWatchStale",
    ]
    .iter()
    .map(|a| format!("{a}.for=1s"))
    .collect();
    for a in [
        "StallwatchGenerationNotObserved",
        "StallwatchPhaseNotReady",
        "StallwatchImageNotRolledOut",
        "StallwatchRolloutNotProgressing",
        "StallwatchControllerSilent",
        "StallwatchLeaseStale",
    ] {
        s.push(format!("{a}.threshold=20s"));
    }
    s.extend(
        [
            // The progressing-rollout guard: longer than one rollout step.
            "*.progress_window=15s",
            "*.progress=20s",
            "StallwatchPodsOutdated.window=30s",
            // Three missed re-lists.
            "StallwatchWatchStale.threshold=60s",
            // Longer than Prometheus needs for its first scrape.
            "StallwatchExporterDown.for=10s",
            "StallwatchExporterAbsent.for=10s",
        ]
        .map(String::from),
    );
    s
}

// ------------------------------------------------------------------ fixtures

fn story_yaml(ns: &str) -> String {
    // One second per pod makes each rollout visible to 1 s scrapes without slowing the story.
    format!(
        r#"{config}---
{daemonset}---
{deployment}---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {{name: {LEASE}, namespace: {ns}}}
spec: {{holderIdentity: {OPERATOR}-0, leaseDurationSeconds: 15, leaseTransitions: 0, renewTime: "{now}", acquireTime: "{now}"}}
"#,
        config = config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"),
        daemonset = daemonset_yaml_min_ready(ns, 1),
        deployment = operator_deployment_yaml(ns),
        now = micro_time()
    )
}

/// The story's stallwatch config: the kubearmor preset on the test namespace, the CRD group's
/// APIService, and the operator's leader Lease. The preset names no Lease of its own (and
/// ignores a `controller:` key), so the Lease is a second target under the same target name.
fn sw_config(ns: &str) -> String {
    format!(
        r#"resync: {RESYNC}
stalledAfter: {STALLED_AFTER}
context:
  apiServices: [v1.operator.kubearmor.com]
targets:
  - preset: kubearmor
    namespace: {ns}
  - name: {TARGET}
    resource: {{group: coordination.k8s.io, version: v1, kind: Lease}}
    namespaces: [{ns}]
    fieldSelector: metadata.name={LEASE}
    controller:
      lease: {{namespace: {ns}, name: {LEASE}}}
"#
    )
}

/// A Warning event on the KubeArmorConfig, as the stuck operator reports it.
fn warning_event(ns: &str) {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    // Warnings are counted per involved object's UID, as the API server's own events name it.
    let uid = common::kubectl(&[
        "-n",
        ns,
        "get",
        "kubearmorconfigs.operator.kubearmor.com",
        CR,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let yaml = format!(
        r#"apiVersion: v1
kind: Event
metadata: {{name: {name}, namespace: {ns}}}
involvedObject: {{apiVersion: operator.kubearmor.com/v1, kind: KubeArmorConfig, name: {CR}, namespace: {ns}, uid: {uid}}}
type: Warning
reason: InstallationPending
message: "Kubearmor Installation is in-progress"
source: {{component: {OPERATOR}}}
count: 1
firstTimestamp: "{now}"
lastTimestamp: "{now}"
"#,
        name = common::unique("kubearmorconfig-default"),
        uid = uid.trim(),
    );
    common::kubectl_with(&["create", "-f", "-"], Some(&yaml))
        .unwrap_or_else(|e| common::fail(&format!("creating the Warning event: {e}")));
}

/// A story DaemonSet pod that is Running and not being deleted.
#[derive(Debug)]
struct DsPod {
    node: String,
    image: String,
    /// Seconds since its Ready condition turned True (None: not Ready).
    ready_for: Option<f64>,
}

fn ds_pods(ns: &str) -> Vec<DsPod> {
    let now = jiff::Timestamp::now();
    ds_pod_lines(
        ns,
        r#"{.spec.nodeName}|{.spec.containers[0].image}|{.metadata.deletionTimestamp}|{.status.phase}|{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].lastTransitionTime}"#,
    )
    .lines()
    .filter_map(|l| {
        let f: Vec<&str> = l.split('|').collect();
        if f.len() != 6 || !f[2].is_empty() || f[3] != "Running" {
            return None;
        }
        let since = f[5].parse::<jiff::Timestamp>().ok();
        let ready_for = since.filter(|_| f[4] == "True").map(|t| (now - t).total(jiff::Unit::Second).unwrap_or(0.0));
        Some(DsPod { node: f[0].to_string(), image: f[1].to_string(), ready_for })
    })
    .collect()
}

// ------------------------------------------------------------------ label sets

/// The story's series ([`common::kubearmor::RELEVANT`]) and the Lease's and operator's.
fn relevant() -> Vec<&'static str> {
    common::kubearmor::RELEVANT.iter().copied().chain(["stallwatch_lease", "stallwatch_operator"]).collect()
}

// ------------------------------------------------------------------ alerts

/// Alerts Prometheus holds for the story's namespace, `state` = pending|firing.
fn prom_alerts(prom: &Prom, ns: &str, state: &str) -> Vec<String> {
    match prom.alerts() {
        Ok(a) => a
            .iter()
            .filter(|a| a["labels"]["namespace"] == ns && a["state"] == state)
            .map(|a| format!("{} {}", a["labels"]["alertname"].as_str().unwrap_or(""), a["labels"]))
            .collect(),
        Err(e) => common::fail(&format!("GET /api/v1/alerts: {e}")),
    }
}

fn is_story(a: &Alert, ns: &str) -> bool {
    a.label("namespace") == ns
}

/// `docs/runbooks.md` has a section for the anchor of `url`.
fn runbook_exists(url: &str) -> bool {
    let Some((_, anchor)) = url.split_once('#') else { return false };
    let doc = std::fs::read_to_string(common::repo().join("docs/runbooks.md")).unwrap_or_default();
    url.starts_with("https://github.com/stallwatch/stallwatch/blob/main/docs/runbooks.md#")
        && doc.lines().any(|l| l.strip_prefix("## ").is_some_and(|h| h.trim().to_lowercase() == anchor))
}

fn check_common(a: &Alert, ns: &str, kind: &str, name: &str, severity: &str) {
    let want = [
        ("severity", severity),
        ("target", TARGET),
        ("kind", kind),
        ("namespace", ns),
        ("name", name),
        ("job", JOB),
    ];
    for (k, v) in want {
        assert_eq!(a.label(k), v, "label {k} of {a}");
    }
    assert!(a.label("instance").starts_with("127.0.0.1:"), "instance of {a}");
    for k in ["summary", "description", "runbook_url"] {
        assert!(!a.annotation(k).trim().is_empty(), "annotation {k} of {a}: {:?}", a.annotations);
    }
    assert!(
        runbook_exists(a.annotation("runbook_url")),
        "runbook_url of {a} has no section in docs/runbooks.md: {}",
        a.annotation("runbook_url")
    );
    assert!(
        a.annotation("runbook_url").ends_with(&format!("#{}", a.name().to_lowercase())),
        "runbook_url of {a}: {}",
        a.annotation("runbook_url")
    );
    let object = format!("{kind} {ns}/{name}");
    assert!(
        a.annotation("description").contains(&object),
        "description of {a} names {object}: {:?}",
        a.annotations
    );
    assert!(!a.annotation("description").contains("<no value>"), "{:?}", a.annotations);
    assert!(!a.annotation("summary").contains("<no value>"), "{:?}", a.annotations);
}

/// What a notification says about its alerts: status, labels, startsAt of each.
type GroupContent = Vec<(String, BTreeMap<String, String>, String)>;

/// The notifications since `since` that carry a firing alert of the story, without repeats (a
/// notification of a group whose alerts, by labels, status and startsAt, are the ones that
/// group's previous notification carried).
fn incident_notifications(hook: &Webhook, ns: &str, since: Instant) -> Vec<Notification> {
    let mut last: BTreeMap<String, GroupContent> = BTreeMap::new();
    let mut out = Vec::new();
    for n in hook.notifications().into_iter().filter(|n| n.at >= since) {
        let alerts = n.alerts();
        if !alerts.iter().any(|a| a.status == "firing" && is_story(a, ns)) {
            continue;
        }
        let mut content: Vec<_> =
            alerts.iter().map(|a| (a.status.clone(), a.labels.clone(), a.starts_at.clone())).collect();
        content.sort();
        let key = n.body["groupKey"].as_str().unwrap_or("").to_string();
        if last.get(&key) != Some(&content) {
            last.insert(key, content);
            out.push(n);
        }
    }
    out
}

/// The story alerts whose last notification says firing (by label set).
fn open_alerts(all: &[Alert], ns: &str) -> Vec<String> {
    let mut last: BTreeMap<&BTreeMap<String, String>, &str> = BTreeMap::new();
    for a in all.iter().filter(|a| is_story(a, ns)) {
        last.insert(&a.labels, &a.status);
    }
    last.into_iter().filter(|(_, s)| *s == "firing").map(|(l, _)| format!("{l:?}")).collect()
}

fn labels_of(a: &Alert) -> String {
    a.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(", ")
}

// ------------------------------------------------------------------ dashboards

struct PanelQuery {
    dashboard: String,
    uid: String,
    title: String,
    expr: String,
}

fn panel_queries() -> (Vec<PanelQuery>, Vec<(String, String, String)>) {
    let mut queries = Vec::new();
    let mut variables = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(common::repo().join("dashboards"))
        .expect("dashboards/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    fn walk(panels: &Value, file: &str, uid: &str, out: &mut Vec<PanelQuery>) {
        for p in panels.as_array().into_iter().flatten() {
            walk(&p["panels"], file, uid, out);
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str().filter(|e| !e.trim().is_empty()) {
                    out.push(PanelQuery {
                        dashboard: file.to_string(),
                        uid: uid.to_string(),
                        title: p["title"].as_str().unwrap_or("").to_string(),
                        expr: expr.to_string(),
                    });
                }
            }
        }
    }
    for f in files {
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&f).expect("reading a dashboard"))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let file = f.file_name().unwrap().to_string_lossy().to_string();
        let uid = d["uid"].as_str().unwrap_or("").to_string();
        walk(&d["panels"], &file, &uid, &mut queries);
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let q = match &v["query"] {
                Value::String(s) => s.clone(),
                Value::Object(o) => o.get("query").and_then(Value::as_str).unwrap_or("").to_string(),
                _ => String::new(),
            };
            if v["type"] == "query" {
                variables.push((file.clone(), v["name"].as_str().unwrap_or("").to_string(), q));
            }
        }
    }
    (queries, variables)
}

/// Grafana's template variables and built-in intervals, longest names first (`$namespace`
/// before `$name`).
fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut vars: Vec<(&str, &str)> = vars.to_vec();
    vars.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut out = expr.to_string();
    for (k, v) in &vars {
        out = out.replace(&format!("${{{k}}}"), v).replace(&format!("[[{k}]]"), v);
    }
    for (k, v) in &vars {
        out = out.replace(&format!("${k}"), v);
    }
    out
}

/// Whether the query uses the `name` variable (not just `$namespace`).
fn uses_name(expr: &str) -> bool {
    let e = expr.replace("$namespace", "").replace("${namespace}", "");
    e.contains("$name") || e.contains("${name}")
}

/// The values Grafana uses for All of the fleet variables (and of `kind`).
fn all_values() -> Vec<(&'static str, &'static str)> {
    vec![("cluster", ".*"), ("job", ".+"), ("kind", ".+")]
}

/// The drill-down link of the overview's "Objects that are not Current" table, filled from the
/// story's row as Grafana fills `${__data.fields.X}`, sets every variable of the object dashboard
/// and selects exactly one object.
fn check_drilldown(prom: &Prom, ns: &str) {
    let read = |f: &str| -> Value {
        let p = common::repo().join("dashboards").join(f);
        serde_json::from_str(&std::fs::read_to_string(&p).expect("reading a dashboard"))
            .expect("dashboard JSON")
    };
    let (overview, object) = (read("stallwatch-overview.json"), read("stallwatch-object.json"));
    let table = overview["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["title"] == "Objects that are not Current")
        .expect("the overview's table of objects that are not Current");
    let url = table["fieldConfig"]["overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|o| o["properties"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["id"] == "links")
        .flat_map(|p| p["value"].as_array().cloned().unwrap_or_default())
        .find_map(|l| l["url"].as_str().map(String::from))
        .expect("a data link on the table");
    let expr = substitute(
        table["targets"][0]["expr"].as_str().expect("the table's query"),
        &[builtins(), all_values(), vec![("target", TARGET), ("namespace", ns)]].concat(),
    );
    let rows =
        prom.query(&expr, None).unwrap_or_else(|e| common::fail(&format!("overview table: {e}\n  {expr}")));
    let row = rows
        .iter()
        .find(|r| r["metric"]["name"] == CR && r["metric"]["kind"] == "KubeArmorConfig")
        .unwrap_or_else(|| common::fail(&format!("overview table: no row for {CR}: {rows:?}")));
    let mut set: Vec<(String, String)> = Vec::new();
    for part in url.split_once('?').map_or("", |(_, q)| q).split('&') {
        let Some((var, v)) = part.split_once('=').and_then(|(k, v)| k.strip_prefix("var-").map(|k| (k, v)))
        else {
            continue;
        };
        let field = v
            .strip_prefix("${__data.fields.")
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or_else(|| panic!("link {url}: var-{var} is no field reference"));
        set.push((var.to_string(), row["metric"][field].as_str().unwrap_or("").to_string()));
    }
    let object_vars: BTreeSet<String> = object["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "query")
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    let got: BTreeSet<String> = set.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(got, object_vars, "the drill-down link sets every variable of the object dashboard: {url}");
    let vars: Vec<(&str, &str)> = set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let sel = substitute(
        r#"stallwatch_status{cluster=~"$cluster", job=~"$job", target="$target", kind=~"$kind", namespace=~"$namespace", name="$name"}"#,
        &vars,
    );
    let objects = prom
        .query(&format!("count by (target, kind, namespace, name) ({sel})"), None)
        .unwrap_or_else(|e| common::fail(&format!("drill-down: {e}")));
    assert_eq!(
        objects.len(),
        1,
        "the drill-down link's variables {set:?} select exactly one object: {objects:?}"
    );
    note(format!("drill-down link of the overview table selects exactly one object: {set:?}"));
}

fn builtins() -> Vec<(&'static str, &'static str)> {
    vec![("__rate_interval", "1m"), ("__range", "5m"), ("__interval", "15s"), ("datasource", "prometheus")]
}

/// Panels that show only problems (`> 0` filters) whose problem the stuck update does not have:
/// the DaemonSet is untouched by the stuck operator, so its rollout is complete and no pod is
/// outdated. They are checked over the rollouts of steps 3 and 4 instead.
const PROBLEM_ONLY: [(&str, &str, &str); 2] = [
    (
        "stallwatch-overview",
        "Time since rollout progress",
        "only incomplete rollouts (> 0); the stuck operator never starts one",
    ),
    (
        "stallwatch-overview",
        "Pods on an outdated template",
        "only workloads with outdated pods (> 0); the stuck operator never changes the template",
    ),
];

fn problem_only(q: &PanelQuery) -> Option<&'static str> {
    PROBLEM_ONLY.iter().find(|(uid, title, _)| q.uid == *uid && q.title == *title).map(|p| p.2)
}

/// Every panel query returns data at the stuck step (instant query now); panels with `$name`
/// are tried for each object of the story (the `name` variable's values), the stuck config first.
/// Returns the problem-only queries for the range check after the rollouts.
fn check_panels(prom: &Prom, ns: &str, api_restarted: bool) -> Vec<(PanelQuery, String)> {
    let (queries, variables) = panel_queries();
    assert!(queries.len() >= 20, "only {} panel queries found in dashboards/", queries.len());
    let mut vars: Vec<(&str, &str)> = builtins();
    vars.extend(all_values());
    vars.extend([("target", TARGET), ("namespace", ns)]);
    // The template variables themselves resolve to the story's values.
    let mut names: Vec<String> = vec![CR.to_string()];
    for (file, var, q) in &variables {
        let inner = q.trim().strip_prefix("label_values(").and_then(|r| r.strip_suffix(')'));
        let Some(inner) = inner else { panic!("{file}: variable {var}: unsupported query {q:?}") };
        let (selector, label) = match inner.rsplit_once(',') {
            // `kind` depends on `name`: the stuck config's.
            Some((s, l)) => {
                (substitute(s.trim(), &[vars.clone(), vec![("name", CR)]].concat()), l.trim().to_string())
            }
            None => (String::from("{__name__=~\".+\"}"), inner.trim().to_string()),
        };
        let got = prom
            .label_values(&label, &selector)
            .unwrap_or_else(|e| common::fail(&format!("{file}: variable {var}: {e}")));
        let want = match var.as_str() {
            "target" => TARGET,
            "namespace" => ns,
            "name" => CR,
            "job" => JOB,
            "kind" => "KubeArmorConfig",
            // no cluster label on this single Prometheus: the hidden variable offers nothing, All (.*) matches
            _ => "",
        };
        assert!(
            want.is_empty() || got.iter().any(|g| g == want),
            "{file}: variable {var} = label_values({selector}, {label}) does not offer {want:?}: {got:?}"
        );
        if var == "name" {
            for g in got {
                if !names.contains(&g) {
                    names.push(g);
                }
            }
        }
        note(format!("dashboard variable {file} ${var}: offers {want:?}"));
    }
    let mut report = String::new();
    let mut empty = Vec::new();
    let mut later = Vec::new();
    for q in queries {
        let by_name = uses_name(&q.expr);
        let candidates: Vec<&str> =
            if by_name { names.iter().map(String::as_str).collect() } else { vec![CR] };
        let mut found = None;
        let mut last = String::new();
        for name in &candidates {
            let mut v = vars.clone();
            v.push(("name", name));
            let expr = substitute(&q.expr, &v);
            // `$1` is label_replace's capture group, not a variable.
            assert!(
                !expr
                    .match_indices('$')
                    .any(|(i, _)| !expr[i + 1..].starts_with(|c: char| c.is_ascii_digit())),
                "{}: {}: unsubstituted variable in {expr}",
                q.dashboard,
                q.title
            );
            match prom.query(&expr, None) {
                Ok(r) if !r.is_empty() => {
                    found = Some((name.to_string(), r));
                    break;
                }
                Ok(_) => last = format!("empty: {expr}"),
                Err(e) => common::fail(&format!(
                    "{}: panel {:?}: query failed: {e}\n  {expr}",
                    q.dashboard, q.title
                )),
            }
        }
        match (found, problem_only(&q)) {
            (Some((name, r)), _) => {
                let via = if by_name { format!(" ($name={name})") } else { String::new() };
                let _ = writeln!(
                    report,
                    "    {}: {}{via}: {} series, e.g. {}",
                    q.uid,
                    q.title,
                    r.len(),
                    show(&r[0])
                );
            }
            (None, Some(why)) => {
                let _ = writeln!(
                    report,
                    "    {}: {}: no data at the stuck step ({why}); checked over the rollouts",
                    q.uid, q.title
                );
                later.push((q, last));
            }
            (None, None) if !api_restarted && q.expr.contains("stallwatch_watch_errors_total") => {
                let _ = writeln!(
                    report,
                    "    {}: {}: no data: no watch failed (the API server is restarted only on a plane this test owns)",
                    q.uid, q.title
                );
            }
            (None, None) => empty.push(format!("{}: {:?}: {last}", q.dashboard, q.title)),
        }
    }
    note(format!("dashboard panel queries at the stuck step:\n{report}"));
    assert!(
        empty.is_empty(),
        "dashboard panel queries without data at the stuck step:\n  {}",
        empty.join("\n  ")
    );
    later
}

// ------------------------------------------------------------------ the story

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_and_resolve_through_alertmanager() {
    let t_test = Instant::now();
    let missing = alerting::missing_tools();
    assert!(
        missing.is_empty(),
        "missing {missing:?}: apt-get install -y prometheus prometheus-alertmanager (tests/setup does)"
    );
    plane();
    ensure_crd();
    let ns_guard = Ns::new("ka-alerts");
    let ns = ns_guard.name.as_str();
    let client = common::client().await;
    let crs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kac());
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let cr = cr_labels(ns);
    let ds = ds_labels(ns);
    let work = std::env::temp_dir().join("stallwatch-e2e-runs").join(common::unique("alerts"));
    std::fs::create_dir_all(&work).expect("creating the work dir");
    let keep_on_failure = KeepDir(work.clone());

    // ---- 1. converged
    note("step 1: KubeArmorConfig, DaemonSet, operator Deployment and Lease, converged");
    apply(&story_yaml(ns));
    let operator = Operator::start_with_lease(client.clone(), ns, LEASE);
    let nodes = node_count();
    common::eventually_async(
        "DaemonSet rolled out on every node, CR Running",
        Duration::from_secs(90),
        || async {
            let d = dss.get(DS).await.map_err(|e| e.to_string())?;
            let c = crs.get(CR).await.map_err(|e| e.to_string())?;
            let phase = c.data["status"]["phase"].as_str().unwrap_or("").to_string();
            let desired = d.status.as_ref().map_or(0, |s| s.desired_number_scheduled) as usize;
            if rolled_out(&d) && desired == nodes && phase == "Running" {
                Ok(())
            } else {
                Err(format!("phase {phase:?}, desired {desired}/{nodes} nodes, status {:?}", d.status))
            }
        },
    )
    .await;

    // Rules from the single source, thresholds shortened by the documented mechanism.
    let rules = work.join("short.rules.yml");
    let mut gen_cmd = std::process::Command::new(common::repo().join("alerts/generate"));
    gen_cmd.arg("override");
    for s in overrides() {
        gen_cmd.args(["--set", &s]);
    }
    let out = gen_cmd.arg("-o").arg(&rules).output().expect("running alerts/generate");
    assert!(
        out.status.success(),
        "alerts/generate override failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    note(format!("rules: alerts/generate override --set {}", overrides().join(" --set ")));

    let hook = Webhook::start(&work.join("notifications.jsonl"));
    let shipped_hook = Webhook::start(&work.join("notifications-shipped.jsonl"));
    let shipped_url = shipped_hook.url();
    let inhibit = common::repo().join("alerts/alertmanager-inhibit.yml");
    let sw = Stallwatch::start("alerts", &sw_config(ns), &plane().kubeconfig);
    let lease_series = [("target", TARGET), ("lease_namespace", ns), ("lease", LEASE)];
    sw.wait_for(
        "step 1: story Current, Lease, operator pod, APIService",
        Duration::from_secs(30),
        &relevant(),
        |m| {
            status_is(m, &cr, "Current")
                && status_is(m, &ds, "Current")
                && m.sum("stallwatch_image_mismatch", &cr) == 0.0
                && m.is("stallwatch_rollout_complete", &ds, 1.0)
                && m.find("stallwatch_lease_renew_timestamp_seconds", &lease_series).len() == 1
                && m.sum("stallwatch_operator_pod_ready", &[("target", TARGET), ("namespace", ns)]) == 1.0
                && m.is("stallwatch_apiservice_available", &[("name", "v1.operator.kubearmor.com")], 1.0)
        },
    );
    let stack = Stack::start(
        &work.join("promstack"),
        &StackConfig {
            rules: std::slice::from_ref(&rules),
            scrape: sw.addr,
            job: JOB,
            webhook: &hook.url(),
            group_by: &LEGACY_GROUP_BY,
            repeat_interval: "30s",
            shipped: Some(ShippedAm {
                webhook: &shipped_url,
                group_by: &SHIPPED_GROUP_BY,
                inhibit: &inhibit,
            }),
        },
    );
    let prom = stack.prom;
    let rule_count = serde_json::from_slice::<Value>(
        &std::process::Command::new(common::repo().join("alerts/generate"))
            .arg("params")
            .output()
            .expect("alerts/generate params")
            .stdout,
    )
    .expect("params JSON")
    .as_object()
    .map_or(0, |o| o.len());
    common::eventually(
        "Prometheus: stallwatch up, story scraped, every rule evaluated",
        Duration::from_secs(30),
        || {
            let up = prom.query(&format!("up{{job=\"{JOB}\"}} == 1"), None)?;
            let story = prom.query(
                &format!(
                    "stallwatch_status{{namespace=\"{ns}\",kind=\"KubeArmorConfig\",status=\"Current\"}} == 1"
                ),
                None,
            )?;
            let rules = prom.rules()?;
            let bad: Vec<String> = rules
                .iter()
                .filter(|r| r["health"] != "ok")
                .map(|r| format!("{} {} {}", r["name"], r["health"], r["lastError"]))
                .collect();
            if up.len() == 1 && story.len() == 1 && rules.len() == rule_count && bad.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "up {up:?}, story {story:?}, {} of {rule_count} rules, not ok: {bad:?}",
                    rules.len()
                ))
            }
        },
    );

    // An API server restart while converged (also gives the watch-error panels data).
    let api_restarted = plane().owned;
    if api_restarted {
        note("step 1: restarting the API server while converged");
        let _restore = Restore("apiserver");
        plane().ctl(&["restart", "apiserver"]);
        sw.wait_for(
            "step 1: every watch re-synced after the API server restart, errors counted",
            Duration::from_secs(60),
            &relevant(),
            |m| {
                let synced = m.find("stallwatch_synced", &[]);
                !synced.is_empty()
                    && synced.iter().all(|s| s.value == 1.0)
                    && m.sum("stallwatch_watch_errors_total", &[]) > 0.0
                    && status_is(m, &cr, "Current")
            },
        );
    }
    // Quiet: several evaluations of every rule with nothing pending or firing for the story.
    let t_quiet = Instant::now();
    while t_quiet.elapsed() < Duration::from_secs(5) {
        let active: Vec<String> =
            ["pending", "firing"].iter().flat_map(|s| prom_alerts(&prom, ns, s)).collect();
        assert!(active.is_empty(), "step 1: alerts for the converged story: {active:?}");
        std::thread::sleep(common::POLL);
    }
    let early: Vec<Alert> = hook.alerts().into_iter().filter(|a| is_story(a, ns)).collect();
    assert!(early.is_empty(), "step 1: notifications for the converged story:\n{}", hook.dump());
    note(format!(
        "step 1 done: nothing pending or firing for the story; notifications so far: {}",
        hook.notifications().len()
    ));

    // ---- 2. the image changes, the operator is stuck
    note(
        "step 2: spec.kubearmorImage.image -> v2; the operator marks Pending and never updates the DaemonSet",
    );
    operator.set(Mode::Stuck);
    set_cr_image(&crs, "kubearmor/kubearmor:v2").await;
    let t_fault = Instant::now();
    let unix_fault = unix_now();
    warning_event(ns);
    let context = || {
        format!(
            "  Prometheus firing for the story: {:?}\n  pending: {:?}\n  stallwatch: {}\n",
            prom_alerts(&prom, ns, "firing"),
            prom_alerts(&prom, ns, "pending"),
            sw.scrape().map(|m| status_of(&m, &cr)).unwrap_or_else(|e| e)
        )
    };
    let page = hook.wait_for(
        "StallwatchObjectStalled firing for the KubeArmorConfig",
        Duration::from_secs(60),
        |a| {
            a.status == "firing"
                && a.name() == "StallwatchObjectStalled"
                && is_story(a, ns)
                && a.label("name") == CR
        },
        context,
    );
    let to_page = page.at.duration_since(t_fault);
    note(format!("PAGE {:.1}s after the image change: {page}", to_page.as_secs_f64()));
    let mut fired: BTreeMap<&str, Alert> = BTreeMap::new();
    fired.insert(STUCK_ALERTS[0], page);
    for name in &STUCK_ALERTS[1..] {
        let a = hook.wait_for(
            &format!("{name} firing for the KubeArmorConfig"),
            Duration::from_secs(45),
            |a| a.status == "firing" && a.name() == *name && is_story(a, ns) && a.label("name") == CR,
            context,
        );
        note(format!("{name} {:.1}s after the image change", a.at.duration_since(t_fault).as_secs_f64()));
        fired.insert(name, a);
    }

    // The page: exactly these labels, the object's identity. The verdict's reason is in the text,
    // not a label, so that a reason change while the object stays stuck keeps the same page.
    let page = &fired["StallwatchObjectStalled"];
    let want: BTreeSet<&str> =
        ["alertname", "severity", "target", "kind", "namespace", "name", "job", "instance"].into();
    assert_eq!(page.labels.keys().map(String::as_str).collect::<BTreeSet<_>>(), want, "{}", labels_of(page));
    check_common(page, ns, "KubeArmorConfig", CR, "critical");
    let summary = page.annotation("summary");
    assert_eq!(
        summary,
        format!("KubeArmorConfig {ns}/{CR} has stopped converging (ImageNotRolledOut)."),
        "{:?}",
        page.annotations
    );
    let d = page.annotation("description");
    for want in [
        format!("KubeArmorConfig {ns}/{CR} (target {TARGET})"),
        "is Stalled with reason ImageNotRolledOut".to_string(),
        "Desired: generation 2".to_string(),
        "Actual: phase Pending, observed generation not reported.".to_string(),
        format!(
            "Image kubearmor: desired kubearmor/kubearmor:v2, but DaemonSet {ns}/{DS} container kubearmor has docker.io/kubearmor/kubearmor:v1."
        ),
    ] {
        assert!(d.contains(&want), "the page's description lacks {want:?}:\n{d}");
    }
    assert!(!d.contains("Image init"), "only the changed slot is named:\n{d}");

    // One alert per object and container; the image references are in the text, not labels.
    let img = &fired["StallwatchImageNotRolledOut"];
    check_common(img, ns, "KubeArmorConfig", CR, "warning");
    let want: BTreeSet<&str> = [
        "alertname",
        "severity",
        "target",
        "kind",
        "namespace",
        "name",
        "job",
        "instance",
        "slot",
        "workload_kind",
        "workload_namespace",
        "workload",
        "container",
    ]
    .into();
    assert_eq!(img.labels.keys().map(String::as_str).collect::<BTreeSet<_>>(), want, "{}", labels_of(img));
    for (k, v) in [
        ("slot", "kubearmor"),
        ("workload_kind", "DaemonSet"),
        ("workload_namespace", ns),
        ("workload", DS),
        ("container", "kubearmor"),
    ] {
        assert_eq!(img.label(k), v, "label {k} of {img}");
    }
    assert_eq!(
        img.annotation("summary"),
        format!("DaemonSet {ns}/{DS} does not run the desired image kubearmor/kubearmor:v2."),
        "{:?}",
        img.annotations
    );
    let d = img.annotation("description");
    for want in [
        "wants image kubearmor/kubearmor:v2 for slot kubearmor",
        &format!("DaemonSet {ns}/{DS} container kubearmor still has docker.io/kubearmor/kubearmor:v1"),
    ] {
        assert!(d.contains(want), "ImageNotRolledOut's description lacks {want:?}:\n{d}");
    }
    let phase = &fired["StallwatchPhaseNotReady"];
    check_common(phase, ns, "KubeArmorConfig", CR, "warning");
    assert_eq!(phase.label("phase"), "Pending", "{phase}");
    assert!(phase.annotation("summary").contains("is stuck in phase Pending"), "{:?}", phase.annotations);
    let gen_alert = &fired["StallwatchGenerationNotObserved"];
    check_common(gen_alert, ns, "KubeArmorConfig", CR, "warning");
    assert!(gen_alert.annotation("description").contains("generation 2"), "{:?}", gen_alert.annotations);

    // Nothing else for the story: not the DaemonSet (untouched and complete), not the Lease.
    let others: Vec<String> = hook
        .alerts()
        .iter()
        .filter(|a| is_story(a, ns) && (!STUCK_ALERTS.contains(&a.name()) || a.label("name") != CR))
        .map(|a| a.to_string())
        .collect();
    assert!(others.is_empty(), "step 2: unexpected notifications for the story: {others:?}");

    // One notification per incident: the same five alerts reached the shipped Alertmanager,
    // which holds the four warnings back behind the page (they stay firing in Prometheus).
    let held = common::eventually(
        "shipped Alertmanager: the page active, the four warnings inhibited by it",
        Duration::from_secs(20),
        || {
            let am = stack.shipped_alerts()?;
            let state = |n: &str| {
                am.iter()
                    .find(|a| {
                        a["labels"]["alertname"] == n
                            && a["labels"]["namespace"] == ns
                            && a["labels"]["name"] == CR
                    })
                    .map(|a| {
                        (
                            a["status"]["state"].as_str().unwrap_or("").to_string(),
                            a["status"]["inhibitedBy"].clone(),
                        )
                    })
            };
            let page = state(STUCK_ALERTS[0]);
            let warnings: Vec<_> = STUCK_ALERTS[1..].iter().map(|n| state(n)).collect();
            let held = warnings.iter().all(|w| {
                w.as_ref()
                    .is_some_and(|(s, by)| s == "suppressed" && by.as_array().is_some_and(|b| !b.is_empty()))
            });
            if page.as_ref().is_some_and(|(s, _)| s == "active") && held {
                Ok(warnings.len())
            } else {
                Err(format!("page {page:?}, warnings {warnings:?}"))
            }
        },
    );
    // Several group intervals (1s) for anything else to arrive, then count.
    std::thread::sleep(Duration::from_secs(3));
    let before = incident_notifications(&hook, ns, t_fault);
    let after = incident_notifications(&shipped_hook, ns, t_fault);
    note(format!(
        "NOTIFICATIONS for the stuck story: {} with the old routing (group by alert name, no inhibition), {} with the shipped inhibition ({held} warnings held back)",
        before.len(),
        after.len()
    ));
    assert!(
        before.len() >= STUCK_ALERTS.len(),
        "the old routing sends one notification per alert name at least, got {}:\n{}",
        before.len(),
        hook.dump()
    );
    assert_eq!(
        after.len(),
        1,
        "with the shipped inhibition, one notification for the incident:\n{}",
        shipped_hook.dump()
    );
    let one: Vec<Alert> = after[0].alerts().into_iter().filter(|a| a.status == "firing").collect();
    assert_eq!(
        one.iter().map(|a| a.name()).collect::<Vec<_>>(),
        [STUCK_ALERTS[0]],
        "the one notification carries the page only:\n{}",
        shipped_hook.dump()
    );
    assert_eq!(one[0].labels, fired[STUCK_ALERTS[0]].labels, "the same page as at the other webhook");
    let d = one[0].annotation("description");
    for want in [
        "is Stalled with reason ImageNotRolledOut",
        "Next step: the controller has not written the desired image into the workload's pod template; check the operator's logs and restart it if it is stuck.",
    ] {
        assert!(d.contains(want), "the one notification lacks the reason or the remedy {want:?}:\n{d}");
    }
    assert!(one[0].annotation("summary").ends_with("(ImageNotRolledOut)."), "{:?}", one[0].annotations);
    assert!(
        one[0].annotation("runbook_url").ends_with("#stallwatchobjectstalled"),
        "{:?}",
        one[0].annotations
    );
    let (incident_before, incident_after) = (before.len(), after.len());

    // Every dashboard query returns data.
    let later = check_panels(&prom, ns, api_restarted);
    check_drilldown(&prom, ns);
    sw.capture();
    note(format!("step 2 done {:.1}s after the fault", t_fault.elapsed().as_secs_f64()));

    // ---- 3. "restart the operator"
    note(
        "step 3: the operator restarts (new pod, new Lease holder), updates the DaemonSet; kwok rolls the pods",
    );
    let unix_restart = unix_now();
    let t_restart = Instant::now();
    operator.restart();
    kubectl(&["-n", ns, "delete", "pod", "-l", "kubearmor-app=kubearmor-operator", "--wait=false"]);
    let mut resolved: BTreeMap<&str, Alert> = BTreeMap::new();
    for name in STUCK_ALERTS {
        let a = hook.wait_for(
            &format!("{name} resolved"),
            Duration::from_secs(60),
            |a| a.status == "resolved" && a.name() == name && is_story(a, ns) && a.label("name") == CR,
            || format!("  Prometheus firing for the story: {:?}\n", prom_alerts(&prom, ns, "firing")),
        );
        assert_eq!(a.labels, fired[name].labels, "the resolved {name} carries the firing alert's labels");
        resolved.insert(name, a);
    }
    let to_resolve = resolved["StallwatchObjectStalled"].at.duration_since(t_restart);
    shipped_hook.wait_for(
        "shipped Alertmanager: the page resolved",
        Duration::from_secs(30),
        |a| a.status == "resolved" && a.name() == STUCK_ALERTS[0] && is_story(a, ns) && a.label("name") == CR,
        || format!("  Prometheus firing for the story: {:?}\n", prom_alerts(&prom, ns, "firing")),
    );
    note(format!("RESOLVED {:.1}s after the operator restart", to_resolve.as_secs_f64()));
    let converged_v2 = with(
        &cr,
        &[
            ("slot", "kubearmor"),
            ("desired", "kubearmor/kubearmor:v2"),
            ("actual", "docker.io/kubearmor/kubearmor:v2"),
        ],
    );
    sw.wait_for(
        "step 3: every signal converges, new Lease holder",
        Duration::from_secs(60),
        &relevant(),
        |m| {
            image_row(m, &converged_v2, 0.0)
                && m.sum("stallwatch_image_mismatch", &cr) == 0.0
                && m.is("stallwatch_workload_pods_outdated", &ds, 0.0)
                && m.is("stallwatch_rollout_complete", &ds, 1.0)
                && status_is(m, &cr, "Current")
                && status_is(m, &ds, "Current")
                && m.find(
                    "stallwatch_lease_renew_timestamp_seconds",
                    &with(&lease_series, &[("holder", "kubearmor-operator-1")]),
                )
                .len()
                    == 1
                && m.is("stallwatch_lease_transitions_total", &lease_series, 1.0)
        },
    );
    // Settled: nothing pending or firing for the story, and every story alert that ever fired has
    // been resolved at the webhook (so that step 4 starts from silence).
    common::eventually("step 3: every story alert resolved at the webhook", Duration::from_secs(30), || {
        let active: Vec<String> =
            ["pending", "firing"].iter().flat_map(|s| prom_alerts(&prom, ns, s)).collect();
        let open = open_alerts(&hook.alerts(), ns);
        if active.is_empty() && open.is_empty() {
            Ok(())
        } else {
            Err(format!("Prometheus: {active:?}; not resolved at the webhook: {open:?}"))
        }
    });
    // The recovery must not page again: every firing notification since the restart is a repeat
    // of an alert that was firing before it (same labels, same startsAt). A new label set (e.g. a
    // reason that was a label) or a new startsAt (the alert resolved and fired again) is a re-page.
    let before: BTreeSet<(BTreeMap<String, String>, String)> = hook
        .alerts()
        .into_iter()
        .filter(|a| a.at < t_restart && a.status == "firing" && is_story(a, ns))
        .map(|a| (a.labels, a.starts_at))
        .collect();
    let repages: Vec<String> = hook
        .alerts()
        .into_iter()
        .filter(|a| a.at >= t_restart && a.status == "firing" && is_story(a, ns))
        .filter(|a| !before.contains(&(a.labels.clone(), a.starts_at.clone())))
        .map(|a| {
            format!(
                "{:.1}s after the restart: {a} startsAt {} endsAt {} {:?}",
                a.at.saturating_duration_since(t_restart).as_secs_f64(),
                a.starts_at,
                a.ends_at,
                a.annotation("summary")
            )
        })
        .collect();
    assert!(
        repages.is_empty(),
        "step 3: the recovery paged again:\n  {}\n{}",
        repages.join("\n  "),
        hook.dump()
    );
    note(format!("step 3 done {:.1}s after the restart", t_restart.elapsed().as_secs_f64()));

    // ---- 4. a healthy rollout while nodes come and go: no page
    // The rollout takes about 4 s (minReadySeconds 1 per pod), under stalledAfter.
    note("step 4: healthy rollout to v3 while a node joins and another (already on v3) leaves");
    let t4 = Instant::now();
    let originals: Vec<String> = kubectl(&[
        "get",
        "nodes",
        "-l",
        "type=kwok",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
    ])
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_string)
    .collect();
    set_cr_image(&crs, "kubearmor/kubearmor:v3").await;
    let newcomer = common::unique("kwok-churn");
    let churn = {
        let (newcomer, ns, originals) = (newcomer.clone(), ns.to_string(), originals.clone());
        std::thread::spawn(move || {
            let joiner = {
                let newcomer = newcomer.clone();
                std::thread::spawn(move || plane().ctl(&["add-node", &newcomer]))
            };
            // The first original node whose pod already runs v3 and is available (Ready for
            // longer than minReadySeconds) leaves mid-rollout. Any other pod would stay behind on
            // the deleted node until pod GC collects it (about a minute): an old one is outdated,
            // an unavailable new one takes the rollout's maxUnavailable budget. Either really
            // stops the rollout for that minute, which is no healthy rollout.
            let victim = common::eventually(
                "a node whose pod already runs v3 and is available",
                Duration::from_secs(60),
                || {
                    let pods = ds_pods(&ns);
                    pods.iter()
                        .find(|p| {
                            originals.contains(&p.node)
                                && p.image == "docker.io/kubearmor/kubearmor:v3"
                                && p.ready_for.is_some_and(|s| s >= 2.0)
                        })
                        .map(|p| p.node.clone())
                        .ok_or_else(|| format!("pods: {pods:?}"))
                },
            );
            note(format!("deleting node {victim}"));
            kubectl(&["delete", "node", &victim, "--wait=false"]);
            joiner.join().expect("add-node");
            victim
        })
    };
    let converged_v3 = with(
        &cr,
        &[
            ("slot", "kubearmor"),
            ("desired", "kubearmor/kubearmor:v3"),
            ("actual", "docker.io/kubearmor/kubearmor:v3"),
        ],
    );
    let notified_before = hook.alerts().len();
    let check_quiet = |phase: &str| {
        let new: Vec<Alert> = hook
            .alerts()
            .into_iter()
            .skip(notified_before)
            .filter(|a| is_story(a, ns) && a.status == "firing")
            .collect();
        let firing = prom_alerts(&prom, ns, "firing");
        if !new.is_empty() || !firing.is_empty() {
            common::fail(&format!(
                "step 4 ({phase}, {:.1}s): a healthy rollout with node churn paged:\n  notifications: {:?}\n  Prometheus firing: {firing:?}\n  pending: {:?}\n  DaemonSet pods: {:?}",
                t4.elapsed().as_secs_f64(),
                new.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                prom_alerts(&prom, ns, "pending"),
                ds_pods(ns),
            ));
        }
    };
    let mut seen = BTreeSet::new();
    let mut pending_seen = BTreeSet::new();
    let deadline = t4 + Duration::from_secs(120);
    let t_converged = loop {
        check_quiet("rollout");
        for p in prom_alerts(&prom, ns, "pending") {
            pending_seen.insert(p.split_whitespace().next().unwrap_or("").to_string());
        }
        let m = sw.scrape().unwrap_or_else(|e| sw.fail(&format!("step 4: scrape failed: {e}")));
        for st in m.find("stallwatch_status", &[("namespace", ns)]) {
            if st.value == 1.0 && st.label("status") != "Current" {
                seen.insert(format!("{}/{}/{}", st.label("kind"), st.label("status"), st.label("reason")));
            }
        }
        let done = churn.is_finished()
            && image_row(&m, &converged_v3, 0.0)
            && m.is("stallwatch_workload_pods_outdated", &ds, 0.0)
            && m.is("stallwatch_rollout_complete", &ds, 1.0)
            && status_is(&m, &cr, "Current")
            && status_is(&m, &ds, "Current");
        if done {
            break Instant::now();
        }
        if Instant::now() > deadline {
            sw.fail(&format!("step 4: the rollout did not converge within 120s\n{}", m.dump(&relevant())));
        }
        std::thread::sleep(common::POLL);
    };
    let victim = churn.join().expect("node churn thread");
    note(format!(
        "step 4: converged {:.1}s after the image change (node {newcomer} joined, {victim} left); not Current on the way: {seen:?}",
        t_converged.duration_since(t4).as_secs_f64()
    ));
    assert!(
        seen.iter().any(|s| s.starts_with("KubeArmorConfig/InProgress")),
        "step 4 never saw the rollout in progress: the sampling missed it ({seen:?})"
    );
    // And for a while after it: longer than every shortened threshold plus `for`.
    while t_converged.elapsed() < Duration::from_secs(25) {
        check_quiet("after the rollout");
        std::thread::sleep(Duration::from_millis(500));
    }
    if !pending_seen.is_empty() {
        note(format!("step 4: pending (never firing) on the way: {pending_seen:?}"));
    }
    note(format!("step 4 done: no notification for the story in {:.1}s", t4.elapsed().as_secs_f64()));

    // The problem-only panels show the rollouts of steps 3 and 4 (range query, as Grafana draws).
    for (q, last) in &later {
        let expr = substitute(
            &q.expr,
            &[builtins(), all_values(), vec![("target", TARGET), ("namespace", ns)]].concat(),
        );
        let r = prom
            .query_range(&expr, unix_restart, unix_now(), 1.0)
            .unwrap_or_else(|e| common::fail(&format!("{}: {}: {e}", q.dashboard, q.title)));
        assert!(
            !r.is_empty(),
            "{}: panel {:?} has no data over the rollouts either ({last})",
            q.dashboard,
            q.title
        );
        note(format!(
            "panel {}: {}: {} series over the rollouts, e.g. {}",
            q.uid,
            q.title,
            r.len(),
            show(&r[0])
        ));
    }

    // Over the whole run: the stuck alerts and nothing else; annotation templates never failed.
    let all = hook.alerts();
    let names: BTreeSet<&str> = all.iter().map(|a| a.name()).collect();
    let unexpected: Vec<String> =
        all.iter().filter(|a| !STUCK_ALERTS.contains(&a.name())).map(|a| a.to_string()).collect();
    assert!(unexpected.is_empty(), "notifications of alerts that should not fire: {unexpected:?}");
    let log = std::fs::read_to_string(work.join("promstack/prometheus.log")).unwrap_or_default();
    let template_errors: Vec<&str> =
        log.lines().filter(|l| l.contains("template") && l.contains("level=warn")).collect();
    assert!(
        template_errors.is_empty(),
        "Prometheus failed to expand alert templates:\n{}",
        template_errors.join("\n")
    );

    // The report.
    let mut r = String::new();
    let _ = writeln!(r, "e2e alerts report:");
    let _ = writeln!(
        r,
        "  fault (image change) -> page (StallwatchObjectStalled at the webhook): {:.1}s",
        to_page.as_secs_f64()
    );
    for name in &STUCK_ALERTS[1..] {
        let _ =
            writeln!(r, "  fault -> {name}: {:.1}s", fired[name].at.duration_since(t_fault).as_secs_f64());
    }
    let _ = writeln!(r, "  operator restart -> resolved page: {:.1}s", to_resolve.as_secs_f64());
    let _ = writeln!(
        r,
        "  notifications for the stuck story (step 2, repeats excluded): {incident_before} with the old routing (group_by {LEGACY_GROUP_BY:?}, no inhibition), {incident_after} with alerts/alertmanager-inhibit.yml (group_by {SHIPPED_GROUP_BY:?})"
    );
    let shipped_story: Vec<String> =
        shipped_hook.alerts().iter().filter(|a| is_story(a, ns)).map(|a| a.to_string()).collect();
    let _ = writeln!(r, "  shipped Alertmanager, whole run, story alerts notified: {shipped_story:?}");
    let _ = writeln!(r, "  stalledAfter {STALLED_AFTER}; rules: {}", overrides().join(" "));
    for name in STUCK_ALERTS {
        let a = &fired[name];
        let _ = writeln!(r, "  {name}\n    labels: {}", labels_of(a));
        for (k, v) in &a.annotations {
            let _ = writeln!(r, "    {k}: {v}");
        }
    }
    let _ = writeln!(
        r,
        "  notifications: {} ({} alerts), alert names: {names:?}",
        hook.notifications().len(),
        all.len()
    );
    for a in &all {
        let _ = writeln!(
            r,
            "    {:>6.1}s after the fault: {a} startsAt {} endsAt {}",
            a.at.saturating_duration_since(t_fault).as_secs_f64(),
            a.starts_at,
            a.ends_at
        );
    }
    let _ = writeln!(
        r,
        "  since the fault at unix {unix_fault:.0}; test runtime {:.1}s",
        t_test.elapsed().as_secs_f64()
    );
    note(r);

    drop(stack);
    drop(operator);
    drop(sw);
    drop(hook);
    drop(shipped_hook);
    keep_on_failure.done();
}

/// Removes the work dir (configs, logs, TSDB, notifications) after a passing test; keeps it and
/// says where when the test fails (or with `STALLWATCH_E2E_KEEP=1`).
struct KeepDir(PathBuf);

impl KeepDir {
    /// The test passed: remove the dir, unless `STALLWATCH_E2E_KEEP=1` asks to keep everything.
    fn done(self) {
        let keep = std::env::var_os("STALLWATCH_E2E_KEEP").is_some_and(|v| !v.is_empty() && v != "0");
        if !keep {
            let _ = std::fs::remove_dir_all(&self.0);
            std::mem::forget(self);
        }
    }
}

impl Drop for KeepDir {
    fn drop(&mut self) {
        eprintln!("stallwatch e2e: alerting work dir kept: {}", self.0.display());
    }
}
