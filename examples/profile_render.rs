//! Profiling aid: fills a store with N synthetic objects and renders /metrics R times as a
//! scrape does (into the previous exposition's buffer, objects' lines pre-rendered by the
//! renders before), printing each render's wall and CPU time (this thread's, so other load on
//! the machine does not count) and the median.
//! `cargo run --release --example profile_render -- 100000 5 [CHANGES]`, CHANGES objects
//! (spread over the store) getting a new version before each render; under callgrind, count one
//! render's instructions with `--toggle-collect='*Renderer::exposition*'` (docs/benchmarks.md).

#[path = "../benches/support/mod.rs"]
mod bench_support;

/// CPU seconds this thread has used.
fn thread_cpu() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let changes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let store = bench_support::filled_store(n);
    let (w, subs) = (store.watches()[0].clone(), store.watches()[0].subs.clone());
    let reg = stallwatch::expose::Renderer::store_only(store, Default::default(), || 1_704_070_000.0);
    let mut cpu = Vec::new();
    for i in 0..reps {
        if i > 0 && changes > 0 {
            let version = format!(r#""resourceVersion":"v{i}""#);
            // A new status write time: the facts change, so the record takes a fresh stamp.
            let write = format!(r#""time":"2024-01-01T00:06:{:02}Z""#, i % 60);
            w.write(|s| {
                for k in (0..n).step_by((n / changes).max(1)).take(changes) {
                    let e = bench_support::event(k)
                        .replace(&format!(r#""resourceVersion":"{}""#, 1000 + k), &version)
                        .replace(r#""time":"2024-01-01T00:05:00Z""#, &write);
                    bench_support::ingest(s, &subs, &e);
                }
            });
        }
        let (t, c) = (std::time::Instant::now(), thread_cpu());
        let out = reg.exposition(stallwatch::expose::Format::Text004).unwrap();
        let (wall, used) = (t.elapsed(), thread_cpu() - c);
        println!("render {i}: {} bytes in {wall:?}, {:.1} ms CPU", out.plain.len(), used * 1e3);
        if i > 0 {
            cpu.push(used);
        }
    }
    println!("pre-rendered lines kept: {:.2} KB per object", reg.cached_bytes() as f64 / n as f64 / 1e3);
    cpu.sort_by(f64::total_cmp);
    if let Some(m) = cpu.get(cpu.len() / 2) {
        println!("median CPU of renders 1..{reps}: {:.1} ms", m * 1e3);
    }
}
