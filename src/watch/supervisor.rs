//! The watch tasks of the running config: one tokio task per planned watch, kept across
//! reloads when its key and subscribers are unchanged.

use std::{collections::HashMap, sync::Arc};

use kube::Client;
use tokio::task::JoinHandle;

use super::{WatchOptions, plan, run};
use crate::{
    config::Config,
    store::{Store, Watch, WatchKey},
};

/// Owns the watch tasks of the running config.
pub struct Supervisor {
    client: Client,
    store: Arc<Store>,
    tasks: HashMap<WatchKey, (Arc<Watch>, WatchOptions, JoinHandle<()>)>,
}

impl Supervisor {
    /// A supervisor with no watches yet.
    pub fn new(client: Client, store: Arc<Store>) -> Supervisor {
        Supervisor { client, store, tasks: HashMap::new() }
    }

    /// Starts the watches a config needs. A watch whose key, targets and options (resync,
    /// watch timeout) are unchanged keeps running with its history (phase times, counters);
    /// the others restart, so a changed `resync` or `watchTimeout` takes effect.
    pub fn apply(&mut self, config: &Config) {
        let opts = WatchOptions { resync: config.resync, timeout: config.watch_timeout };
        let mut next = HashMap::new();
        for (key, subs) in plan(config) {
            let keep = self.tasks.remove(&key).filter(|(w, o, _)| w.subs == subs && *o == opts);
            let entry = keep.unwrap_or_else(|| {
                let w = Arc::new(Watch::new(key.clone(), subs));
                let handle = tokio::spawn(run(self.client.clone(), w.clone(), opts));
                (w, opts, handle)
            });
            next.insert(key, entry);
        }
        for (_, (_, _, handle)) in self.tasks.drain() {
            handle.abort();
        }
        let mut watches: Vec<_> = next.values().map(|(w, _, _)| w.clone()).collect();
        watches.sort_by(|a, b| a.key.cmp(&b.key));
        self.store.set_watches(watches);
        self.tasks = next;
    }
}
