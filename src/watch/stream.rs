//! The IO side of the state machine: performs the request a [`State`] names (discovery, one
//! list page, one watch stream), turns its outcome into [`Event`]s, and executes the
//! machine's [`Action`]s on the store. List pages are reconciled into the store as they
//! arrive; watch lines are decoded borrowing from the line.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use kube::{
    Client,
    core::{
        Request,
        params::{ListParams, VersionMatch, WatchParams},
    },
};

use super::{
    WatchOptions,
    discovery::discover,
    failure::{Failure, cause_of_code, fail},
    machine::{Action, Event, Machine},
    request,
};
use crate::{
    clock::now,
    ingest::wire::{List, RawObject, WatchLine},
    model::text,
    store::{Changes, ErrorCause, Reconcile, Watch},
};

const PAGE_SIZE: u32 = 500;
/// A list page that takes longer than this is treated as a hung connection.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// The API server answers a watch's headers at once; longer means a hung connection.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The reopen of a watch that went silent must answer sooner.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One watch's connection to the API: the collection URL (after discovery), the options and
/// the list in progress.
pub(super) struct Io {
    pub(super) client: Client,
    pub(super) watch: Arc<Watch>,
    pub(super) opts: WatchOptions,
    pub(super) url: Option<String>,
    reconcile: Option<Reconcile>,
    /// The differences of the list that just ended, for [`Action::Listed`].
    listed: Changes,
}

impl Io {
    pub(super) fn new(client: Client, watch: Arc<Watch>, opts: WatchOptions) -> Io {
        Io { client, watch, opts, url: None, reconcile: None, listed: Changes::default() }
    }

    fn selectors(&self) -> (Option<String>, Option<String>) {
        let k = &self.watch.key;
        let nz = |s: &str| (!s.is_empty()).then(|| s.to_string());
        (nz(&k.label_selector), nz(&k.field_selector))
    }

    fn count_request(&self, verb: &'static str, code: u16) {
        self.watch.write(|s| *s.health.requests.entry((verb, code)).or_default() += 1);
    }

    pub(super) async fn discover(&mut self) -> Event {
        match discover(&self.client, &self.watch).await {
            Ok(url) => {
                self.url = Some(url);
                Event::Discovered
            }
            Err(f) => Event::Failed(f),
        }
    }

    /// One list page into the store; `at` pins the list to an exact resourceVersion.
    pub(super) async fn list_page(&mut self, at: Option<&str>, token: Option<&str>) -> Event {
        match self.try_list_page(at, token).await {
            Ok((rv, next)) => Event::Page { rv, token: next },
            Err(f) => {
                self.reconcile = None;
                Event::Failed(f)
            }
        }
    }

    async fn try_list_page(
        &mut self,
        at: Option<&str>,
        token: Option<&str>,
    ) -> Result<(String, Option<String>), Failure> {
        let Some(url) = self.url.clone() else { return Err(Failure::other("list before discovery")) };
        let (label_selector, field_selector) = self.selectors();
        let mut lp =
            ListParams { label_selector, field_selector, limit: Some(PAGE_SIZE), ..Default::default() };
        match token {
            Some(t) => lp.continue_token = Some(t.to_string()),
            None => {
                self.reconcile = Some(Reconcile::default());
                if let Some(rv) = at {
                    lp.resource_version = Some(rv.to_string());
                    lp.version_match = Some(VersionMatch::Exact);
                }
            }
        }
        let req = Request::new(&url)
            .list(&lp)
            .map_err(|e| Failure::other(&format!("building list request: {e}")))?;
        let res = request::send(&self.client, req, LIST_TIMEOUT).await;
        self.count_request("list", res.as_ref().map_or_else(|f| f.code, |_| 200));
        let bytes = request::body(res?, LIST_TIMEOUT).await?;
        let page: List<RawObject> = serde_json::from_slice(&bytes).map_err(|e| Failure {
            cause: ErrorCause::Decode,
            code: 200,
            message: format!("decoding list of {}: {e}", self.watch.key.gvk.label()),
            retry_after: None,
        })?;
        let t = now();
        let targets = self.watch.subs.clone();
        let mut r = self.reconcile.take().unwrap_or_default();
        self.watch.write(|s| s.reconcile_page(&targets, &page.items, t, &mut r));
        match page.metadata.continue_token.filter(|t| !t.is_empty()) {
            Some(next) => {
                self.reconcile = Some(r);
                Ok((page.metadata.resource_version, Some(next)))
            }
            None => {
                self.listed = self.watch.write(|s| s.finish_reconcile(r));
                Ok((page.metadata.resource_version, None))
            }
        }
    }

