//! The routes: `/metrics` (single-flight render, shared bytes), `/healthz` and `/readyz`
//! (answered from atomics, never behind a render; an unready `/readyz` rechecks the watches on
//! the blocking pool), `/` (the landing page, built on
//! the blocking pool), and the errors (405 with `Allow`, 404, 503 for a probe-only slot).

use std::sync::{Arc, atomic::Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use super::{Shared, landing};
use crate::{clock::now, expose::negotiate};

/// What a connection may ask for: everything, or (on a reserve slot) only the probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A regular connection slot.
    Full,
    /// A reserve slot: `/healthz` and `/readyz` only.
    ProbesOnly,
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response")
}

/// Answers one request.
pub async fn handle<B>(shared: &Arc<Shared>, req: Request<B>, slot: Slot) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served\n");
        r.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let head = req.method() == Method::HEAD;
    let mut resp = match (req.uri().path(), slot) {
        ("/healthz", _) => text(StatusCode::OK, "ok\n"),
        ("/readyz", _) => {
            if ready(shared).await {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "waiting for the first list of every watch\n")
            }
        }
        (_, Slot::ProbesOnly) => {
            let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "too many connections; retry later\n");
            r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            r
        }
        ("/metrics", _) => metrics(shared, &req).await,
        ("/", _) => landing_page(shared).await,
        _ => text(StatusCode::NOT_FOUND, "not found; see / for the endpoints\n"),
    };
    if head {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

/// Ready once published as such; until then each probe also asks the store (on the blocking
/// pool), so readiness shows the moment the last watch finishes its first list.
async fn ready(shared: &Arc<Shared>) -> bool {
    if shared.ready.load(Ordering::Relaxed) {
        return true;
    }
    let s = shared.clone();
    tokio::task::spawn_blocking(move || s.store.ready()).await.unwrap_or(false)
}

fn failed(what: &str, e: impl std::fmt::Display) -> Response<Full<Bytes>> {
    tracing::error!(error = %e, "{what} failed");
    text(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed; see the exporter log\n")
}

async fn landing_page(shared: &Arc<Shared>) -> Response<Full<Bytes>> {
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || landing::page(&store, now())).await {
        Ok(page) => Response::builder()
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Full::new(Bytes::from(page)))
            .expect("static response"),
        Err(e) => failed("landing page", e),
    }
}

async fn metrics<B>(shared: &Arc<Shared>, req: &Request<B>) -> Response<Full<Bytes>> {
    let h = |name| req.headers().get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
    let format = negotiate::format(h(header::ACCEPT));
    let gzip = negotiate::gzip(h(header::ACCEPT_ENCODING));
    let exposition = match shared.renderer.scrape(format).await {
        Ok(x) => x,
        Err(e) => return failed("render", e),
    };
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::VARY, "Accept, Accept-Encoding");
    let bytes = if gzip {
        b = b.header(header::CONTENT_ENCODING, "gzip");
        match exposition.gzip().await {
            Ok(z) => z,
            Err(e) => return failed("gzip", e),
        }
    } else {
        exposition.plain.clone()
    };
    b.body(Full::new(bytes)).expect("valid response")
}
