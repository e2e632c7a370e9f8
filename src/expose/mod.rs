//! Exposition: everything `/metrics` serves, rendered from the store at scrape time.
//!
//! Owns format negotiation ([`negotiate`]), the text writer ([`writer`]), the per-object
//! families ([`objects`]) and their context ([`context`]), the prometheus-client collectors for watch health, self and process
//! metrics ([`collectors`]), the sharding families ([`shard`](mod@shard)) and the render entry point ([`Renderer`]). It reads the store and
//! the judgement; it never does IO, and the only change it makes to the store is dropping the
//! Warning counts of objects that are no longer rendered.
//!
//! Nothing is pre-registered per object: the set of objects changes with every event and
//! config reload, and prometheus-client cannot unregister. Instead the renderer keeps each
//! object's own lines pre-rendered ([`own`], [`cache`]) from one render to the next, rewritten
//! only when the object or its verdict changed, so a render costs about what it writes.
//! Durations (`*_seconds` without `timestamp`) are computed here from the clock at every
//! render, so they never freeze between events.

mod cache;
pub mod collectors;
pub mod context;
pub mod flight;
mod links;
pub mod negotiate;
pub mod objects;
mod own;
pub mod process;
mod shard;
pub mod writer;

use std::{collections::HashSet, fmt, sync::Arc};

use prometheus_client::registry::Registry;

pub use self::{
    collectors::SelfState,
    flight::{Exposition, RenderError, compress},
};
use self::{
    collectors::{ProcessCollector, StoreCollector},
    writer::Writer,
};
use crate::{
    judge::{
        counters::WarningCounters,
        view::{Locked, View},
    },
    store::Store,
};

/// The two wire formats a scraper can ask for: OpenMetrics 1.0 and the Prometheus text format
/// 0.0.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Text004,
}

impl Format {
    /// The `Content-Type` header value of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text004 => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// Renders everything `/metrics` serves: the per-object families written directly from a view
/// of the store ([`objects`]), then watch health, self and process metrics through
/// prometheus-client. Cheap to clone; clones share the render in flight ([`flight`]).
#[derive(Debug, Clone)]
pub struct Renderer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    store: Arc<Store>,
    me: Arc<SelfState>,
    registry: Registry,
    clock: fn() -> f64,
    flights: flight::Flights,
    /// Keeps `warning_events_total` from going down between scrapes.
    warnings: std::sync::Mutex<WarningCounters>,
    /// The tracked objects' pre-rendered lines ([`cache`]); a render holds it while it writes
    /// them, so renders of the two formats take turns for that part.
    lines: std::sync::Mutex<cache::LineCache>,
    /// Output buffers no scrape holds any more, reused by the next render ([`flight::Spare`]).
    spare: Arc<flight::Spare>,
}

impl Renderer {
    /// With process metrics (`process_*`, unprefixed as the convention wants).
    pub fn new(store: Arc<Store>, me: Arc<SelfState>, clock: fn() -> f64) -> Renderer {
        let mut registry = Renderer::registry(&store, &me);
        registry.register_collector(Box::new(ProcessCollector { me: me.clone() }));
        Renderer::with(store, me, registry, clock)
    }

    /// Only the `stallwatch_*` families: deterministic for a fixed clock (tests, benches).
    pub fn store_only(store: Arc<Store>, me: Arc<SelfState>, clock: fn() -> f64) -> Renderer {
        let registry = Renderer::registry(&store, &me);
        Renderer::with(store, me, registry, clock)
    }

    fn registry(store: &Arc<Store>, me: &Arc<SelfState>) -> Registry {
        let mut registry = Registry::default();
        registry
            .sub_registry_with_prefix("stallwatch")
            .register_collector(Box::new(StoreCollector { store: store.clone(), me: me.clone() }));
        registry
    }

    fn with(store: Arc<Store>, me: Arc<SelfState>, registry: Registry, clock: fn() -> f64) -> Renderer {
        Renderer {
            inner: Arc::new(Inner {
                store,
                me,
                registry,
                clock,
                flights: Default::default(),
                warnings: Default::default(),
                lines: Default::default(),
                spare: Default::default(),
            }),
        }
    }

