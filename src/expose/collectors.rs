//! prometheus-client collectors for what is not per object: watch health, the exporter's own
//! state, and process metrics. Per-object families are written directly by
//! [`super::objects`]; these are few and fixed, so the library's encoder is worth its cost.

use std::{
    fmt::{self, Write as _},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use super::{process, writer::gauge_bool};
use crate::{
    clock::now,
    store::{Store, Watch, WatchHealth},
};

/// State about the exporter itself that the collector reports.
#[derive(Debug)]
pub struct SelfState {
    pub config_ok: AtomicBool,
    config_reload_ts: AtomicU64,
    render_seconds: AtomicU64,
    pub start_time: f64,
    /// Renders of `/metrics` run (`renders_total`).
    pub renders_run: AtomicU64,
    /// Scrapes served from a render another scrape started (`renders_shared_total`).
    pub renders_shared: AtomicU64,
    /// Responses being written, from their first byte to their last (`http_responses_in_flight`).
    pub in_flight: AtomicU64,
    /// Connections closed because a response missed its deadline.
    pub dropped_deadline: AtomicU64,
    /// Connections refused because every slot, the probes' reserve included, was taken.
    pub dropped_over_limit: AtomicU64,
    /// The shard this replica runs (index, total), as `shards` and `shard_info` report it.
    shard: (AtomicU32, AtomicU32),
}

impl Default for SelfState {
    fn default() -> Self {
        SelfState {
            config_ok: AtomicBool::new(false),
            config_reload_ts: AtomicU64::new(0f64.to_bits()),
            render_seconds: AtomicU64::new(0f64.to_bits()),
            start_time: now(),
            renders_run: AtomicU64::new(0),
            renders_shared: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            dropped_deadline: AtomicU64::new(0),
            dropped_over_limit: AtomicU64::new(0),
            shard: (AtomicU32::new(0), AtomicU32::new(1)),
        }
    }
}

impl SelfState {
    /// Records the outcome of a config load; the timestamp moves only on success.
    pub fn reloaded(&self, ok: bool, at: f64) {
        self.config_ok.store(ok, Ordering::Relaxed);
        if ok {
            self.config_reload_ts.store(at.to_bits(), Ordering::Relaxed);
        }
    }
    /// Records the shard the running config has.
    pub fn set_shard(&self, s: crate::model::shard::Shard) {
        self.shard.0.store(s.index, Ordering::Relaxed);
        self.shard.1.store(s.total, Ordering::Relaxed);
    }
    /// The shard the running config has.
    pub fn shard(&self) -> crate::model::shard::Shard {
        let (index, total) = (self.shard.0.load(Ordering::Relaxed), self.shard.1.load(Ordering::Relaxed));
        crate::model::shard::Shard::new(index, total).unwrap_or(crate::model::shard::Shard::ALL)
    }
    /// Records how long the last render took (`render_duration_seconds`).
    pub fn set_render_seconds(&self, s: f64) {
        self.render_seconds.store(s.to_bits(), Ordering::Relaxed);
    }
    fn f(a: &AtomicU64) -> f64 {
        f64::from_bits(a.load(Ordering::Relaxed))
    }
}

/// Watch health and the exporter's own state, read from the store at each scrape.
#[derive(Debug)]
pub(super) struct StoreCollector {
    pub(super) store: Arc<Store>,
    pub(super) me: Arc<SelfState>,
}

/// `process_*` (unprefixed, as the convention wants) from /proc.
#[derive(Debug)]
pub(super) struct ProcessCollector {
    pub(super) me: Arc<SelfState>,
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

impl Collector for StoreCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let ws = self.store.watches();
        self.encode_watch_health(&mut enc, &ws)?;
        super::shard::encode(&mut enc, self.me.shard(), &ws)?;
        self.encode_self(&mut enc)
    }
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
                (|h: &WatchHealth| h.last_list) as fn(&WatchHealth) -> Option<f64>,
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
            ConstGauge::new(gauge_bool(h.synced)).encode(fam.encode_family(&lab(i))?)?;
        }
        Ok(())
    }

    fn encode_self(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        let info = [("version", crate::build::VERSION), ("revision", crate::build::REVISION)];
        gauge(e, "build_info", "Build information; always 1.", &info, 1.0)?;
        gauge(
            e,
            "config_last_reload_successful",
            "1 when the last load of the config file succeeded.",
            &NO_LABELS,
            gauge_bool(self.me.config_ok.load(Ordering::Relaxed)),
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
        )?;
        let me = &self.me;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            e,
            "http_responses_in_flight",
            "HTTP responses being written (from their first byte to their last).",
            &NO_LABELS,
            load(&me.in_flight) as f64,
        )?;
        let mut fam = e.encode_descriptor(
            "http_connections_dropped",
            "Connections the server closed: a response that missed its deadline, or no slot free.",
            None,
            MetricType::Counter,
        )?;
        for (reason, a) in [("deadline", &me.dropped_deadline), ("over_limit", &me.dropped_over_limit)] {
            ConstCounter::new(load(a)).encode(fam.encode_family(&[("reason", reason)])?)?;
        }
        for (name, help, a) in [
            ("renders", "Renders of /metrics run.", &me.renders_run),
            (
                "renders_shared",
                "Scrapes served by a render another scrape had started (sharing its bytes).",
                &me.renders_shared,
            ),
        ] {
            let mut fam = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(load(a)).encode(fam.encode_family(&NO_LABELS)?)?;
        }
        Ok(())
    }
}
