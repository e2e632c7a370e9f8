//! The watch loop for one [`Watch`] (F1, F2, F13): discovery, list, watch, periodic re-list.
//!
//! kube-rs's `watcher` never re-lists on its own and swaps its store wholesale, so it cannot
//! tell a lost event from a normal one. This loop lists, then watches from the list's
//! resourceVersion, and every `resync` lists again **at exactly the resourceVersion the watch
//! has reached** (events and bookmarks). Both then describe the same instant, so any difference
//! between that list and the store is an event the watch never delivered: that is drift.
//! Only reads are ever sent (list and watch); nothing writes to the cluster.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{AsyncBufReadExt, StreamExt};
use kube::{
    Client,
    core::{
        Request,
        discovery::{ApiResource, Scope},
        params::{ListParams, VersionMatch, WatchParams},
    },
};

use crate::{
    metrics::now,
    object::{List, RawObject, WatchLine},
    store::{Changes, ErrorCause, Reconcile, RelistCause, Watch},
};

#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    pub resync: Duration,
    /// Server-side watch timeout; also bounds how long a silent connection is trusted.
    pub timeout: Duration,
}

const PAGE_SIZE: u32 = 500;
/// A list page that takes longer than this is treated as a hung connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Extra silence tolerated beyond the server-side watch timeout before the connection is
/// declared dead (the server should have closed it by then).
const IDLE_GRACE: Duration = Duration::from_secs(30);

/// A failed request, classified for `watch_errors_total{cause}`.
#[derive(Debug, Clone)]
pub struct Failure {
    pub cause: ErrorCause,
    pub code: u16,
    pub message: String,
}

impl Failure {
    fn from_kube(e: &kube::Error) -> Failure {
        use kube::Error as E;
        let (cause, code) = match e {
            E::Api(s) => (cause_of_code(s.code), s.code),
            E::HyperError(h) if h.is_timeout() => (ErrorCause::Timeout, 0),
            E::HyperError(_) | E::ReadEvents(_) => (ErrorCause::Connect, 0),
            E::Service(s) if s.to_string().contains("timed out") => (ErrorCause::Timeout, 0),
            E::Service(_) => (ErrorCause::Connect, 0),
            E::SerdeError(_) | E::FromUtf8(_) => (ErrorCause::Decode, 0),
            E::Discovery(_) => (ErrorCause::NotFound, 404),
            _ => (ErrorCause::Other, 0),
        };
        let message = match e {
            // The API's own words, without the Debug dump kube's Display appends.
            E::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
            _ => e.to_string(),
        };
        Failure { cause, code, message }
    }

    fn timeout(what: &str) -> Failure {
        Failure { cause: ErrorCause::Timeout, code: 0, message: format!("{what} timed out") }
    }
}

pub fn cause_of_code(code: u16) -> ErrorCause {
    match code {
        410 => ErrorCause::Gone,
        429 => ErrorCause::Throttled,
        401 | 403 => ErrorCause::Forbidden,
        404 => ErrorCause::NotFound,
        408 | 504 => ErrorCause::Timeout,
        _ => ErrorCause::Other,
    }
}

/// Exponential backoff with jitter, 1 s doubling to 30 s (client-go's shape).
#[derive(Debug, Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn next(&mut self) -> Duration {
        let base = Duration::from_secs(1) * 2u32.saturating_pow(self.attempt.min(5));
        self.attempt += 1;
        let base = base.min(Duration::from_secs(30));
        // Jitter up to 25% from the clock's sub-second digits: enough to spread many watches.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        base + base.mul_f64((nanos % 1000) as f64 / 4000.0)
    }
    fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// How a watch stream ended.
enum End {
    /// The server closed it (timeout) or it went idle: resume from the progress mark.
    Closed,
    Gone,
    Failed(Failure),
}

struct Loop {
    client: Client,
    watch: Arc<Watch>,
    opts: WatchOptions,
    url: String,
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
        let mut lp = Loop { client: client.clone(), watch: watch.clone(), opts, url };
        match lp.list_and_watch(cause, &mut backoff).await {
            End::Gone => {
                watch.write(|s| *s.health.errors.entry(ErrorCause::Gone).or_default() += 1);
                cause = RelistCause::Gone;
            }
            End::Failed(f) => {
                // A 404 means the kind (CRD) went away: its objects are gone too.
                fail(&watch, &f, f.cause == ErrorCause::NotFound);
                cause = RelistCause::Error;
                tokio::time::sleep(backoff.next()).await;
            }
            End::Closed => cause = RelistCause::Error,
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
        let lp = Loop { client: client.clone(), watch: watch.clone(), opts, url: url.clone() };
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

/// `plural.group in namespace NS` (or `cluster-wide`) for a URL made by [`collection_url`].
fn describe_url(url: &str) -> String {
    let parts: Vec<&str> = url.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return url.to_string(),
    };
    let (ns, plural) = match rest {
        ["namespaces", ns, plural] => (Some(*ns), *plural),
        [plural] => (None, *plural),
        _ => return url.to_string(),
    };
    let resource = if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
    match ns {
        Some(ns) => format!("{resource} in namespace {ns}"),
        None => format!("{resource} cluster-wide"),
    }
}

/// Records a failure; `clear` drops the objects (the kind or our access is gone).
fn fail(watch: &Watch, f: &Failure, clear: bool) {
    tracing::warn!(resource = %watch.key.gvk.label(), namespace = %watch.key.namespace, cause = f.cause.label(), error = %f.message, "watch failed");
    watch.write(|s| {
        *s.health.errors.entry(f.cause).or_default() += 1;
        s.health.synced = false;
        s.health.last_error = Some(f.message.clone());
        if matches!(f.cause, ErrorCause::Forbidden | ErrorCause::NotFound) {
            s.health.attempted = true;
            if clear {
                s.objects.clear();
            }
        }
    });
}

/// Resolves plural and scope through discovery (never guessed) into the collection URL.
async fn discover(client: &Client, watch: &Watch) -> Result<String, Failure> {
    let g = &watch.key.gvk;
    let gvk = kube::core::GroupVersionKind::gvk(&g.group, &g.version, &g.kind);
    let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await.map_err(|e| {
        let mut f = Failure::from_kube(&e);
        if f.cause == ErrorCause::NotFound {
            f.message = format!("{} is not served by the API server (CRD not installed?): {e}", g.label());
        }
        f
    })?;
    let ns = match caps.scope {
        Scope::Namespaced if !watch.key.namespace.is_empty() => Some(watch.key.namespace.as_str()),
        Scope::Cluster if !watch.key.namespace.is_empty() => {
            tracing::warn!(resource = %g.label(), "kind is cluster-scoped; ignoring the configured namespace");
            None
        }
        _ => None,
    };
    Ok(collection_url(&ar, ns))
}

pub fn collection_url(ar: &ApiResource, namespace: Option<&str>) -> String {
    let base = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    match namespace {
        Some(ns) => format!("{base}/namespaces/{ns}/{}", ar.plural),
        None => format!("{base}/{}", ar.plural),
    }
}

impl Loop {
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
    async fn list_into_store(&self, at: Option<&str>) -> Result<(Changes, String), Failure> {
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

    async fn list_and_watch(&mut self, cause: RelistCause, backoff: &mut Backoff) -> End {
        let rv = match self.list_into_store(None).await {
            Ok((_, rv)) => rv,
            Err(f) => return End::Failed(f),
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
                End::Closed => continue,
                end => return end,
            }
        }
    }

