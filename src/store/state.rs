//! Per-watch state: every object's record, the watch's health, its string interner and the
//! Warning event counts. Applying events, re-lists and drift are pure methods (time is passed
//! in), so tests drive them without a server.
//!
//! Warning counts are keyed by the involved object's UID, so an object re-created under the
//! same name starts from zero. Pods' warnings are not counted (no pod is rendered). A count is
//! kept while its object is rendered; once a rendered object is gone, the next prune (a render,
//! or the exporter's one-minute timer) drops it. A count whose object was never rendered is kept
//! for [`WARNING_GRACE`] after its last warning (the event may arrive before the object is
//! listed); [`WatchState::prune_warnings`] drops the rest.
//! Reasons are cut to [`MAX_REASON_BYTES`] with a trailing `…`, and an object keeps at most
//! [`MAX_REASONS`] reasons; further ones count under [`OTHER_REASON`].

use std::{
    collections::{BTreeMap, HashMap, HashSet, btree_map::Entry},
    sync::Arc,
};

use super::{Changes, PodIndex, Records, Subscribers, TimedFacts, WatchHealth};
use crate::{
    config::Target,
    ingest::{self, BuiltinFacts, Interner, wire::RawObject},
};

/// What the store keeps of one object: identity, per-target facts with their times, built-in facts.
#[derive(Debug, Clone)]
pub struct ObjectRecord {
    pub uid: Box<str>,
    pub resource_version: Box<str>,
    /// One entry per subscribed target, in the order of [`Subscribers::targets`].
    pub per_target: Vec<TimedFacts>,
    /// Facts of a built-in kind (workload, pod, …).
    pub kind: Option<BuiltinFacts>,
    /// Workloads: the last time the rollout moved toward desired, the template changed, or the
    /// rollout became incomplete (a node joining is not a stall). See docs/timing.md.
    pub last_progress: f64,
    /// Workloads: the last time the pod template changed (a new generation, other images or
    /// other pinned env values); the clock of a desired image that a new template may carry.
    pub template_changed: f64,
    /// Which version of the record this is, unique in the process: a new record and every
    /// change through [`Records`] take a fresh one, so a reader that kept something derived
    /// from a record (the exposition's pre-rendered lines) can tell it is still current.
    pub(super) stamp: u64,
}

impl ObjectRecord {
    /// This version's stamp: equal stamps mean the same record, unchanged.
    pub fn stamp(&self) -> u64 {
        self.stamp
    }
}

/// A stamp no record has had yet.
pub(super) fn next_stamp() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// `(namespace, name)`; reference-counted so a render's snapshot shares the keys too.
pub type ObjKey = (Arc<str>, Arc<str>);

/// Objects are kept ordered so `/metrics` renders in a stable order (diffable, cache-friendly)
/// without sorting at scrape time. Records and the pod index change only through the methods
/// here, which keep the two in step.
#[derive(Debug, Default)]
pub struct WatchState {
    pub objects: Records,
    /// The pods among `objects`, by controlling workload (a render's pod counts).
    pub pods: PodIndex,
    pub health: WatchHealth,
    pub strings: Interner,
    /// Warning events counted per involved object's UID (a counter: events expire, counts
    /// do not go down while the object lives).
    pub warnings: HashMap<Box<str>, WarningTally>,
    /// The last time an object left this watch (a DELETED event or a re-list without it): since
    /// when a workload that should exist is missing.
    pub removed_at: Option<f64>,
}

/// The Warning events of one involved object, by reason.
#[derive(Debug, Clone, Default)]
pub struct WarningTally {
    /// When a warning was last counted (keeps a count whose object is not rendered yet).
    pub last: f64,
    /// A prune found its object rendered: once it is not, the object is gone.
    pub rendered: bool,
    /// Count per (bounded) reason.
    pub reasons: BTreeMap<Box<str>, u64>,
}

