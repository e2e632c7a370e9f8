//! The fact store: per watch, the facts of every object and the watch's own health.
//!
//! Watch tasks write here; `/metrics` reads. Everything is plain data behind short-held
//! locks so rendering never waits on the network. The methods that apply events, re-lists and
//! drift are pure (time is passed in) so tests drive them without a server.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, RwLock},
};

use crate::{
    config::{Config, Gvk, ImageRule, NamedRef, Override, PodsRef, Target, WorkloadLink},
    facts::{ObjectFacts, extract},
    kinds::{self, Interner, Kind, KindFacts},
    object::RawObject,
};

/// One watch: a resource type in one namespace (or all) with one selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    pub gvk: Gvk,
    /// The typed extraction for built-in kinds (derived from `gvk`).
    pub kind: Option<Kind>,
    /// Empty for all namespaces or a cluster-scoped kind.
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
}

impl WatchKey {
    /// The `selector` label: label and field selector, `;`-joined when both are set.
    pub fn selector_label(&self) -> String {
        match (self.label_selector.is_empty(), self.field_selector.is_empty()) {
            (true, true) => String::new(),
            (false, true) => self.label_selector.clone(),
            (true, false) => self.field_selector.clone(),
            (false, false) => format!("{};{}", self.label_selector, self.field_selector),
        }
    }
}

/// What a watch's objects are read for: tracked-object targets, a typed extraction for
/// built-in kinds, and the env vars of interest (operator image pins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscribers {
    pub targets: Vec<Arc<Target>>,
    pub kind: Option<Kind>,
    pub env: Vec<String>,
}

impl Subscribers {
    pub fn targets(targets: Vec<Arc<Target>>) -> Subscribers {
        let kind = targets.first().and_then(|t| Kind::of(&t.resource));
        Subscribers { targets, kind, env: Vec::new() }
    }
}

fn name_selector(name: &str) -> String {
    format!("metadata.name={name}")
}

fn key(gvk: Gvk, namespace: &str, labels: &str, fields: &str) -> WatchKey {
    WatchKey {
        kind: Kind::of(&gvk),
        gvk,
        namespace: namespace.into(),
        label_selector: labels.into(),
        field_selector: fields.into(),
    }
}

/// The namespace a link's workloads are watched in: the configured one, the target's single
/// namespace, or all (then matched to each object's own namespace).
pub fn link_namespace<'a>(target: &'a Target, link: &'a WorkloadLink) -> &'a str {
    link.namespace.as_deref().or(target.single_namespace()).unwrap_or("")
}

/// The watch holding the workloads of an image slot.
pub fn link_key(target: &Target, link: &WorkloadLink) -> WatchKey {
    let fields = link.name.as_deref().map(name_selector).unwrap_or_default();
    key(
        Gvk::new("apps", "v1", link.kind.name()),
        link_namespace(target, link),
        link.selector.as_deref().unwrap_or(""),
        &fields,
    )
}

/// The watch holding the operator Deployment that may pin an image slot.
pub fn override_key(target: &Target, rule: &ImageRule, o: &Override) -> WatchKey {
    let ns = o.namespace.as_deref().unwrap_or(link_namespace(target, &rule.workloads));
    key(Gvk::new("apps", "v1", "Deployment"), ns, "", &name_selector(&o.deployment))
}

/// The watch holding a Lease.
pub fn lease_key(l: &NamedRef) -> WatchKey {
    key(Gvk::new("coordination.k8s.io", "v1", "Lease"), &l.namespace, "", &name_selector(&l.name))
}

/// The watch holding an operator's pods.
pub fn pods_key(p: &PodsRef) -> WatchKey {
    key(Gvk::new("", "v1", "Pod"), &p.namespace, &p.selector, "")
}

/// The watch holding one APIService.
pub fn api_service_key(name: &str) -> WatchKey {
    key(Gvk::new("apiregistration.k8s.io", "v1", "APIService"), "", "", &name_selector(name))
}

