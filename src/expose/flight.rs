//! Single-flight rendering for `/metrics`: scrapes that arrive while a render of their format
//! runs wait for it and share its bytes, so N concurrent scrapes cost one render and one
//! buffer, not N. At most one render per format runs at a time (two in all); gzip of a
//! render is done once, by the first scrape that asks for it, and shared the same way.
//!
//! All CPU work (render, gzip) runs on the blocking pool, never on an async worker.
//!
//! A render writes into the buffer of an earlier exposition once no scrape holds it any more
//! ([`Spare`]): at 100k objects the output is about 255 MB, and a fresh buffer of that size
//! costs the kernel zeroing every page of it on first write.

use std::{
    io::Write as _,
    sync::{Arc, Mutex, atomic::Ordering},
    time::Instant,
};

use bytes::Bytes;
use futures::{
    FutureExt as _,
    future::{BoxFuture, Shared},
};
use tokio::sync::OnceCell;

use super::{Format, Inner};

/// Output buffers whose expositions every scrape has dropped, kept for the next render: at most
/// one per format (at most one render per format runs at a time).
#[derive(Debug, Default)]
pub(super) struct Spare(Mutex<Vec<String>>);

impl Spare {
    /// The largest spare buffer, or a new empty one.
    fn take(&self) -> String {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let largest = (0..s.len()).max_by_key(|&i| s[i].capacity());
        largest.map(|i| s.swap_remove(i)).unwrap_or_default()
    }

    /// Keeps `buf` unless two larger ones are kept already.
    fn put(&self, buf: String) {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.push(buf);
        if s.len() > 2 {
            let smallest = (0..s.len()).min_by_key(|&i| s[i].capacity()).unwrap_or(0);
            s.swap_remove(smallest);
        }
    }
}

/// An exposition's bytes, handed back to [`Spare`] when the last [`Bytes`] of them drops.
struct Recycled {
    buf: String,
    spare: std::sync::Weak<Spare>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_bytes()
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if let Some(spare) = self.spare.upgrade() {
            spare.put(buf);
        }
    }
}

impl Inner {
    /// Renders `format` into a spare buffer and wraps it as an [`Exposition`] whose bytes go
    /// back to the spares once every scrape has dropped them.
    pub(super) fn exposition(&self, format: Format) -> Result<Exposition, std::fmt::Error> {
        let mut out = self.render(format, self.spare.take())?;
        // A spare from a larger store is not kept at twice what the store now needs.
        if out.capacity() / 2 > out.len() + (1 << 20) {
            out.shrink_to_fit();
        }
        let owner = Recycled { buf: out, spare: Arc::downgrade(&self.spare) };
        Ok(Exposition { plain: Bytes::from_owner(owner), gz: OnceCell::new() })
    }
}

/// One finished render: its bytes, and (once asked for) their gzip.
#[derive(Debug)]
pub struct Exposition {
    /// The uncompressed exposition.
    pub plain: Bytes,
    gz: OnceCell<Bytes>,
}

impl Exposition {
    /// The gzip of the exposition, compressed (on the blocking pool) by the first caller only.
    pub async fn gzip(self: &Arc<Self>) -> Result<Bytes, RenderError> {
        let me = self.clone();
        self.gz
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || compress(&me.plain))
                    .await
                    .map_err(|e| RenderError(format!("gzip task failed: {e}")))
            })
            .await
            .cloned()
    }
}

/// Why a render failed (logged; the scrape gets a 500).
#[derive(Debug, Clone)]
pub struct RenderError(pub String);

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type Pending = Shared<BoxFuture<'static, Result<Arc<Exposition>, RenderError>>>;

/// The render in flight per format, tagged with a sequence number so a finished render clears
/// only its own slot.
#[derive(Default)]
pub(super) struct Flights {
    slots: Mutex<[Option<(u64, Pending)>; 2]>,
    seq: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Flights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Flights")
    }
}

fn slot(format: Format) -> usize {
    match format {
        Format::OpenMetrics => 0,
        Format::Text004 => 1,
    }
}

/// Joins the render of `format` in flight, or starts one. A render that finishes clears its
/// slot itself (on the blocking pool), so a scrape that arrives later always gets fresh data
/// even when every scrape that waited for the previous one went away.
pub(super) async fn scrape(inner: &Arc<Inner>, format: Format) -> Result<Arc<Exposition>, RenderError> {
    let pending = {
        let mut slots = inner.flights.slots.lock().unwrap_or_else(|e| e.into_inner());
        match &slots[slot(format)] {
            Some((_, p)) => {
                inner.me.renders_shared.fetch_add(1, Ordering::Relaxed);
                p.clone()
            }
            None => {
                let id = inner.flights.seq.fetch_add(1, Ordering::Relaxed);
                let job = inner.clone();
                // Spawned now, under the slot lock: the job clears the slot only after this
                // entry is in it, and runs even if every waiting scrape is dropped.
                let handle = tokio::task::spawn_blocking(move || {
                    let start = Instant::now();
                    let out = job.exposition(format);
                    job.me.set_render_seconds(start.elapsed().as_secs_f64());
                    job.me.renders_run.fetch_add(1, Ordering::Relaxed);
                    let mut slots = job.flights.slots.lock().unwrap_or_else(|e| e.into_inner());
                    if matches!(&slots[slot(format)], Some((i, _)) if *i == id) {
                        slots[slot(format)] = None;
                    }
                    out
                });
                let p: Pending = async move {
                    match handle.await {
                        Ok(Ok(x)) => Ok(Arc::new(x)),
                        Ok(Err(e)) => Err(RenderError(format!("encoding failed: {e}"))),
                        Err(e) => Err(RenderError(format!("render task failed: {e}"))),
                    }
                }
                .boxed()
                .shared();
                slots[slot(format)] = Some((id, p.clone()));
                p
            }
        }
    };
    pending.await
}

/// gzip of a response body (fast level: scrapes are frequent, bandwidth is cheap).
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
    fn spares_keep_the_two_largest_buffers_and_come_back_when_the_bytes_drop() {
        let spare = Arc::new(Spare::default());
        for cap in [10, 30, 20] {
            spare.put(String::with_capacity(cap));
        }
        assert_eq!(spare.take().capacity(), 30);
        assert_eq!(spare.take().capacity(), 20);
        assert_eq!(spare.take().capacity(), 0, "no third buffer kept");
        let mut buf = String::with_capacity(64);
        buf.push_str("stallwatch_up 1\n");
        let plain = Bytes::from_owner(Recycled { buf, spare: Arc::downgrade(&spare) });
        let shared = plain.clone();
        drop(plain);
        assert_eq!(spare.take().capacity(), 0, "a clone still holds the bytes");
        drop(shared);
        assert_eq!(spare.take().capacity(), 64);
    }

    #[test]
    fn gzip_round_trip() {
        let z = compress(b"stallwatch_up 1\n");
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut s = String::new();
        d.read_to_string(&mut s).unwrap();
        assert_eq!(s, "stallwatch_up 1\n");
    }
}
