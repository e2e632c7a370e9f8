//! The HTTP side: `/metrics`, `/healthz`, `/readyz`, `/`. GET and HEAD only,
//! bounded header-read time and concurrency, graceful shutdown.
//!
//! Owns the hyper server, the routes and the [`landing`] page. It renders through
//! [`crate::expose`] and reads the store; it never changes what it serves from.

use std::{convert::Infallible, io::Write as _, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};

pub mod landing;
pub mod listen;

use crate::{
    clock::now,
    error::{Error, Result},
    expose::{Renderer, SelfState, negotiate},
    store::Store,
};

/// Scrapes and probes are small; more parallel connections than this wait for a slot.
const MAX_CONNECTIONS: usize = 64;
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What every request handler reads.
pub struct Shared {
    pub store: Arc<Store>,
    pub me: Arc<SelfState>,
    pub renderer: Renderer,
}

/// Binds the listen address (see [`listen::ListenAddr`] for the forms it takes).
pub async fn bind(addr: &str) -> Result<TcpListener> {
    listen::ListenAddr::parse(addr).map_err(Error::Listen)?.bind(addr).await
}

/// Serves until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let shared = shared.clone();
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(16 * 1024)
            .serve_connection(
                TokioIo::new(stream),
                service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req, peer).await) }
                }),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with error");
            }
            drop(permit);
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("open connections did not finish within 10s"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static response")
}

async fn handle(shared: &Arc<Shared>, req: Request<Incoming>, _peer: SocketAddr) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD are served\n");
        r.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let head = req.method() == Method::HEAD;
    let mut resp = match req.uri().path() {
        "/metrics" => metrics_response(shared, &req).await,
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            if shared.store.ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "waiting for the first list of every watch\n")
            }
        }
        "/" => Response::builder()
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Full::new(Bytes::from(landing::page(&shared.store, now()))))
            .expect("static response"),
        _ => text(StatusCode::NOT_FOUND, "not found; see / for the endpoints\n"),
    };
    if head {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

async fn metrics_response(shared: &Arc<Shared>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let h = |name| req.headers().get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
    let format = negotiate::format(h(header::ACCEPT));
    let gzip = negotiate::gzip(h(header::ACCEPT_ENCODING));
    let shared2 = shared.clone();
    // Rendering a large store is CPU work; keep it off the async workers.
    let rendered = tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        let out = shared2.renderer.render(format);
        shared2.me.set_render_seconds(start.elapsed().as_secs_f64());
        out
    })
    .await;
    let body = match rendered {
        Ok(Ok(s)) => s,
        _ => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "rendering metrics failed; see the exporter log\n",
            );
        }
    };
    let mut b = Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(header::VARY, "Accept, Accept-Encoding");
    let bytes = if gzip {
        b = b.header(header::CONTENT_ENCODING, "gzip");
        compress(body.as_bytes())
    } else {
        Bytes::from(body)
    };
    b.body(Full::new(bytes)).expect("valid response")
}

/// gzip of a response body.
pub fn compress(data: &[u8]) -> Bytes {
    let mut enc =
        flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4), flate2::Compression::fast());
    enc.write_all(data).expect("writing to memory");
    Bytes::from(enc.finish().expect("writing to memory"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_round_trip() {
        let z = compress(b"stallwatch_up 1\n");
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut s = String::new();
        d.read_to_string(&mut s).unwrap();
        assert_eq!(s, "stallwatch_up 1\n");
    }
}
