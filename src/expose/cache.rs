//! Pre-rendered lines of the tracked objects' own families ([`super::own`]), kept between
//! renders so that a render copies bytes instead of formatting them: at 100k objects `/metrics`
//! is about 2.5 million series, and nearly all of them are the same as on the previous scrape.
//!
//! Where they live, and why here: the lines are exposition (names, escaped labels, value
//! formatting), so they belong to `expose`, not to the store; keeping them in the renderer
//! also keeps data flowing one way, since the store never learns what a render made of it.
//!
//! The lines are kept family-major in chunks of consecutive objects (in the order of
//! `view.objects`): a chunk holds, per family, the lines of all its objects back to back, so a
//! render copies each family of a chunk with one sequential copy rather than gathering a few
//! lines from every object. A chunk ends after an object whose key hashes to a boundary (or at
//! a size cap), so an object added, changed or deleted moves the boundaries only around it:
//! only the chunks whose objects changed are rewritten. An object is identified by its
//! record's stamp ([`ObjectRecord::stamp`], fresh for every new or changed record), its target
//! and the verdict its lines were written for: a chunk is reused only when every one of its
//! objects is the same by all three. Every render drops the chunks it did not use. Lines whose
//! value is a duration keep only their head; the render writes the value from its clock.
//!
//! The bytes are the same in both formats: every cached family is a gauge, and gauge samples
//! are written alike in OpenMetrics and text 0.0.4.
//!
//! [`ObjectRecord::stamp`]: crate::store::ObjectRecord::stamp

use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hasher},
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

/// What an object's lines were written for besides its key: the verdict, and whether the
/// generation is observed (derived from linked workloads for some kinds).
type Judged = (Verdict, Option<bool>);

/// (record stamp, target address). The address is unique while the target lives, and the
/// cache keeps the targets of its chunks alive ([`LineCache::targets`]).
type Key = (u64, usize);

fn key(o: &ObjView) -> Key {
    (o.tracked.stamp(), std::ptr::from_ref(o.target) as usize)
}

/// A chunk ends after an object whose key hash is 0 modulo this (objects per chunk on average).
const SPAN: u64 = 256;
/// ... or after this many objects.
const CAP: usize = 1024;

/// The pre-rendered lines of a run of consecutive objects, family-major.
#[derive(Debug)]
pub(super) struct Chunk {
    /// What each object's lines were written for, in order.
    ids: Vec<(Key, Judged)>,
    /// The render that last used the chunk.
    seen: u64,
    /// The objects' escaped label sets (`target`, `kind`, `namespace`, `name`), back to back.
    prefixes: String,
    /// Where each object's label set ends in `prefixes`.
    prefix_ends: Vec<u32>,
    /// Per family, the lines of every object (a clock family: the heads).
    text: [String; FAMILIES.len()],
    /// Per clock family (in the order of [`FAMILIES`]), where each object's head ends.
    head_ends: Vec<Vec<u32>>,
    /// Per clock family, each object's `since` (NaN for `None`).
    since: Vec<Vec<f64>>,
}

fn offset(s: &str) -> u32 {
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

fn cut<'s>(s: &'s str, ends: &[u32], k: usize) -> &'s str {
    let start = if k == 0 { 0 } else { ends[k - 1] as usize };
    &s[start..ends[k] as usize]
}

impl Chunk {
    fn new(objs: &[ObjView], ids: Vec<(Key, Judged)>, seen: u64) -> Chunk {
        let mut prefixes = String::new();
        let mut prefix_ends = Vec::with_capacity(objs.len());
        let mut text: [String; FAMILIES.len()] = Default::default();
        let mut head_ends: Vec<Vec<u32>> = Vec::new();
        let mut since: Vec<Vec<f64>> = Vec::new();
        for o in objs {
            prefixes.push_str(&labels(&[
                ("target", &o.target.name),
                ("kind", &o.target.resource.kind),
                ("namespace", o.namespace),
                ("name", o.name),
            ]));
            prefix_ends.push(offset(&prefixes));
        }
        let mut clock = 0;
        for (f, out) in FAMILIES.iter().zip(&mut text) {
            match f.lines {
                Lines::Whole(lines) => {
                    for (k, o) in objs.iter().enumerate() {
                        let prefix = cut(&prefixes, &prefix_ends, k);
                        lines(o, &mut |extra, v| {
                            out.push_str("stallwatch_");
                            writer::sample(out, f.name, prefix, extra, v);
                        });
                    }
                }
                Lines::Clock { present, since: from } => {
                    let mut ends = Vec::with_capacity(objs.len());
                    let mut starts = Vec::with_capacity(objs.len());
                    for (k, o) in objs.iter().enumerate() {
                        if present(o) {
                            out.push_str("stallwatch_");
                            writer::head(out, f.name, cut(&prefixes, &prefix_ends, k), &[]);
                        }
                        ends.push(offset(out));
                        starts.push(from(o).unwrap_or(f64::NAN));
                    }
                    head_ends.push(ends);
                    since.push(starts);
                    clock += 1;
                }
            }
            out.shrink_to_fit();
        }
        debug_assert_eq!(clock, head_ends.len());
        prefixes.shrink_to_fit();
        Chunk { ids, seen, prefixes, prefix_ends, text, head_ends, since }
    }

