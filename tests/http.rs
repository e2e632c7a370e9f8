//! HTTP-level tests against the real server (`server::serve` on a loopback port, in this
//! process, with a store of synthetic objects): content negotiation, gzip, HEAD, 405, 404, the
//! header-read timeout, the response deadline, probes that stay fast while clients that never
//! read hold `/metrics` responses, and concurrent scrapes that share renders.

#[path = "../benches/support/mod.rs"]
mod support;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::{Arc, Barrier, atomic::Ordering},
    time::{Duration, Instant},
};

use stallwatch::{
    expose::{Renderer, SelfState},
    server::{self, Limits, Shared},
};

struct Server {
    addr: SocketAddr,
    me: Arc<SelfState>,
    _rt: tokio::runtime::Runtime,
}

/// A server over `n` synthetic objects, ready, with `limits`.
fn start(n: usize, limits: Limits) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = support::filled_store(n);
    for w in store.watches() {
        w.write(|s| s.health.attempted = true);
    }
    let me = Arc::new(SelfState::default());
    let renderer = Renderer::new(store.clone(), me.clone(), stallwatch::clock::now);
    let listener = rt.block_on(server::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Arc::new(Shared::new(store, me.clone(), renderer));
    rt.spawn(server::serve(listener, shared, limits, std::future::pending()));
    let s = Server { addr, me, _rt: rt };
    // Readiness is published by a background refresh; wait for it.
    let t = Instant::now();
    while get(s.addr, "/readyz", &[]).status != 200 {
        assert!(t.elapsed() < Duration::from_secs(5), "server never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    s
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

fn send(addr: SocketAddr, raw: &str) -> Resp {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(raw.as_bytes()).unwrap();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).unwrap();
    parse(&buf)
}

fn parse(buf: &[u8]) -> Resp {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    Resp { status, headers, body: buf[end + 4..].to_vec() }
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r + "\r\n"
}

fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    send(addr, &request("GET", path, headers))
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kb * 1024
}

/// The value of an unlabelled sample in a text exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in the exposition"))
        .parse()
        .unwrap()
}

