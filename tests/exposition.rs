//! Feeds watch events into the store and checks the exact `/metrics` text in both formats,
//! then has Prometheus' own `promtool check metrics` lint it.
//!
//! The golden files are the contract of docs/metrics.md; regenerate them with
//! `STALLWATCH_BLESS=1 cargo test --test exposition` and review the diff like code.

use std::{io::Write, process::Command, sync::Arc};

use stallwatch::{
    config::Config,
    expose::{Format, Renderer, SelfState},
    ingest::wire::{RawObject, WatchLine},
    store::{ErrorCause, RelistCause, Store, Watch},
    watch::plan,
};

const NOW: f64 = 1_704_070_000.0; // 2024-01-01T00:46:40Z

fn clock() -> f64 {
    NOW
}

const CONFIG: &str = r#"
stalledAfter: 15m
targets:
  - name: widgets
    resource: {group: example.com, version: v1, kind: Widget}
    namespaces: [shop]
    phase: {path: $.status.phase, ready: [Running]}
"#;

/// A realistic event stream: create, an update that bumps the generation, a second object
/// that converges, and one that is created then deleted.
const EVENTS: &[&str] = &[
    r#"{"type":"ADDED","object":{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"stuck","namespace":"shop","uid":"u1","resourceVersion":"10","generation":1,"creationTimestamp":"2024-01-01T00:00:00Z"},"spec":{"image":"example/agent:v1"},"status":{"phase":"Running","observedGeneration":1,"conditions":[{"type":"Ready","status":"True","reason":"Up","lastTransitionTime":"2024-01-01T00:01:00Z"}]}}}"#,
    r#"{"type":"MODIFIED","object":{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"stuck","namespace":"shop","uid":"u1","resourceVersion":"11","generation":2,"creationTimestamp":"2024-01-01T00:00:00Z","managedFields":[{"manager":"kubectl","operation":"Update","time":"2024-01-01T00:10:00Z","fieldsV1":{"f:spec":{}}},{"manager":"widget-operator","operation":"Update","subresource":"status","time":"2024-01-01T00:10:05Z","fieldsV1":{"f:status":{}}}]},"spec":{"image":"example/agent:v2"},"status":{"phase":"Pending","observedGeneration":1,"conditions":[{"type":"Ready","status":"False","reason":"Updating","lastTransitionTime":"2024-01-01T00:10:05Z"}]}}}"#,
    r#"{"type":"ADDED","object":{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"fine","namespace":"shop","uid":"u2","resourceVersion":"12","generation":3,"creationTimestamp":"2024-01-01T00:20:00Z"},"status":{"phase":"Running","observedGeneration":3}}}"#,
    r#"{"type":"ADDED","object":{"metadata":{"name":"gone","namespace":"shop","uid":"u3","resourceVersion":"13","generation":1}}}"#,
    r#"{"type":"DELETED","object":{"metadata":{"name":"gone","namespace":"shop","uid":"u3","resourceVersion":"14","generation":1}}}"#,
];

/// Event times: the stuck object's update arrives at 00:10:06, the rest shortly after.
const TIMES: &[f64] = &[1_704_067_260.0, 1_704_067_806.0, 1_704_068_400.0, 1_704_068_500.0, 1_704_068_600.0];

fn store() -> Arc<Store> {
    let config = Config::parse(CONFIG, "test.yaml").unwrap();
    let (key, subs) = plan(&config).remove(0);
    let watch = Arc::new(Watch::new(key, subs.clone()));
    watch.write(|s| {
        for (line, t) in EVENTS.iter().zip(TIMES) {
            match serde_json::from_str::<WatchLine<RawObject>>(line).unwrap() {
                WatchLine::Added(o) | WatchLine::Modified(o) => {
                    if s.apply(&subs, &o, *t) {
                        s.health.events.added += 1;
                    } else {
                        s.health.events.modified += 1;
                    }
                }
                WatchLine::Deleted(o) => {
                    s.delete(&o);
                    s.health.events.deleted += 1;
                }
                _ => unreachable!(),
            }
            s.health.last_event = Some(*t);
        }
        *s.health.relists.entry(RelistCause::Start).or_default() += 1;
        *s.health.relists.entry(RelistCause::Periodic).or_default() += 2;
        *s.health.errors.entry(ErrorCause::Throttled).or_default() += 1;
        *s.health.requests.entry(("list", 200)).or_default() += 3;
        *s.health.requests.entry(("watch", 429)).or_default() += 1;
        s.health.drift.modified = 1;
        s.health.last_list = Some(1_704_069_000.0);
        s.health.synced = true;
        s.health.attempted = true;
    });
    let store = Arc::new(Store::default());
    store.set_watches(vec![watch]);
    store
}