    /// Object `k`'s escaped label set.
    pub(super) fn prefix(&self, k: usize) -> &str {
        cut(&self.prefixes, &self.prefix_ends, k)
    }

    /// The lines of every object of the chunk in family `i` of [`FAMILIES`] (a whole family).
    pub(super) fn lines(&self, i: usize) -> &str {
        &self.text[i]
    }

    /// Object `k`'s head in family `i`, the `c`-th clock family of [`FAMILIES`] (empty when
    /// the object has no such series).
    pub(super) fn head(&self, i: usize, c: usize, k: usize) -> &str {
        cut(&self.text[i], &self.head_ends[c], k)
    }

    /// Object `k`'s `since` in the `c`-th clock family (see [`Lines::Clock`]).
    pub(super) fn since(&self, c: usize, k: usize) -> Option<f64> {
        Some(self.since[c][k]).filter(|s| !s.is_nan())
    }

    /// Objects in the chunk.
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Bytes held, for sizing.
    pub(super) fn bytes(&self) -> usize {
        let vecs = self.ids.capacity() * std::mem::size_of::<(Key, Judged)>()
            + (self.prefix_ends.capacity() + self.head_ends.iter().map(Vec::capacity).sum::<usize>()) * 4
            + self.since.iter().map(Vec::capacity).sum::<usize>() * 8;
        self.text.iter().map(String::capacity).sum::<usize>()
            + self.prefixes.capacity()
            + vecs
            + std::mem::size_of::<Chunk>()
    }
}

/// The chunks of every object the last render wrote, keyed by their first object.
#[derive(Debug, Default)]
pub(super) struct LineCache {
    chunks: HashMap<Key, Chunk, BuildHasherDefault<KeyHasher>>,
    /// The targets the chunks were written for, kept alive so that no new target can take an
    /// address a chunk's object is keyed by until the next render has dropped that chunk.
    targets: Vec<Arc<Target>>,
    renders: u64,
}

impl LineCache {
    /// Brings the chunks of `view`'s objects up to date, drops every other, and returns them
    /// in the order of `view.objects` (their lengths add up to it). `targets` are the running
    /// watches' targets (every target of the view).
    pub(super) fn refresh(&mut self, view: &View, targets: Vec<Arc<Target>>) -> Vec<&Chunk> {
        self.renders += 1;
        let now = self.renders;
        let hasher = BuildHasherDefault::<KeyHasher>::default();
        let mut firsts = Vec::new();
        let mut start = 0;
        while start < view.objects.len() {
            let mut end = start;
            let mut ids = Vec::new();
            while end < view.objects.len() {
                let o = &view.objects[end];
                let k = key(o);
                ids.push((k, (o.verdict, o.generation_observed())));
                end += 1;
                if hasher.hash_one(k) % SPAN == 0 || ids.len() >= CAP {
                    break;
                }
            }
            let first = ids[0].0;
            match self.chunks.get_mut(&first) {
                Some(c) if c.ids == ids => c.seen = now,
                _ => {
                    self.chunks.insert(first, Chunk::new(&view.objects[start..end], ids, now));
                }
            }
            firsts.push(first);
            start = end;
        }
        self.chunks.retain(|_, c| c.seen == now);
        self.targets = targets;
        firsts.iter().map(|k| &self.chunks[k]).collect()
    }

    /// Bytes the chunks hold (for sizing).
    pub(super) fn bytes(&self) -> usize {
        self.chunks.values().map(Chunk::bytes).sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<(Key, Chunk)>()
    }
}

/// A hasher for [`Key`]: stamps are distinct small integers and addresses distinct, so a
/// multiply-rotate mix is enough.
#[derive(Debug, Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        // The high bits of the product are the well mixed ones (chunk boundaries use the low).
        self.0.rotate_left(29)
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
