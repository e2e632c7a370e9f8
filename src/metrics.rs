//! `/metrics`: a prometheus-client `Collector` that renders the store at scrape time.
//!
//! Nothing is pre-registered per object: the set of objects changes with every event and
//! config reload, and prometheus-client cannot unregister. Durations (`*_seconds` without
//! `timestamp`) are computed here from the clock, so they never freeze between events.

use std::{
    fmt::{self, Write as _},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use crate::{
    converge::LinkedWorkload,
    kinds::{Kind, KindFacts},
    process,
    store::{self, Store, Watch},
    verdict::{self, Status, Verdict},
    view::{Locked, ObjView, View},
};

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// State about the exporter itself that the collector reports.
#[derive(Debug)]
pub struct SelfState {
    pub config_ok: AtomicBool,
    config_reload_ts: AtomicU64,
    render_seconds: AtomicU64,
    pub start_time: f64,
}

impl Default for SelfState {
    fn default() -> Self {
        SelfState {
            config_ok: AtomicBool::new(false),
            config_reload_ts: AtomicU64::new(0f64.to_bits()),
            render_seconds: AtomicU64::new(0f64.to_bits()),
            start_time: now(),
        }
    }
}

impl SelfState {
    pub fn reloaded(&self, ok: bool, at: f64) {
        self.config_ok.store(ok, Ordering::Relaxed);
        if ok {
            self.config_reload_ts.store(at.to_bits(), Ordering::Relaxed);
        }
    }
    pub fn set_render_seconds(&self, s: f64) {
        self.render_seconds.store(s.to_bits(), Ordering::Relaxed);
    }
    fn f(a: &AtomicU64) -> f64 {
        f64::from_bits(a.load(Ordering::Relaxed))
    }
}

/// The wire formats of §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text004,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Builds the registry: stallwatch's collector under the `stallwatch` prefix, process metrics
/// at the root with their conventional unprefixed names.
pub fn registry(store: Arc<Store>, me: Arc<SelfState>, clock: fn() -> f64) -> Registry {
    let mut root = Registry::default();
    root.register_collector(Box::new(ProcessCollector { me: me.clone() }));
    root.sub_registry_with_prefix("stallwatch").register_collector(Box::new(StoreCollector {
        store,
        me,
        clock,
    }));
    root
}

/// Only the `stallwatch_*` families: deterministic for a fixed clock (tests, benches).
pub fn store_registry(store: Arc<Store>, me: Arc<SelfState>, clock: fn() -> f64) -> Registry {
    let mut root = Registry::default();
    root.sub_registry_with_prefix("stallwatch").register_collector(Box::new(StoreCollector {
        store,
        me,
        clock,
    }));
    root
}

pub fn render(registry: &Registry, format: Format) -> Result<String, fmt::Error> {
    let mut out = String::with_capacity(64 * 1024);
    match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry)?,
        Format::Text004 => prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?,
    }
    Ok(out)
}

#[derive(Debug)]
struct StoreCollector {
    store: Arc<Store>,
    me: Arc<SelfState>,
    clock: fn() -> f64,
}

#[derive(Debug)]
struct ProcessCollector {
    me: Arc<SelfState>,
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: &impl EncodeLabelSet,
    v: f64,
) -> fmt::Result {
    let mut fam = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(fam.encode_family(labels)?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let p = process::sample();
        if let Some(cpu) = p.cpu_seconds {
            let mut fam = enc.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(cpu).encode(fam.encode_family(&NO_LABELS)?)?;
        }
        if let Some(rss) = p.resident_bytes {
            gauge(
                &mut enc,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &NO_LABELS,
                rss as f64,
            )?;
        }
        gauge(
            &mut enc,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            &NO_LABELS,
            self.me.start_time,
        )
    }
}

const NO_LABELS: [(&str, &str); 0] = [];

type ObjLabels<'a> = [(&'static str, &'a str); 4];

fn obj_labels<'a>(o: &'a ObjView) -> ObjLabels<'a> {
    [
        ("target", &o.target.name),
        ("kind", &o.target.resource.kind),
        ("namespace", o.namespace),
        ("name", o.name),
    ]
}

