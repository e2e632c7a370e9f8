//! The IO side of the state machine: performs the request a [`State`] names (discovery, one
//! list page, one watch stream), turns its outcome into [`Event`]s, and executes the
//! machine's [`Action`]s on the store. List pages are reconciled into the store as they
//! arrive; watch lines are decoded borrowing from the line.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{AsyncBufReadExt, TryStreamExt};
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
    backoff::deadline,
    discovery::discover,
    failure::Failure,
    machine::{Event, Machine, State},
    request,
};
use crate::{
    clock::now,
    ingest::{
        decode::{Plan, decode_list},
        proto,
        wire::{List, RawObject},
    },
    model::shard::{Shard, ShardKey, ShardMode},
    store::{Changes, ErrorCause, Reconcile, Watch},
};

mod apply;

use apply::{Frame, Frames};

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
    /// A sharded watch's shard, key and `shardSelector`.
    shard: Option<(Shard, ShardKey, String)>,
    /// What this watch's JSON is decoded into during its single read (fixed by its kind and
    /// targets).
    plan: Plan,
    /// Ask for protobuf: a pod watch whose facts are the built-in pod facts (the API server
    /// serves built-in kinds in protobuf, read at about half the cost of JSON). Off for the
    /// watch's life once a protobuf response could not be read: JSON then.
    protobuf: bool,
}

impl Io {
    pub(super) fn new(client: Client, watch: Arc<Watch>, opts: WatchOptions) -> Io {
        let shard = watch
            .key
            .shard
            .filter(|_| opts.shard.is_sharded())
            .map(|k| (opts.shard, k, opts.shard.selector(k)));
        let plan = Plan::new(watch.subs.kind, &watch.subs.targets);
        let (url, reconcile, listed) = (None, None, Changes::default());
        Io { client, watch, opts, url, reconcile, listed, shard, plan, protobuf: plan.pod }
    }

    /// `req` asking for protobuf (JSON where the server has none) when this watch reads it.
    fn with_accept(&self, mut req: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
        if self.protobuf {
            req.headers_mut().insert(http::header::ACCEPT, http::HeaderValue::from_static(proto::ACCEPT));
        }
        req
    }

    /// A protobuf response could not be read: JSON from now on, so the retry (from the same
    /// resourceVersion) delivers what this one could not.
    fn protobuf_failed(&mut self, what: &str, e: &proto::ProtoError) -> Failure {
        self.protobuf = false;
        tracing::warn!(resource = %self.watch.key.gvk.label(), namespace = %self.watch.key.namespace, error = %e,
            "{what} in protobuf could not be read; this watch asks for JSON from now on");
        self.decode_failure(&format!("{what} in protobuf"), e)
    }

    /// A 2xx response whose body could not be decoded.
    fn decode_failure(&self, what: &str, e: &dyn std::fmt::Display) -> Failure {
        Failure {
            cause: ErrorCause::Decode,
            code: 200,
            message: format!("decoding {what} of {}: {e}", self.watch.key.gvk.label()),
            retry_after: None,
        }
    }

    /// Whether this watch lists and watches a share: its initial lists are paged, never
    /// streamed, so that the list response's `shardInfo` tells whether the server filtered.
    pub(super) fn sharded(&self) -> bool {
        self.shard.is_some()
    }

    /// `req` with this watch's `shardSelector`, when it is sharded.
    fn with_shard(&self, req: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
        match &self.shard {
            Some((_, _, sel)) => request::with_query(req, "shardSelector", sel),
            None => req,
        }
    }

    /// Whether `o` is this shard's (always, unsharded). Applied in both modes: a server that
    /// filtered sends nothing it drops, and one that did not is filtered here.
    fn owns(&self, o: &RawObject) -> bool {
        match &self.shard {
            None => true,
            Some((s, ShardKey::Namespace, _)) => s.owns(o.meta.namespace.as_deref().unwrap_or("")),
            Some((s, ShardKey::Uid, _)) => s.owns(&o.meta.uid),
        }
    }

    fn selectors(&self) -> (Option<String>, Option<String>) {
        let k = &self.watch.key;
        let nz = |s: &str| (!s.is_empty()).then(|| s.to_string());
        (nz(&k.label_selector), nz(&k.field_selector))
    }

    fn count_request(&self, verb: &'static str, code: u16) {
        self.watch.write(|s| *s.health.requests.entry((verb, code)).or_default() += 1);
    }

    /// One page of a `LIST` of the collection: at the newest version, or at exactly `at` (the
    /// drift check), continuing from `token`.
    fn list_request(
        &self,
        url: &str,
        at: Option<&str>,
        token: Option<&str>,
    ) -> Result<http::Request<Vec<u8>>, Failure> {
        let (label_selector, field_selector) = self.selectors();
        let mut lp =
            ListParams { label_selector, field_selector, limit: Some(PAGE_SIZE), ..Default::default() };
        match token {
            Some(t) => lp.continue_token = Some(t.to_string()),
            None => {
                if let Some(rv) = at {
                    lp.resource_version = Some(rv.to_string());
                    lp.version_match = Some(VersionMatch::Exact);
                }
            }
        }
        Request::new(url).list(&lp).map_err(|e| Failure::other(&format!("building list request: {e}")))
    }