/// The watches a config asks for. Targets, linked workloads, their pods and the context
/// sources that share a resource, namespace and selector share one watch, so the API server
/// sees each list/watch once.
pub fn plan(config: &Config) -> Vec<(WatchKey, Subscribers)> {
    let mut by_key: BTreeMap<WatchKey, Subscribers> = BTreeMap::new();
    fn add(by_key: &mut BTreeMap<WatchKey, Subscribers>, k: WatchKey) -> &mut Subscribers {
        let kind = k.kind;
        by_key.entry(k).or_insert_with(|| Subscribers { kind, ..Default::default() })
    }
    let pods = || Gvk::new("", "v1", "Pod");
    for t in &config.targets {
        let namespaces: Vec<&str> = if t.namespaces.is_empty() {
            vec![""]
        } else {
            t.namespaces.iter().map(String::as_str).collect()
        };
        let arc = Arc::new(t.clone());
        for ns in &namespaces {
            let labels = t.label_selector.as_deref().unwrap_or("");
            let fields = t.field_selector.as_deref().unwrap_or("");
            add(&mut by_key, key(t.resource.clone(), ns, labels, fields)).targets.push(arc.clone());
            // Workloads need their pods to count outdated ones (OnDelete, F7).
            if Kind::of(&t.resource).is_some_and(Kind::is_workload) {
                add(&mut by_key, key(pods(), ns, t.pods_selector.as_deref().unwrap_or(""), ""));
            }
            if t.events {
                add(&mut by_key, key(Gvk::new("", "v1", "Event"), ns, "", "type=Warning"));
            }
        }
        for rule in &t.images {
            let link = &rule.workloads;
            add(&mut by_key, link_key(t, link));
            add(
                &mut by_key,
                key(pods(), link_namespace(t, link), link.pod_selector.as_deref().unwrap_or(""), ""),
            );
            if let Some(o) = &rule.overridden_by {
                let subs = add(&mut by_key, override_key(t, rule, o));
                if !subs.env.contains(&o.env) {
                    subs.env.push(o.env.clone());
                }
            }
        }
        if let Some(l) = &t.controller.lease {
            add(&mut by_key, lease_key(l));
        }
        if let Some(p) = &t.controller.pods {
            add(&mut by_key, pods_key(p));
        }
    }
    if config.context.nodes {
        add(&mut by_key, key(Gvk::new("", "v1", "Node"), "", "", ""));
    }
    for name in &config.context.api_services {
        add(&mut by_key, api_service_key(name));
    }
    by_key.into_iter().collect()
}

/// Why a list or watch failed; the `cause` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCause {
    Gone,
    Throttled,
    Forbidden,
    NotFound,
    Timeout,
    Connect,
    Decode,
    Other,
}

impl ErrorCause {
    pub fn label(self) -> &'static str {
        match self {
            ErrorCause::Gone => "gone",
            ErrorCause::Throttled => "throttled",
            ErrorCause::Forbidden => "forbidden",
            ErrorCause::NotFound => "not_found",
            ErrorCause::Timeout => "timeout",
            ErrorCause::Connect => "connect",
            ErrorCause::Decode => "decode",
            ErrorCause::Other => "other",
        }
    }
}

/// Why a full list happened; the `cause` label of `relists_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelistCause {
    Start,
    Gone,
    Periodic,
    Error,
}

impl RelistCause {
    pub fn label(self) -> &'static str {
        match self {
            RelistCause::Start => "start",
            RelistCause::Gone => "gone",
            RelistCause::Periodic => "periodic",
            RelistCause::Error => "error",
        }
    }
}

/// Added, modified, deleted: the `type` of watch events and the `change` of drift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
}

impl Changes {
    pub fn total(&self) -> u64 {
        self.added + self.modified + self.deleted
    }
    fn add(&mut self, o: Changes) {
        self.added += o.added;
        self.modified += o.modified;
        self.deleted += o.deleted;
    }
}

#[derive(Debug, Clone, Default)]
pub struct WatchHealth {
    pub events: Changes,
    pub errors: BTreeMap<ErrorCause, u64>,
    pub relists: BTreeMap<RelistCause, u64>,
    pub drift: Changes,
    /// (verb, HTTP status code) → count; code 0 when no response arrived.
    pub requests: BTreeMap<(&'static str, u16), u64>,
    pub last_list: Option<f64>,
    pub last_event: Option<f64>,
    pub synced: bool,
    /// The first attempt finished, with data or with a definitive answer (403, 404).
    pub attempted: bool,
    pub last_error: Option<String>,
}

/// What the store keeps per object and target, with the history-dependent times.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedFacts {
    pub facts: ObjectFacts,
    pub generation_first_seen: f64,
    pub phase_since: f64,
}

impl TrackedFacts {
    /// Times for an object seen for the first time (also after an exporter restart): the API's
    /// own records are the best evidence, `now` the last resort. See docs/timing.md.
    pub fn first(facts: ObjectFacts, now: f64) -> TrackedFacts {
        let generation_first_seen = match facts.generation {
            None | Some(1) => facts.created,
            Some(_) => facts.last_spec_write.or(facts.created),
        }
        .filter(|t| *t <= now)
        .unwrap_or(now);
        let phase_since = facts.last_status_write().or(facts.created).filter(|t| *t <= now).unwrap_or(now);
        TrackedFacts { facts, generation_first_seen, phase_since }
    }

