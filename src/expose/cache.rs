//! Pre-rendered lines of the tracked objects' own families ([`super::own`]), kept between
//! renders so that a render copies bytes instead of formatting them: at 100k objects `/metrics`
//! is about 2.5 million series, and nearly all of them are the same as on the previous scrape.
//!
//! Where they live, and why here: the lines are exposition (names, escaped labels, value
//! formatting), so they belong to `expose`, not to the store; keeping them in the renderer
//! also keeps data flowing one way, since the store never learns what a render made of it.
//! An entry is keyed by the record's stamp ([`ObjectRecord::stamp`], fresh for every new or
//! changed record) and its target, and holds the verdict it was written for: a changed record
//! is a new key, a verdict that moved with the clock (`stalledAfter` passed) or with linked
//! workloads rewrites the entry in place. Every render drops the entries it did not use (deleted
//! objects, old versions, targets of an older config), so the cache holds at most one entry per
//! rendered object and target. Lines whose value is a duration keep only their head; the render
//! writes the value from its clock.
//!
//! The bytes are the same in both formats: every cached family is a gauge, and gauge samples
//! are written alike in OpenMetrics and text 0.0.4.
//!
//! [`ObjectRecord::stamp`]: crate::store::ObjectRecord::stamp

use std::{
    collections::{HashMap, hash_map},
    hash::{BuildHasherDefault, Hasher},
    sync::Arc,
};

use super::{
    own::{FAMILIES, Lines},
    writer::{self, labels},
};
use crate::{
    config::Target,
    judge::{
        verdict::Verdict,
        view::{ObjView, View},
    },
};

/// What an entry's lines were written for besides its key: the verdict, and whether the
/// generation is observed (derived from linked workloads for some kinds).
type Judged = (Verdict, Option<bool>);

/// One object's pre-rendered lines for one target.
#[derive(Debug)]
pub(super) struct Entry {
    judged: Judged,
    /// The render that last used the entry.
    seen: u64,
    /// The escaped label set, then each family's lines, back to back.
    text: String,
    /// Where the label set ends, then where each family's lines end.
    ends: [usize; FAMILIES.len() + 1],
}

impl Entry {
    fn new(o: &ObjView, judged: Judged, seen: u64) -> Entry {
        let prefix = labels(&[
            ("target", &o.target.name),
            ("kind", &o.target.resource.kind),
            ("namespace", o.namespace),
            ("name", o.name),
        ]);
        let mut text = String::with_capacity(prefix.len() * 26 + 1024);
        text.push_str(&prefix);
        let mut ends = [0; FAMILIES.len() + 1];
        ends[0] = text.len();
        for (f, end) in FAMILIES.iter().zip(&mut ends[1..]) {
            match f.lines {
                Lines::Whole(lines) => lines(o, &mut |extra, v| {
                    text.push_str("stallwatch_");
                    writer::sample(&mut text, f.name, &prefix, extra, v);
                }),
                Lines::Clock { present, .. } => {
                    if present(o) {
                        text.push_str("stallwatch_");
                        writer::head(&mut text, f.name, &prefix, &[]);
                    }
                }
            }
            *end = text.len();
        }
        text.shrink_to_fit();
        Entry { judged, seen, text, ends }
    }

    /// The object's escaped label set (`target`, `kind`, `namespace`, `name`).
    pub(super) fn prefix(&self) -> &str {
        &self.text[..self.ends[0]]
    }

    /// The lines of family `i` of [`FAMILIES`] (whole lines, or the head of a clock line).
    pub(super) fn lines(&self, i: usize) -> &str {
        &self.text[self.ends[i]..self.ends[i + 1]]
    }

    /// Bytes held, for sizing.
    pub(super) fn bytes(&self) -> usize {
        self.text.capacity() + std::mem::size_of::<Entry>()
    }
}

/// (record stamp, target address). The address is unique while the target lives, and the
/// cache keeps the targets of its entries alive ([`LineCache::targets`]).
type Key = (u64, usize);

fn key(o: &ObjView) -> Key {
    (o.tracked.stamp(), std::ptr::from_ref(o.target) as usize)
}

/// The entries of every object the last render wrote.
#[derive(Debug, Default)]
pub(super) struct LineCache {
    entries: HashMap<Key, Entry, BuildHasherDefault<KeyHasher>>,
    /// The targets the entries were written for, kept alive so that no new target can take an
    /// address an entry is keyed by until the next render has dropped that entry.
    targets: Vec<Arc<Target>>,
    renders: u64,
}

impl LineCache {
    /// Brings the entries of `view`'s objects up to date, drops every other, and returns them
    /// in the order of `view.objects`. `targets` are the running watches' targets (every
    /// target of the view).
    pub(super) fn refresh(&mut self, view: &View, targets: Vec<Arc<Target>>) -> Vec<&Entry> {
        self.renders += 1;
        let now = self.renders;
        for o in &view.objects {
            let judged = (o.verdict, o.generation_observed());
            match self.entries.entry(key(o)) {
                hash_map::Entry::Occupied(mut e) => {
                    let e = e.get_mut();
                    if e.judged == judged {
                        e.seen = now;
                    } else {
                        *e = Entry::new(o, judged, now);
                    }
                }
                hash_map::Entry::Vacant(e) => {
                    e.insert(Entry::new(o, judged, now));
                }
            }
        }
        self.entries.retain(|_, e| e.seen == now);
        self.targets = targets;
        view.objects.iter().map(|o| &self.entries[&key(o)]).collect()
    }

    /// Bytes the entries hold (for sizing).
    pub(super) fn bytes(&self) -> usize {
        self.entries.values().map(Entry::bytes).sum::<usize>()
            + self.entries.capacity() * std::mem::size_of::<(Key, Entry)>()
    }
}

/// A hasher for [`Key`]: stamps are distinct small integers and addresses distinct, so a
/// multiply-rotate mix is enough, and a render hashes every key twice.
#[derive(Debug, Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}
