//! Profiling aid: decodes and ingests N synthetic events repeatedly.
//! `cargo run --release --example profile_ingest -- 10000 20`
#[path = "../benches/support/mod.rs"]
mod bench_support;

use stallwatch::store::WatchState;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let lines: Vec<String> = (0..n).map(bench_support::event).collect();
    let (_, targets) = bench_support::setup();
    let t = std::time::Instant::now();
    for _ in 0..reps {
        let mut s = WatchState::default();
        lines.iter().for_each(|l| bench_support::ingest(&mut s, &targets, l));
        std::hint::black_box(&s);
    }
    let per = t.elapsed().as_secs_f64() / (n * reps) as f64;
    println!("{:.0} events/s", 1.0 / per);
}