    /// Times after an update: a change starts now, unless the API recorded the write that made
    /// it later than the previous start (an event delivered late, e.g. by a re-list).
    pub fn update(&self, facts: ObjectFacts, now: f64) -> TrackedFacts {
        let since =
            |evidence: Option<f64>, prev: f64| evidence.filter(|t| *t > prev && *t <= now).unwrap_or(now);
        let generation_first_seen = if facts.generation != self.facts.generation {
            since(facts.last_spec_write, self.generation_first_seen)
        } else {
            self.generation_first_seen
        };
        let phase_since = if facts.phase != self.facts.phase {
            since(facts.last_status_write(), self.phase_since)
        } else {
            self.phase_since
        };
        TrackedFacts { facts, generation_first_seen, phase_since }
    }
}

#[derive(Debug, Clone)]
pub struct Tracked {
    pub uid: Box<str>,
    pub resource_version: Box<str>,
    /// One entry per subscribed target, in the order of [`Subscribers::targets`].
    pub per_target: Vec<TrackedFacts>,
    /// Facts of a built-in kind (workload, pod, …).
    pub kind: Option<KindFacts>,
    /// Workloads: the last time the rollout moved toward desired, the template changed, or the
    /// rollout became incomplete (a node joining is not a stall). See docs/timing.md.
    pub last_progress: f64,
}

/// `(namespace, name)`.
pub type ObjKey = (Box<str>, Box<str>);

/// Objects are kept ordered so `/metrics` renders in a stable order (diffable, cache-friendly)
/// without sorting at scrape time.
#[derive(Debug, Default)]
pub struct WatchState {
    pub objects: BTreeMap<ObjKey, Tracked>,
    pub health: WatchHealth,
    pub strings: Interner,
    /// Warning events counted per involved object and reason (a counter: events expire,
    /// counts do not go down).
    pub warnings: BTreeMap<WarningKey, u64>,
}

/// (involved kind, namespace, name, reason).
pub type WarningKey = (Box<str>, Box<str>, Box<str>, Box<str>);

fn key_of(obj: &RawObject) -> ObjKey {
    (obj.meta.namespace.as_deref().unwrap_or("").into(), obj.meta.name.as_ref().into())
}

impl WatchState {
    /// Applies an ADDED/MODIFIED object; returns true when it was new.
    pub fn apply(&mut self, subs: &Subscribers, obj: &RawObject, now: f64) -> bool {
        let key = key_of(obj);
        let facts: Vec<ObjectFacts> =
            subs.targets.iter().map(|t| extract(t, obj, &mut self.strings)).collect();
        let kind = subs.kind.and_then(|k| kinds::extract(k, obj, &subs.env, &mut self.strings));
        let same = self.objects.get(&key).filter(|old| *old.uid == *obj.meta.uid);
        let old_count = match same.and_then(|o| o.kind.as_ref()) {
            Some(KindFacts::Event(e)) => e.count,
            _ => 0,
        };
        if let Some(KindFacts::Event(e)) = &kind
            && e.warning
            && e.count > old_count
        {
            let k = (
                e.involved_kind.clone(),
                e.involved_namespace.clone(),
                e.involved_name.clone(),
                e.reason.clone(),
            );
            *self.warnings.entry(k).or_default() += e.count - old_count;
        }
        match self.objects.get_mut(&key) {
            Some(old) if *old.uid == *obj.meta.uid => {
                old.per_target = old.per_target.iter().zip(facts).map(|(o, f)| o.update(f, now)).collect();
                old.resource_version = obj.meta.resource_version.as_ref().into();
                if let (Some(KindFacts::Workload(prev)), Some(KindFacts::Workload(new))) = (&old.kind, &kind)
                    && (new.progressed_since(prev) || (prev.complete() && !new.complete()))
                {
                    old.last_progress = now;
                }
                old.kind = kind;
                false
            }
            existing => {
                let recreated = existing.is_some();
                let (writes, _) = crate::facts::writes(&obj.meta, &mut self.strings);
                let last_progress = writes
                    .iter()
                    .map(|(_, t)| *t)
                    .reduce(f64::max)
                    .or(obj.meta.creation_timestamp.as_deref().and_then(crate::facts::parse_time))
                    .filter(|t| *t <= now)
                    .unwrap_or(now);
                self.objects.insert(
                    key,
                    Tracked {
                        uid: obj.meta.uid.as_ref().into(),
                        resource_version: obj.meta.resource_version.as_ref().into(),
                        per_target: facts.into_iter().map(|f| TrackedFacts::first(f, now)).collect(),
                        kind,
                        last_progress,
                    },
                );
                !recreated
            }
        }
    }

