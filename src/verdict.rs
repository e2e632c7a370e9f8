//! The verdict per object (F10), kstatus-like, computed at scrape time from stored facts.
//!
//! It keeps no state of its own: each unconverged reason carries the time it started, so
//! "since when" and "Stalled after `stalledAfter`" follow from the facts and the clock.
//! The rules are documented in docs/verdict.md; the tests below have one row per rule.

use crate::{config::Target, store::TrackedFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Current,
    InProgress,
    Stalled,
    Failed,
    Terminating,
}

impl Status {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    GenerationNotObserved,
    PhaseNotReady,
    ConditionNotReady,
    ImageNotRolledOut,
    RolloutNotProgressing,
    PodsOutdated,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::GenerationNotObserved => "GenerationNotObserved",
            Reason::PhaseNotReady => "PhaseNotReady",
            Reason::ConditionNotReady => "ConditionNotReady",
            Reason::ImageNotRolledOut => "ImageNotRolledOut",
            Reason::RolloutNotProgressing => "RolloutNotProgressing",
            Reason::PodsOutdated => "PodsOutdated",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub status: Status,
    pub reason: Option<Reason>,
    /// When the object stopped being Current (the earliest start of its active reasons).
    pub unconverged_since: Option<f64>,
    /// When it became Stalled: `unconverged_since + stalledAfter`.
    pub stalled_since: Option<f64>,
}

/// Condition types that kstatus treats as "abnormal when True".
const FAILED_CONDITIONS: [&str; 1] = ["Stalled"];
const PROGRESSING_CONDITIONS: [&str; 1] = ["Reconciling"];

/// Whether the current generation has been observed; `None` when the kind cannot tell.
pub fn generation_observed(t: &TrackedFacts) -> Option<bool> {
    let f = &t.facts;
    match (f.generation, f.observed_generation) {
        (Some(g), Some(o)) => Some(o >= g),
        _ => None,
    }
}

pub fn phase_ready(target: &Target, t: &TrackedFacts) -> Option<bool> {
    let rule = target.phase.as_ref()?;
    if rule.ready.is_empty() {
        return None;
    }
    Some(t.facts.phase.as_deref().is_some_and(|p| rule.ready.iter().any(|r| r == p)))
}

pub fn judge(target: &Target, t: &TrackedFacts, now: f64) -> Verdict {
    let f = &t.facts;
    if f.deleting {
        return Verdict {
            status: Status::Terminating,
            reason: None,
            unconverged_since: None,
            stalled_since: None,
        };
    }
    // Every active reason with the time it started; the first listed is reported.
    let mut active: Vec<(Reason, f64, bool)> = Vec::new();
    if generation_observed(t) == Some(false) {
        active.push((Reason::GenerationNotObserved, t.generation_first_seen, false));
    }
    if phase_ready(target, t) == Some(false) {
        active.push((Reason::PhaseNotReady, t.phase_since, false));
    }
    for c in &f.conditions {
        let since = c.last_transition.unwrap_or(t.generation_first_seen);
        let failed = FAILED_CONDITIONS.contains(&&*c.type_) && &*c.status == "True";
        let progressing = PROGRESSING_CONDITIONS.contains(&&*c.type_) && &*c.status == "True";
        let not_ready = target.conditions.ready.iter().any(|r| **r == *c.type_) && &*c.status != "True";
        if failed || progressing || not_ready {
            active.push((Reason::ConditionNotReady, since, failed));
        }
    }
    let Some(&(reason, _, _)) = active.first() else {
        return Verdict {
            status: Status::Current,
            reason: None,
            unconverged_since: None,
            stalled_since: None,
        };
    };
    let since = active.iter().map(|a| a.1).fold(f64::INFINITY, f64::min).min(now);
    let failed = active.iter().any(|a| a.2);
    let stalled_at = since + target.stalled_after.as_secs_f64();
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
    let reason = if failed { Reason::ConditionNotReady } else { reason };
    Verdict { status, reason: Some(reason), unconverged_since: Some(since), stalled_since }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::Config,
        facts::{ConditionFact, ObjectFacts},
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
    ) -> TrackedFacts {
        TrackedFacts {
            facts: ObjectFacts {
                generation,
                observed_generation: observed,
                phase: phase.map(Box::from),
                conditions: conds,
                ..Default::default()
            },
            generation_first_seen: 1000.0,
            phase_since: 1010.0,
        }
    }

    #[test]
    fn table() {
        use Reason::*;
        use Status::*;
        // (row, facts, now, status, reason, unconverged_since)
        let rows: Vec<(&str, TrackedFacts, f64, Status, Option<Reason>, Option<f64>)> = vec![
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
            let v = judge(&t, &tf, now);
            assert_eq!((v.status, v.reason, v.unconverged_since), (status, reason, since), "row: {row}");
        }
    }

    #[test]
    fn stalled_since_is_start_plus_threshold() {
        let v = judge(&target(), &tracked(Some(3), Some(2), Some("Running"), vec![]), 1500.0);
        assert_eq!(v.stalled_since, Some(1100.0));
    }

    #[test]
    fn terminating_wins() {
        let mut tf = tracked(Some(3), Some(2), Some("Pending"), vec![]);
        tf.facts.deleting = true;
        assert_eq!(judge(&target(), &tf, 5000.0).status, Status::Terminating);
    }
}
