//! One list-then-watch cycle of a watch: paged lists into the store, the watch stream from the
//! list's resourceVersion, the periodic re-list at exactly the resourceVersion the watch has
//! reached (drift), and the decoding of each watch line.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{AsyncBufReadExt, StreamExt};
use kube::{
    Client,
    core::{
        Request,
        params::{ListParams, VersionMatch, WatchParams},
    },
};

use super::{
    WatchOptions,
    backoff::Backoff,
    failure::{Failure, cause_of_code},
};
use crate::{
    clock::now,
    ingest::wire::{List, RawObject, WatchLine},
    store::{Changes, ErrorCause, Reconcile, RelistCause, Watch},
};

const PAGE_SIZE: u32 = 500;
/// A list page that takes longer than this is treated as a hung connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Extra silence tolerated beyond the server-side watch timeout before the connection is
/// declared dead (the server should have closed it by then).
const IDLE_GRACE: Duration = Duration::from_secs(30);

/// How a watch stream ended.
pub(super) enum StreamEnd {
    /// The server closed it (timeout) or it went idle: resume from the progress mark.
    Closed,
    /// 410 Gone: the resourceVersion was compacted away; only a new list can continue.
    Gone,
    /// Any other failure, classified.
    Failed(Failure),
}

/// One watch's connection to the API: the collection URL found by discovery and the options.
pub(super) struct WatchLoop {
    pub(super) client: Client,
    pub(super) watch: Arc<Watch>,
    pub(super) opts: WatchOptions,
    pub(super) url: String,
}

impl WatchLoop {
    fn selectors(&self) -> (Option<String>, Option<String>) {
        let k = &self.watch.key;
        let nz = |s: &str| (!s.is_empty()).then(|| s.to_string());
        (nz(&k.label_selector), nz(&k.field_selector))
    }

    fn count_request(&self, verb: &'static str, code: u16) {
        self.watch.write(|s| *s.health.requests.entry((verb, code)).or_default() += 1);
    }

