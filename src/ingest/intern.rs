//! String sharing for fact records: many objects repeat the same images, node names, container
//! names and managers, so each watch keeps one copy of each. A string no fact uses any more
//! (its object deleted or changed) is dropped by [`Interner::removed`]'s periodic prune.

use std::{
    collections::HashSet,
    hash::{BuildHasher, Hasher, RandomState},
    sync::Arc,
};

/// Removals between prunes, at least; and at least a quarter of the strings held, so pruning
/// costs O(1) per removal amortised.
const PRUNE_EVERY: usize = 256;

/// Shares repeated strings (images, node names, container names) between objects.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>, Seeded>,
    removed: usize,
}

/// The interner's hash: every event looks up about ten short strings, and SipHash costs more
/// than the lookup itself. A word-at-a-time multiply-rotate hash (the FxHash construction)
/// keyed with a random per-interner seed, so colliding names cannot be chosen in advance.
#[derive(Debug, Clone)]
struct Seeded(u64);

impl Default for Seeded {
    fn default() -> Seeded {
        Seeded(RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for Seeded {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.0)
    }
}

/// See [`Seeded`].
struct WordHasher(u64);

/// An odd 64-bit constant with well-spread bits (the golden ratio), as FxHash uses.
const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The length first: a zero-padded last word must not equal a string ending in NULs.
        self.add(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }
    fn finish(&self) -> u64 {
        // The table picks buckets from the low bits and tags from the high bits; fold the
        // well-mixed high half into the low one.
        self.0 ^ (self.0 >> 32)
    }
}

impl Interner {
    /// The shared copy of `s`, added on first use.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(v) = self.strings.get(s) {
            return v.clone();
        }
        let v: Arc<str> = Arc::from(s);
        self.strings.insert(v.clone());
        v
    }

    /// Notes that `n` records were removed or replaced; now and then drops every string only
    /// the interner still holds.
    pub fn removed(&mut self, n: usize) {
        self.removed += n;
        if self.removed >= PRUNE_EVERY.max(self.strings.len() / 4) {
            self.prune();
        }
    }

    /// Drops every string no fact uses (held only here).
    pub fn prune(&mut self) {
        self.strings.retain(|s| Arc::strong_count(s) > 1);
        self.removed = 0;
    }

    /// Strings held.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether no string is held.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unused_strings_are_pruned() {
        let mut i = Interner::default();
        let kept = i.get("node-a");
        assert!(Arc::ptr_eq(&kept, &i.get("node-a")));
        for n in 0..PRUNE_EVERY {
            drop(i.get(&format!("digest-{n}")));
        }
        assert_eq!(i.len(), PRUNE_EVERY + 1);
        i.removed(PRUNE_EVERY);
        assert_eq!(i.len(), 1);
        assert!(Arc::ptr_eq(&kept, &i.get("node-a")));
    }

    #[test]
    fn strings_that_differ_only_past_a_word_or_in_length_are_distinct() {
        let mut i = Interner::default();
        let names = [
            "",
            "a",
            "a\0",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgj",
            "docker.io/x:v1",
            "docker.io/x:v2",
        ];
        let got: Vec<Arc<str>> = names.iter().map(|n| i.get(n)).collect();
        assert_eq!(i.len(), names.len());
        for (n, g) in names.iter().zip(&got) {
            assert_eq!(&**g, *n);
            assert!(Arc::ptr_eq(g, &i.get(n)));
        }
    }
}