    /// The periodic re-list at the watch's resourceVersion; counts and corrects drift.
    async fn resync(&self, progress: &mut String) -> Result<(), End> {
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
                let (_, rv) = self.list_into_store(None).await.map_err(End::Failed)?;
                let t = now();
                self.watch.write(|s| {
                    *s.health.relists.entry(RelistCause::Periodic).or_default() += 1;
                    s.health.last_list = Some(t);
                });
                *progress = rv;
                Ok(())
            }
            Err(f) => Err(End::Failed(f)),
        }
    }

    async fn watch_once(&self, progress: &mut String, timeout: Duration) -> End {
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
                return End::Failed(Failure {
                    cause: ErrorCause::Other,
                    code: 0,
                    message: format!("building watch: {e}"),
                });
            }
        };
        let stream = match tokio::time::timeout(REQUEST_TIMEOUT, self.client.request_stream(req)).await {
            Err(_) => {
                self.count_request("watch", 0);
                return End::Failed(Failure::timeout("opening watch"));
            }
            Ok(Err(e)) => {
                let f = Failure::from_kube(&e);
                self.count_request("watch", f.code);
                return if f.cause == ErrorCause::Gone { End::Gone } else { End::Failed(f) };
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
                    return End::Failed(Failure::timeout(&format!("watch silent for {}s", idle.as_secs())));
                }
                Ok(None) => return End::Closed,
                Ok(Some(Err(e))) => {
                    return End::Failed(Failure {
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
    fn apply_line(&self, line: &str, progress: &mut String) -> Option<End> {
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
                    s.delete(&o);
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
            Ok(WatchLine::Error(status)) if status.code == 410 => return Some(End::Gone),
            Ok(WatchLine::Error(status)) => {
                return Some(End::Failed(Failure {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ar = |g: &str, p: &str| ApiResource {
            group: g.into(),
            version: "v1".into(),
            api_version: if g.is_empty() { "v1".into() } else { format!("{g}/v1") },
            kind: "K".into(),
            plural: p.into(),
        };
        assert_eq!(collection_url(&ar("", "pods"), Some("a")), "/api/v1/namespaces/a/pods");
        assert_eq!(collection_url(&ar("apps", "daemonsets"), None), "/apis/apps/v1/daemonsets");
        assert_eq!(
            collection_url(&ar("operator.kubearmor.com", "kubearmorconfigs"), Some("kubearmor")),
            "/apis/operator.kubearmor.com/v1/namespaces/kubearmor/kubearmorconfigs"
        );
    }

    #[test]
    fn described_urls_name_the_resource() {
        assert_eq!(
            describe_url("/apis/operator.kubearmor.com/v1/namespaces/kubearmor/kubearmorconfigs"),
            "kubearmorconfigs.operator.kubearmor.com in namespace kubearmor"
        );
        assert_eq!(describe_url("/api/v1/nodes"), "nodes cluster-wide");
        assert_eq!(describe_url("/api/v1/namespaces/a/pods"), "pods in namespace a");
    }

    #[test]
    fn codes() {
        assert_eq!(cause_of_code(410), ErrorCause::Gone);
        assert_eq!(cause_of_code(429), ErrorCause::Throttled);
        assert_eq!(cause_of_code(403), ErrorCause::Forbidden);
        assert_eq!(cause_of_code(404), ErrorCause::NotFound);
        assert_eq!(cause_of_code(504), ErrorCause::Timeout);
        assert_eq!(cause_of_code(500), ErrorCause::Other);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::default();
        let first = b.next();
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1250));
        for _ in 0..10 {
            b.next();
        }
        let capped = b.next();
        assert!(capped >= Duration::from_secs(30) && capped <= Duration::from_millis(37_500), "{capped:?}");
        b.reset();
        assert!(b.next() < Duration::from_secs(2));
    }
}
