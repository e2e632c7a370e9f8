//! Failure classification: every failed request becomes a [`Failure`] with the `cause` label of
//! `watch_errors_total` and the HTTP status of `api_requests_total`, and is recorded on the
//! watch's health.

use crate::{
    model::text,
    store::{ErrorCause, Watch},
};

/// A failed request, classified for `watch_errors_total{cause}`.
#[derive(Debug, Clone)]
pub struct Failure {
    pub cause: ErrorCause,
    pub code: u16,
    pub message: String,
    /// The server's `Retry-After`: the next attempt waits at least this long.
    pub retry_after: Option<std::time::Duration>,
}

impl Failure {
    pub(super) fn from_kube(e: &kube::Error) -> Failure {
        use kube::Error as E;
        let (cause, code) = match e {
            E::Api(s) => (cause_of_code(s.code), s.code),
            E::HyperError(_) | E::Service(_) | E::ReadEvents(_) => (cause_of_transport(e), 0),
            E::SerdeError(_) | E::FromUtf8(_) => (ErrorCause::Decode, 0),
            E::Discovery(_) => (ErrorCause::NotFound, 404),
            _ => (ErrorCause::Other, 0),
        };
        let message = match e {
            // The API's own words, without the Debug dump kube's Display appends.
            E::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
            _ => format!("{}: {}", cause.label(), chain(e)),
        };
        Failure { cause, code, message, retry_after: None }
    }

    /// A failure without a response.
    pub(super) fn other(message: &str) -> Failure {
        Failure { cause: ErrorCause::Other, code: 0, message: message.to_string(), retry_after: None }
    }

    pub(super) fn timeout(what: &str) -> Failure {
        Failure {
            cause: ErrorCause::Timeout,
            code: 0,
            message: format!("{what} timed out"),
            retry_after: None,
        }
    }
}

/// Every message of an error's source chain, outermost first, without repeats.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![];
    let mut cur = Some(e);
    while let Some(err) = cur {
        let m = err.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// The cause of a request that got no response: TLS, DNS, refused/reset connection, timeout.
pub(super) fn cause_of_transport(e: &(dyn std::error::Error + 'static)) -> ErrorCause {
    let mut cur = Some(e);
    let mut text = String::new();
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::TimedOut => return ErrorCause::Timeout,
                K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted => {
                    return ErrorCause::Connect;
                }
                _ => {}
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_timeout()
        {
            return ErrorCause::Timeout;
        }
        text.push_str(&err.to_string().to_lowercase());
        text.push('\n');
        cur = err.source();
    }
    if ["certificate", "tls", "handshake", "unknownissuer", "badsignature"].iter().any(|w| text.contains(w)) {
        ErrorCause::Tls
    } else if text.contains("dns error")
        || text.contains("failed to lookup address")
        || text.contains("name or service not known")
    {
        ErrorCause::Dns
    } else if text.contains("timed out") || text.contains("deadline") {
        ErrorCause::Timeout
    } else {
        ErrorCause::Connect
    }
}

/// The `cause` of an HTTP status code.
pub fn cause_of_code(code: u16) -> ErrorCause {
    match code {
        410 => ErrorCause::Gone,
        429 => ErrorCause::Throttled,
        401 | 403 => ErrorCause::Forbidden,
        404 => ErrorCause::NotFound,
        408 | 504 => ErrorCause::Timeout,
        500 | 502 | 503 => ErrorCause::Unavailable,
        _ => ErrorCause::Other,
    }
}

/// `plural.group in namespace NS` (or `cluster-wide`) for a URL made by [`collection_url`].
pub(super) fn describe_url(url: &str) -> String {
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
pub(super) fn fail(watch: &Watch, f: &Failure, clear: bool) {
    tracing::warn!(resource = %watch.key.gvk.label(), namespace = %watch.key.namespace, cause = f.cause.label(), error = %text::display(&f.message), "watch failed");
    watch.write(|s| {
        *s.health.errors.entry(f.cause).or_default() += 1;
        s.health.synced = false;
        s.health.last_error = Some(f.message.clone());
        if matches!(f.cause, ErrorCause::Forbidden | ErrorCause::NotFound) {
            s.health.attempted = true;
            if clear {
                s.clear_objects();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(cause_of_code(503), ErrorCause::Unavailable);
        assert_eq!(cause_of_code(418), ErrorCause::Other);
    }
}