    pub fn delete(&mut self, obj: &RawObject) -> bool {
        self.objects.remove(&key_of(obj)).is_some()
    }

    /// Makes the store equal to a complete list and returns how it differed. When the list was
    /// taken at exactly the resourceVersion the watch had reached, every difference is an
    /// event the watch lost; that is what `resync_drift_total` counts.
    pub fn reconcile(&mut self, subs: &Subscribers, items: &[RawObject], now: f64) -> Changes {
        let mut r = Reconcile::default();
        self.reconcile_page(subs, items, now, &mut r);
        self.finish_reconcile(r)
    }

    /// One page of a list; pages are applied as they arrive so a large list is never held
    /// in memory as a whole.
    pub fn reconcile_page(&mut self, subs: &Subscribers, items: &[RawObject], now: f64, r: &mut Reconcile) {
        for obj in items {
            let key = key_of(obj);
            match self.objects.get(&key) {
                Some(old)
                    if *old.resource_version == *obj.meta.resource_version && *old.uid == *obj.meta.uid => {}
                Some(_) => {
                    r.diff.modified += 1;
                    self.apply(subs, obj, now);
                }
                None => {
                    r.diff.added += 1;
                    self.apply(subs, obj, now);
                }
            }
            r.seen.insert(key);
        }
    }

    /// Drops what the list did not contain and returns the differences.
    pub fn finish_reconcile(&mut self, mut r: Reconcile) -> Changes {
        let before = self.objects.len();
        self.objects.retain(|k, _| r.seen.contains(k));
        r.diff.deleted = (before - self.objects.len()) as u64;
        r.diff
    }

    pub fn record_drift(&mut self, drift: Changes) {
        self.health.drift.add(drift);
    }
}

/// A list in progress: what it has seen and how it differed so far.
#[derive(Debug, Default)]
pub struct Reconcile {
    seen: HashSet<ObjKey>,
    diff: Changes,
}

/// One running watch and what it learned.
#[derive(Debug)]
pub struct Watch {
    pub key: WatchKey,
    pub subs: Subscribers,
    pub state: RwLock<WatchState>,
}

impl Watch {
    pub fn new(key: WatchKey, subs: Subscribers) -> Watch {
        Watch { key, subs, state: RwLock::new(WatchState::default()) }
    }

