//! The watch as an explicit state machine: [`State`] says which request comes next, [`Event`]
//! is what the last request (or a timer) produced, and [`Machine::step`] is the one pure
//! transition `(state, event, now) → (state, actions)`. The IO loop ([`super::run`]) performs
//! the request the state names, feeds the outcome back as an event and executes the
//! [`Action`]s on the store. No IO here, so every transition is unit-tested.
//!
//! The rules, client-go's reflector's where they apply:
//! - list on start, on 410 Gone, and every `resync` (±10 %) at exactly the resourceVersion the
//!   watch reached (drift); never on any other failure: those resume the watch from the last
//!   resourceVersion after a backoff;
//! - the start (and 410) list is streamed through a watch (WatchList: `sendInitialEvents`,
//!   ending at the bookmark annotated `k8s.io/initial-events-end`) while the server supports
//!   it; a rejection (a 4xx other than 404/410/429), or a stream that ends, goes silent or
//!   bookmarks without that annotation, falls back to paged lists for the watch's life. The
//!   periodic exact re-list stays a `LIST`: a stream cannot be pinned to an exact version;
//! - backoff 800 ms → 30 s, ×2, jittered, reset only after two minutes of health (an open watch),
//!   never by a successful list alone, and never shorter than the server's `Retry-After`;
//! - an expired continue token (410 mid-list) restarts the list from the first page;
//! - a 404 keeps the objects (not synced) until it has persisted for [`NOT_FOUND_GRACE`];
//! - an open watch silent for the idle deadline is reopened from its resourceVersion at once as
//!   a probe: the API server does not send bookmarks to a watch whose resource has not moved,
//!   so silence alone is not a fault. Only if that probe fails is the watch counted `stalled`
//!   (and the failure itself by its cause).

use std::time::{Duration, Instant};

use super::{
    backoff::{Backoff, RESET_AFTER, deadline},
    failure::Failure,
};
use crate::store::{ErrorCause, RelistCause};

/// How long a 404 must persist before the watch's objects are dropped (an API server that is
/// still warming up its CRDs answers 404 for a while).
pub(super) const NOT_FOUND_GRACE: Duration = Duration::from_secs(60);
/// A watch the server closes sooner than this, with nothing delivered, is retried after a
/// backoff (a proxy that ends every stream must not cause a hot loop).
pub(super) const EARLY_CLOSE: Duration = Duration::from_secs(1);

/// Which request comes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// Resolve the collection URL; then list for `then`.
    Discover { then: RelistCause },
    /// A full list at the newest version, page by page (`token` is the next page's).
    List { cause: RelistCause, token: Option<String> },
    /// The full state streamed through a watch (WatchList) as ADDED events up to the bookmark
    /// annotated `k8s.io/initial-events-end`; the same connection then goes on as the watch.
    Stream { cause: RelistCause },
    /// Watch from `rv`; the periodic re-list is due at `resync_at`.
    Watch { rv: String, resync_at: Instant },
    /// The periodic re-list at exactly `rv`, page by page.
    Resync { rv: String, token: Option<String> },
    /// Wait until `until`, then continue with `next`.
    Backoff { until: Instant, next: Box<State> },
}

/// What a request (or a timer) produced.
#[derive(Debug, Clone)]
pub(super) enum Event {
    /// Discovery found the collection.
    Discovered,
    /// A list page arrived; `token` is the continue token (None on the last page).
    Page { rv: String, token: Option<String> },
    /// The watch request was answered 200; events follow.
    WatchOpened,
    /// An event or bookmark with its resourceVersion (may be empty: then ignored).
    Progress { rv: String },
    /// The bookmark annotated `k8s.io/initial-events-end`: a streamed list is complete at `rv`.
    InitialEventsEnd { rv: String },
    /// A bookmark without that annotation while the initial events were awaited: the server
    /// ignored `sendInitialEvents` (older than WatchList).
    StreamUnsupported,
    /// The server ended the watch cleanly after `lasted`.
    Closed { lasted: Duration, delivered: bool },
    /// No byte arrived on the open watch for `after`.
    Stalled { after: Duration },
    /// The periodic re-list is due.
    ResyncDue,
    /// A backoff wait ended.
    Woke,
    /// A request failed (on open, in the stream, or a list page).
    Failed(Failure),
}

