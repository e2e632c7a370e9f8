//! One HTTP attempt against the API server, classified. The client is built without kube's
//! hidden retry layer ([`super::client`]), so every attempt is one request here: its status
//! is counted in `api_requests_total`, a 429 or 503 is a [`Failure`] at once (never an outer
//! timeout), and `Retry-After` is read.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use kube::{Client, client::Body};

use super::failure::{Failure, cause_of_code, cause_of_transport, chain};
use crate::{ingest::wire::ApiStatus, store::ErrorCause};

/// The longest `Retry-After` honoured (a misbehaving proxy must not park a watch for hours).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `Retry-After` in seconds (the form the API server sends), capped.
pub(super) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The failure of a non-2xx response: the API's Status message when the body is one.
pub(super) fn status_failure(code: u16, headers: &http::HeaderMap, body: &[u8]) -> Failure {
    let status =
        serde_json::from_slice::<ApiStatus>(body).ok().or_else(|| crate::ingest::proto::decode_status(body));
    let message = match status {
        Some(s) if !s.message.is_empty() || !s.reason.is_empty() => {
            format!("{} ({code}): {}", s.reason, s.message)
        }
        _ => format!("HTTP {code}: {}", String::from_utf8_lossy(&body[..body.len().min(200)]).trim()),
    };
    Failure { cause: cause_of_code(code), code, message, retry_after: retry_after(headers) }
}

/// Sends `req`; `Ok` is a 2xx response whose body is still to be read. `Err` carries the status
/// code (0 when no response arrived within `timeout`).
pub(super) async fn send(
    client: &Client,
    req: http::Request<Vec<u8>>,
    timeout: Duration,
) -> Result<http::Response<Body>, Failure> {
    let what = format!("{} {}", req.method(), req.uri().path());
    let res = match tokio::time::timeout(timeout, client.send(req.map(Body::from))).await {
        Err(_) => return Err(Failure::timeout(&format!("{what}: no response in {}s", timeout.as_secs()))),
        Ok(Err(e)) => return Err(Failure::from_kube(&e)),
        Ok(Ok(r)) => r,
    };
    let code = res.status().as_u16();
    if res.status().is_success() {
        return Ok(res);
    }
    let headers = res.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(10), res.into_body().collect())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Err(status_failure(code, &headers, &body))
}