const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[test]
fn content_type_gzip_head_and_errors() {
    let s = start(20, Limits::default());
    let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    for (accept, want) in [
        (None, TEXT),
        (Some("text/plain"), TEXT),
        (Some("text/plain;version=0.0.4"), TEXT),
        (Some("*/*"), TEXT),
        (Some("application/json"), TEXT),
        (Some("application/openmetrics-text;version=0.0.1"), TEXT),
        (Some("application/openmetrics-text"), OPENMETRICS),
        (Some("application/openmetrics-text; version=1.0.0"), OPENMETRICS),
        (Some(prometheus), OPENMETRICS),
        (Some("application/openmetrics-text;q=0.2,text/plain;version=0.0.4;q=0.9"), TEXT),
    ] {
        let h: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let r = get(s.addr, "/metrics", &h);
        assert_eq!(r.status, 200, "Accept {accept:?}");
        assert_eq!(r.header("content-type"), Some(want), "Accept {accept:?}");
        assert_eq!(r.header("content-encoding"), None);
        let body = r.text();
        assert!(body.contains("stallwatch_build_info{"), "Accept {accept:?}");
        assert_eq!(body.ends_with("# EOF\n"), want == OPENMETRICS, "Accept {accept:?}");
    }

    let plain = get(s.addr, "/metrics", &[]);
    let r = get(s.addr, "/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-type"), Some(TEXT));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_string(&mut unzipped).unwrap();
    // Same families in the same order (values such as process CPU move between renders).
    let names = |t: &str| t.lines().filter(|l| l.starts_with("# TYPE")).map(String::from).collect::<Vec<_>>();
    assert_eq!(names(&unzipped), names(&plain.text()));
    assert!(names(&unzipped).len() > 10);

    let r = send(s.addr, &request("HEAD", "/metrics", &[("Accept", "application/openmetrics-text")]));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(OPENMETRICS));
    assert!(r.body.is_empty());

    for method in ["POST", "PUT", "DELETE"] {
        let r = send(s.addr, &request(method, "/metrics", &[("Content-Length", "0")]));
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
    let r = get(s.addr, "/nothing-here", &[]);
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = get(s.addr, "/healthz", &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    let r = get(s.addr, "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
}

#[test]
fn unfinished_headers_are_closed_after_the_timeout_while_others_are_served() {
    let limits = Limits { header_read_timeout: Duration::from_secs(1), ..Limits::default() };
    let s = start(20, limits);
    let mut slow = TcpStream::connect(s.addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nX-Never: ").unwrap();
    let opened = Instant::now();
    // Others are served meanwhile.
    for _ in 0..5 {
        assert_eq!(get(s.addr, "/metrics", &[]).status, 200);
        assert_eq!(get(s.addr, "/healthz", &[]).status, 200);
    }
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let r = slow.read_to_end(&mut buf);
    let closed = opened.elapsed();
    assert!(r.is_ok(), "the server should close the connection, got {r:?}");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(3),
        "closed after {closed:?}, want about 1 s"
    );
    // No response to a request that never arrived (or at most a 408).
    assert!(buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&buf));
}

#[test]
fn probes_stay_fast_while_clients_never_read_and_the_deadline_drops_them() {
    let deadline = Duration::from_secs(4);
    let s = start(5_000, Limits { response_deadline: deadline, ..Limits::default() });
    let size = get(s.addr, "/metrics", &[]).body.len() as u64;
    assert!(size > 8 << 20, "the exposition ({size} bytes) must exceed the socket buffers");
    let before = rss_bytes();
    let sent = Instant::now();
    let stuck: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            c.write_all(request("GET", "/metrics", &[]).as_bytes()).unwrap();
            c
        })
        .collect();
    let mut worst = Duration::ZERO;
    let mut peak = before;
    let mut probes = 0;
    let mut slow = 0;
    while sent.elapsed() < deadline - Duration::from_millis(500) {
        for path in ["/healthz", "/readyz"] {
            let t = Instant::now();
            let r = get(s.addr, path, &[]);
            worst = worst.max(t.elapsed());
            if t.elapsed() >= Duration::from_millis(100) {
                slow += 1;
            }
            assert_eq!(r.status, 200, "{path}");
            probes += 1;
        }
        peak = peak.max(rss_bytes());
        std::thread::sleep(Duration::from_millis(50));
    }
    let in_flight = s.me.in_flight.load(Ordering::Relaxed);
    let grew = peak.saturating_sub(before);
    eprintln!(
        "{probes} probes, {slow} took 100 ms or more, slowest {worst:?}; exposition {size} B; RSS {before} -> peak {peak} (+{grew}); \
         {in_flight} responses in flight; renders {}",
        s.me.renders_run.load(Ordering::Relaxed)
    );
    // Probes never wait for a render or a slot. The bound is 100 ms for all but a few; the
    // few may be the scheduler of a loaded 2-core CI machine, and even those stay far inside
    // the kubelet's default 1 s probe timeout.
    assert!(slow * 20 <= probes, "{slow} of {probes} probes took 100 ms or more");
    assert!(worst < Duration::from_secs(1), "slowest probe took {worst:?}");
    assert_eq!(in_flight, 100, "every stuck client holds a response being written");
    // One shared exposition, its render's snapshot and buffers: never one copy per client.
    let bound = 64 << 20;
    assert!(grew < bound, "RSS grew by {grew} bytes with 100 stuck clients (bound {bound})");

    // After the deadline the server drops them all.
    let t = Instant::now();
    while s.me.dropped_deadline.load(Ordering::Relaxed) < 100 {
        assert!(t.elapsed() < Duration::from_secs(10), "only {:?} dropped", s.me.dropped_deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(sent.elapsed() >= deadline);
    assert_eq!(s.me.in_flight.load(Ordering::Relaxed), 0);
    let text = get(s.addr, "/metrics", &[]).text();
    assert_eq!(
        text.lines()
            .find(|l| l.starts_with("stallwatch_http_connections_dropped_total{reason=\"deadline\"}")),
        Some("stallwatch_http_connections_dropped_total{reason=\"deadline\"} 100")
    );
    drop(stuck);
}

#[test]
fn concurrent_scrapes_share_renders() {
    let s = start(2_000, Limits::default());
    let n = 200;
    let start = Arc::new(Barrier::new(n));
    let addr = s.addr;
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                let gz = i % 2 == 0;
                let h: &[(&str, &str)] = if gz { &[("Accept-Encoding", "gzip")] } else { &[] };
                let raw = request("GET", "/metrics", h);
                start.wait();
                let r = send(addr, &raw);
                (r.status, r.header("content-encoding").is_some() == gz, r.body.len())
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().all(|(st, enc, len)| *st == 200 && *enc && *len > 0), "{results:?}");
    let run = s.me.renders_run.load(Ordering::Relaxed);
    let shared = s.me.renders_shared.load(Ordering::Relaxed);
    eprintln!("{n} concurrent scrapes: {run} renders run, {shared} shared");
    // start() scraped nothing; every scrape either ran a render or shared one.
    assert_eq!(run + shared, n as u64);
    assert!(run <= (n / 4) as u64, "{run} renders for {n} concurrent scrapes: not shared");
    let text = get(s.addr, "/metrics", &[]).text();
    assert!(sample(&text, "stallwatch_renders_shared_total") >= shared as f64);
}
