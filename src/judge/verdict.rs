//! The verdict per object, kstatus-like, computed at scrape time from stored facts.
//!
//! It keeps no state of its own: each unconverged reason carries the time it started, so
//! "since when" and "Stalled after `stalledAfter`" follow from the facts and the clock.
//! The rules are documented in docs/verdict.md; the tests below have one row per rule.

use crate::{config::Target, store::TimedFacts};

/// The verdict: Current, InProgress, Stalled or Failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Current,
    InProgress,
    Stalled,
    Failed,
    Terminating,
}

impl Status {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Status::Current => "Current",
            Status::InProgress => "InProgress",
            Status::Stalled => "Stalled",
            Status::Failed => "Failed",
            Status::Terminating => "Terminating",
        }
    }
}

/// Why an object is not Current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    WorkloadMissing,
    GenerationNotObserved,
    PhaseNotReady,
    ConditionNotReady,
    ImageNotRolledOut,
    RolloutNotProgressing,
    /// A linked or own rollout is incomplete but moved within `stalledAfter`.
    RolloutInProgress,
    PodsOutdated,
}

impl Reason {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Reason::WorkloadMissing => "WorkloadMissing",
            Reason::GenerationNotObserved => "GenerationNotObserved",
            Reason::PhaseNotReady => "PhaseNotReady",
            Reason::ConditionNotReady => "ConditionNotReady",
            Reason::ImageNotRolledOut => "ImageNotRolledOut",
            Reason::RolloutNotProgressing => "RolloutNotProgressing",
            Reason::RolloutInProgress => "RolloutInProgress",
            Reason::PodsOutdated => "PodsOutdated",
        }
    }
}

/// An object's status, why, and since when it is unconverged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub reason: Option<Reason>,
    /// When the object stopped being Current (the earliest start of its active reasons).
    pub unconverged_since: Option<f64>,
    /// When it became Stalled: `unconverged_since + stalledAfter`.
    pub stalled_since: Option<f64>,
}

/// What the convergence model knows about an object beyond its own facts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    /// For kinds that report no observedGeneration: derived from the linked workloads.
    pub derived_generation_observed: Option<bool>,
    /// A desired image is not in a linked workload's template.
    pub image_mismatch: bool,
    /// Since when that desired image is a goal (see [`crate::judge::converge::Links::mismatch_since`]);
    /// `None`: the generation first seen.
    pub image_mismatch_since: Option<f64>,
    /// A required slot's workloads do not exist, since when.
    pub workload_missing_since: Option<f64>,
    /// An incomplete rollout (own or linked) and its last progress.
    pub rollout_incomplete_since: Option<f64>,
    /// A complete rollout that leaves pods on an old template (OnDelete), since last progress.
    pub pods_outdated_since: Option<f64>,
    /// The controller gave up (Deployment `ProgressDeadlineExceeded`).
    pub rollout_failed: bool,
    /// The latest progress of any rollout of the object (own or linked workloads).
    pub last_progress: Option<f64>,
}

/// Condition types that kstatus treats as "abnormal when True".
const FAILED_CONDITIONS: [&str; 1] = ["Stalled"];
const PROGRESSING_CONDITIONS: [&str; 1] = ["Reconciling"];

/// Whether the current generation has been observed: reported by the object, else derived
/// from its workloads; `None` when nothing can tell.
pub fn observed(t: &TimedFacts, ev: &Evidence) -> Option<bool> {
    generation_observed(t).or(ev.derived_generation_observed)
}

/// Whether the object reports its current generation as observed; `None` when it reports none.
pub fn generation_observed(t: &TimedFacts) -> Option<bool> {
    let f = &t.facts;
    match (f.generation, f.observed_generation) {
        (Some(g), Some(o)) => Some(o >= g),
        _ => None,
    }
}

/// Whether the phase is one of the ready phases; `None` without a phase rule or phase.
pub fn phase_ready(target: &Target, t: &TimedFacts) -> Option<bool> {
    let rule = target.phase.as_ref()?;
    if rule.ready.is_empty() {
        return None;
    }
    Some(t.facts.phase.as_deref().is_some_and(|p| rule.ready.iter().any(|r| r == p)))
}

/// The active reasons of a verdict, folded: the first reason and the first failure, the
/// earliest start, and the two stall clocks.
struct Active {
    first: Option<Reason>,
    first_failed: Option<Reason>,
    /// The earliest start of any reason.
    since: f64,
    /// The earliest start of the reasons a rollout cannot explain.
    hard: f64,
    /// The earliest start of the others, each restarted by the last rollout progress.
    soft: f64,
    last_progress: Option<f64>,
}