    /// Lists every page into the store and returns the differences and the list's
    /// resourceVersion; `at` pins the list to an exact resourceVersion.
    pub(super) async fn list_into_store(&self, at: Option<&str>) -> Result<(Changes, String), Failure> {
        let (labels, fields) = self.selectors();
        let targets = self.watch.subs.clone();
        let mut reconcile = Reconcile::default();
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams {
                label_selector: labels.clone(),
                field_selector: fields.clone(),
                ..Default::default()
            };
            lp.limit = Some(PAGE_SIZE);
            match &token {
                Some(t) => lp.continue_token = Some(t.clone()),
                None => {
                    if let Some(rv) = at {
                        lp.resource_version = Some(rv.to_string());
                        lp.version_match = Some(VersionMatch::Exact);
                    }
                }
            }
            let req = Request::new(&self.url).list(&lp).map_err(|e| Failure {
                cause: ErrorCause::Other,
                code: 0,
                message: format!("building list request: {e}"),
            })?;
            let text = match tokio::time::timeout(REQUEST_TIMEOUT, self.client.request_text(req)).await {
                Err(_) => {
                    self.count_request("list", 0);
                    return Err(Failure::timeout("list"));
                }
                Ok(Err(e)) => {
                    let f = Failure::from_kube(&e);
                    self.count_request("list", f.code);
                    return Err(f);
                }
                Ok(Ok(t)) => {
                    self.count_request("list", 200);
                    t
                }
            };
            let page: List<RawObject> = serde_json::from_str(&text).map_err(|e| Failure {
                cause: ErrorCause::Decode,
                code: 200,
                message: format!("decoding list of {}: {e}", self.watch.key.gvk.label()),
            })?;
            let t = now();
            self.watch.write(|s| s.reconcile_page(&targets, &page.items, t, &mut reconcile));
            match page.metadata.continue_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => {
                    let diff = self.watch.write(|s| s.finish_reconcile(reconcile));
                    return Ok((diff, page.metadata.resource_version));
                }
            }
        }
    }

    pub(super) async fn list_and_watch(&mut self, cause: RelistCause, backoff: &mut Backoff) -> StreamEnd {
        let rv = match self.list_into_store(None).await {
            Ok((_, rv)) => rv,
            Err(f) => return StreamEnd::Failed(f),
        };
        let t = now();
        self.watch.write(|s| {
            *s.health.relists.entry(cause).or_default() += 1;
            s.health.last_list = Some(t);
            s.health.synced = true;
            s.health.attempted = true;
            s.health.last_error = None;
        });
        backoff.reset();
        let mut progress = rv;
        let mut next_resync = Instant::now() + self.opts.resync;
        loop {
            let remaining = next_resync.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                if let Err(end) = self.resync(&mut progress).await {
                    return end;
                }
                next_resync = Instant::now() + self.opts.resync;
                continue;
            }
            let timeout = self.opts.timeout.min(remaining).max(Duration::from_secs(1));
            match self.watch_once(&mut progress, timeout).await {
                StreamEnd::Closed => continue,
                end => return end,
            }
        }
    }

    /// The periodic re-list at the watch's resourceVersion; counts and corrects drift.
    async fn resync(&self, progress: &mut String) -> Result<(), StreamEnd> {
        match self.list_into_store(Some(progress)).await {
            Ok((drift, _)) => {
                let t = now();
                self.watch.write(|s| {
                    s.record_drift(drift);
                    *s.health.relists.entry(RelistCause::Periodic).or_default() += 1;
                    s.health.last_list = Some(t);
                });
                if drift.total() > 0 {
                    tracing::warn!(resource = %self.watch.key.gvk.label(), namespace = %self.watch.key.namespace,
                        added = drift.added, modified = drift.modified, deleted = drift.deleted,
                        "re-list found changes the watch never delivered (lost events); store corrected");
                }
                Ok(())
            }
            // The watch's resourceVersion was compacted away (a long-quiet watch): the exact
            // comparison is impossible, so re-list at the newest version without counting drift.
            Err(f) if f.cause == ErrorCause::Gone => {
                self.watch.write(|s| *s.health.errors.entry(ErrorCause::Gone).or_default() += 1);
                let (_, rv) = self.list_into_store(None).await.map_err(StreamEnd::Failed)?;
                let t = now();
                self.watch.write(|s| {
                    *s.health.relists.entry(RelistCause::Periodic).or_default() += 1;
                    s.health.last_list = Some(t);
                });
                *progress = rv;
                Ok(())
            }
            Err(f) => Err(StreamEnd::Failed(f)),
        }
    }

    async fn watch_once(&self, progress: &mut String, timeout: Duration) -> StreamEnd {
        let (label_selector, field_selector) = self.selectors();
        let wp = WatchParams {
            label_selector,
            field_selector,
            timeout: Some(timeout.as_secs() as u32),
            bookmarks: true,
            ..Default::default()
        };
        let req = match Request::new(&self.url).watch(&wp, progress) {
            Ok(r) => r,
            Err(e) => {
                return StreamEnd::Failed(Failure {
                    cause: ErrorCause::Other,
                    code: 0,
                    message: format!("building watch: {e}"),
                });
            }
        };
        let stream = match tokio::time::timeout(REQUEST_TIMEOUT, self.client.request_stream(req)).await {
            Err(_) => {
                self.count_request("watch", 0);
                return StreamEnd::Failed(Failure::timeout("opening watch"));
            }
            Ok(Err(e)) => {
                let f = Failure::from_kube(&e);
                self.count_request("watch", f.code);
                return if f.cause == ErrorCause::Gone { StreamEnd::Gone } else { StreamEnd::Failed(f) };
            }
            Ok(Ok(s)) => s,
        };
        self.count_request("watch", 200);
        self.watch.write(|s| s.health.synced = true);
        let mut lines = Box::pin(stream.lines());
        let idle = timeout + IDLE_GRACE;
        loop {
            let line = match tokio::time::timeout(idle, lines.next()).await {
                Err(_) => {
                    return StreamEnd::Failed(Failure::timeout(&format!(
                        "watch silent for {}s",
                        idle.as_secs()
                    )));
                }
                Ok(None) => return StreamEnd::Closed,
                Ok(Some(Err(e))) => {
                    return StreamEnd::Failed(Failure {
                        cause: ErrorCause::Connect,
                        code: 0,
                        message: format!("reading watch: {e}"),
                    });
                }
                Ok(Some(Ok(line))) => line,
            };
            if line.trim().is_empty() {
                continue;
            }
            if let Some(end) = self.apply_line(&line, progress) {
                return end;
            }
        }
    }

    /// Applies one watch line; returns how the stream ends if this line ends it.
    fn apply_line(&self, line: &str, progress: &mut String) -> Option<StreamEnd> {
        let t = now();
        let targets = &self.watch.subs;
        match serde_json::from_str::<WatchLine<RawObject>>(line) {
            Ok(WatchLine::Added(o) | WatchLine::Modified(o)) => {
                self.watch.write(|s| {
                    if s.apply(targets, &o, t) {
                        s.health.events.added += 1;
                    } else {
                        s.health.events.modified += 1;
                    }
                    s.health.last_event = Some(t);
                });
                *progress = o.meta.resource_version.into_owned();
            }
            Ok(WatchLine::Deleted(o)) => {
                self.watch.write(|s| {
                    s.delete_at(&o, t);
                    s.health.events.deleted += 1;
                    s.health.last_event = Some(t);
                });
                *progress = o.meta.resource_version.into_owned();
            }
            Ok(WatchLine::Bookmark(b)) => {
                if !b.metadata.resource_version.is_empty() {
                    *progress = b.metadata.resource_version;
                }
            }
            Ok(WatchLine::Error(status)) if status.code == 410 => return Some(StreamEnd::Gone),
            Ok(WatchLine::Error(status)) => {
                return Some(StreamEnd::Failed(Failure {
                    cause: cause_of_code(status.code),
                    code: status.code,
                    message: format!("watch error {}: {} {}", status.code, status.reason, status.message),
                }));
            }
            // A malformed object must not stop the watch; the next re-list repairs the store
            // and counts the object as drift.
            Err(e) => {
                tracing::warn!(resource = %self.watch.key.gvk.label(), error = %e, "undecodable watch event skipped");
                self.watch.write(|s| *s.health.errors.entry(ErrorCause::Decode).or_default() += 1);
            }
        }
        None
    }
}