/// What the IO loop must do to the store.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Action {
    /// Count a cause in `watch_errors_total` without marking the watch failed (a 410 that a
    /// re-list handles).
    Count(ErrorCause),
    /// Record a failure: counted by cause, last error, not synced.
    Fail(Failure),
    /// Drop the watch's objects: the kind has been gone for longer than the grace period.
    Clear,
    /// The last page of a list arrived: reconcile the store, count the re-list by `cause`;
    /// `drift` when it was the exact-resourceVersion re-list.
    Listed { cause: RelistCause, drift: bool },
    /// A watch is open: synced.
    Synced,
}

impl PartialEq for Failure {
    fn eq(&self, o: &Failure) -> bool {
        self.cause == o.cause && self.code == o.code && self.retry_after == o.retry_after
    }
}

/// The state plus what transitions remember: backoff, health and 404 timing.
#[derive(Debug)]
pub(super) struct Machine {
    pub(super) state: State,
    backoff: Backoff,
    resync: Duration,
    healthy_since: Option<Instant>,
    not_found_since: Option<Instant>,
    /// The last watch went silent past the idle deadline; the reopen is a probe.
    suspect: Option<Duration>,
    /// Lists are streamed (WatchList) until the server shows it does not support it.
    stream: bool,
}

impl Machine {
    pub(super) fn new(resync: Duration, backoff: Backoff) -> Machine {
        Machine {
            state: State::Discover { then: RelistCause::Start },
            backoff,
            resync,
            healthy_since: None,
            not_found_since: None,
            suspect: None,
            stream: true,
        }
    }

    /// A machine that lists page by page only: sharded watches (the API server echoes
    /// `shardInfo` in list responses, which is how a shard learns whether the server filtered),
    /// and the paged tests.
    pub(super) fn paged(resync: Duration, backoff: Backoff) -> Machine {
        Machine { stream: false, ..Machine::new(resync, backoff) }
    }

    /// Whether full lists are still streamed (false once the server rejected WatchList).
    #[cfg(test)]
    pub(super) fn streams(&self) -> bool {
        self.stream
    }

    /// The full list for `cause`: streamed while the server supports it, else paged.
    fn relist(&self, cause: RelistCause) -> State {
        if self.stream { State::Stream { cause } } else { State::List { cause, token: None } }
    }

    /// The server does not serve WatchList: list page by page from now on.
    fn fall_back(&mut self, cause: RelistCause, why: &str) -> (State, Vec<Action>) {
        tracing::info!(reason = %why, "streaming list not supported by the API server; listing page by page");
        self.stream = false;
        (State::List { cause, token: None }, vec![])
    }

    /// Whether the next watch request probes a connection that went silent.
    pub(super) fn probing(&self) -> bool {
        self.suspect.is_some()
    }