impl Active {
    fn new(last_progress: Option<f64>) -> Active {
        let inf = f64::INFINITY;
        Active { first: None, first_failed: None, since: inf, hard: inf, soft: inf, last_progress }
    }

    /// A reason active since `since`; `failed` marks a failure, `hard` a reason whose clock
    /// runs regardless of rollout progress.
    fn add(&mut self, reason: Reason, since: f64, failed: bool, hard: bool) {
        self.first.get_or_insert(reason);
        if failed {
            self.first_failed.get_or_insert(reason);
        }
        self.since = self.since.min(since);
        match hard {
            true => self.hard = self.hard.min(since),
            false => self.soft = self.soft.min(since.max(self.last_progress.unwrap_or(since))),
        }
    }
}

/// The verdict for one object at `now` from its facts and evidence.
pub fn judge(target: &Target, t: &TimedFacts, ev: &Evidence, now: f64) -> Verdict {
    let f = &t.facts;
    if f.deleting {
        return Verdict {
            status: Status::Terminating,
            reason: None,
            unconverged_since: None,
            stalled_since: None,
        };
    }
    // Every active reason with the time it started and whether it is a failure, folded as it
    // is found (no list: this runs for every object at every render); the first found is
    // reported, so the more specific causes are added before the generic ones.
    let mut active = Active::new(ev.last_progress);
    if let Some(since) = ev.workload_missing_since {
        active.add(Reason::WorkloadMissing, since, false, true);
    }
    if generation_observed(t) == Some(false) {
        active.add(Reason::GenerationNotObserved, t.generation_first_seen, false, true);
    }
    if ev.image_mismatch {
        let since = ev.image_mismatch_since.unwrap_or(t.generation_first_seen);
        active.add(Reason::ImageNotRolledOut, since, false, true);
    }
    if let Some(since) = ev.rollout_incomplete_since {
        active.add(Reason::RolloutNotProgressing, since, ev.rollout_failed, false);
    }
    if let Some(since) = ev.pods_outdated_since {
        active.add(Reason::PodsOutdated, since, false, false);
    }
    if ev.derived_generation_observed == Some(false) && active.first.is_none() {
        active.add(Reason::GenerationNotObserved, t.generation_first_seen, false, false);
    }
    if phase_ready(target, t) == Some(false) {
        active.add(Reason::PhaseNotReady, t.phase_since, false, false);
    }
    for c in &f.conditions {
        let since = c.last_transition.unwrap_or(t.generation_first_seen);
        let failed = FAILED_CONDITIONS.contains(&&*c.type_) && &*c.status == "True";
        let progressing = PROGRESSING_CONDITIONS.contains(&&*c.type_) && &*c.status == "True";
        let not_ready = target.conditions.ready.iter().any(|r| **r == *c.type_) && &*c.status != "True";
        if failed || progressing || not_ready {
            active.add(Reason::ConditionNotReady, since, failed, false);
        }
    }
    let Some(reason) = active.first else {
        return Verdict {
            status: Status::Current,
            reason: None,
            unconverged_since: None,
            stalled_since: None,
        };
    };
    let since = active.since.min(now);
    let failed = active.first_failed.is_some();
    // The stall clock: reasons a rollout explains restart it whenever a rollout of the object
    // (own or linked) moves, so a long healthy rollout is never Stalled; the others keep theirs.
    let clock = active.hard.min(active.soft).min(now);
    let stalled_at = clock + target.stalled_after.as_secs_f64();
    let status = if failed {
        Status::Failed
    } else if now >= stalled_at {
        Status::Stalled
    } else {
        Status::InProgress
    };
    let stalled_since = match status {
        Status::Stalled => Some(stalled_at),
        Status::Failed => Some(since),
        _ => None,
    };
    let reason = active.first_failed.unwrap_or(reason);
    // A rollout that moved within `stalledAfter` is progressing, whatever else is late.
    let reason = match (reason, ev.rollout_incomplete_since) {
        (Reason::RolloutNotProgressing, Some(since))
            if !failed
                && now
                    < since.max(ev.last_progress.unwrap_or(since)) + target.stalled_after.as_secs_f64() =>
        {
            Reason::RolloutInProgress
        }
        _ => reason,
    };
    Verdict { status, reason: Some(reason), unconverged_since: Some(since), stalled_since }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        ingest::target::{ConditionFact, TargetFacts},
    };

    fn target() -> Target {
        Config::parse(
            "stalledAfter: 100s\ntargets:\n  - name: t\n    resource: {group: g, version: v1, kind: K}\n    phase: {path: $.status.phase, ready: [Running]}\n",
            "t",
        )
        .unwrap()
        .targets
        .remove(0)
    }

    fn cond(t: &str, s: &str, since: f64) -> ConditionFact {
        ConditionFact {
            type_: t.into(),
            status: s.into(),
            reason: "".into(),
            last_transition: Some(since),
            observed_generation: None,
        }
    }

    fn tracked(
        generation: Option<i64>,
        observed: Option<i64>,
        phase: Option<&str>,
        conds: Vec<ConditionFact>,
    ) -> TimedFacts {
        TimedFacts {
            facts: TargetFacts {
                generation,
                observed_generation: observed,
                phase: phase.map(std::sync::Arc::from),
                conditions: conds,
                ..Default::default()
            },
            generation_first_seen: 1000.0,
            phase_since: 1010.0,
            desired_changed: 1000.0,
        }
    }

    #[test]
    fn table() {
        use Reason::*;
        use Status::*;
        // (row, facts, now, status, reason, unconverged_since)
        type Row<'a> = (&'a str, TimedFacts, f64, Status, Option<Reason>, Option<f64>);
        let rows: Vec<Row> = vec![
            (
                "all converged",
                tracked(Some(2), Some(2), Some("Running"), vec![cond("Ready", "True", 5.0)]),
                2000.0,
                Current,
                None,
                None,
            ),
            (
                "generation lag, young",
                tracked(Some(3), Some(2), Some("Running"), vec![]),
                1050.0,
                InProgress,
                Some(GenerationNotObserved),
                Some(1000.0),
            ),
            (
                "generation lag, old",
                tracked(Some(3), Some(2), Some("Running"), vec![]),
                1100.0,
                Stalled,
                Some(GenerationNotObserved),
                Some(1000.0),
            ),
            (
                "no observed generation is not a lag",
                tracked(Some(3), None, Some("Running"), vec![]),
                5000.0,
                Current,
                None,
                None,
            ),
            (
                "phase not ready",
                tracked(Some(1), Some(1), Some("Pending"), vec![]),
                1050.0,
                InProgress,
                Some(PhaseNotReady),
                Some(1010.0),
            ),
            (
                "phase missing",
                tracked(Some(1), Some(1), None, vec![]),
                2000.0,
                Stalled,
                Some(PhaseNotReady),
                Some(1010.0),
            ),
            (
                "ready condition false",
                tracked(Some(1), Some(1), Some("Running"), vec![cond("Ready", "False", 1020.0)]),
                1030.0,
                InProgress,
                Some(ConditionNotReady),
                Some(1020.0),
            ),
            (
                "reconciling true",
                tracked(Some(1), Some(1), Some("Running"), vec![cond("Reconciling", "True", 1020.0)]),
                1030.0,
                InProgress,
                Some(ConditionNotReady),
                Some(1020.0),
            ),
            (
                "stalled condition true is Failed",
                tracked(Some(1), Some(1), Some("Running"), vec![cond("Stalled", "True", 1020.0)]),
                1030.0,
                Failed,
                Some(ConditionNotReady),
                Some(1020.0),
            ),
            (
                "earliest reason sets since, first reason is named",
                tracked(Some(2), Some(1), Some("Pending"), vec![]),
                1105.0,
                Stalled,
                Some(GenerationNotObserved),
                Some(1000.0),
            ),
        ];
        let t = target();
        for (row, tf, now, status, reason, since) in rows {
            let v = judge(&t, &tf, &Evidence::default(), now);
            assert_eq!((v.status, v.reason, v.unconverged_since), (status, reason, since), "row: {row}");
        }
    }

    #[test]
    fn stalled_since_is_start_plus_threshold() {
        let v = judge(
            &target(),
            &tracked(Some(3), Some(2), Some("Running"), vec![]),
            &Evidence::default(),
            1500.0,
        );
        assert_eq!(v.stalled_since, Some(1100.0));
    }

    #[test]
    fn convergence_rows() {
        use Reason::*;
        use Status::*;
        let t = target();
        let ok = tracked(Some(2), None, Some("Running"), vec![]);
        let ev = |f: &dyn Fn(&mut Evidence)| {
            let mut e = Evidence::default();
            f(&mut e);
            e
        };
        // (row, evidence, now, status, reason, since)
        type Row<'a> = (&'a str, Evidence, f64, Status, Option<Reason>, Option<f64>);
        let rows: Vec<Row> = vec![
            (
                "derived observed",
                ev(&|e| e.derived_generation_observed = Some(true)),
                5000.0,
                Current,
                None,
                None,
            ),
            (
                "image not rolled out, young",
                ev(&|e| {
                    e.image_mismatch = true;
                    e.derived_generation_observed = Some(false)
                }),
                1050.0,
                InProgress,
                Some(ImageNotRolledOut),
                Some(1000.0),
            ),
            (
                "image not rolled out, old",
                ev(&|e| e.image_mismatch = true),
                1100.0,
                Stalled,
                Some(ImageNotRolledOut),
                Some(1000.0),
            ),
            (
                "rollout progressing recently",
                ev(&|e| e.rollout_incomplete_since = Some(1900.0)),
                1950.0,
                InProgress,
                Some(RolloutInProgress),
                Some(1900.0),
            ),
            (
                "rollout incomplete for long but moved recently",
                ev(&|e| {
                    e.rollout_incomplete_since = Some(1000.0);
                    e.last_progress = Some(1900.0)
                }),
                1950.0,
                InProgress,
                Some(RolloutInProgress),
                Some(1000.0),
            ),
            (
                "required workload missing since its removal",
                ev(&|e| e.workload_missing_since = Some(1900.0)),
                1950.0,
                InProgress,
                Some(WorkloadMissing),
                Some(1900.0),
            ),
            (
                "required workload missing for long, even with a moving rollout",
                ev(&|e| {
                    e.workload_missing_since = Some(1500.0);
                    e.rollout_incomplete_since = Some(1900.0);
                    e.last_progress = Some(1940.0)
                }),
                1950.0,
                Stalled,
                Some(WorkloadMissing),
                Some(1500.0),
            ),
            (
                "image goal changed late (pin): clock from the change",
                ev(&|e| {
                    e.image_mismatch = true;
                    e.image_mismatch_since = Some(1900.0)
                }),
                1950.0,
                InProgress,
                Some(ImageNotRolledOut),
                Some(1900.0),
            ),
            (
                "image goal changed late, then stuck",
                ev(&|e| {
                    e.image_mismatch = true;
                    e.image_mismatch_since = Some(1800.0)
                }),
                1950.0,
                Stalled,
                Some(ImageNotRolledOut),
                Some(1800.0),
            ),
            (
                "rollout not progressing",
                ev(&|e| e.rollout_incomplete_since = Some(1800.0)),
                1950.0,
                Stalled,
                Some(RolloutNotProgressing),
                Some(1800.0),
            ),
            (
                "rollout deadline exceeded",
                ev(&|e| {
                    e.rollout_incomplete_since = Some(1900.0);
                    e.rollout_failed = true
                }),
                1950.0,
                Failed,
                Some(RolloutNotProgressing),
                Some(1900.0),
            ),
            (
                "pods outdated (OnDelete)",
                ev(&|e| e.pods_outdated_since = Some(1500.0)),
                1700.0,
                Stalled,
                Some(PodsOutdated),
                Some(1500.0),
            ),
            (
                "derived unobserved without a cause",
                ev(&|e| e.derived_generation_observed = Some(false)),
                1050.0,
                InProgress,
                Some(GenerationNotObserved),
                Some(1000.0),
            ),
        ];
        for (row, e, now, status, reason, since) in rows {
            let v = judge(&t, &ok, &e, now);
            assert_eq!((v.status, v.reason, v.unconverged_since), (status, reason, since), "row: {row}");
        }
    }

    #[test]
    fn phase_lagging_a_finished_rollout_stalls_only_after_the_threshold() {
        // Pending since 1010, the linked rollout last moved (and completed) at 1900.
        let t = target();
        let tf = tracked(Some(1), None, Some("Pending"), vec![]);
        let ev = Evidence { last_progress: Some(1900.0), ..Default::default() };
        let v = judge(&t, &tf, &ev, 1950.0);
        assert_eq!(
            (v.status, v.reason, v.unconverged_since),
            (Status::InProgress, Some(Reason::PhaseNotReady), Some(1010.0))
        );
        let v = judge(&t, &tf, &ev, 2001.0);
        assert_eq!((v.status, v.stalled_since), (Status::Stalled, Some(2000.0)));
    }

    #[test]
    fn terminating_wins() {
        let mut tf = tracked(Some(3), Some(2), Some("Pending"), vec![]);
        tf.facts.deleting = true;
        assert_eq!(judge(&target(), &tf, &Evidence::default(), 5000.0).status, Status::Terminating);
    }
}