    /// One complete exposition in `format`, at the renderer's clock, rendered now on the
    /// calling thread (tests, benches, `diagnose`). The server uses [`Renderer::scrape`].
    pub fn render(&self, format: Format) -> Result<String, fmt::Error> {
        self.inner.render(format, String::new())
    }

    /// One complete exposition in `format` as a scrape gets it, rendered now on the calling
    /// thread into a buffer of an earlier exposition that nobody holds any more (benches).
    pub fn exposition(&self, format: Format) -> Result<Exposition, fmt::Error> {
        self.inner.exposition(format)
    }

    /// Bytes the pre-rendered lines of the last render hold (for sizing).
    pub fn cached_bytes(&self) -> usize {
        self.inner.lines.lock().unwrap_or_else(|e| e.into_inner()).bytes()
    }

    /// Drops the Warning counts of objects that are no longer rendered, as a render does, without
    /// encoding anything: run on a timer so that counts of deleted objects do not wait for a
    /// scrape (an exporter nobody scrapes must not grow). Blocking: call it off the async workers.
    pub fn prune(&self) {
        let ws = self.inner.store.watches();
        if ws.iter().all(|w| w.read(|s| s.warnings.is_empty())) {
            return;
        }
        let locked = Locked::new(&ws);
        let mut view = View::new(&locked, (self.inner.clock)());
        view.keep_shard(self.inner.me.shard());
        self.inner.prune_warnings(&locked, &view);
    }

    /// The exposition for one scrape: joins the render of `format` in flight or starts one on
    /// the blocking pool; concurrent scrapes share one buffer.
    pub async fn scrape(&self, format: Format) -> Result<Arc<Exposition>, RenderError> {
        flight::scrape(&self.inner, format).await
    }
}

impl Inner {
    /// The one write a render (or [`Renderer::prune`]) makes: warning counts of objects it no
    /// longer renders are dropped from the live store (see `WatchState::prune_warnings`), so
    /// counts never outlive their objects. Only watches that hold counts are locked, each for its own prune.
    fn prune_warnings(&self, locked: &Locked, view: &View) {
        if locked.guards.iter().all(|(_, s)| s.warnings.is_empty()) {
            return;
        }
        let mut rendered: HashSet<&str> = view.objects.iter().map(|o| &*o.tracked.uid).collect();
        rendered.extend(view.workloads.iter().map(|(_, w)| w.uid));
        rendered.extend(view.objects.iter().flat_map(|o| o.links.workloads.iter().map(|w| w.uid)));
        let settled = locked.guards.iter().all(|(_, s)| s.health.synced);
        for (w, s) in &locked.guards {
            if !s.warnings.is_empty() {
                w.write(|s| s.prune_warnings(&rendered, view.now, settled));
            }
        }
    }

    /// Renders into `buf` (cleared first; its allocation is reused).
    fn render(&self, format: Format, buf: String) -> Result<String, fmt::Error> {
        // Each watch is locked only while it is copied, never for the encode.
        let ws = self.store.watches();
        let locked = Locked::new(&ws);
        let mut view = View::new(&locked, (self.clock)());
        view.keep_shard(self.me.shard());
        view.count_warnings(&mut self.warnings.lock().unwrap_or_else(|e| e.into_inner()));
        let mut x = Writer::reusing(format, buf);
        {
            let mut cache = self.lines.lock().unwrap_or_else(|e| e.into_inner());
            let targets = ws.iter().flat_map(|w| w.subs.targets.iter().cloned()).collect();
            let chunks = cache.refresh(&view, targets);
            // Reserving avoids regrowing (and copying) a large buffer mid-render.
            let size = chunks.iter().map(|c| c.bytes()).sum::<usize>();
            x.out.reserve(64 * 1024 + size);
            objects::encode(&mut x, &view, &chunks);
        }
        self.prune_warnings(&locked, &view);
        drop(view);
        drop(locked);
        let mut out = x.out;
        match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &self.registry)?,
            Format::Text004 => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?
            }
        }
        Ok(out)
    }
}