fn wl_labels<'a>(target: &'a str, w: &'a LinkedWorkload) -> ObjLabels<'a> {
    [("target", target), ("kind", w.facts.kind.name()), ("namespace", w.namespace), ("name", w.name)]
}

/// One object-level gauge family; `value` returns None to skip a series.
fn obj_gauge(
    e: &mut DescriptorEncoder,
    view: &View,
    name: &str,
    help: &str,
    value: impl Fn(&ObjView) -> Option<f64>,
) -> fmt::Result {
    let mut fam = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for o in &view.objects {
        if let Some(v) = value(o) {
            ConstGauge::new(v).encode(fam.encode_family(&obj_labels(o))?)?;
        }
    }
    Ok(())
}

/// An object-level gauge family with extra labels; `series` emits (extra labels, value) pairs.
fn obj_labelled<const N: usize>(
    e: &mut DescriptorEncoder,
    view: &View,
    name: &str,
    help: &str,
    series: impl Fn(&ObjView, &mut dyn FnMut([(&str, &str); N], f64) -> fmt::Result) -> fmt::Result,
) -> fmt::Result {
    let mut fam = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for o in &view.objects {
        let labels = obj_labels(o);
        series(o, &mut |extra, v| ConstGauge::new(v).encode(fam.encode_family(&(labels, extra))?))?;
    }
    Ok(())
}

/// A workload-level gauge family (rollouts, pods).
fn wl_gauge(
    e: &mut DescriptorEncoder,
    view: &View,
    name: &str,
    help: &str,
    value: impl Fn(&LinkedWorkload) -> Option<f64>,
) -> fmt::Result {
    let mut fam = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (target, w) in &view.workloads {
        if let Some(v) = value(w) {
            ConstGauge::new(v).encode(fam.encode_family(&wl_labels(target, w))?)?;
        }
    }
    Ok(())
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let now = (self.clock)();
        let ws = self.store.watches();
        let locked = Locked::new(&ws);
        let view = View::new(&locked, now);
        let e = &mut enc;
        encode_objects(e, &view)?;
        encode_images(e, &view)?;
        encode_rollouts(e, &view)?;
        encode_context(e, &view)?;
        drop(view);
        drop(locked);
        self.encode_watch_health(e, &ws)?;
        self.encode_self(e)
    }
}

fn reason(v: &Verdict) -> &'static str {
    v.reason.map_or("", |r| r.label())
}