    /// A `WATCH` of the collection with bookmarks, ended by the server after `timeout`: from
    /// `rv`, or (`initial`) streaming the whole state first (WatchList: `sendInitialEvents=true`,
    /// `resourceVersionMatch=NotOlderThan` at no resourceVersion, i.e. a consistent read).
    fn watch_request(
        &self,
        url: &str,
        rv: &str,
        timeout: Duration,
        initial: bool,
    ) -> Result<http::Request<Vec<u8>>, Failure> {
        let (label_selector, field_selector) = self.selectors();
        let wp = WatchParams {
            label_selector,
            field_selector,
            timeout: Some(u32::try_from(timeout.as_secs()).unwrap_or(290)),
            bookmarks: true,
            send_initial_events: initial,
        };
        Request::new(url).watch(&wp, rv).map_err(|e| Failure::other(&format!("building watch: {e}")))
    }

    pub(super) async fn discover(&mut self) -> Event {
        let (code, res) = discover(&self.client, &self.watch).await;
        self.count_request("discovery", code);
        match res {
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
        if token.is_none() {
            self.reconcile = Some(Reconcile::default());
        }
        let req = self.with_accept(self.with_shard(self.list_request(&url, at, token)?));
        let res = request::send(&self.client, req, LIST_TIMEOUT).await;
        self.count_request("list", res.as_ref().map_or_else(|f| f.code, |_| 200));
        let res = res?;
        let protobuf = proto::is_protobuf(res.headers().get(http::header::CONTENT_TYPE));
        let bytes = request::body(res, LIST_TIMEOUT).await?;
        let decoded = match protobuf {
            true => proto::decode_list(&bytes).map_err(|e| self.protobuf_failed("a list page", &e)),
            false => decode_list(&bytes, self.plan).map_err(|e| self.decode_failure("a list page", &e)),
        };
        let mut page: List<RawObject> = decoded?;
        if let Some((_, _, sel)) = &self.shard {
            let mode =
                ShardMode::of_list(sel, page.metadata.shard_info.as_ref().map(|i| i.selector.as_str()));
            let decoded = page.items.len() as u64;
            page.items.retain(|o| self.owns(o));
            let dropped = decoded - page.items.len() as u64;
            self.watch.write(|s| {
                s.health.shard.mode = Some(mode);
                s.health.shard.decoded += decoded;
                s.health.shard.dropped += dropped;
            });
        }
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
        let remaining = resync_at.saturating_duration_since(Instant::now());
        let timeout = self.opts.timeout.min(remaining).max(Duration::from_secs(1));
        self.follow(m, rv, timeout, false).await
    }

    /// Streams the whole state through a watch (WatchList) and goes on watching on the same
    /// connection once the initial events have ended; returns the event that ended it.
    pub(super) async fn stream(&mut self, m: &mut Machine) -> Event {
        self.reconcile = Some(Reconcile::default());
        let ev = self.follow(m, "", self.opts.timeout, true).await;
        if matches!(m.state, State::Stream { .. }) {
            self.reconcile = None;
        }
        ev
    }

    async fn follow(&mut self, m: &mut Machine, rv: &str, timeout: Duration, initial: bool) -> Event {
        let Some(url) = self.url.clone() else {
            return Event::Failed(Failure::other("watch before discovery"));
        };
        let req = match self.watch_request(&url, rv, timeout, initial) {
            Ok(r) => self.with_accept(self.with_shard(r)),
            Err(f) => return Event::Failed(f),
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
        let protobuf = proto::is_protobuf(res.headers().get(http::header::CONTENT_TYPE));
        let body = res.into_body().into_data_stream().map_err(std::io::Error::other).into_async_read();
        let mut frames = match protobuf {
            true => Frames::Proto(proto::FrameReader::new(body)),
            false => Frames::Json(body.lines()),
        };
        let idle = self.opts.idle;
        let mut delivered = false;
        loop {
            // The periodic re-list is due from the state: a streamed list sets it at its end.
            let resync_at = match &m.state {
                State::Watch { resync_at, .. } => *resync_at,
                _ => deadline(Instant::now(), Duration::from_secs(86_400)),
            };
            let next = tokio::select! {
                _ = tokio::time::sleep_until(resync_at.into()) => return Event::ResyncDue,
                l = tokio::time::timeout(idle, frames.next()) => l,
            };
            let frame = match next {
                Err(_) => {
                    tracing::info!(resource = %self.watch.key.gvk.label(), namespace = %self.watch.key.namespace,
                        silent_s = idle.as_secs(), "watch silent past the idle deadline; reopening it to check the connection");
                    return Event::Stalled { after: idle };
                }
                Ok(None) => return Event::Closed { lasted: started.elapsed(), delivered },
                Ok(Some(Err(e))) => return Event::Failed(request::read_failure(&e)),
                Ok(Some(Ok(frame))) => frame,
            };
            if matches!(&frame, Frame::Json(line) if line.trim().is_empty()) {
                continue;
            }
            delivered = true;
            let initial = matches!(m.state, State::Stream { .. });
            match self.apply_frame(&frame, initial) {
                Ok(Some(ev @ Event::StreamUnsupported)) => return ev,
                Ok(Some(ev)) => self.execute(m.step(ev, Instant::now())),
                Ok(None) => {}
                Err(f) => return Event::Failed(f),
            }
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
