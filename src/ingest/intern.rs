//! String sharing for fact records: many objects repeat the same images, node names, container
//! names and managers, so each watch keeps one copy of each. A string no fact uses any more
//! (its object deleted or changed) is dropped by [`Interner::removed`]'s periodic prune.

use std::{collections::HashSet, sync::Arc};

/// Removals between prunes, at least; and at least a quarter of the strings held, so pruning
/// costs O(1) per removal amortised.
const PRUNE_EVERY: usize = 256;

/// Shares repeated strings (images, node names, container names) between objects.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
    removed: usize,
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
}