/// Longest reason label kept, in bytes (a longer one is cut and ends in `…`).
pub const MAX_REASON_BYTES: usize = 128;
/// Most distinct reasons kept per object; the rest count under [`OTHER_REASON`].
pub const MAX_REASONS: usize = 32;
/// The reason further reasons count under once an object has [`MAX_REASONS`].
pub const OTHER_REASON: &str = "…other";
/// Seconds a count outlives its last warning when its object is not rendered.
pub const WARNING_GRACE: f64 = 600.0;

/// `reason`, cut at a character boundary to at most [`MAX_REASON_BYTES`] including the marker.
fn bounded_reason(reason: &str) -> Box<str> {
    if reason.len() <= MAX_REASON_BYTES {
        return reason.into();
    }
    let mut end = MAX_REASON_BYTES - '…'.len_utf8();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end]).into()
}

impl WarningTally {
    fn add(&mut self, reason: &str, n: u64, now: f64) {
        self.last = now;
        let reason = bounded_reason(reason);
        let key = if self.reasons.contains_key(&reason) || self.reasons.len() < MAX_REASONS {
            reason
        } else {
            OTHER_REASON.into()
        };
        *self.reasons.entry(key).or_default() += n;
    }
}

fn key_of(obj: &RawObject) -> ObjKey {
    (obj.meta.namespace.as_deref().unwrap_or("").into(), obj.meta.name.as_ref().into())
}

fn pod_of(r: &ObjectRecord) -> Option<&ingest::builtin::PodFacts> {
    match &r.kind {
        Some(BuiltinFacts::Pod(p)) => Some(p),
        _ => None,
    }
}

/// The record of an object seen for the first time (or re-created under the same name).
fn new_record(
    obj: &RawObject,
    per_target: Vec<TimedFacts>,
    kind: Option<BuiltinFacts>,
    now: f64,
) -> ObjectRecord {
    let writes = &obj.meta.writes;
    let created = obj.meta.created;
    let past = |t: Option<f64>| t.filter(|t| *t <= now).unwrap_or(now);
    ObjectRecord {
        uid: obj.meta.uid.as_ref().into(),
        resource_version: obj.meta.resource_version.as_ref().into(),
        per_target,
        kind,
        last_progress: past(writes.last_status().or(created)),
        template_changed: past(writes.other.or(created)),
        stamp: next_stamp(),
    }
}

impl WatchState {
    /// What judgement and exposition read (objects, pod index, health, warnings; not the
    /// interner), so a render holds the watch's lock only for the snapshot, never for the
    /// encode. Records and the pod index are shared, not copied ([`Records`]).
    pub fn snapshot(&self) -> WatchState {
        WatchState {
            objects: self.objects.clone(),
            pods: self.pods.clone(),
            health: self.health.clone(),
            strings: Interner::default(),
            warnings: self.warnings.clone(),
            removed_at: self.removed_at,
        }
    }

    /// Applies an ADDED/MODIFIED object; returns true when it was new. The ordered map is
    /// walked once for the object's key, whether it is inserted or updated.
    pub fn apply(&mut self, subs: &Subscribers, obj: &RawObject, now: f64) -> bool {
        self.apply_at(subs, obj, key_of(obj), now)
    }

