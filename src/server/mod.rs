//! The HTTP side: `/metrics`, `/healthz`, `/readyz`, `/`. GET and HEAD only, bounded
//! connections with a reserve for probes, header-read and response deadlines, graceful
//! shutdown.
//!
//! Owns the hyper server, the [`limits`], the [`routes`] and the [`landing`] page. It renders
//! through [`crate::expose`] and reads the store; it never changes what it serves from.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};

pub mod landing;
pub mod limits;
pub mod listen;
pub mod routes;

pub use self::limits::Limits;
use self::{limits::DeadlineIo, routes::Slot};
use crate::{
    error::{Error, Result},
    expose::{Renderer, SelfState},
    store::Store,
};

/// How often `/readyz`'s answer is recomputed from the store (off the request path).
const READY_REFRESH: Duration = Duration::from_millis(250);

/// What every request handler reads.
pub struct Shared {
    pub store: Arc<Store>,
    pub me: Arc<SelfState>,
    pub renderer: Renderer,
    /// `/readyz`'s answer, kept current by [`serve`] so a probe never takes a lock.
    pub ready: AtomicBool,
}

impl Shared {
    /// Handler state, not yet ready.
    pub fn new(store: Arc<Store>, me: Arc<SelfState>, renderer: Renderer) -> Shared {
        Shared { store, me, renderer, ready: AtomicBool::new(false) }
    }
}

/// Binds the listen address (see [`listen::ListenAddr`] for the forms it takes).
pub async fn bind(addr: &str) -> Result<TcpListener> {
    listen::ListenAddr::parse(addr).map_err(Error::Listen)?.bind(addr).await
}

/// Serves until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let full = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(limits.probe_reserve));
    let refresher = tokio::spawn(refresh_ready(shared.clone()));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    // Out of file descriptors and the like: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let (permit, slot) = match full.clone().try_acquire_owned() {
            Ok(p) => (p, Slot::Full),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(p) => (p, Slot::ProbesOnly),
                Err(_) => {
                    shared.me.dropped_over_limit.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "no connection slot free; closed");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let io = DeadlineIo::new(TokioIo::new(stream), limits.response_deadline, shared.me.clone());
        let shared = shared.clone();
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(slot == Slot::Full)
            .max_buf_size(16 * 1024)
            .serve_connection(
                io,
                service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(routes::handle(&shared, req, slot).await) }
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
    refresher.abort();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("open connections did not finish within 10s"),
    }
}

/// Recomputes readiness on the blocking pool (it reads every watch) and publishes it for the
/// probes.
async fn refresh_ready(shared: Arc<Shared>) {
    loop {
        let s = shared.clone();
        if let Ok(ready) = tokio::task::spawn_blocking(move || s.store.ready()).await {
            shared.ready.store(ready, Ordering::Relaxed);
        }
        tokio::time::sleep(READY_REFRESH).await;
    }
}
