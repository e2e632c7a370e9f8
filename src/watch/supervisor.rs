//! The watch tasks of the running config: one tokio task per planned watch, kept across
//! reloads when its key and subscribers are unchanged. Each task is guarded: a watch loop that
//! panics or ends is counted (`watch_errors_total{cause="panic"}`), marked not synced, and
//! restarted after a backoff, so a dead watch never looks healthy.

use std::{collections::HashMap, future::Future, panic::AssertUnwindSafe, sync::Arc, time::Instant};

use futures::FutureExt;
use kube::Client;
use tokio::task::JoinHandle;

use super::{
    WatchOptions,
    backoff::{Backoff, RESET_AFTER, Rng},
    plan, run,
};
use crate::{
    config::Config,
    store::{ErrorCause, Store, Watch, WatchKey},
};

/// Runs `start()` again whenever it panics or returns, after a backoff (reset after two minutes
/// of running), counting each restart on the watch.
pub(super) async fn guard<F, Fut>(watch: Arc<Watch>, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backoff = Backoff::new(Rng::seeded(&format!("{:?}", watch.key)));
    loop {
        let started = Instant::now();
        let why = match AssertUnwindSafe(start()).catch_unwind().await {
            Ok(()) => "ended".to_string(),
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                format!("panicked: {msg}")
            }
        };
        if started.elapsed() >= RESET_AFTER {
            backoff.reset();
        }
        let wait = backoff.next();
        tracing::error!(resource = %watch.key.gvk.label(), namespace = %watch.key.namespace, why = %why,
            restart_in_ms = wait.as_millis() as u64, "watch task stopped; restarting it");
        watch.write(|s| {
            *s.health.errors.entry(ErrorCause::Panic).or_default() += 1;
            s.health.synced = false;
            s.health.last_error = Some(format!("watch task {why}; restarting"));
        });
        tokio::time::sleep(wait).await;
    }
}

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
    /// the others restart, so a changed `resync` or `watchTimeout` takes effect. A change of
    /// judgement settings alone (`stalledAfter`) keeps the task too: the store gets a copy of
    /// the watch with the new subscribers over the same state.
    pub fn apply(&mut self, config: &Config) {
        let opts = WatchOptions {
            resync: config.resync,
            timeout: config.watch_timeout,
            idle: config.watch_idle_timeout,
            shard: config.shard,
        };
        let mut next = HashMap::new();
        for (key, subs) in plan(config) {
            let keep = self.tasks.remove(&key).filter(|(w, o, _)| w.subs.same_ingest(&subs) && *o == opts);
            let keep =
                keep.map(
                    |(w, o, h)| {
                        if w.subs == subs { (w, o, h) } else { (Arc::new(w.rejudged(subs.clone())), o, h) }
                    },
                );
            let entry = keep.unwrap_or_else(|| {
                let w = Arc::new(Watch::new(key.clone(), subs));
                let (client, watch) = (self.client.clone(), w.clone());
                let handle = tokio::spawn(guard(w.clone(), move || run(client.clone(), watch.clone(), opts)));
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::store::Subscribers;

    /// A supervisor whose API server never answers (its watches retry in the background).
    fn supervisor() -> (Supervisor, Arc<Store>) {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let store = Arc::new(Store::default());
        (Supervisor::new(Client::try_from(config).unwrap(), store.clone()), store)
    }

    fn config(extra: &str) -> Config {
        let text = format!(
            "{extra}targets:\n- name: w\n  resource: {{group: example.com, version: v1, kind: Widget}}\n  namespaces: [a]\n"
        );
        Config::parse(&text, "t").unwrap()
    }

    #[tokio::test]
    async fn a_stalled_after_change_keeps_watches_and_a_resync_change_restarts_them() {
        let (mut sup, store) = supervisor();
        sup.apply(&config(""));
        let before = store.watches();
        assert_eq!(before.len(), 1);
        before[0].write(|s| s.health.events.added = 7);
        sup.apply(&config("stalledAfter: 42m\n"));
        let after = store.watches();
        assert!(Arc::ptr_eq(&before[0].state, &after[0].state), "the task's state and history are kept");
        assert_eq!(after[0].read(|s| s.health.events.added), 7);
        assert_eq!(after[0].subs.targets[0].stalled_after, std::time::Duration::from_secs(42 * 60));
        assert!(!sup.tasks.values().next().unwrap().2.is_finished(), "the task still runs");
        sup.apply(&config("stalledAfter: 42m\nresync: 7m\n"));
        let restarted = store.watches();
        assert!(!Arc::ptr_eq(&after[0].state, &restarted[0].state), "a new resync restarts the watch");
        assert_eq!(restarted[0].read(|s| s.health.events.added), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_watch_is_counted_unsynced_and_restarted() {
        let key = WatchKey {
            gvk: crate::model::Gvk::new("", "v1", "Pod"),
            kind: None,
            namespace: String::new(),
            label_selector: String::new(),
            field_selector: String::new(),
            shard: None,
        };
        let w = Arc::new(Watch::new(key, Subscribers::default()));
        w.write(|s| s.health.synced = true);
        let starts = Arc::new(AtomicU32::new(0));
        let n = starts.clone();
        let task = tokio::spawn(guard(w.clone(), move || {
            let n = n.clone();
            async move {
                if n.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("overflow when adding duration to instant");
                }
                std::future::pending::<()>().await
            }
        }));
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 2, "restarted once after the panic");
        w.read(|s| {
            assert_eq!(s.health.errors.get(&ErrorCause::Panic), Some(&1));
            assert!(!s.health.synced);
            assert!(s.health.last_error.as_deref().unwrap().contains("overflow"));
        });
        task.abort();
    }
}
