//! One view of the store for a render (metrics, landing page, diagnose): a snapshot of every
//! watch, the convergence index built once, and each object's
//! links, evidence and verdict computed once.

use std::{collections::HashMap, sync::Arc};

use crate::{
    config::{ObservedGeneration, Target},
    ingest::builtin::BuiltinFacts,
    judge::converge::{self, Index, LinkedWorkload, Links},
    judge::counters::{Totals, WarningCounters},
    judge::verdict::{self, Evidence, Verdict},
    model::shard::Shard,
    store::{ObjectRecord, TimedFacts, WarningTally, Watch, WatchState},
};

/// A snapshot of every watch, each taken under its read lock and released at once: writers
/// (watch events) wait at most for one snapshot, never for a render. A snapshot shares the
/// watch's records and pod index by reference count ([`WatchState::snapshot`]); it copies only
/// health and warning counts.
pub struct Locked<'s> {
    pub guards: Vec<(&'s Watch, Box<WatchState>)>,
}

impl<'s> Locked<'s> {
    /// Snapshots every watch's state, one watch at a time.
    pub fn new(watches: &'s [Arc<Watch>]) -> Locked<'s> {
        Locked { guards: watches.iter().map(|w| (&**w, Box::new(w.read(WatchState::snapshot)))).collect() }
    }
}

/// A tracked object as one target sees it.
pub struct ObjView<'a> {
    pub target: &'a Target,
    pub namespace: &'a str,
    pub name: &'a str,
    pub tracked: &'a ObjectRecord,
    pub tf: &'a TimedFacts,
    pub links: Links<'a>,
    pub evidence: Evidence,
    pub verdict: Verdict,
}

impl ObjView<'_> {
    /// Whether the current generation is observed (by the object or, without one, by its workloads).
    pub fn generation_observed(&self) -> Option<bool> {
        verdict::observed(self.tf, &self.evidence)
    }
}

/// Warning counts per involved object's UID.
pub type Warnings<'a> = HashMap<&'a str, &'a WarningTally>;

/// Every tracked object with its links, evidence and verdict, and every linked workload, at one instant.
pub struct View<'a> {
    pub index: Index<'a>,
    pub objects: Vec<ObjView<'a>>,
    /// Every target some running watch subscribes to, in watch order.
    pub targets: Vec<&'a Target>,
    /// Every (target, workload) to report rollout series for.
    pub workloads: Vec<(&'a str, LinkedWorkload<'a>)>,
    /// Warning events by involved object's UID.
    pub warnings: Warnings<'a>,
    /// Warning counters made monotonic by [`View::count_warnings`], per (target, object UID).
    pub warning_totals: Option<Totals<'a>>,
    /// Whether this view exports the per-target series that carry no object (each target's
    /// settings and its controller's context): true unless [`View::keep_shard`] dropped them.
    pub per_target: bool,
    pub now: f64,
}

