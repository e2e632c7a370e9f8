//! The fact store: per watch, the facts of every object and the watch's own health.
//!
//! Watch tasks write here; `/metrics` reads. Everything is plain data behind short-held
//! locks so rendering never waits on the network. The methods that apply events, re-lists and
//! drift are pure (time is passed in) so tests drive them without a server.
//!
//! Owns watch identity ([`key`]), health vocabulary ([`health`]), history timing
//! ([`history`]), per-watch state ([`state`]), its records shared with renders ([`records`])
//! and its pods by controlling workload ([`pods`]). No IO: the watch module writes here,
//! judgement and exposition read.

pub mod health;
pub mod history;
pub mod key;
pub mod pods;
pub mod records;
pub mod state;

use std::sync::{Arc, RwLock};

pub use self::{
    health::{Changes, ErrorCause, RelistCause, ShardHealth, WatchHealth},
    history::TimedFacts,
    key::{Subscribers, WatchKey},
    pods::{OwnerKey, OwnerPods, PodIndex},
    records::Records,
    state::{ObjKey, ObjectRecord, Reconcile, WarningTally, WatchState},
};

/// One running watch and what it learned.
#[derive(Debug)]
pub struct Watch {
    pub key: WatchKey,
    pub subs: Subscribers,
    /// Shared with [`Watch::rejudged`] copies: a reload that changes only judgement settings
    /// hands the store a watch with the new subscribers over the running task's state.
    pub state: Arc<RwLock<WatchState>>,
}

impl Watch {
    /// A watch with an empty state.
    pub fn new(key: WatchKey, subs: Subscribers) -> Watch {
        Watch { key, subs, state: Arc::new(RwLock::new(WatchState::default())) }
    }

    /// The same watch (same key, same state, written by the same task) judged with `subs`,
    /// which differ from the running ones only in judgement settings.
    pub fn rejudged(&self, subs: Subscribers) -> Watch {
        Watch { key: self.key.clone(), subs, state: self.state.clone() }
    }

    /// Reads under the lock; a poisoned lock (a panicked writer) still yields the data.
    pub fn read<R>(&self, f: impl FnOnce(&WatchState) -> R) -> R {
        let g = self.state.read().unwrap_or_else(|e| e.into_inner());
        f(&g)
    }

    /// Writes under the lock; a poisoned lock still yields the data.
    pub fn write<R>(&self, f: impl FnOnce(&mut WatchState) -> R) -> R {
        let mut g = self.state.write().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

/// All watches of the running config; swapped as a whole on reload.
#[derive(Debug, Default)]
pub struct Store {
    watches: RwLock<Vec<Arc<Watch>>>,
}

impl Store {
    /// The running watches, sorted by key.
    pub fn watches(&self) -> Vec<Arc<Watch>> {
        self.watches.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the running watches (on start and reload).
    pub fn set_watches(&self, w: Vec<Arc<Watch>>) {
        *self.watches.write().unwrap_or_else(|e| e.into_inner()) = w;
    }

    /// Ready once every watch finished its first attempt (data, or a definitive 403/404, so
    /// that one missing CRD does not hide every other signal behind an unready pod).
    pub fn ready(&self) -> bool {
        self.watches().iter().all(|w| w.read(|s| s.health.attempted))
    }
}