    /// Opens a watch from `rv` and follows it, feeding each event to `m`, until it ends; returns
    /// the event that ended it.
    pub(super) async fn watch(&mut self, m: &mut Machine, rv: &str, resync_at: Instant) -> Event {
        let Some(url) = self.url.clone() else {
            return Event::Failed(Failure::other("watch before discovery"));
        };
        let remaining = resync_at.saturating_duration_since(Instant::now());
        let timeout = self.opts.timeout.min(remaining).max(Duration::from_secs(1));
        let (label_selector, field_selector) = self.selectors();
        let wp = WatchParams {
            label_selector,
            field_selector,
            timeout: Some(u32::try_from(timeout.as_secs()).unwrap_or(290)),
            bookmarks: true,
            ..Default::default()
        };
        let req = match Request::new(&url).watch(&wp, rv) {
            Ok(r) => r,
            Err(e) => return Event::Failed(Failure::other(&format!("building watch: {e}"))),
        };
        let started = Instant::now();
        let open_timeout = if m.probing() { PROBE_TIMEOUT } else { OPEN_TIMEOUT };
        let res = request::send(&self.client, req, open_timeout).await;
        self.count_request("watch", res.as_ref().map_or_else(|f| f.code, |_| 200));
        let res = match res {
            Ok(r) => r,
            Err(f) => return Event::Failed(f),
        };
        self.execute(m.step(Event::WatchOpened, Instant::now()));
        let body = res.into_body().into_data_stream().map_err(std::io::Error::other);
        let mut lines = Box::pin(body.into_async_read().lines());
        let idle = self.opts.idle;
        let resync = tokio::time::sleep_until(resync_at.into());
        tokio::pin!(resync);
        let mut delivered = false;
        loop {
            let line = tokio::select! {
                _ = &mut resync => return Event::ResyncDue,
                l = tokio::time::timeout(idle, lines.next()) => l,
            };
            let line = match line {
                Err(_) => {
                    tracing::info!(resource = %self.watch.key.gvk.label(), namespace = %self.watch.key.namespace,
                        silent_s = idle.as_secs(), "watch silent past the idle deadline; reopening it to check the connection");
                    return Event::Stalled { after: idle };
                }
                Ok(None) => return Event::Closed { lasted: started.elapsed(), delivered },
                Ok(Some(Err(e))) => return Event::Failed(request::read_failure(&e)),
                Ok(Some(Ok(line))) => line,
            };
            if line.trim().is_empty() {
                continue;
            }
            delivered = true;
            match self.apply_line(&line) {
                Ok(Some(rv)) => self.execute(m.step(Event::Progress { rv }, Instant::now())),
                Ok(None) => {}
                Err(f) => return Event::Failed(f),
            }
        }
    }

    /// Applies one watch line; returns the resourceVersion it carries, or the failure an ERROR
    /// line reports.
    fn apply_line(&self, line: &str) -> Result<Option<String>, Failure> {
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
                Ok(Some(o.meta.resource_version.into_owned()))
            }
            Ok(WatchLine::Deleted(o)) => {
                self.watch.write(|s| {
                    s.delete_at(&o, t);
                    s.health.events.deleted += 1;
                    s.health.last_event = Some(t);
                });
                Ok(Some(o.meta.resource_version.into_owned()))
            }
            Ok(WatchLine::Bookmark(b)) => Ok(Some(b.metadata.resource_version)),
            Ok(WatchLine::Error(status)) => Err(Failure {
                cause: cause_of_code(status.code),
                code: status.code,
                message: format!("watch error {}: {} {}", status.code, status.reason, status.message),
                retry_after: None,
            }),
            // A malformed object must not stop the watch; the next re-list repairs the store
            // and counts the object as drift.
            Err(e) => {
                tracing::warn!(resource = %self.watch.key.gvk.label(), error = %text::display(&e.to_string()), "undecodable watch event skipped");
                self.watch.write(|s| *s.health.errors.entry(ErrorCause::Decode).or_default() += 1);
                Ok(None)
            }
        }
    }

    /// Executes the machine's actions on the store.
    pub(super) fn execute(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Count(cause) => self.watch.write(|s| *s.health.errors.entry(cause).or_default() += 1),
                Action::Fail(f) => fail(&self.watch, &f, false),
                Action::Clear => self.watch.write(|s| s.clear_objects()),
                Action::Synced => self.watch.write(|s| {
                    s.health.synced = true;
                    s.health.last_error = None;
                }),
                Action::Listed { cause, drift } => {
                    let diff = std::mem::take(&mut self.listed);
                    let t = now();
                    self.watch.write(|s| {
                        if drift {
                            s.record_drift(diff);
                        }
                        *s.health.relists.entry(cause).or_default() += 1;
                        s.health.last_list = Some(t);
                        s.health.attempted = true;
                    });
                    if drift && diff.total() > 0 {
                        tracing::warn!(resource = %self.watch.key.gvk.label(), namespace = %self.watch.key.namespace,
                            added = diff.added, modified = diff.modified, deleted = diff.deleted,
                            "re-list found changes the watch never delivered (lost events); store corrected");
                    }
                }
            }
        }
    }
}
