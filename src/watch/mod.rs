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
pub mod plan;
mod stream;
pub mod supervisor;

use std::{sync::Arc, time::Duration};

use kube::Client;

use self::{
    backoff::Backoff,
    discovery::discover,
    failure::{describe_url, fail},
    stream::{StreamEnd, WatchLoop},
};
pub use self::{failure::Failure, plan::plan, supervisor::Supervisor};
use crate::{
    clock::now,
    store::{ErrorCause, RelistCause, Watch},
};

/// How often a watch re-lists and how long one watch request lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchOptions {
    /// Period of the full re-list that checks the watch for lost events.
    pub resync: Duration,
    /// Server-side watch timeout; also bounds how long a silent connection is trusted.
    pub timeout: Duration,
}

/// Runs forever; the owner aborts the task on reload or shutdown.
pub async fn run(client: Client, watch: Arc<Watch>, opts: WatchOptions) {
    let mut backoff = Backoff::default();
    let mut cause = RelistCause::Start;
    loop {
        let url = match discover(&client, &watch).await {
            Ok(url) => url,
            Err(f) => {
                fail(&watch, &f, true);
                tokio::time::sleep(backoff.next()).await;
                continue;
            }
        };
        let mut lp = WatchLoop { client: client.clone(), watch: watch.clone(), opts, url };
        match lp.list_and_watch(cause, &mut backoff).await {
            StreamEnd::Gone => {
                watch.write(|s| *s.health.errors.entry(ErrorCause::Gone).or_default() += 1);
                cause = RelistCause::Gone;
            }
            StreamEnd::Failed(f) => {
                // A 404 means the kind (CRD) went away: its objects are gone too.
                fail(&watch, &f, f.cause == ErrorCause::NotFound);
                cause = RelistCause::Error;
                tokio::time::sleep(backoff.next()).await;
            }
            StreamEnd::Closed => cause = RelistCause::Error,
        }
    }
}

/// One discovery and one complete (paged) list into the watch's store, without watching: the
/// one-shot read of `stallwatch diagnose`. The list is recorded like the loop's first list
/// (relists `start`, last list time, synced); a failure is recorded and returned with a message
/// that names what could not be listed, e.g. `forbidden: cannot list
/// kubearmorconfigs.operator.kubearmor.com in namespace kubearmor`.
pub async fn list_once(client: &Client, watch: &Arc<Watch>) -> Result<(), Failure> {
    let result = async {
        let url = discover(client, watch).await?;
        // No watch follows, so the watch options are never read.
        let opts = WatchOptions { resync: Duration::ZERO, timeout: Duration::ZERO };
        let lp = WatchLoop { client: client.clone(), watch: watch.clone(), opts, url: url.clone() };
        lp.list_into_store(None).await.map_err(|mut f| {
            if matches!(f.cause, ErrorCause::Forbidden | ErrorCause::NotFound) {
                f.message = format!("{}: cannot list {}: {}", f.cause.label(), describe_url(&url), f.message);
            }
            f
        })
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