    /// Reads under the lock; a poisoned lock (a panicked writer) still yields the data.
    pub fn read<R>(&self, f: impl FnOnce(&WatchState) -> R) -> R {
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&g)
    }

    pub fn write<R>(&self, f: impl FnOnce(&mut WatchState) -> R) -> R {
        let mut g = self.state.write().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

/// All watches of the running config; swapped as a whole on reload.
#[derive(Debug, Default)]
pub struct Store {
    watches: RwLock<Vec<Arc<Watch>>>,
}

impl Store {
    pub fn watches(&self) -> Vec<Arc<Watch>> {
        self.watches.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_watches(&self, w: Vec<Arc<Watch>>) {
        *self.watches.write().unwrap_or_else(|e| e.into_inner()) = w;
    }

    /// Ready once every watch finished its first attempt (data, or a definitive 403/404, so
    /// that one missing CRD does not hide every other signal behind an unready pod).
    pub fn ready(&self) -> bool {
        self.watches().iter().all(|w| w.read(|s| s.health.attempted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Subscribers {
        let c = Config::parse(
            "targets:\n  - name: t\n    resource: {group: g, version: v1, kind: K}\n    phase: {path: $.status.phase}\n",
            "t",
        )
        .unwrap();
        Subscribers::targets(c.targets.into_iter().map(Arc::new).collect())
    }

    fn obj(name: &str, rv: &str, generation: i64, phase: &str) -> RawObject<'static> {
        let text: &'static str = Box::leak(format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"n","uid":"u-{name}","resourceVersion":"{rv}","generation":{generation},
            "creationTimestamp":"2024-01-01T00:00:00Z"}},"status":{{"phase":"{phase}","observedGeneration":{generation}}}}}"#
        ).into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn plan_shares_watches_and_splits_namespaces() {
        let c = Config::parse(
            "targets:\n  - {name: a, resource: {version: v1, kind: ConfigMap}, namespaces: [x, y]}\n  - {name: b, resource: {version: v1, kind: ConfigMap}, namespaces: [x]}\n",
            "t",
        )
        .unwrap();
        let p = plan(&c);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0.namespace, "x");
        assert_eq!(p[0].1.targets.len(), 2);
        assert_eq!(p[1].1.targets.len(), 1);
    }

    #[test]
    fn first_sight_uses_api_evidence() {
        let t = targets();
        let mut s = WatchState::default();
        assert!(s.apply(&t, &obj("a", "1", 1, "Pending"), 1704067300.0));
        let f = &s.objects[&("n".into(), "a".into())].per_target[0];
        // No status write recorded: phase since creation; generation 1 since creation.
        assert_eq!(f.phase_since, 1704067200.0);
        assert_eq!(f.generation_first_seen, 1704067200.0);
    }

    #[test]
    fn phase_change_starts_now_and_same_phase_keeps_time() {
        let t = targets();
        let mut s = WatchState::default();
        s.apply(&t, &obj("a", "1", 1, "Pending"), 1704067300.0);
        assert!(!s.apply(&t, &obj("a", "2", 1, "Pending"), 1704067400.0));
        let k: ObjKey = ("n".into(), "a".into());
        assert_eq!(s.objects[&k].per_target[0].phase_since, 1704067200.0);
        s.apply(&t, &obj("a", "3", 2, "Running"), 1704067500.0);
        let f = &s.objects[&k].per_target[0];
        assert_eq!(f.phase_since, 1704067500.0);
        assert_eq!(f.generation_first_seen, 1704067500.0);
    }

    #[test]
    fn late_event_uses_recorded_write_time() {
        let prev = TrackedFacts::first(
            ObjectFacts { phase: Some("Pending".into()), created: Some(100.0), ..Default::default() },
            150.0,
        );
        let next = prev.update(
            ObjectFacts {
                phase: Some("Running".into()),
                status_writes: vec![("op".into(), 170.0)],
                created: Some(100.0),
                ..Default::default()
            },
            200.0,
        );
        assert_eq!(next.phase_since, 170.0);
        // A write time in the future (clock skew) is not trusted.
        let skewed = prev.update(
            ObjectFacts {
                phase: Some("Error".into()),
                status_writes: vec![("op".into(), 999.0)],
                ..Default::default()
            },
            200.0,
        );
        assert_eq!(skewed.phase_since, 200.0);
    }

    #[test]
    fn recreated_object_resets_history() {
        let t = targets();
        let mut s = WatchState::default();
        s.apply(&t, &obj("a", "1", 3, "Pending"), 1704067300.0);
        let mut o = obj("a", "5", 1, "Pending");
        o.meta.uid = "other".into();
        s.apply(&t, &o, 1704067900.0);
        assert_eq!(&*s.objects[&("n".into(), "a".into())].uid, "other");
    }

    #[test]
    fn reconcile_counts_every_kind_of_drift() {
        let t = targets();
        let mut s = WatchState::default();
        for o in [obj("a", "1", 1, "P"), obj("b", "2", 1, "P"), obj("c", "3", 1, "P")] {
            s.apply(&t, &o, 1704067300.0);
        }
        // At the list: a unchanged, b modified (rv 9), c gone, d new.
        let d = s.reconcile(
            &t,
            &[obj("a", "1", 1, "P"), obj("b", "9", 2, "R"), obj("d", "8", 1, "P")],
            1704067400.0,
        );
        assert_eq!(d, Changes { added: 1, modified: 1, deleted: 1 });
        assert_eq!(s.objects.len(), 3);
        assert_eq!(s.objects[&("n".into(), "b".into())].per_target[0].facts.phase.as_deref(), Some("R"));
        // A second identical list finds nothing.
        let d = s.reconcile(
            &t,
            &[obj("a", "1", 1, "P"), obj("b", "9", 2, "R"), obj("d", "8", 1, "P")],
            1704067500.0,
        );
        assert_eq!(d.total(), 0);
    }

    #[test]
    fn delete_removes() {
        let t = targets();
        let mut s = WatchState::default();
        s.apply(&t, &obj("a", "1", 1, "P"), 1.0);
        assert!(s.delete(&obj("a", "2", 1, "P")));
        assert!(!s.delete(&obj("a", "2", 1, "P")));
        assert!(s.objects.is_empty());
    }
}