    /// The one transition.
    pub(super) fn step(&mut self, ev: Event, now: Instant) -> Vec<Action> {
        use {Event as E, State as S};
        let state = std::mem::replace(&mut self.state, S::Discover { then: RelistCause::Start });
        let (next, actions) =
            match (state, ev) {
                (S::Discover { then }, E::Discovered) => (self.relist(then), vec![]),
                (S::Discover { then }, E::Failed(f)) => self.fail(f, now, S::Discover { then }),

                (S::List { cause, .. }, E::Page { token: Some(t), .. }) => {
                    (S::List { cause, token: Some(t) }, vec![])
                }
                (S::List { cause, .. }, E::Page { rv, token: None }) if rv.is_empty() => {
                    let f = Failure::other("list answered without a resourceVersion");
                    self.fail(f, now, S::List { cause, token: None })
                }
                (S::List { cause, .. }, E::Page { rv, token: None }) => {
                    self.not_found_since = None;
                    let resync_at = deadline(now, self.backoff.jitter_10(self.resync));
                    (S::Watch { rv, resync_at }, vec![Action::Listed { cause, drift: false }])
                }
                // The continue token expired between pages: start the list over.
                (S::List { cause, token: Some(_) }, E::Failed(f)) if f.cause == ErrorCause::Gone => {
                    (S::List { cause, token: None }, vec![Action::Count(ErrorCause::Gone)])
                }
                (S::List { cause, .. }, E::Failed(f)) if f.cause == ErrorCause::NotFound => {
                    self.fail(f, now, S::Discover { then: cause })
                }
                (S::List { cause, .. }, E::Failed(f)) => self.fail(f, now, S::List { cause, token: None }),

                // Streamed list: ADDED events are reconciled by the IO side as they come; the
                // watch counts as open (synced) only once the initial state is complete.
                (S::Stream { cause }, E::WatchOpened | E::Progress { .. }) => (S::Stream { cause }, vec![]),
                (S::Stream { cause }, E::InitialEventsEnd { rv }) => {
                    self.not_found_since = None;
                    self.healthy_since.get_or_insert(now);
                    let resync_at = deadline(now, self.backoff.jitter_10(self.resync));
                    (S::Watch { rv, resync_at }, vec![Action::Listed { cause, drift: false }, Action::Synced])
                }
                (S::Stream { cause }, E::StreamUnsupported) => {
                    self.fall_back(cause, "a bookmark came without k8s.io/initial-events-end")
                }
                (S::Stream { cause }, E::Closed { .. }) => {
                    self.fall_back(cause, "the watch ended before the initial events did")
                }
                (S::Stream { cause }, E::Stalled { .. }) => {
                    self.fall_back(cause, "no initial-events-end bookmark within the idle deadline")
                }
                // Not expected from a stream at no resourceVersion; a paged list cannot loop on it.
                (S::Stream { cause }, E::Failed(f)) if f.cause == ErrorCause::Gone => {
                    (S::List { cause, token: None }, vec![Action::Count(ErrorCause::Gone)])
                }
                (S::Stream { cause }, E::Failed(f)) if f.cause == ErrorCause::NotFound => {
                    self.fail(f, now, S::Discover { then: cause })
                }
                // 400/422 (the parameter is refused), 403 (no watch permission: the list may
                // still work): not a transient fault, list page by page.
                (S::Stream { cause }, E::Failed(f)) if (400..500).contains(&f.code) && f.code != 429 => {
                    self.fall_back(cause, &f.message)
                }
                (S::Stream { cause }, E::Failed(f)) => self.fail(f, now, S::Stream { cause }),

                (S::Watch { rv, resync_at }, E::WatchOpened) => {
                    // A probe that opens shows the silent watch was merely quiet.
                    self.suspect = None;
                    self.healthy_since.get_or_insert(now);
                    (S::Watch { rv, resync_at }, vec![Action::Synced])
                }
                (S::Watch { rv, resync_at }, E::Progress { rv: new } | E::InitialEventsEnd { rv: new }) => {
                    let rv = if new.is_empty() { rv } else { new };
                    (S::Watch { rv, resync_at }, vec![])
                }
                (S::Watch { rv, resync_at }, E::Closed { lasted, delivered }) => {
                    let watch = S::Watch { rv, resync_at };
                    if lasted < EARLY_CLOSE && !delivered {
                        let wait = self.next_wait(now, None);
                        (S::Backoff { until: deadline(now, wait), next: Box::new(watch) }, vec![])
                    } else {
                        (watch, vec![])
                    }
                }
                (S::Watch { rv, resync_at }, E::Stalled { after }) => {
                    self.suspect = Some(after);
                    (S::Watch { rv, resync_at }, vec![])
                }
                (S::Watch { rv, .. }, E::ResyncDue) => (S::Resync { rv, token: None }, vec![]),
                (S::Watch { rv, resync_at }, E::Failed(f)) if self.suspect.is_some() => {
                    let after = self.suspect.take().unwrap_or_default();
                    let (next, mut actions) = self.fail(f, now, S::Watch { rv, resync_at });
                    actions.insert(0, Action::Fail(Failure {
                    cause: ErrorCause::Stalled,
                    code: 0,
                    message: format!(
                        "watch delivered nothing (not even a bookmark) for {}s and could not be reopened",
                        after.as_secs()
                    ),
                    retry_after: None,
                }));
                    (next, actions)
                }
                (S::Watch { .. }, E::Failed(f)) if f.cause == ErrorCause::Gone => {
                    (self.relist(RelistCause::Gone), vec![Action::Count(ErrorCause::Gone)])
                }
                (S::Watch { .. }, E::Failed(f)) if f.cause == ErrorCause::NotFound => {
                    self.fail(f, now, S::Discover { then: RelistCause::Error })
                }
                (S::Watch { rv, resync_at }, E::Failed(f)) => self.fail(f, now, S::Watch { rv, resync_at }),

                (S::Resync { rv, .. }, E::Page { token: Some(t), .. }) => {
                    (S::Resync { rv, token: Some(t) }, vec![])
                }
                (S::Resync { rv, .. }, E::Page { rv: got, token: None }) => {
                    self.not_found_since = None;
                    let rv = if got.is_empty() { rv } else { got };
                    let resync_at = deadline(now, self.backoff.jitter_10(self.resync));
                    (
                        S::Watch { rv, resync_at },
                        vec![Action::Listed { cause: RelistCause::Periodic, drift: true }],
                    )
                }
                // The watch's resourceVersion (or the token) was compacted away: the exact
                // comparison is impossible, so list at the newest version without counting drift.
                (S::Resync { .. }, E::Failed(f)) if f.cause == ErrorCause::Gone => {
                    (self.relist(RelistCause::Gone), vec![Action::Count(ErrorCause::Gone)])
                }
                (S::Resync { .. }, E::Failed(f)) if f.cause == ErrorCause::NotFound => {
                    self.fail(f, now, S::Discover { then: RelistCause::Error })
                }
                (S::Resync { rv, .. }, E::Failed(f)) => self.fail(f, now, S::Resync { rv, token: None }),

                (S::Backoff { next, .. }, E::Woke) => (*next, vec![]),

                // An event that does not belong to the state (a bug in the IO loop): keep the state.
                (s, ev) => {
                    tracing::debug!(state = ?s, event = ?ev, "watch event ignored in this state");
                    (s, vec![])
                }
            };
        self.state = next;
        actions
    }

    /// The next backoff wait; a watch healthy for [`RESET_AFTER`] starts from the first step.
    fn next_wait(&mut self, now: Instant, retry_after: Option<Duration>) -> Duration {
        if self.healthy_since.take().is_some_and(|t| now.saturating_duration_since(t) >= RESET_AFTER) {
            self.backoff.reset();
        }
        self.backoff.next().max(retry_after.unwrap_or_default())
    }

    fn fail(&mut self, f: Failure, now: Instant, resume: State) -> (State, Vec<Action>) {
        let wait = self.next_wait(now, f.retry_after);
        let mut actions = vec![];
        if f.cause == ErrorCause::NotFound {
            let since = *self.not_found_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= NOT_FOUND_GRACE {
                actions.push(Action::Clear);
            }
        }
        actions.insert(0, Action::Fail(f));
        (State::Backoff { until: deadline(now, wait), next: Box::new(resume) }, actions)
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "machine_stream_tests.rs"]
mod stream_tests;
