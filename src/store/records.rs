//! The object records of one watch, shared with renders by reference counts.
//!
//! A render needs a consistent picture of every watch without holding the watches' locks while
//! it encodes, and without copying them: a copy of 100k records (their facts, strings and
//! vectors) cost more than the encode. So the map and each record sit behind an [`Arc`]: a
//! snapshot is one reference count, and a writer that changes the map while a render still
//! holds the old one copies the map's nodes (keys and record pointers, never the records), once
//! per render; a changed record is copied alone (`Arc::make_mut` on it).

use std::{collections::BTreeMap, ops::Deref, sync::Arc};

use super::state::{ObjKey, ObjectRecord};

/// The records by `(namespace, name)`, ordered so `/metrics` renders in a stable order.
#[derive(Debug, Clone, Default)]
pub struct Records(Arc<BTreeMap<ObjKey, Arc<ObjectRecord>>>);

impl Deref for Records {
    type Target = BTreeMap<ObjKey, Arc<ObjectRecord>>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = (&'a ObjKey, &'a Arc<ObjectRecord>);
    type IntoIter = std::collections::btree_map::Iter<'a, ObjKey, Arc<ObjectRecord>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Records {
    /// The map to change; copied first (keys and pointers) when a snapshot still shares it.
    /// A record changed in place (`WatchState::apply`) takes a fresh stamp
    /// ([`ObjectRecord::stamp`]), so readers that cache by stamp see a new version.
    pub(crate) fn make_mut(&mut self) -> &mut BTreeMap<ObjKey, Arc<ObjectRecord>> {
        Arc::make_mut(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uid: &str) -> ObjectRecord {
        ObjectRecord {
            uid: uid.into(),
            resource_version: "1".into(),
            per_target: Vec::new(),
            kind: None,
            last_progress: 0.0,
            template_changed: 0.0,
            stamp: crate::store::state::next_stamp(),
        }
    }

    #[test]
    fn a_snapshot_keeps_what_it_saw_while_the_live_map_changes() {
        let mut live = Records::default();
        let k: ObjKey = ("n".into(), "a".into());
        live.make_mut().insert(k.clone(), Arc::new(record("u1")));
        let snap = live.clone();
        // Changed in place as `WatchState::apply` does: copied first, with a fresh stamp.
        let changed = Arc::make_mut(live.make_mut().get_mut(&k).unwrap());
        changed.uid = "u2".into();
        changed.stamp = crate::store::state::next_stamp();
        live.make_mut().insert(("n".into(), "b".into()), Arc::new(record("u3")));
        assert_eq!((&*snap[&k].uid, snap.len()), ("u1", 1));
        assert_eq!((&*live[&k].uid, live.len()), ("u2", 2));
        // The changed record is a new version; the snapshot's is the old one.
        assert_ne!(snap[&k].stamp(), live[&k].stamp());
    }
}
