//! String sharing for fact records: many objects repeat the same images, node names, container
//! names and managers, so each watch keeps one copy of each.

use std::{collections::HashSet, sync::Arc};

/// Shares repeated strings (images, node names, container names) between objects.
#[derive(Debug, Default)]
pub struct Interner(HashSet<Arc<str>>);

impl Interner {
    /// The shared copy of `s`, added on first use.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(v) = self.0.get(s) {
            return v.clone();
        }
        let v: Arc<str> = Arc::from(s);
        self.0.insert(v.clone());
        v
    }
}