    /// [`apply`](Self::apply) with the object's key already made.
    fn apply_at(&mut self, subs: &Subscribers, obj: &RawObject, key: ObjKey, now: f64) -> bool {
        let mut kind = subs.kind.and_then(|k| ingest::builtin::extract(k, obj, &subs.env, &mut self.strings));
        if let Some(BuiltinFacts::Workload(w)) = &mut kind {
            w.mirrors = subs.mirrors.clone();
        }
        let entry = self.objects.make_mut().entry(key);
        let old = match &entry {
            Entry::Occupied(e) => Some(&**e.get()),
            Entry::Vacant(_) => None,
        };
        let same_uid = old.is_some_and(|o| *o.uid == *obj.meta.uid);
        let old_count = match old.filter(|_| same_uid).and_then(|o| o.kind.as_ref()) {
            Some(BuiltinFacts::Event(e)) => e.count,
            _ => 0,
        };
        if let Some(BuiltinFacts::Event(e)) = &kind
            && e.warning
            && e.count > old_count
            && !e.involved_uid.is_empty()
            && &*e.involved_kind != "Pod"
        {
            self.warnings.entry(e.involved_uid.clone()).or_default().add(&e.reason, e.count - old_count, now);
        }
        let (ns, name) = entry.key();
        if let Some(p) = old.and_then(pod_of) {
            self.pods.remove(ns, name, p);
        }
        if let Some(BuiltinFacts::Pod(p)) = &kind {
            self.pods.insert(ns, name, p);
        }
        let strings = &mut self.strings;
        let mut extract = |t: &Arc<Target>| ingest::target::extract(t, obj, strings);
        match entry {
            Entry::Occupied(mut e) if same_uid => {
                let old = Arc::make_mut(e.get_mut());
                // Changed in place: a new stamp, so the render's cached lines of it are rewritten.
                old.stamp = next_stamp();
                old.per_target = old
                    .per_target
                    .iter()
                    .zip(&subs.targets)
                    .map(|(o, t)| o.update(extract(t), now))
                    .collect();
                old.resource_version = obj.meta.resource_version.as_ref().into();
                if let (Some(BuiltinFacts::Workload(prev)), Some(BuiltinFacts::Workload(new))) =
                    (&old.kind, &kind)
                {
                    if new.progressed_since(prev) || (prev.complete() && !new.complete()) {
                        old.last_progress = now;
                    }
                    if new.generation != prev.generation
                        || new.containers != prev.containers
                        || new.env != prev.env
                    {
                        old.template_changed = now;
                    }
                }
                old.kind = kind;
                self.strings.removed(1);
                false
            }
            entry => {
                let per_target = subs.targets.iter().map(|t| TimedFacts::first(extract(t), now)).collect();
                let record = Arc::new(new_record(obj, per_target, kind, now));
                match entry {
                    Entry::Occupied(mut e) => {
                        e.insert(record);
                        false // re-created under the same name
                    }
                    Entry::Vacant(v) => {
                        v.insert(record);
                        true
                    }
                }
            }
        }
    }

    /// Removes a deleted object; returns whether it was held.
    pub fn delete(&mut self, obj: &RawObject) -> bool {
        let key = key_of(obj);
        if !self.objects.contains_key(&key) {
            return false;
        }
        if let Some(old) = self.objects.make_mut().remove(&key) {
            if let Some(p) = pod_of(&old) {
                self.pods.remove(&key.0, &key.1, p);
            }
            self.strings.removed(1);
        }
        true
    }

    /// Forgets every object (the watch lost its place and will list again).
    pub fn clear_objects(&mut self) {
        self.objects = Records::default();
        self.pods = PodIndex::default();
    }

