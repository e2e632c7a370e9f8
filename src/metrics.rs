//! `/metrics`: a prometheus-client `Collector` that renders the store at scrape time.
//!
//! Nothing is pre-registered per object: the set of objects changes with every event and
//! config reload, and prometheus-client cannot unregister. Durations (`*_seconds` without
//! `timestamp`) are computed here from the clock, so they never freeze between events.

use std::{
    fmt::{self, Write as _},
    sync::{
        Arc, RwLockReadGuard,
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
    config::Target,
    process,
    store::{Store, TrackedFacts, Watch, WatchState},
    verdict::{self, Status, Verdict},
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

/// One object as a metric family sees it: its target, labels, facts and verdict.
struct Obj<'a> {
    target: &'a Target,
    labels: ObjLabels<'a>,
    tf: &'a TrackedFacts,
    verdict: &'a Verdict,
}

/// Read guards on every watch for the whole render, so that all families describe the same
/// instant and the verdict of each object is computed once, not once per family.
struct Snapshot<'a> {
    watches: Vec<(&'a Watch, RwLockReadGuard<'a, WatchState>)>,
    verdicts: Vec<Vec<Verdict>>,
}

impl<'a> Snapshot<'a> {
    fn new(watches: &'a [Arc<Watch>], now: f64) -> Snapshot<'a> {
        let watches: Vec<_> =
            watches.iter().map(|w| (&**w, w.state.read().unwrap_or_else(|e| e.into_inner()))).collect();
        let verdicts = watches
            .iter()
            .map(|(w, s)| {
                s.objects
                    .values()
                    .flat_map(|tracked| {
                        w.subs
                            .targets
                            .iter()
                            .zip(&tracked.per_target)
                            .map(|(t, tf)| verdict::judge(t, tf, now))
                    })
                    .collect()
            })
            .collect();
        Snapshot { watches, verdicts }
    }

    /// Calls `f` for every (target, object) pair.
    fn each(&self, mut f: impl FnMut(&Obj) -> fmt::Result) -> fmt::Result {
        for ((w, s), verdicts) in self.watches.iter().zip(&self.verdicts) {
            let mut vs = verdicts.iter();
            for ((ns, name), tracked) in &s.objects {
                for (target, tf) in w.subs.targets.iter().zip(&tracked.per_target) {
                    let labels: ObjLabels = [
                        ("target", &target.name),
                        ("kind", &target.resource.kind),
                        ("namespace", ns),
                        ("name", name),
                    ];
                    let verdict = vs.next().expect("one verdict per object and target");
                    f(&Obj { target, labels, tf, verdict })?;
                }
            }
        }
        Ok(())
    }

    /// One object-level gauge family; `value` returns None to skip a series.
    fn gauge(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: impl Fn(&Obj) -> Option<f64>,
    ) -> fmt::Result {
        let mut fam = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        self.each(|o| match value(o) {
            Some(v) => ConstGauge::new(v).encode(fam.encode_family(&o.labels)?),
            None => Ok(()),
        })
    }

    /// A gauge family with extra labels per object; `series` emits (extra labels, value) pairs.
    fn labelled<const N: usize>(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        series: impl Fn(&Obj, &mut dyn FnMut([(&str, &str); N], f64) -> fmt::Result) -> fmt::Result,
    ) -> fmt::Result {
        let mut fam = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        self.each(|o| {
            series(o, &mut |extra, v| ConstGauge::new(v).encode(fam.encode_family(&(o.labels, extra))?))
        })
    }
}

fn b(v: bool) -> f64 {
    if v { 1.0 } else { 0.0 }
}

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let now = (self.clock)();
        let ws = self.store.watches();
        let snap = Snapshot::new(&ws, now);
        let e = &mut enc;
        snap.gauge(e, "generation", "metadata.generation of the tracked object.", |o| {
            o.tf.facts.generation.map(|g| g as f64)
        })?;
        snap.gauge(
            e,
            "observed_generation",
            "Observed generation the object reports (absent when it reports none).",
            |o| o.tf.facts.observed_generation.map(|g| g as f64),
        )?;
        snap.gauge(
            e,
            "generation_lag",
            "metadata.generation minus the observed generation, when reported.",
            |o| Some((o.tf.facts.generation? - o.tf.facts.observed_generation?) as f64),
        )?;
        snap.gauge(
            e,
            "generation_observed",
            "1 when the current generation has been observed by its controller.",
            |o| verdict::generation_observed(o.tf).map(b),
        )?;
        snap.gauge(
            e,
            "generation_first_seen_timestamp_seconds",
            "When the current generation was first seen.",
            |o| Some(o.tf.generation_first_seen),
        )?;
        snap.gauge(
            e,
            "generation_unobserved_seconds",
            "Seconds since the current generation was first seen while it is not observed; 0 once observed.",
            |o| {
                verdict::generation_observed(o.tf)
                    .map(|seen| if seen { 0.0 } else { (now - o.tf.generation_first_seen).max(0.0) })
            },
        )?;
        snap.labelled(e, "phase", "1 for the current phase of the object.", |o, emit| {
            match (&o.target.phase, &o.tf.facts.phase) {
                (Some(_), Some(p)) => emit([("phase", p)], 1.0),
                _ => Ok(()),
            }
        })?;
        snap.gauge(e, "phase_ready", "1 when the current phase is one of the target's ready phases.", |o| {
            verdict::phase_ready(o.target, o.tf).map(b)
        })?;
        snap.gauge(e, "phase_since_timestamp_seconds", "When the current phase began.", |o| {
            o.target.phase.as_ref().map(|_| o.tf.phase_since)
        })?;
        snap.gauge(
            e,
            "phase_duration_seconds",
            "Seconds in the current phase, computed at scrape time.",
            |o| o.target.phase.as_ref().map(|_| (now - o.tf.phase_since).max(0.0)),
        )?;
        snap.labelled(e, "condition", "1 per condition present on the object.", |o, emit| {
            for c in &o.tf.facts.conditions {
                emit([("type", &c.type_), ("status", &c.status), ("reason", &c.reason)], 1.0)?;
            }
            Ok(())
        })?;
        snap.labelled(
            e,
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
        snap.labelled(
            e,
            "status",
            "The verdict: 1 for the current status (Current, InProgress, Stalled, Failed, Terminating) with its reason.",
            |o, emit| emit([("status", o.verdict.status.label()), ("reason", reason(o.verdict))], 1.0),
        )?;
        snap.gauge(
            e,
            "unconverged_since_timestamp_seconds",
            "When the object stopped being Current.",
            |o| o.verdict.unconverged_since,
        )?;
        snap.gauge(
            e,
            "unconverged_seconds",
            "Seconds since the object stopped being Current; 0 while Current.",
            |o| Some(o.verdict.unconverged_since.map_or(0.0, |s| (now - s).max(0.0))),
        )?;
        snap.labelled(
            e,
            "stalled",
            "1 while the verdict is Stalled or Failed, with its reason; else 0.",
            |o, emit| {
                let stalled = matches!(o.verdict.status, Status::Stalled | Status::Failed);
                emit([("reason", if stalled { reason(o.verdict) } else { "" })], b(stalled))
            },
        )?;
        snap.gauge(
            e,
            "stalled_since_timestamp_seconds",
            "When the verdict became Stalled or Failed.",
            |o| o.verdict.stalled_since,
        )?;
        snap.labelled(
            e,
            "status_write_timestamp_seconds",
            "Last write of the status subresource per field manager (metadata.managedFields).",
            |o, emit| {
                for (m, t) in &o.tf.facts.status_writes {
                    emit([("manager", m)], *t)?;
                }
                Ok(())
            },
        )?;
        drop(snap);
        self.encode_watch_health(e, &ws)?;
        self.encode_self(e)
    }
}

fn reason(v: &Verdict) -> &'static str {
    v.reason.map_or("", |r| r.label())
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
        drop(fam);
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
        drop(fam);
        let mut fam = e.encode_descriptor("relists", "Full lists by cause.", None, MetricType::Counter)?;
        for (i, (h, _)) in health.iter().enumerate() {
            for (cause, n) in &h.relists {
                ConstCounter::new(*n).encode(fam.encode_family(&(lab(i), [("cause", cause.label())]))?)?;
            }
        }
        drop(fam);
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
        drop(fam);
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
        drop(fam);
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
        drop(fam);
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
        let info = [
            ("version", env!("CARGO_PKG_VERSION")),
            ("rustc", option_env!("STALLWATCH_RUSTC").unwrap_or("unknown")),
        ];
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
