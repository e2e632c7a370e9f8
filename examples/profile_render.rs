//! Profiling aid: fills a store with N synthetic objects and renders /metrics repeatedly.
//! `cargo run --release --example profile_render -- 100000 5`

#[path = "../benches/support/mod.rs"]
mod bench_support;
fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let store = bench_support::filled_store(n);
    let reg = stallwatch::expose::Renderer::store_only(store, Default::default(), || 1_704_070_000.0);
    for _ in 0..reps {
        let t = std::time::Instant::now();
        let out = reg.render(stallwatch::expose::Format::Text004).unwrap();
        println!("{} bytes in {:?}", out.len(), t.elapsed());
    }
}
