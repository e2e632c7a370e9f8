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
}

impl Failure {
    pub(super) fn from_kube(e: &kube::Error) -> Failure {
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

    pub(super) fn timeout(what: &str) -> Failure {
        Failure { cause: ErrorCause::Timeout, code: 0, message: format!("{what} timed out") }
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
                s.objects.clear();
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
        assert_eq!(cause_of_code(500), ErrorCause::Other);
    }
}
