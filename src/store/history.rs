//! History timing: since when a generation and a phase hold. The object itself does not say;
//! the store derives it from what it saw before and the API's own write records, with `now`
//! passed in (see docs/timing.md).

use crate::ingest::TargetFacts;

/// What the store keeps per object and target, with the history-dependent times.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedFacts {
    pub facts: TargetFacts,
    pub generation_first_seen: f64,
    pub phase_since: f64,
    /// When the desired image references the object states last changed (a CR field set,
    /// changed or cleared). Without a new generation this is the only clock of such a change.
    pub desired_changed: f64,
}

impl TimedFacts {
    /// Times for an object seen for the first time (also after an exporter restart): the API's
    /// own records are the best evidence, `now` the last resort. See docs/timing.md.
    pub fn first(facts: TargetFacts, now: f64) -> TimedFacts {
        let generation_first_seen = match facts.generation {
            None | Some(1) => facts.created,
            Some(_) => facts.last_spec_write.or(facts.created),
        }
        .filter(|t| *t <= now)
        .unwrap_or(now);
        let phase_since = facts.last_status_write().or(facts.created).filter(|t| *t <= now).unwrap_or(now);
        TimedFacts { facts, generation_first_seen, phase_since, desired_changed: generation_first_seen }
    }

    /// Times after an update: a change starts now, unless the API recorded the write that made
    /// it later than the previous start (an event delivered late, e.g. by a re-list).
    pub fn update(&self, facts: TargetFacts, now: f64) -> TimedFacts {
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
        let desired_changed = if facts.desired_images != self.facts.desired_images {
            since(facts.last_spec_write, self.desired_changed)
        } else {
            self.desired_changed
        };
        TimedFacts { facts, generation_first_seen, phase_since, desired_changed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(generation: i64, image: Option<&str>) -> TargetFacts {
        TargetFacts {
            generation: Some(generation),
            created: Some(100.0),
            desired_images: vec![image.map(Box::from)],
            ..Default::default()
        }
    }

    #[test]
    fn desired_change_without_generation_starts_its_own_clock() {
        let t = TimedFacts::first(facts(1, Some("a:v1")), 200.0);
        assert_eq!((t.generation_first_seen, t.desired_changed), (100.0, 100.0));
        // Same generation, same images: nothing moves.
        let t = t.update(facts(1, Some("a:v1")), 300.0);
        assert_eq!(t.desired_changed, 100.0);
        // The stated image changes (or is cleared so a default applies) without a new generation.
        let t = t.update(facts(1, None), 400.0);
        assert_eq!((t.generation_first_seen, t.desired_changed), (100.0, 400.0));
    }
}
