//! The watch loop for one [`Watch`]: discovery, list, watch, periodic re-list.
//!
//! kube-rs's `watcher` never re-lists on its own and swaps its store wholesale, so it cannot
//! tell a lost event from a normal one. This loop lists, then watches from the list's
//! resourceVersion, and every `resync` lists again **at exactly the resourceVersion the watch
//! has reached** (events and bookmarks). Both then describe the same instant, so any difference
//! between that list and the store is an event the watch never delivered: that is drift.
//! Only reads are ever sent (list and watch); nothing writes to the cluster.

//!
//! This is the only module that talks to the API server. It owns the watch plan ([`plan`]),
//! the client ([`client`]), discovery, the list/watch/resync cycle ([`stream`](mod@stream)),
//! backoff, failure classification ([`failure`]) and the [`Supervisor`] that runs one task per
//! watch. It writes facts and health into the store; it never judges or renders.

mod backoff;
pub mod client;
mod discovery;
pub mod failure;
mod machine;
pub mod plan;
pub mod rbac;
mod request;
mod stream;
pub mod supervisor;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use kube::Client;

use self::{
    backoff::{Backoff, Rng},
    failure::{describe_url, fail},
    machine::{Event, Machine, State},
    stream::Io,
};
pub use self::{failure::Failure, plan::plan, supervisor::Supervisor};
use crate::{
    clock::now,
    model::shard::Shard,
    store::{ErrorCause, RelistCause, Watch},
};

/// How often a watch re-lists, how long one watch request lasts, and how long an open watch
/// may stay silent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchOptions {
    /// Period of the full re-list that checks the watch for lost events (jittered ±10 %).
    pub resync: Duration,
    /// Server-side watch timeout (`timeoutSeconds`).
    pub timeout: Duration,
    /// An open watch that delivers no byte (the watch cache sends a bookmark about every
    /// minute) for this long is declared stalled and reopened.
    pub idle: Duration,
    /// The shard this replica runs: a watch whose key is sharded lists and watches its share.
    pub shard: Shard,
}

/// Runs the state machine forever; the owner aborts the task on reload or shutdown.
pub async fn run(client: Client, watch: Arc<Watch>, opts: WatchOptions) {
    let salt = format!("{:?}{:p}", watch.key, Arc::as_ptr(&watch));
    let backoff = Backoff::new(Rng::seeded(&salt));
    let resync = opts.resync;
    let mut io = Io::new(client, watch, opts);
    let mut m = if io.sharded() { Machine::paged(resync, backoff) } else { Machine::new(resync, backoff) };
    loop {
        let ev = match m.state.clone() {
            State::Discover { .. } => io.discover().await,
            State::List { token, .. } => io.list_page(None, token.as_deref()).await,
            State::Stream { .. } => io.stream(&mut m).await,
            State::Resync { rv, token } => io.list_page(Some(&rv), token.as_deref()).await,
            State::Watch { resync_at, .. } if Instant::now() >= resync_at => Event::ResyncDue,
            State::Watch { rv, resync_at } => io.watch(&mut m, &rv, resync_at).await,
            State::Backoff { until, .. } => {
                tokio::time::sleep_until(until.into()).await;
                Event::Woke
            }
        };
        let actions = m.step(ev, Instant::now());
        io.execute(actions);
    }
}

/// One discovery and one complete (paged) list into the watch's store, without watching: the
/// one-shot read of `stallwatch diagnose`. The list is recorded like the loop's first list
/// (relists `start`, last list time, synced); a failure is recorded and returned with a message
/// that names what could not be listed, e.g. `forbidden: cannot list
/// kubearmorconfigs.operator.kubearmor.com in namespace kubearmor`.
pub async fn list_once(client: &Client, watch: &Arc<Watch>) -> Result<(), Failure> {
    let result = async {
        let opts = WatchOptions {
            resync: Duration::ZERO,
            timeout: Duration::ZERO,
            idle: Duration::ZERO,
            shard: Shard::ALL,
        };
        let mut io = Io::new(client.clone(), watch.clone(), opts);
        let named = |mut f: Failure, url: &Option<String>| {
            if matches!(f.cause, ErrorCause::Forbidden | ErrorCause::NotFound)
                && let Some(url) = url
            {
                f.message = format!("{}: cannot list {}: {}", f.cause.label(), describe_url(url), f.message);
            }
            f
        };
        if let Event::Failed(f) = io.discover().await {
            return Err(named(f, &io.url));
        }
        let mut token: Option<String> = None;
        loop {
            match io.list_page(None, token.as_deref()).await {
                Event::Page { token: None, .. } => break,
                Event::Page { token: next, .. } => token = next,
                Event::Failed(f) => return Err(named(f, &io.url)),
                other => return Err(Failure::other(&format!("unexpected {other:?} while listing"))),
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(_) => {
            let t = now();
            watch.write(|s| {
                *s.health.relists.entry(RelistCause::Start).or_default() += 1;
                s.health.last_list = Some(t);
                s.health.synced = true;
                s.health.attempted = true;
                s.health.last_error = None;
            });
            Ok(())
        }
        Err(f) => {
            fail(watch, &f, true);
            Err(f)
        }
    }
}