fn render(format: Format) -> String {
    let me = Arc::new(SelfState::default());
    me.reloaded(true, 1_704_060_000.0);
    me.set_render_seconds(0.25);
    Renderer::store_only(store(), me, clock).render(format).unwrap()
}

/// The git revision changes with every commit: the goldens hold `REVISION` in its place.
fn golden(name: &str, actual: &str) {
    let revision = format!("revision=\"{}\"", stallwatch::build::REVISION);
    assert!(actual.contains(&revision), "build_info has no {revision}");
    let actual = actual.replace(&revision, "revision=\"REVISION\"");
    let actual = actual.as_str();
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("STALLWATCH_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        panic!("{name} differs from the golden file; actual output:\n{actual}");
    }
}

#[test]
fn openmetrics_exposition_is_exact() {
    let out = render(Format::OpenMetrics);
    assert!(out.ends_with("# EOF\n"));
    golden("metrics.openmetrics.txt", &out);
}

#[test]
fn text_exposition_is_exact() {
    let out = render(Format::Text004);
    assert!(!out.contains("# EOF"));
    golden("metrics.text.txt", &out);
}

/// The value of one exact series in text-format output.
fn value(out: &str, series: &str) -> Option<f64> {
    out.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn key_facts_are_in_the_output() {
    let out = render(Format::Text004);
    let has = |series: String, v: f64| {
        assert_eq!(value(&out, &series), Some(v), "series {series} in\n{out}");
    };
    let obj = r#"target="widgets",kind="Widget",namespace="shop",name="stuck""#;
    has(format!("stallwatch_generation_lag{{{obj}}}"), 1.0);
    has(format!("stallwatch_generation_observed{{{obj}}}"), 0.0);
    has(format!("stallwatch_phase{{{obj},phase=\"Pending\"}}"), 1.0);
    // Phase since the recorded status write (00:10:05), not the event's arrival (00:10:06).
    has(format!("stallwatch_phase_since_timestamp_seconds{{{obj}}}"), 1_704_067_805.0);
    has(format!("stallwatch_phase_duration_seconds{{{obj}}}"), NOW - 1_704_067_805.0);
    // The spec write at 00:10:00 started the unobserved generation; stalled 15m later.
    has(format!("stallwatch_generation_unobserved_seconds{{{obj}}}"), NOW - 1_704_067_800.0);
    has(format!("stallwatch_status{{{obj},status=\"Stalled\",reason=\"GenerationNotObserved\"}}"), 1.0);
    has(format!("stallwatch_stalled{{{obj},reason=\"GenerationNotObserved\"}}"), 1.0);
    has(format!("stallwatch_stalled_since_timestamp_seconds{{{obj}}}"), 1_704_067_800.0 + 900.0);
    has(
        format!("stallwatch_status_write_timestamp_seconds{{{obj},manager=\"widget-operator\"}}"),
        1_704_067_805.0,
    );
    let fine = r#"target="widgets",kind="Widget",namespace="shop",name="fine""#;
    has(format!("stallwatch_status{{{fine},status=\"Current\",reason=\"\"}}"), 1.0);
    has(format!("stallwatch_stalled{{{fine},reason=\"\"}}"), 0.0);
    assert!(!out.contains("name=\"gone\""), "deleted object still rendered");
    let w = r#"resource="example.com/v1/Widget",watch_namespace="shop",selector="""#;
    has(format!("stallwatch_resync_drift_total{{{w},change=\"modified\"}}"), 1.0);
    has(format!("stallwatch_watch_events_total{{{w},type=\"deleted\"}}"), 1.0);
    has(format!("stallwatch_objects{{{w}}}"), 2.0);
}

/// The KubeArmor stuck update: the CR asks for v2, the DaemonSet template and its pods still
/// run v1, the operator pins the init image, a node is NotReady, one Warning event.
const KUBEARMOR: &[(&str, &str)] = &[
    (
        "KubeArmorConfig",
        r#"{"metadata":{"name":"kubearmorconfig-default","namespace":"kubearmor","uid":"c1","resourceVersion":"20","generation":2,"creationTimestamp":"2024-01-01T00:00:00Z","managedFields":[{"manager":"kubectl","operation":"Update","time":"2024-01-01T00:30:00Z"},{"manager":"operator","operation":"Update","subresource":"status","time":"2024-01-01T00:30:02Z"}]},"spec":{"kubearmorImage":{"image":"kubearmor/kubearmor:v2"}},"status":{"phase":"Pending","message":"Kubearmor Installation is in-progress"}}"#,
    ),
    (
        "DaemonSet",
        r#"{"metadata":{"name":"kubearmor-bpf-containerd-98c2c","namespace":"kubearmor","uid":"d1","resourceVersion":"21","generation":1,"creationTimestamp":"2024-01-01T00:00:00Z","labels":{"kubearmor-app":"kubearmor"}},"spec":{"template":{"spec":{"containers":[{"name":"kubearmor","image":"docker.io/kubearmor/kubearmor:v1"}],"initContainers":[{"name":"init","image":"registry.local/kubearmor-init:pinned"}]}}},"status":{"observedGeneration":1,"desiredNumberScheduled":2,"currentNumberScheduled":2,"updatedNumberScheduled":2,"numberAvailable":2,"numberReady":2}}"#,
    ),
    (
        "Deployment",
        r#"{"metadata":{"name":"kubearmor-operator","namespace":"kubearmor","uid":"o1","resourceVersion":"22","generation":1,"creationTimestamp":"2024-01-01T00:00:00Z","labels":{"kubearmor-app":"kubearmor-operator"}},"spec":{"replicas":1,"template":{"spec":{"containers":[{"name":"operator","image":"kubearmor/kubearmor-operator:v1","env":[{"name":"RELATED_IMAGE_KUBEARMOR_INIT","value":"registry.local/kubearmor-init:pinned"}]}]}}},"status":{"observedGeneration":1,"replicas":1,"updatedReplicas":1,"availableReplicas":1,"readyReplicas":1}}"#,
    ),
    (
        "Pod",
        r#"{"metadata":{"name":"kubearmor-bpf-containerd-98c2c-a","namespace":"kubearmor","uid":"p1","resourceVersion":"23","labels":{"kubearmor-app":"kubearmor","controller-revision-hash":"r1"},"ownerReferences":[{"kind":"DaemonSet","name":"kubearmor-bpf-containerd-98c2c","controller":true}]},"spec":{"nodeName":"node-a","containers":[{"name":"kubearmor","image":"docker.io/kubearmor/kubearmor:v1"}],"initContainers":[{"name":"init","image":"registry.local/kubearmor-init:pinned"}]},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ),
    (
        "Pod",
        r#"{"metadata":{"name":"kubearmor-bpf-containerd-98c2c-b","namespace":"kubearmor","uid":"p2","resourceVersion":"24","labels":{"kubearmor-app":"kubearmor","controller-revision-hash":"r1"},"ownerReferences":[{"kind":"DaemonSet","name":"kubearmor-bpf-containerd-98c2c","controller":true}]},"spec":{"nodeName":"node-b","containers":[{"name":"kubearmor","image":"docker.io/kubearmor/kubearmor:v1"}],"initContainers":[{"name":"init","image":"registry.local/kubearmor-init:pinned"}]},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ),
    (
        "Pod",
        r#"{"metadata":{"name":"kubearmor-operator-5d9f7-x","namespace":"kubearmor","uid":"p3","resourceVersion":"25","labels":{"kubearmor-app":"kubearmor-operator","pod-template-hash":"5d9f7"},"ownerReferences":[{"kind":"ReplicaSet","name":"kubearmor-operator-5d9f7","controller":true}]},"spec":{"nodeName":"node-a","containers":[{"name":"operator","image":"kubearmor/kubearmor-operator:v1"}]},"status":{"conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"operator","image":"docker.io/kubearmor/kubearmor-operator:v1","restartCount":2}]}}"#,
    ),
    (
        "Node",
        r#"{"metadata":{"name":"node-a","uid":"n1","resourceVersion":"26"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
    ),
    (
        "Node",
        r#"{"metadata":{"name":"node-b","uid":"n2","resourceVersion":"27"},"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    ),
    (
        "Event",
        r#"{"metadata":{"name":"ev1","namespace":"kubearmor","uid":"e1","resourceVersion":"28"},"type":"Warning","reason":"FailedCreate","count":3,"involvedObject":{"kind":"DaemonSet","namespace":"kubearmor","name":"kubearmor-bpf-containerd-98c2c","uid":"d1"}}"#,
    ),
];

fn kubearmor_store() -> Arc<Store> {
    let config = Config::parse("stalledAfter: 15m\ntargets: [{preset: kubearmor}]\n", "test.yaml").unwrap();
    let watches: Vec<Arc<Watch>> =
        plan(&config).into_iter().map(|(key, subs)| Arc::new(Watch::new(key, subs))).collect();
    for (kind, json) in KUBEARMOR {
        let obj: RawObject = serde_json::from_str(json).unwrap();
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        for w in watches.iter().filter(|w| w.key.gvk.kind == *kind && served(&w.key, &value)) {
            w.write(|s| {
                s.apply(&w.subs, &obj, 1_704_069_600.0);
                s.health.synced = true;
                s.health.attempted = true;
            });
        }
    }
    let store = Arc::new(Store::default());
    store.set_watches(watches);
    store
}

/// What the API server would send to a watch: its namespace, `k=v` / `k in (a,b)` label
/// selectors and `metadata.name=` / `type=` field selectors (the forms the presets use).
fn served(key: &stallwatch::store::WatchKey, obj: &serde_json::Value) -> bool {
    let meta = &obj["metadata"];
    let ns_ok = key.namespace.is_empty() || meta["namespace"] == key.namespace.as_str();
    let label = |k: &str| meta["labels"][k].as_str().map(str::to_string);
    let labels_ok = key.label_selector.is_empty()
        || match key.label_selector.split_once(" in (") {
            Some((k, rest)) => rest.trim_end_matches(')').split(',').any(|v| label(k).as_deref() == Some(v)),
            None => {
                let (k, v) = key.label_selector.split_once('=').unwrap();
                label(k).as_deref() == Some(v)
            }
        };
    let fields_ok = key.field_selector.is_empty()
        || match key.field_selector.split_once('=') {
            Some(("metadata.name", v)) => meta["name"] == v,
            Some((f, v)) => obj[f] == v,
            None => false,
        };
    ns_ok && labels_ok && fields_ok
}

fn render_kubearmor() -> String {
    let me = Arc::new(SelfState::default());
    me.reloaded(true, 1_704_060_000.0);
    Renderer::store_only(kubearmor_store(), me, clock).render(Format::Text004).unwrap()
}

#[test]
fn kubearmor_exposition_is_exact() {
    golden("metrics.kubearmor.text.txt", &render_kubearmor());
}

#[test]
fn kubearmor_stuck_update_signals() {
    let out = render_kubearmor();
    let has = |series: &str, v: f64| assert_eq!(value(&out, series), Some(v), "series {series} in\n{out}");
    let cr =
        r#"target="kubearmor",kind="KubeArmorConfig",namespace="kubearmor",name="kubearmorconfig-default""#;
    has(
        &format!(
            r#"stallwatch_image_mismatch{{{cr},slot="kubearmor",workload_kind="DaemonSet",workload_namespace="kubearmor",workload="kubearmor-bpf-containerd-98c2c",container="kubearmor"}}"#
        ),
        1.0,
    );
    // The references live on the info series, so an image bump keeps the mismatch series.
    has(
        &format!(
            r#"stallwatch_image_info{{{cr},slot="kubearmor",workload_kind="DaemonSet",workload_namespace="kubearmor",workload="kubearmor-bpf-containerd-98c2c",container="kubearmor",desired="kubearmor/kubearmor:v2",actual="docker.io/kubearmor/kubearmor:v1"}}"#
        ),
        1.0,
    );
    // The agent DaemonSet exists; the preset writes status only on change.
    has(&format!(r#"stallwatch_workload_missing{{{cr},slot="kubearmor"}}"#), 0.0);
    has(r#"stallwatch_controller_status_on_change{target="kubearmor"}"#, 1.0);
    // The init image is pinned by the operator: no mismatch, and the pin is reported.
    has(
        &format!(
            r#"stallwatch_image_mismatch{{{cr},slot="init",workload_kind="DaemonSet",workload_namespace="kubearmor",workload="kubearmor-bpf-containerd-98c2c",container="init"}}"#
        ),
        0.0,
    );
    has(
        &format!(
            r#"stallwatch_image_overridden{{{cr},slot="init",source="Deployment/kubearmor-operator env RELATED_IMAGE_KUBEARMOR_INIT"}}"#
        ),
        1.0,
    );
    has(&format!(r#"stallwatch_image_overridden{{{cr},slot="kubearmor",source=""}}"#), 0.0);
    // No observedGeneration: derived from the DaemonSet: not observed.
    has(&format!("stallwatch_generation_observed{{{cr}}}"), 0.0);
    has(&format!(r#"stallwatch_phase{{{cr},phase="Pending"}}"#), 1.0);
    has(&format!("stallwatch_phase_since_timestamp_seconds{{{cr}}}"), 1_704_069_002.0);
    // Stuck since the spec write at 00:30:00; stalledAfter 15m has passed at NOW (00:46:40).
    has(&format!(r#"stallwatch_status{{{cr},status="Stalled",reason="ImageNotRolledOut"}}"#), 1.0);
    has(&format!("stallwatch_unconverged_since_timestamp_seconds{{{cr}}}"), 1_704_069_000.0);
    let ds =
        r#"target="kubearmor",kind="DaemonSet",namespace="kubearmor",name="kubearmor-bpf-containerd-98c2c""#;
    has(&format!("stallwatch_workload_pods{{{ds}}}"), 2.0);
    has(&format!("stallwatch_workload_pods_outdated{{{ds}}}"), 0.0);
    has(&format!("stallwatch_rollout_complete{{{ds}}}"), 1.0);
    has(&format!(r#"stallwatch_status{{{ds},status="Current",reason=""}}"#), 1.0);
    has(&format!(r#"stallwatch_warning_events_total{{{cr},reason="FailedCreate"}}"#), 3.0);
    has(
        r#"stallwatch_operator_pod_ready{target="kubearmor",namespace="kubearmor",pod="kubearmor-operator-5d9f7-x"}"#,
        1.0,
    );
    has(
        r#"stallwatch_operator_pod_restarts_total{target="kubearmor",namespace="kubearmor",pod="kubearmor-operator-5d9f7-x"}"#,
        2.0,
    );
    has(r#"stallwatch_nodes{condition="ready"}"#, 1.0);
    has(r#"stallwatch_nodes{condition="not_ready"}"#, 1.0);
}

#[test]
fn warning_counts_never_decrease_when_a_workload_unlinks() {
    let store = kubearmor_store();
    // Every watch listed: an object not in the view is gone, not yet to come.
    for w in store.watches() {
        w.write(|s| s.health.synced = true);
    }
    let me = Arc::new(SelfState::default());
    let r = Renderer::store_only(store.clone(), me, clock);
    let cr =
        r#"target="kubearmor",kind="KubeArmorConfig",namespace="kubearmor",name="kubearmorconfig-default""#;
    let series = format!(r#"stallwatch_warning_events_total{{{cr},reason="FailedCreate"}}"#);
    let count = || value(&r.render(Format::Text004).unwrap(), &series);
    // The DaemonSet's 3 warnings count toward the config it runs the images of.
    assert_eq!(count(), Some(3.0));
    // The DaemonSet is deleted: the link, and then its count, are gone; the counter stays.
    let ds: RawObject = serde_json::from_str(KUBEARMOR[1].1).unwrap();
    for w in store.watches().iter().filter(|w| w.key.gvk.kind == "DaemonSet") {
        w.write(|s| s.delete(&ds));
    }
    assert_eq!(count(), Some(3.0));
    assert!(
        store.watches().iter().all(|w| w.read(|s| s.warnings.is_empty())),
        "the deleted DaemonSet's count is dropped"
    );
    assert_eq!(count(), Some(3.0));
}

#[test]
fn promtool_check_metrics_is_clean() {
    for out in [render(Format::Text004), render_kubearmor()] {
        promtool_check(&out);
    }
}

fn promtool_check(out: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            panic!("promtool not found ({e}); install Debian's `prometheus` package (tests/setup does)")
        }
    };
    child.stdin.take().unwrap().write_all(out.as_bytes()).unwrap();
    let res = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(res.status.success() && report.trim().is_empty(), "promtool check metrics:\n{report}");
}

/// The renderer's clock in [`a_kept_renderer_writes_what_a_fresh_one_does`], as f64 bits.
static MOVING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn moving() -> f64 {
    f64::from_bits(MOVING.load(std::sync::atomic::Ordering::Relaxed))
}

/// A renderer keeps its objects' lines pre-rendered between scrapes: after every event, and as
/// the clock passes `stalledAfter` with nothing else changing, it writes exactly what a new
/// renderer writes from the same store at the same instant, in both formats.
#[test]
fn a_kept_renderer_writes_what_a_fresh_one_does() {
    let set = |t: f64| MOVING.store(t.to_bits(), std::sync::atomic::Ordering::Relaxed);
    let compare = |kept: &Renderer, store: &Arc<Store>, step: &str| {
        for format in [Format::Text004, Format::OpenMetrics] {
            let fresh = Renderer::store_only(store.clone(), Arc::new(SelfState::default()), moving);
            let want = fresh.render(format).unwrap();
            assert_eq!(kept.render(format).unwrap(), want, "{step}, {format:?}");
            let x = kept.exposition(format).unwrap();
            assert_eq!(std::str::from_utf8(&x.plain).unwrap(), want, "{step}, {format:?}, reused buffer");
        }
    };
    // The widgets: created, updated, converging, deleted.
    let config = Config::parse(CONFIG, "test.yaml").unwrap();
    let (key, subs) = plan(&config).remove(0);
    let watch = Arc::new(Watch::new(key, subs.clone()));
    let store = Arc::new(Store::default());
    store.set_watches(vec![watch.clone()]);
    let kept = Renderer::store_only(store.clone(), Arc::new(SelfState::default()), moving);
    for (i, (line, t)) in EVENTS.iter().zip(TIMES).enumerate() {
        set(*t);
        watch.write(|s| match serde_json::from_str::<WatchLine<RawObject>>(line).unwrap() {
            WatchLine::Added(o) | WatchLine::Modified(o) => {
                s.apply(&subs, &o, *t);
            }
            WatchLine::Deleted(o) => {
                s.delete(&o);
            }
            _ => unreachable!(),
        });
        compare(&kept, &store, &format!("widgets after event {i}"));
    }
    for t in [NOW, NOW + 600.0, NOW + 3600.0] {
        set(t);
        compare(&kept, &store, &format!("widgets at {t}"));
    }
    // A reload that changes only judgement (other ready phases) keeps the records.
    let config = Config::parse(&CONFIG.replace("ready: [Running]", "ready: [Pending]"), "test.yaml").unwrap();
    store.set_watches(vec![Arc::new(watch.rejudged(plan(&config).remove(0).1))]);
    compare(&kept, &store, "widgets after a reload");
    // KubeArmor: links, images, workloads, pods and a warning, arriving one by one.
    let config = Config::parse("stalledAfter: 15m\ntargets: [{preset: kubearmor}]\n", "test.yaml").unwrap();
    let watches: Vec<Arc<Watch>> =
        plan(&config).into_iter().map(|(key, subs)| Arc::new(Watch::new(key, subs))).collect();
    let store = Arc::new(Store::default());
    store.set_watches(watches.clone());
    let kept = Renderer::store_only(store.clone(), Arc::new(SelfState::default()), moving);
    let t0 = 1_704_069_600.0;
    for (i, (kind, json)) in KUBEARMOR.iter().enumerate() {
        set(t0 + i as f64);
        let obj: RawObject = serde_json::from_str(json).unwrap();
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        for w in watches.iter().filter(|w| w.key.gvk.kind == *kind && served(&w.key, &value)) {
            w.write(|s| {
                s.apply(&w.subs, &obj, t0 + i as f64);
                s.health.synced = true;
                s.health.attempted = true;
            });
        }
        compare(&kept, &store, &format!("kubearmor after {kind} {i}"));
    }
    for t in [t0 + 60.0, t0 + 1000.0, t0 + 5000.0] {
        set(t);
        compare(&kept, &store, &format!("kubearmor at {t}"));
    }
}
