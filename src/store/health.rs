//! The vocabulary of a watch's health: why a list or watch failed ([`ErrorCause`]), why a full
//! list happened ([`RelistCause`]), change counts ([`Changes`]) and the counters and times
//! exported per watch ([`WatchHealth`]).

use std::collections::BTreeMap;

/// Why a list or watch failed; the `cause` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCause {
    /// 410: the resourceVersion (or a list's continue token) was compacted away.
    Gone,
    /// 429: API Priority and Fairness (or a proxy) rejected the request.
    Throttled,
    /// 401 or 403.
    Forbidden,
    /// 404: the kind is not served (CRD missing or deleted).
    NotFound,
    /// 500, 502, 503: the API server (or its storage) is not answering properly.
    Unavailable,
    /// No response in time (408, 504, or our own deadline).
    Timeout,
    /// An open watch delivered no byte (not even a bookmark) for the idle deadline.
    Stalled,
    /// The TCP connection failed (refused, reset, closed early).
    Connect,
    /// The API server's name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate not trusted, wrong name, expired).
    Tls,
    /// A response or watch line could not be decoded.
    Decode,
    /// The watch task panicked or ended and was restarted by the supervisor.
    Panic,
    Other,
}

impl ErrorCause {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            ErrorCause::Gone => "gone",
            ErrorCause::Throttled => "throttled",
            ErrorCause::Forbidden => "forbidden",
            ErrorCause::NotFound => "not_found",
            ErrorCause::Unavailable => "unavailable",
            ErrorCause::Timeout => "timeout",
            ErrorCause::Stalled => "stalled",
            ErrorCause::Connect => "connect",
            ErrorCause::Dns => "dns",
            ErrorCause::Tls => "tls",
            ErrorCause::Decode => "decode",
            ErrorCause::Panic => "panic",
            ErrorCause::Other => "other",
        }
    }
}

/// Why a full list happened; the `cause` label of `relists_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelistCause {
    Start,
    Gone,
    Periodic,
    Error,
}

impl RelistCause {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            RelistCause::Start => "start",
            RelistCause::Gone => "gone",
            RelistCause::Periodic => "periodic",
            RelistCause::Error => "error",
        }
    }
}

/// Added, modified, deleted: the `type` of watch events and the `change` of drift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: u64,
    pub modified: u64,
    pub deleted: u64,
}

impl Changes {
    /// All changes together.
    pub fn total(&self) -> u64 {
        self.added + self.modified + self.deleted
    }
    /// Adds another count into this one.
    pub(crate) fn add(&mut self, o: Changes) {
        self.added += o.added;
        self.modified += o.modified;
        self.deleted += o.deleted;
    }
}

/// One watch's counters, times and state, as `/metrics` exports them.
#[derive(Debug, Clone, Default)]
pub struct WatchHealth {
    pub events: Changes,
    pub errors: BTreeMap<ErrorCause, u64>,
    pub relists: BTreeMap<RelistCause, u64>,
    pub drift: Changes,
    /// (verb, HTTP status code) → count; code 0 when no response arrived.
    pub requests: BTreeMap<(&'static str, u16), u64>,
    pub last_list: Option<f64>,
    pub last_event: Option<f64>,
    pub synced: bool,
    /// The first attempt finished, with data or with a definitive answer (403, 404).
    pub attempted: bool,
    pub last_error: Option<String>,
    /// A sharded watch: who filters it, and the objects it decoded and dropped.
    pub shard: ShardHealth,
}

/// What sharding costs one watch: objects decoded from its lists and events, and those dropped
/// as another shard's (none when the server filters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardHealth {
    /// Set by the watch's first list: server- or client-side. `None`: not sharded (or not
    /// listed yet).
    pub mode: Option<crate::model::shard::ShardMode>,
    /// Objects decoded (list items and watch events).
    pub decoded: u64,
    /// Of those, objects of other shards dropped by the client-side filter.
    pub dropped: u64,
}