fn encode_objects(e: &mut DescriptorEncoder, view: &View) -> fmt::Result {
    let now = view.now;
    obj_gauge(e, view, "generation", "metadata.generation of the tracked object.", |o| {
        o.tf.facts.generation.map(|g| g as f64)
    })?;
    obj_gauge(
        e,
        view,
        "observed_generation",
        "Observed generation the object reports (absent when it reports none).",
        |o| o.tf.facts.observed_generation.map(|g| g as f64),
    )?;
    obj_gauge(
        e,
        view,
        "generation_lag",
        "metadata.generation minus the observed generation, when reported.",
        |o| Some((o.tf.facts.generation? - o.tf.facts.observed_generation?) as f64),
    )?;
    obj_gauge(
        e,
        view,
        "generation_observed",
        "1 when the current generation has been observed: reported by the object, or for kinds that report none derived from its workloads.",
        |o| o.generation_observed().map(b),
    )?;
    obj_gauge(
        e,
        view,
        "generation_first_seen_timestamp_seconds",
        "When the current generation was first seen.",
        |o| Some(o.tf.generation_first_seen),
    )?;
    obj_gauge(
        e,
        view,
        "generation_unobserved_seconds",
        "Seconds since the current generation was first seen while it is not observed; 0 once observed.",
        |o| {
            o.generation_observed()
                .map(|seen| if seen { 0.0 } else { (now - o.tf.generation_first_seen).max(0.0) })
        },
    )?;
    obj_labelled(e, view, "phase", "1 for the current phase of the object.", |o, emit| {
        match (&o.target.phase, &o.tf.facts.phase) {
            (Some(_), Some(p)) => emit([("phase", p)], 1.0),
            _ => Ok(()),
        }
    })?;
    obj_gauge(
        e,
        view,
        "phase_ready",
        "1 when the current phase is one of the target's ready phases.",
        |o| verdict::phase_ready(o.target, o.tf).map(b),
    )?;
    obj_gauge(e, view, "phase_since_timestamp_seconds", "When the current phase began.", |o| {
        o.target.phase.as_ref().map(|_| o.tf.phase_since)
    })?;
    obj_gauge(
        e,
        view,
        "phase_duration_seconds",
        "Seconds in the current phase, computed at scrape time.",
        |o| o.target.phase.as_ref().map(|_| (now - o.tf.phase_since).max(0.0)),
    )?;
    obj_labelled(e, view, "condition", "1 per condition present on the object.", |o, emit| {
        for c in &o.tf.facts.conditions {
            emit([("type", &c.type_), ("status", &c.status), ("reason", &c.reason)], 1.0)?;
        }
        Ok(())
    })?;
    obj_labelled(
        e,
        view,
        "condition_since_timestamp_seconds",
        "The condition's lastTransitionTime.",
        |o, emit| {
            for c in &o.tf.facts.conditions {
                if let Some(t) = c.last_transition {
                    emit([("type", &c.type_)], t)?;
                }
            }
            Ok(())
        },
    )?;
    obj_labelled(
        e,
        view,
        "status",
        "The verdict: 1 for the current status (Current, InProgress, Stalled, Failed, Terminating) with its reason.",
        |o, emit| emit([("status", o.verdict.status.label()), ("reason", reason(&o.verdict))], 1.0),
    )?;
    obj_gauge(
        e,
        view,
        "unconverged_since_timestamp_seconds",
        "When the object stopped being Current.",
        |o| o.verdict.unconverged_since,
    )?;
    obj_gauge(
        e,
        view,
        "unconverged_seconds",
        "Seconds since the object stopped being Current; 0 while Current.",
        |o| Some(o.verdict.unconverged_since.map_or(0.0, |s| (now - s).max(0.0))),
    )?;
    obj_labelled(
        e,
        view,
        "stalled",
        "1 while the verdict is Stalled or Failed, with its reason; else 0.",
        |o, emit| {
            let stalled = matches!(o.verdict.status, Status::Stalled | Status::Failed);
            emit([("reason", if stalled { reason(&o.verdict) } else { "" })], b(stalled))
        },
    )?;
    obj_gauge(
        e,
        view,
        "stalled_since_timestamp_seconds",
        "When the verdict became Stalled or Failed.",
        |o| o.verdict.stalled_since,
    )?;
    obj_labelled(
        e,
        view,
        "status_write_timestamp_seconds",
        "Last write of the status subresource per field manager (metadata.managedFields).",
        |o, emit| {
            for (m, t) in &o.tf.facts.status_writes {
                emit([("manager", m)], *t)?;
            }
            Ok(())
        },
    )?;
    let mut fam = e.encode_descriptor(
        "warning_events",
        "Warning events of the tracked object and its workloads, by reason.",
        None,
        MetricType::Counter,
    )?;
    for o in view.objects.iter().filter(|o| o.target.events) {
        for (r, n) in view.warnings_of(o) {
            ConstCounter::new(n).encode(fam.encode_family(&(obj_labels(o), [("reason", r)]))?)?;
        }
    }
    Ok(())
}