    /// Removes a deleted object seen at `now` and records when; returns whether it was held.
    pub fn delete_at(&mut self, obj: &RawObject, now: f64) -> bool {
        let held = self.delete(obj);
        if held {
            self.removed_at = Some(now);
        }
        held
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
                    self.apply_at(subs, obj, key.clone(), now);
                }
                None => {
                    r.diff.added += 1;
                    self.apply_at(subs, obj, key.clone(), now);
                }
            }
            r.seen.insert(key);
        }
        r.now = r.now.max(now);
    }

    /// Drops what the list did not contain and returns the differences.
    pub fn finish_reconcile(&mut self, mut r: Reconcile) -> Changes {
        let before = self.objects.len();
        if r.seen.len() < before {
            let pods = &mut self.pods;
            self.objects.make_mut().retain(|k, rec| {
                let keep = r.seen.contains(k);
                if let (false, Some(p)) = (keep, pod_of(rec)) {
                    pods.remove(&k.0, &k.1, p);
                }
                keep
            });
        }
        r.diff.deleted = (before - self.objects.len()) as u64;
        if r.diff.deleted > 0 {
            self.removed_at = Some(r.now);
        }
        // Changed and dropped records may have left strings only the interner holds.
        self.strings.removed(r.diff.deleted as usize + r.diff.modified as usize);
        r.diff
    }

    /// Drops the warning counts of objects not in `rendered`: at once for an object an earlier
    /// prune saw rendered (it was deleted) when the view is `settled` (every watch synced, so
    /// absence means gone, not not-yet-listed); otherwise once its last warning is older than
    /// [`WARNING_GRACE`] (involved objects that are never rendered).
    pub fn prune_warnings(&mut self, rendered: &HashSet<&str>, now: f64, settled: bool) {
        self.warnings.retain(|uid, t| {
            if rendered.contains(&**uid) {
                t.rendered = true;
                return true;
            }
            (t.rendered && !settled) || (!t.rendered && now - t.last < WARNING_GRACE)
        });
    }

    /// Adds the drift a periodic re-list found.
    pub fn record_drift(&mut self, drift: Changes) {
        self.health.drift.add(drift);
    }
}