/// Reads a whole 2xx body (a list page).
pub(super) async fn body(res: http::Response<Body>, timeout: Duration) -> Result<Bytes, Failure> {
    match tokio::time::timeout(timeout, res.into_body().collect()).await {
        Err(_) => Err(Failure::timeout(&format!("reading the list body ({}s)", timeout.as_secs()))),
        Ok(Err(e)) => Err(Failure {
            cause: cause_of_transport(&e),
            code: 200,
            message: format!("reading the list body: {}", chain(&e)),
            retry_after: None,
        }),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}

/// `req` with `name=value` appended to its query (the `shardSelector` kube's parameters lack).
pub(super) fn with_query(mut req: http::Request<Vec<u8>>, name: &str, value: &str) -> http::Request<Vec<u8>> {
    let mut enc = String::with_capacity(value.len() * 2);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    let uri = req.uri().to_string();
    let sep = if uri.contains('?') { '&' } else { '?' };
    if let Ok(u) = format!("{uri}{sep}{name}={enc}").parse() {
        *req.uri_mut() = u;
    }
    req
}

/// A transport error while reading an open watch.
pub(super) fn read_failure(e: &std::io::Error) -> Failure {
    let cause = match cause_of_transport(e) {
        ErrorCause::Timeout => ErrorCause::Timeout,
        _ => ErrorCause::Connect,
    };
    Failure { cause, code: 200, message: format!("reading watch: {}", chain(e)), retry_after: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ra: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, ra.parse().unwrap());
        h
    }

    #[test]
    fn throttled_with_retry_after() {
        let body = br#"{"kind":"Status","code":429,"reason":"TooManyRequests","message":"too many requests, please try again later"}"#;
        let f = status_failure(429, &headers("3"), body);
        assert_eq!(f.cause, ErrorCause::Throttled);
        assert_eq!(f.code, 429);
        assert_eq!(f.retry_after, Some(Duration::from_secs(3)));
        assert!(f.message.contains("TooManyRequests (429)"), "{}", f.message);
    }

    #[test]
    fn unavailable_without_status_body() {
        let f = status_failure(503, &http::HeaderMap::new(), b"upstream connect error");
        assert_eq!(f.cause, ErrorCause::Unavailable);
        assert_eq!(f.retry_after, None);
        assert!(f.message.contains("HTTP 503: upstream connect error"), "{}", f.message);
    }

    #[test]
    fn shard_selector_is_percent_encoded_into_the_query() {
        let req = http::Request::get("/api/v1/pods?limit=500").body(Vec::new()).unwrap();
        let sel = "shardRange(object.metadata.namespace, '0x0000000000000000', '0x10000000000000000')";
        let req = with_query(req, "shardSelector", sel);
        assert_eq!(
            req.uri().to_string(),
            "/api/v1/pods?limit=500&shardSelector=shardRange%28object.metadata.namespace%2C%20%270x0000000000000000%27%2C%20%270x10000000000000000%27%29"
        );
        let req = with_query(http::Request::get("/api/v1/pods").body(Vec::new()).unwrap(), "a", "b c");
        assert_eq!(req.uri().to_string(), "/api/v1/pods?a=b%20c");
    }

    #[test]
    fn retry_after_is_capped_and_dates_ignored() {
        assert_eq!(retry_after(&headers("100000")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:00 GMT")), None);
    }

    #[test]
    fn refused_connection_is_connect() {
        let e = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(cause_of_transport(&e), ErrorCause::Connect);
        let e = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert_eq!(cause_of_transport(&e), ErrorCause::Tls);
        let e = std::io::Error::other("dns error: failed to lookup address information");
        assert_eq!(cause_of_transport(&e), ErrorCause::Dns);
    }

    /// A scripted API server on loopback: answers one request with `body` gzip-compressed when
    /// the request asks for gzip, and reports the request's `Accept-Encoding`.
    async fn gzip_server(body: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
        use std::io::Write;

        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut req = vec![0u8; 4096];
            let n = sock.read(&mut req).await.unwrap();
            let head = String::from_utf8_lossy(&req[..n]).to_ascii_lowercase();
            let accept = head
                .lines()
                .find_map(|l| l.strip_prefix("accept-encoding:"))
                .map(|v| v.trim().to_string())
                .unwrap_or_default();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(body).unwrap();
            let (payload, encoding) = if accept.contains("gzip") {
                (gz.finish().unwrap(), "Content-Encoding: gzip\r\n")
            } else {
                (body.to_vec(), "")
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            sock.write_all(head.as_bytes()).await.unwrap();
            sock.write_all(&payload).await.unwrap();
            sock.shutdown().await.unwrap();
            accept
        });
        (url, task)
    }

    #[tokio::test]
    async fn lists_ask_for_gzip_and_are_decoded() {
        let body: &[u8] = br#"{"kind":"PodList","metadata":{"resourceVersion":"7"},"items":[]}"#;
        let (url, server) = gzip_server(body).await;
        let client =
            kube::Client::try_from(super::super::client::prepare(kube::Config::new(url.parse().unwrap())))
                .unwrap();
        let req = http::Request::get("/api/v1/pods?limit=500").body(vec![]).unwrap();
        let res = send(&client, req, Duration::from_secs(5)).await.unwrap();
        let got = super::body(res, Duration::from_secs(5)).await.unwrap();
        assert_eq!(&got[..], body, "the gzip body is decoded before it is parsed");
        assert!(server.await.unwrap().contains("gzip"), "the request must carry Accept-Encoding: gzip");
    }
}