fn encode_images(e: &mut DescriptorEncoder, view: &View) -> fmt::Result {
    obj_labelled(
        e,
        view,
        "image_mismatch",
        "1 when the desired image of a slot is not the workload's pod template image for that container.",
        |o, emit| {
            for s in &o.links.slots {
                emit(
                    [
                        ("slot", s.slot),
                        ("workload_kind", s.workload_kind.name()),
                        ("workload_namespace", s.workload_namespace),
                        ("workload", s.workload),
                        ("container", s.container),
                        ("desired", &s.desired),
                        ("actual", s.actual),
                    ],
                    b(s.mismatch),
                )?;
            }
            Ok(())
        },
    )?;
    obj_labelled(
        e,
        view,
        "image_overridden",
        "1 when the desired image of a slot comes from an operator pin rather than the object.",
        |o, emit| {
            let mut done: Vec<&str> = Vec::new();
            for s in &o.links.slots {
                if done.contains(&s.slot) {
                    continue;
                }
                done.push(s.slot);
                emit(
                    [("slot", s.slot), ("source", s.override_source.as_deref().unwrap_or(""))],
                    b(s.override_source.is_some()),
                )?;
            }
            Ok(())
        },
    )?;
    wl_gauge(e, view, "workload_pods", "Pods owned by the workload.", |w| Some(w.pods as f64))?;
    wl_gauge(
        e,
        view,
        "workload_pods_outdated",
        "Pods not running the workload's current pod template.",
        |w| Some(w.outdated as f64),
    )
}

fn encode_rollouts(e: &mut DescriptorEncoder, view: &View) -> fmt::Result {
    let now = view.now;
    wl_gauge(e, view, "rollout_desired", "Desired pods (replicas or desiredNumberScheduled).", |w| {
        Some(w.facts.desired as f64)
    })?;
    wl_gauge(
        e,
        view,
        "rollout_updated",
        "Pods on the current template (updatedReplicas or updatedNumberScheduled).",
        |w| Some(w.facts.updated as f64),
    )?;
    wl_gauge(e, view, "rollout_available", "Available pods.", |w| Some(w.facts.available as f64))?;
    wl_gauge(e, view, "rollout_ready", "Ready pods.", |w| Some(w.facts.ready as f64))?;
    wl_gauge(
        e,
        view,
        "rollout_complete",
        "1 when the rollout of the current template is complete (partition and OnDelete aware).",
        |w| Some(b(w.facts.complete())),
    )?;
    wl_gauge(
        e,
        view,
        "rollout_last_progress_timestamp_seconds",
        "Last time the rollout moved toward desired, the template changed, or the rollout became incomplete.",
        |w| Some(w.last_progress),
    )?;
    wl_gauge(
        e,
        view,
        "rollout_stalled_seconds",
        "Seconds since the last progress while the rollout is incomplete; 0 when complete.",
        |w| Some(if w.facts.complete() { 0.0 } else { (now - w.last_progress).max(0.0) }),
    )
}

