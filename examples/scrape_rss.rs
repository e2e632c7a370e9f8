//! Benchmark aid (not a test): peak RSS of the exporter's HTTP server while C clients scrape
//! `/metrics` at once, over a store of N synthetic tracked objects. The server is the real one
//! (`server::serve` on a loopback port, 2 async workers); the clients are plain threads.
//! `cargo run --release --example scrape_rss -- 10000 200` (see docs/benchmarks.md).

#[path = "../benches/support/mod.rs"]
mod bench_support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    sync::{Arc, Barrier},
    time::Instant,
};

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = bench_support::filled_store(n);
    let me = Arc::new(stallwatch::expose::SelfState::default());
    let renderer = stallwatch::expose::Renderer::new(store.clone(), me.clone(), stallwatch::clock::now);
    let listener = rt.block_on(stallwatch::server::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Arc::new(stallwatch::server::Shared::new(store, me.clone(), renderer));
    rt.spawn(stallwatch::server::serve(listener, shared, Default::default(), std::future::pending()));
    let idle = status_kb("VmRSS:");
    let start = Arc::new(Barrier::new(clients));
    let t = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").unwrap();
                // Read and discard: only the server's memory is measured.
                let mut buf = [0u8; 64 * 1024];
                let (mut first, mut total) = (Vec::new(), 0);
                loop {
                    let k = c.read(&mut buf).unwrap();
                    if k == 0 {
                        break;
                    }
                    if first.len() < 12 {
                        first.extend_from_slice(&buf[..k.min(12)]);
                    }
                    total += k;
                }
                (first.starts_with(b"HTTP/1.1 200"), total)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|(ok, _)| *ok).count();
    let bytes = results.iter().map(|(_, n)| n).max().unwrap_or(&0);
    let renders = me.renders_run.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{n} objects, {clients} concurrent scrapes: {ok} OK, {bytes} bytes each, {renders} renders, {:?}; \
         RSS idle {} MB, peak {} MB",
        t.elapsed(),
        idle / 1024,
        status_kb("VmHWM:") / 1024
    );
}