impl<'a> View<'a> {
    /// Builds the view of the locked store at `now`.
    pub fn new(locked: &'a Locked<'a>, now: f64) -> View<'a> {
        let index = Index::new(locked.guards.iter().map(|(w, g)| (&w.key, &**g)).collect());
        // Sized once: at 100k objects the vector is tens of MB, and growing it by doubling
        // copied it several times and faulted in fresh pages at every render.
        let tracked: usize = locked.guards.iter().map(|(w, g)| w.subs.targets.len() * g.objects.len()).sum();
        let mut objects = Vec::with_capacity(tracked);
        let mut targets: Vec<&Target> = Vec::new();
        let mut warnings: Warnings = HashMap::new();
        for (w, g) in &locked.guards {
            for t in &w.subs.targets {
                if !targets.iter().any(|x| std::ptr::eq(*x, &**t)) {
                    targets.push(t);
                }
            }
            warnings.extend(g.warnings.iter().map(|(uid, t)| (&**uid, t)));
            // Watches read only through the index (pods, workloads of links) track nothing:
            // not walking their objects keeps a render independent of the pod count.
            if w.subs.targets.is_empty() {
                continue;
            }
            for ((ns, name), tracked) in &g.objects {
                for (target, tf) in w.subs.targets.iter().zip(&tracked.per_target) {
                    let links = if target.images.is_empty() {
                        Links::default()
                    } else {
                        converge::links(&index, target, ns, tf)
                    };
                    let evidence = evidence(&index, target, ns, name, tracked, &links);
                    let verdict = verdict::judge(target, tf, &evidence, now);
                    objects.push(ObjView {
                        target,
                        namespace: ns,
                        name,
                        tracked,
                        tf,
                        links,
                        evidence,
                        verdict,
                    });
                }
            }
        }
        let workloads = converge::workloads(&index, &targets);
        View { index, objects, targets, workloads, warnings, warning_totals: None, per_target: true, now }
    }

    /// Keeps what shard `shard` of a sharded deployment exports, so that no series is exported
    /// by two shards: a workload's rollout series only on the shard that owns the workload's
    /// namespace (a workload linked in a named other namespace is watched, and would be
    /// reported, by every shard), and the per-target series only on shard 0. The linking
    /// objects' own series stay on their shard. Unsharded: keeps everything.
    pub fn keep_shard(&mut self, shard: Shard) {
        if !shard.is_sharded() {
            return;
        }
        self.workloads.retain(|(_, w)| shard.owns(w.namespace));
        self.per_target = shard.is_leader();
    }

    /// Makes the Warning counters of this view's objects monotonic through `counters`, which
    /// the renderer keeps across scrapes (see [`WarningCounters`]).
    pub fn count_warnings(&mut self, counters: &mut WarningCounters) {
        let sums: Vec<_> = self
            .objects
            .iter()
            .filter(|o| o.target.events)
            .map(|o| ((&*o.target.name, &*o.tracked.uid), self.warnings_of(o)))
            .collect();
        self.warning_totals = Some(counters.advance(self.now, sums));
    }

    /// What `warning_events_total` exposes for an object: the monotonic counters when
    /// [`View::count_warnings`] ran, the current sums otherwise.
    pub fn warning_counts(&self, o: &ObjView<'a>) -> Vec<(&str, u64)> {
        match &self.warning_totals {
            Some(t) => t
                .get(&(&*o.target.name, &*o.tracked.uid))
                .map(|rs| rs.iter().map(|(r, n)| (&**r, *n)).collect())
                .unwrap_or_default(),
            None => self.warnings_of(o),
        }
    }

    /// Warning events of an object and of the workloads linked to it, summed per reason.
    pub fn warnings_of(&self, o: &ObjView) -> Vec<(&'a str, u64)> {
        let mut by_reason: Vec<(&str, u64)> = Vec::new();
        let mut add = |uid: &str| {
            for (reason, n) in self.warnings.get(uid).map(|t| &t.reasons).into_iter().flatten() {
                match by_reason.iter_mut().find(|(r, _)| *r == &**reason) {
                    Some((_, total)) => *total += n,
                    None => by_reason.push((reason, *n)),
                }
            }
        };
        add(&o.tracked.uid);
        for w in &o.links.workloads {
            add(w.uid);
        }
        by_reason.sort();
        by_reason
    }
}

/// The object's own rollout (when it is a workload) and its links, as verdict evidence.
fn evidence<'a>(
    index: &Index<'a>,
    target: &Target,
    ns: &'a str,
    name: &'a str,
    tracked: &ObjectRecord,
    links: &Links,
) -> Evidence {
    let mut ev = Evidence {
        image_mismatch: links.any_mismatch(),
        image_mismatch_since: links.mismatch_since,
        workload_missing_since: links.required_missing_since,
        rollout_incomplete_since: links.rollout_incomplete_since(),
        pods_outdated_since: links.pods_outdated_since(),
        derived_generation_observed: match target.observed_generation {
            ObservedGeneration::Absent => links.generation_observed(),
            _ => None,
        },
        rollout_failed: links.workloads.iter().any(|w| w.facts.deadline_exceeded),
        last_progress: links.workloads.iter().map(|w| w.last_progress).reduce(f64::max),
    };
    if let Some(BuiltinFacts::Workload(w)) = &tracked.kind {
        let min = |a: Option<f64>, b: f64| Some(a.map_or(b, |a| a.min(b)));
        if !w.complete() {
            ev.rollout_incomplete_since = min(ev.rollout_incomplete_since, tracked.last_progress);
        } else if index.pod_counts(ns, name, &tracked.uid, w).1 > 0 {
            ev.pods_outdated_since = min(ev.pods_outdated_since, tracked.last_progress);
        }
        ev.rollout_failed |= w.deadline_exceeded;
        ev.last_progress =
            Some(ev.last_progress.map_or(tracked.last_progress, |p| p.max(tracked.last_progress)));
    }
    ev
}
