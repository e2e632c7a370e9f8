//! Counters that never go down between scrapes. An object's Warning count is summed at render
//! time over its own events and those of the workloads linked to it then; a workload that
//! unlinks (deleted, renamed, another pin) or whose count is dropped would lower the sum, and a
//! counter that decreases reads as a reset to `rate()` and `increase()`. [`WarningCounters`]
//! remembers, per series, the last sum and what was exposed, and exposes only increases.
//!
//! A series ends (its memory is dropped) when its object is no longer in a view: the object was
//! deleted, stopped matching its target, or its target stopped counting events. The counters
//! live in the renderer, so an exporter restart starts every series from the current sums.

use std::collections::{BTreeMap, HashMap};

/// (target, object UID): one object's family of `warning_events_total` series.
type SeriesKey = (Box<str>, Box<str>);

/// Per reason: (the last sum seen, the value exposed).
type Reasons = BTreeMap<Box<str>, (u64, u64)>;

/// The exposed counts of a view, per (target, object UID), as (reason, count).
pub type Totals<'k> = HashMap<(&'k str, &'k str), Vec<(Box<str>, u64)>>;

/// What the renderer keeps across scrapes so that Warning counters only increase.
#[derive(Debug, Default)]
pub struct WarningCounters {
    series: HashMap<SeriesKey, Reasons>,
    /// The instant of the newest view applied: an older snapshot (a concurrent render of the
    /// other format that took its copy earlier) reads the memory without changing it.
    newest: f64,
}

impl WarningCounters {
    /// The values to expose for one view taken at `now`, from each object's current sums per
    /// reason (`(target, uid) → [(reason, sum)]`). Every object of the view must be given:
    /// series of objects not given end. A reason whose sum fell keeps its exposed value; a
    /// sum that rises adds the rise.
    pub fn advance<'k>(
        &mut self,
        now: f64,
        sums: impl IntoIterator<Item = ((&'k str, &'k str), Vec<(&'k str, u64)>)>,
    ) -> Totals<'k> {
        let update = now >= self.newest;
        let mut out = HashMap::new();
        for ((target, uid), now_sums) in sums {
            let key: SeriesKey = (target.into(), uid.into());
            let mut next = self.series.get(&key).cloned().unwrap_or_default();
            // A reason not summed any more has a sum of zero: a later return counts from there.
            for (reason, e) in next.iter_mut() {
                if !now_sums.iter().any(|(r, _)| *r == &**reason) {
                    e.0 = 0;
                }
            }
            for (reason, sum) in &now_sums {
                let e = next.entry((*reason).into()).or_insert((0, 0));
                e.1 += sum.saturating_sub(e.0);
                e.0 = *sum;
            }
            out.insert((target, uid), next.iter().map(|(r, (_, shown))| (r.clone(), *shown)).collect());
            if update {
                self.series.insert(key, next);
            }
        }
        if update {
            self.newest = now;
            self.series.retain(|(t, u), _| out.contains_key(&(&**t, &**u)));
        }
        out
    }

    /// Series remembered (objects rendered by the newest view).
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is remembered.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(
        c: &mut WarningCounters,
        now: f64,
        objects: &[(&str, &[(&str, u64)])],
    ) -> Vec<(String, String, u64)> {
        let sums = objects.iter().map(|(uid, r)| (("t", *uid), r.to_vec()));
        let mut out: Vec<_> = c
            .advance(now, sums)
            .into_iter()
            .flat_map(|((_, uid), rs)| rs.into_iter().map(move |(r, n)| (uid.to_string(), r.to_string(), n)))
            .collect();
        out.sort();
        out
    }

    fn row(uid: &str, reason: &str, n: u64) -> (String, String, u64) {
        (uid.into(), reason.into(), n)
    }

    #[test]
    fn a_sum_that_falls_never_lowers_the_counter() {
        let mut c = WarningCounters::default();
        // The object's own 2 plus its DaemonSet's 5.
        assert_eq!(step(&mut c, 1.0, &[("o", &[("FailedCreate", 7)])]), vec![row("o", "FailedCreate", 7)]);
        // The DaemonSet unlinks: the sum falls to 2, the counter stays.
        assert_eq!(step(&mut c, 2.0, &[("o", &[("FailedCreate", 2)])]), vec![row("o", "FailedCreate", 7)]);
        // One new warning: +1 from the new sum.
        assert_eq!(step(&mut c, 3.0, &[("o", &[("FailedCreate", 3)])]), vec![row("o", "FailedCreate", 8)]);
        // A reason that disappears keeps its value; its return counts from zero.
        assert_eq!(step(&mut c, 4.0, &[("o", &[])]), vec![row("o", "FailedCreate", 8)]);
        assert_eq!(step(&mut c, 5.0, &[("o", &[("FailedCreate", 2)])]), vec![row("o", "FailedCreate", 10)]);
    }

    #[test]
    fn a_series_ends_with_its_object_and_a_namesake_starts_from_zero() {
        let mut c = WarningCounters::default();
        step(&mut c, 1.0, &[("old-uid", &[("BackOff", 4)]), ("other", &[])]);
        assert_eq!(c.len(), 2);
        // The object is deleted: not in the view, its memory goes.
        assert_eq!(step(&mut c, 2.0, &[("other", &[])]), vec![]);
        assert_eq!(c.len(), 1);
        // Re-created (new UID): starts from its own count.
        assert_eq!(step(&mut c, 3.0, &[("new-uid", &[("BackOff", 1)])]), vec![row("new-uid", "BackOff", 1)]);
    }

    #[test]
    fn an_older_snapshot_reads_without_changing_the_memory() {
        let mut c = WarningCounters::default();
        step(&mut c, 10.0, &[("o", &[("F", 5)])]);
        // A render that copied the store earlier sees a lower sum and a missing object.
        assert_eq!(step(&mut c, 9.0, &[("o", &[("F", 4)])]), vec![row("o", "F", 5)]);
        assert_eq!(step(&mut c, 9.5, &[]), vec![]);
        assert_eq!(c.len(), 1);
        // The next current view counts only the real increase.
        assert_eq!(step(&mut c, 11.0, &[("o", &[("F", 6)])]), vec![row("o", "F", 6)]);
    }
}