fn encode_context(e: &mut DescriptorEncoder, view: &View) -> fmt::Result {
    let states = &view.index.states;
    let of = |k: Kind| states.iter().filter(move |(key, _)| key.kind == Some(k));
    // Leases and operator pods belong to the targets that name them.
    let mut lease_rows = Vec::new();
    let mut pod_rows = Vec::new();
    // Presets expand into several targets under one name; each may name its own controller.
    let mut seen_targets: Vec<*const crate::config::Target> = Vec::new();
    for o in &view.objects {
        if seen_targets.contains(&(o.target as *const _)) {
            continue;
        }
        seen_targets.push(o.target);
        if let Some(l) = &o.target.controller.lease
            && let Some(state) = view.index.state(&store::lease_key(l))
        {
            for tracked in state.objects.values() {
                if let Some(KindFacts::Lease(f)) = &tracked.kind {
                    lease_rows.push((&o.target.name, l, f));
                }
            }
        }
        if let Some(p) = &o.target.controller.pods
            && let Some(state) = view.index.state(&store::pods_key(p))
        {
            for ((ns, name), tracked) in &state.objects {
                if let Some(KindFacts::Pod(f)) = &tracked.kind {
                    pod_rows.push((&o.target.name, ns, name, f));
                }
            }
        }
    }
    let mut fam = e.encode_descriptor(
        "lease_renew_timestamp_seconds",
        "Leader-election Lease renew time.",
        None,
        MetricType::Gauge,
    )?;
    for (t, l, f) in &lease_rows {
        if let Some(r) = f.renew {
            let labels = [
                ("target", &***t),
                ("lease_namespace", &l.namespace),
                ("lease", &l.name),
                ("holder", f.holder.as_deref().unwrap_or("")),
            ];
            ConstGauge::new(r).encode(fam.encode_family(&labels)?)?;
        }
    }
    let mut fam = e.encode_descriptor(
        "lease_transitions",
        "Leader-election Lease transitions.",
        None,
        MetricType::Gauge,
    )?;
    for (t, l, f) in &lease_rows {
        if let Some(n) = f.transitions {
            let labels = [("target", &***t), ("lease_namespace", &l.namespace), ("lease", &l.name)];
            ConstGauge::new(n as f64).encode(fam.encode_family(&labels)?)?;
        }
    }
    let mut fam = e.encode_descriptor(
        "operator_pod_ready",
        "1 when the operator pod is Ready.",
        None,
        MetricType::Gauge,
    )?;
    for (t, ns, name, f) in &pod_rows {
        ConstGauge::new(b(f.ready)).encode(fam.encode_family(&[
            ("target", &***t),
            ("namespace", ns),
            ("pod", name),
        ])?)?;
    }
    let mut fam = e.encode_descriptor(
        "operator_pod_restarts",
        "Container restarts of the operator pod.",
        None,
        MetricType::Gauge,
    )?;
    for (t, ns, name, f) in &pod_rows {
        ConstGauge::new(f.restarts as f64).encode(fam.encode_family(&[
            ("target", &***t),
            ("namespace", ns),
            ("pod", name),
        ])?)?;
    }
    let nodes: Vec<_> = of(Kind::Node).collect();
    if !nodes.is_empty() {
        let mut counts = [0u64; 3];
        for (_, s) in &nodes {
            for t in s.objects.values() {
                match &t.kind {
                    Some(KindFacts::Node { ready: Some(true) }) => counts[0] += 1,
                    Some(KindFacts::Node { ready: Some(false) }) => counts[1] += 1,
                    _ => counts[2] += 1,
                }
            }
        }
        let mut fam = e.encode_descriptor("nodes", "Nodes by Ready condition.", None, MetricType::Gauge)?;
        for (c, n) in ["ready", "not_ready", "unknown"].iter().zip(counts) {
            ConstGauge::new(n as f64).encode(fam.encode_family(&[("condition", *c)])?)?;
        }
        let (added, removed) = nodes
            .iter()
            .fold((0, 0), |(a, r), (_, s)| (a + s.health.events.added, r + s.health.events.deleted));
        let mut fam = e.encode_descriptor(
            "node_changes",
            "Nodes added and removed, as seen by the watch.",
            None,
            MetricType::Counter,
        )?;
        for (c, n) in [("added", added), ("removed", removed)] {
            ConstCounter::new(n).encode(fam.encode_family(&[("change", c)])?)?;
        }
    }
    let mut fam = e.encode_descriptor(
        "apiservice_available",
        "1 when the APIService's Available condition is True.",
        None,
        MetricType::Gauge,
    )?;
    for (_, s) in of(Kind::ApiService) {
        for ((_, name), t) in &s.objects {
            if let Some(KindFacts::ApiService { available }) = &t.kind {
                ConstGauge::new(b(*available)).encode(fam.encode_family(&[("name", &**name)])?)?;
            }
        }
    }
    Ok(())
}