/// A list in progress: what it has seen and how it differed so far.
#[derive(Debug, Default)]
pub struct Reconcile {
    seen: HashSet<ObjKey>,
    diff: Changes,
    /// The time of the latest page.
    now: f64,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{config::Config, ingest::TargetFacts};

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
        let prev = TimedFacts::first(
            TargetFacts { phase: Some("Pending".into()), created: Some(100.0), ..Default::default() },
            150.0,
        );
        let next = prev.update(
            TargetFacts {
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
            TargetFacts {
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
    fn removal_time_is_recorded_by_delete_and_relist() {
        let t = targets();
        let mut s = WatchState::default();
        s.apply(&t, &obj("a", "1", 1, "P"), 1.0);
        s.apply(&t, &obj("b", "1", 1, "P"), 1.0);
        assert!(!s.delete_at(&obj("x", "2", 1, "P"), 5.0));
        assert_eq!(s.removed_at, None);
        assert!(s.delete_at(&obj("a", "2", 1, "P"), 6.0));
        assert_eq!(s.removed_at, Some(6.0));
        s.reconcile(&t, &[], 9.0);
        assert_eq!(s.removed_at, Some(9.0));
    }

    #[test]
    fn template_change_is_timed_apart_from_progress() {
        use crate::model::Kind;
        let mut subs = targets();
        subs.kind = Some(Kind::DaemonSet);
        let ds = |rv: &str, generation: i64, image: &str, updated: i64| -> RawObject<'static> {
            let text: &'static str = Box::leak(format!(
                r#"{{"metadata":{{"name":"d","namespace":"n","uid":"u","resourceVersion":"{rv}","generation":{generation},
                "creationTimestamp":"1970-01-01T00:00:10Z"}},
                "spec":{{"template":{{"spec":{{"containers":[{{"name":"c","image":"{image}"}}]}}}}}},
                "status":{{"observedGeneration":{generation},"desiredNumberScheduled":2,"updatedNumberScheduled":{updated},"numberAvailable":2}}}}"#
            ).into_boxed_str());
            serde_json::from_str(text).unwrap()
        };
        let mut s = WatchState::default();
        s.apply(&subs, &ds("1", 1, "a:v1", 2), 100.0);
        let k: ObjKey = ("n".into(), "d".into());
        assert_eq!(s.objects[&k].template_changed, 10.0);
        s.apply(&subs, &ds("2", 2, "a:v2", 0), 200.0);
        assert_eq!(s.objects[&k].template_changed, 200.0);
        // Rollout progress moves last_progress only.
        s.apply(&subs, &ds("3", 2, "a:v2", 1), 300.0);
        assert_eq!((s.objects[&k].template_changed, s.objects[&k].last_progress), (200.0, 300.0));
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

    fn event(name: &str, count: u64, kind: &str, uid: &str, reason: &str) -> RawObject<'static> {
        let text: &'static str = Box::leak(format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"n","uid":"e-{name}","resourceVersion":"{count}"}},"type":"Warning","reason":"{reason}","count":{count},
            "involvedObject":{{"kind":"{kind}","namespace":"n","name":"x","uid":"{uid}"}}}}"#
        ).into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    fn events() -> Subscribers {
        Subscribers { kind: Some(crate::model::Kind::Event), ..Default::default() }
    }

    fn count(s: &WatchState, uid: &str, reason: &str) -> Option<u64> {
        s.warnings.get(uid).and_then(|t| t.reasons.get(reason).copied())
    }

    #[test]
    fn warnings_are_keyed_by_uid_and_count_only_increments() {
        let subs = events();
        let mut s = WatchState::default();
        s.apply(&subs, &event("a", 3, "Widget", "w1", "Failed"), 10.0);
        s.apply(&subs, &event("a", 5, "Widget", "w1", "Failed"), 11.0);
        assert_eq!(count(&s, "w1", "Failed"), Some(5));
        // The same name re-created (new UID) starts from zero.
        s.apply(&subs, &event("b", 1, "Widget", "w2", "Failed"), 12.0);
        assert_eq!(count(&s, "w2", "Failed"), Some(1));
        assert_eq!(count(&s, "w1", "Failed"), Some(5));
        // Pods are never rendered: their warnings are not kept.
        s.apply(&subs, &event("c", 9, "Pod", "p1", "BackOff"), 12.0);
        assert!(!s.warnings.contains_key("p1"));
    }

    #[test]
    fn reasons_are_bounded_in_length_and_number() {
        let subs = events();
        let mut s = WatchState::default();
        let long = "é".repeat(200);
        s.apply(&subs, &event("a", 1, "Widget", "w1", &long), 10.0);
        let r = s.warnings["w1"].reasons.keys().next().unwrap().to_string();
        assert!(r.len() <= MAX_REASON_BYTES && r.ends_with('…') && r.starts_with("éé"), "{r}");
        for i in 0..MAX_REASONS + 5 {
            s.apply(&subs, &event(&format!("r{i}"), 1, "Widget", "w1", &format!("Reason{i}")), 10.0);
        }
        let t = &s.warnings["w1"];
        assert_eq!(t.reasons.len(), MAX_REASONS + 1);
        assert_eq!(t.reasons[OTHER_REASON], 6);
    }

    #[test]
    fn prune_keeps_rendered_and_recent_counts() {
        let subs = events();
        let mut s = WatchState::default();
        s.apply(&subs, &event("a", 1, "Widget", "live", "F"), 0.0);
        s.apply(&subs, &event("b", 1, "Widget", "gone", "F"), 0.0);
        s.apply(&subs, &event("c", 1, "Widget", "new", "F"), WARNING_GRACE);
        s.prune_warnings(&["live"].into_iter().collect(), WARNING_GRACE + 1.0, true);
        let mut left: Vec<_> = s.warnings.keys().map(|k| k.to_string()).collect();
        left.sort();
        assert_eq!(left, ["live", "new"]);
    }

    #[test]
    fn a_rendered_object_that_is_gone_loses_its_count_at_once_when_settled() {
        let subs = events();
        let mut s = WatchState::default();
        s.apply(&subs, &event("a", 1, "Widget", "w1", "F"), 0.0);
        s.prune_warnings(&["w1"].into_iter().collect(), 1.0, true);
        // Not rendered while a watch re-lists: kept.
        s.prune_warnings(&HashSet::new(), 2.0, false);
        assert!(s.warnings.contains_key("w1"));
        // Not rendered with every watch synced: deleted, dropped well within the grace.
        s.prune_warnings(&HashSet::new(), 3.0, true);
        assert!(s.warnings.is_empty());
    }
}
