//! What bounds the server: connection slots with a reserve only probes can use, a header-read
//! timeout, and a deadline on every response after which the connection is dropped. Responses
//! being written are counted while their clock runs (`http_responses_in_flight`).

use std::{
    io,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
    time::Duration,
};

use hyper::rt::{Read, ReadBufCursor, Write};
use tokio::time::{Instant, Sleep};

use crate::expose::SelfState;

/// The server's limits; [`Limits::default`] is what the exporter runs with.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served for every route at once.
    pub max_connections: usize,
    /// Further connections that are served `/healthz` and `/readyz` only (anything else gets a
    /// 503), so a flood of scrapers never starves the kubelet's probes.
    pub probe_reserve: usize,
    /// Time a client has to send a request's headers (also the keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Time a response may take to be written, from its first byte to its last; a client that
    /// does not read within it is disconnected.
    pub response_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            probe_reserve: 32,
            header_read_timeout: Duration::from_secs(5),
            response_deadline: Duration::from_secs(30),
        }
    }
}

/// A connection's socket with the response deadline: the clock starts at the first write of
/// a response and stops when hyper flushes it; a write still pending when it runs out fails
/// the connection. While the clock runs the response counts as in flight.
pub struct DeadlineIo<T> {
    inner: T,
    deadline: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    me: Arc<SelfState>,
    expired: bool,
}

impl<T> DeadlineIo<T> {
    /// Wraps `inner`; `me` counts responses in flight and connections the deadline closed.
    pub fn new(inner: T, deadline: Duration, me: Arc<SelfState>) -> DeadlineIo<T> {
        DeadlineIo { inner, deadline, timer: None, me, expired: false }
    }

    /// Starts the clock if no response is being written; fails once it ran out.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.timer.is_none() {
            self.me.in_flight.fetch_add(1, Ordering::Relaxed);
            self.timer = Some(Box::pin(tokio::time::sleep_until(Instant::now() + self.deadline)));
        }
        let timer = self.timer.as_mut().expect("set above");
        if timer.as_mut().poll(cx).is_ready() {
            if !self.expired {
                self.expired = true;
                self.me.dropped_deadline.fetch_add(1, Ordering::Relaxed);
            }
            return Err(io::Error::new(io::ErrorKind::TimedOut, "response deadline exceeded"));
        }
        Ok(())
    }
}

impl<T: Read + Unpin> Read for DeadlineIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for DeadlineIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            // The response is out: the next one gets its own deadline.
            self.timer = None;
            self.me.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<T> Drop for DeadlineIo<T> {
    fn drop(&mut self) {
        if self.timer.is_some() {
            self.me.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