impl StoreCollector {
    fn encode_watch_health(&self, e: &mut DescriptorEncoder, ws: &[Arc<Watch>]) -> fmt::Result {
        let labels: Vec<(String, String, String)> =
            ws.iter().map(|w| (w.key.gvk.label(), w.key.namespace.clone(), w.key.selector_label())).collect();
        let lab = |i: usize| -> [(&'static str, &str); 3] {
            [("resource", &labels[i].0), ("watch_namespace", &labels[i].1), ("selector", &labels[i].2)]
        };
        let health: Vec<_> = ws.iter().map(|w| w.read(|s| (s.health.clone(), s.objects.len()))).collect();

        let mut fam =
            e.encode_descriptor("watch_events", "Watch events delivered.", None, MetricType::Counter)?;
        for (i, (h, _)) in health.iter().enumerate() {
            for (ty, n) in
                [("added", h.events.added), ("modified", h.events.modified), ("deleted", h.events.deleted)]
            {
                ConstCounter::new(n).encode(fam.encode_family(&(lab(i), [("type", ty)]))?)?;
            }
        }
        let mut fam = e.encode_descriptor(
            "watch_errors",
            "Failed lists and watches by cause.",
            None,
            MetricType::Counter,
        )?;
        for (i, (h, _)) in health.iter().enumerate() {
            for (cause, n) in &h.errors {
                ConstCounter::new(*n).encode(fam.encode_family(&(lab(i), [("cause", cause.label())]))?)?;
            }
        }
        let mut fam = e.encode_descriptor("relists", "Full lists by cause.", None, MetricType::Counter)?;
        for (i, (h, _)) in health.iter().enumerate() {
            for (cause, n) in &h.relists {
                ConstCounter::new(*n).encode(fam.encode_family(&(lab(i), [("cause", cause.label())]))?)?;
            }
        }
        let mut fam = e.encode_descriptor(
            "resync_drift",
            "Objects whose state at a periodic re-list differed from what the watch delivered (lost events).",
            None,
            MetricType::Counter,
        )?;
        for (i, (h, _)) in health.iter().enumerate() {
            for (ch, n) in
                [("added", h.drift.added), ("modified", h.drift.modified), ("deleted", h.drift.deleted)]
            {
                ConstCounter::new(n).encode(fam.encode_family(&(lab(i), [("change", ch)]))?)?;
            }
        }
        let mut fam = e.encode_descriptor(
            "api_requests",
            "List and watch requests by HTTP status code.",
            None,
            MetricType::Counter,
        )?;
        for (i, (h, _)) in health.iter().enumerate() {
            for ((verb, code), n) in &h.requests {
                let mut code_s = String::new();
                let _ = write!(code_s, "{code}");
                ConstCounter::new(*n)
                    .encode(fam.encode_family(&(lab(i), [("verb", *verb), ("code", &code_s)]))?)?;
            }
        }
        for (name, help, get) in [
            (
                "last_list_timestamp_seconds",
                "End of the last complete list (the freshness heartbeat).",
                (|h: &crate::store::WatchHealth| h.last_list)
                    as fn(&crate::store::WatchHealth) -> Option<f64>,
            ),
            ("last_event_timestamp_seconds", "Time of the last watch event.", |h| h.last_event),
        ] {
            let mut fam = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (i, (h, _)) in health.iter().enumerate() {
                if let Some(v) = get(h) {
                    ConstGauge::new(v).encode(fam.encode_family(&lab(i))?)?;
                }
            }
        }
        let mut fam =
            e.encode_descriptor("objects", "Objects held for the watch.", None, MetricType::Gauge)?;
        for (i, (_, n)) in health.iter().enumerate() {
            ConstGauge::new(*n as f64).encode(fam.encode_family(&lab(i))?)?;
        }
        let mut fam = e.encode_descriptor(
            "synced",
            "1 while the watch is healthy after a complete list; 0 while it cannot list or watch.",
            None,
            MetricType::Gauge,
        )?;
        for (i, (h, _)) in health.iter().enumerate() {
            ConstGauge::new(b(h.synced)).encode(fam.encode_family(&lab(i))?)?;
        }
        Ok(())
    }

    fn encode_self(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let info = [("version", env!("CARGO_PKG_VERSION"))];
        gauge(e, "build_info", "Build information; always 1.", &info, 1.0)?;
        gauge(
            e,
            "config_last_reload_successful",
            "1 when the last load of the config file succeeded.",
            &NO_LABELS,
            b(self.me.config_ok.load(Ordering::Relaxed)),
        )?;
        gauge(
            e,
            "config_last_reload_timestamp_seconds",
            "Time of the last successful load of the config file.",
            &NO_LABELS,
            SelfState::f(&self.me.config_reload_ts),
        )?;
        gauge(
            e,
            "render_duration_seconds",
            "How long the previous /metrics render took.",
            &NO_LABELS,
            SelfState::f(&self.me.render_seconds),
        )
    }
}
