//! Profiling aid: decodes N synthetic events repeatedly, either as ingest does (decode + extract
//! + store) or as the skip-only floor (`IgnoredAny`), for the custom resource or the pod.
//!
//! `cargo run --release --example profile_ingest -- [cr|pod] [ingest|skip|list|list-skip|list-general] 10000 20`
//! (`list`: the same objects as list pages of 500, decoded and reconciled as a re-list does;
//! `list-general`: the same through the general decode, as lists were read before the single
//! read). Pods also have `proto` and `proto-list`: the same pods served in protobuf, and
//! `print N`, which writes pod N's object in JSON (the input of `tests/perf/pod-protobuf`).
//!
//! Under `valgrind --tool=callgrind` the instruction counts of `ingest` and `skip` over the same
//! events give a ratio that does not depend on what else runs on the machine
//! (docs/benchmarks.md).
#[path = "../benches/support/mod.rs"]
mod bench_support;

use stallwatch::{
    ingest::wire::{List, RawObject},
    store::{Reconcile, WatchState},
};

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "cr".into());
    let mode = args.next().unwrap_or_else(|| "ingest".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    if mode == "print" {
        let line = bench_support::pod_event(n);
        let start = line.find(r#""object":"#).expect("an event") + r#""object":"#.len();
        println!("{}", &line[start..line.len() - 1]);
        return;
    }
    let frames: Vec<Vec<u8>> = match (kind.as_str(), mode.as_str()) {
        ("pod", "proto") => (0..n).map(bench_support::pod_proto).collect(),
        ("pod", "proto-list") => {
            (0..n).step_by(500).map(|i| bench_support::proto_page(i, (i + 500).min(n))).collect()
        }
        _ => Vec::new(),
    };
    let (lines, subs): (Vec<String>, _) = match kind.as_str() {
        "pod" => ((0..n).map(bench_support::pod_event).collect(), bench_support::pod_setup().1),
        "cr" => ((0..n).map(bench_support::event).collect(), bench_support::setup().1),
        other => panic!("kind {other:?}: use cr or pod"),
    };
    let pages: Vec<Vec<u8>> = lines.chunks(500).map(bench_support::list_page).collect();
    // Stores are kept to the end and never dropped, as the bench drops them outside its timing.
    let mut stores = Vec::with_capacity(reps);
    let t = std::time::Instant::now();
    for _ in 0..reps {
        match mode.as_str() {
            "skip" => lines.iter().for_each(|l| {
                std::hint::black_box(serde_json::from_str::<serde::de::IgnoredAny>(l).unwrap());
            }),
            "ingest" => {
                let mut s = WatchState::default();
                lines.iter().for_each(|l| bench_support::ingest(&mut s, &subs, l));
                stores.push(std::hint::black_box(s));
            }
            "list-skip" => pages.iter().for_each(|p| {
                std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(p).unwrap());
            }),
            "list" => {
                let mut s = WatchState::default();
                pages.iter().for_each(|p| bench_support::reconcile_page(&mut s, &subs, p));
                stores.push(std::hint::black_box(s));
            }
            "list-general" => {
                let mut s = WatchState::default();
                for p in &pages {
                    let list: List<RawObject> = serde_json::from_slice(p).unwrap();
                    s.reconcile_page(&subs, &list.items, 1_704_070_000.0, &mut Reconcile::default());
                }
                stores.push(std::hint::black_box(s));
            }
            "proto" => {
                let mut s = WatchState::default();
                frames.iter().for_each(|f| bench_support::ingest_proto(&mut s, &subs, f));
                stores.push(std::hint::black_box(s));
            }
            "proto-list" => {
                let mut s = WatchState::default();
                frames.iter().for_each(|p| bench_support::reconcile_proto_page(&mut s, &subs, p));
                stores.push(std::hint::black_box(s));
            }
            other => {
                panic!("mode {other:?}: use ingest, skip, list, list-skip, list-general, proto or proto-list")
            }
        }
    }
    let per = t.elapsed().as_secs_f64() / (n * reps.max(1)) as f64;
    println!("{kind} {mode}: {:.0} events/s", 1.0 / per);
    std::mem::forget(stores);
}
