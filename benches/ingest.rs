//! Ingest costs without a server (targets: docs/benchmarks.md; render has its own bench,
//! `benches/render.rs`).
//!
//! `cargo bench --bench ingest` reports, per object count (1k, 10k, 100k custom resources;
//! 10k, 50k pods):
//! - `decode_skip`: serde_json reading each event with `IgnoredAny` (the floor: bytes read once);
//! - `decode_value`: building a `serde_json::Value` (the DOM we avoid);
//! - `ingest`: decode + extract + store, as the watch loop does;
//! - `list_skip` / `list_ingest` (`lists_*`): the same objects as list pages of 500, the floor
//!   and decode + reconcile as a re-list does;
//! - pods only: `ingest_protobuf` and `list_ingest_protobuf`, the same pods as the API server
//!   serves them in protobuf (checked against Kubernetes' encoder in `tests/bench_support.rs`).
//!
//! It also prints the store's heap bytes per object, counted by a global allocator.

use std::{hint::black_box, time::Duration};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use support::{
    event, ingest, ingest_proto, list_page, pod_event, pod_proto, pod_setup, proto_page, reconcile_page,
    reconcile_proto_page, setup,
};
#[path = "support/mod.rs"]
mod support;

use stallwatch::store::{Subscribers, WatchState};

/// Counts live heap bytes, for the bytes-per-item figures.
#[global_allocator]
static ALLOC: support::Counting = support::Counting;

fn bytes_per_object() {
    for n in [1_000usize, 10_000, 100_000] {
        let lines: Vec<String> = (0..n).map(event).collect();
        let avg = lines.iter().map(String::len).sum::<usize>() / n;
        let (w, targets) = setup();
        let before = support::live_bytes();
        w.write(|s| lines.iter().for_each(|l| ingest(s, &targets, l)));
        let after = support::live_bytes();
        println!(
            "store: {n} objects, event size {avg} B, heap {} B per object",
            (after - before) / n as isize
        );
        drop(w);
    }
}

/// One group of events: the skip-only floor, a DOM, and ingest (decode + extract + store) of
/// the same lines, side by side.
fn event_group(c: &mut Criterion, name: String, lines: &[String], subs: &Subscribers, seconds: u64) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).measurement_time(Duration::from_secs(seconds));
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("decode_skip", |b| {
        b.iter(|| {
            for l in lines {
                black_box(serde_json::from_str::<serde::de::IgnoredAny>(l).unwrap());
            }
        })
    });
    g.bench_function("decode_value", |b| {
        b.iter(|| {
            for l in lines {
                black_box(serde_json::from_str::<serde_json::Value>(l).unwrap());
            }
        })
    });
    g.bench_function("ingest", |b| {
        b.iter_batched_ref(
            WatchState::default,
            |s| lines.iter().for_each(|l| ingest(s, subs, l)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The same events' objects as list pages of 500 (an initial list or a re-list): the floor
/// and decode + reconcile.
fn list_group(c: &mut Criterion, name: String, lines: &[String], subs: &Subscribers) {
    let pages: Vec<Vec<u8>> = lines.chunks(500).map(list_page).collect();
    let mut g = c.benchmark_group(name);
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("list_skip", |b| {
        b.iter(|| {
            for p in &pages {
                black_box(serde_json::from_slice::<serde::de::IgnoredAny>(p).unwrap());
            }
        })
    });
    g.bench_function("list_ingest", |b| {
        b.iter_batched_ref(
            WatchState::default,
            |s| pages.iter().for_each(|p| reconcile_page(s, subs, p)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// The same pods in protobuf, as watch events and as list pages of 500 (the JSON floor of the
/// same pods is in the group of the same name).
fn protobuf_group(c: &mut Criterion, name: String, n: usize, subs: &Subscribers) {
    let frames: Vec<Vec<u8>> = (0..n).map(pod_proto).collect();
    let pages: Vec<Vec<u8>> = (0..n).step_by(500).map(|i| proto_page(i, (i + 500).min(n))).collect();
    let mut g = c.benchmark_group(name);
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("ingest_protobuf", |b| {
        b.iter_batched_ref(
            WatchState::default,
            |s| frames.iter().for_each(|f| ingest_proto(s, subs, f)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("list_ingest_protobuf", |b| {
        b.iter_batched_ref(
            WatchState::default,
            |s| pages.iter().for_each(|p| reconcile_proto_page(s, subs, p)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Pods: the largest set. Heap per pod and ingest against the decode floor of the same events.
fn pods(c: &mut Criterion) {
    for n in [10_000usize, 50_000] {
        let lines: Vec<String> = (0..n).map(pod_event).collect();
        let avg = lines.iter().map(String::len).sum::<usize>() / n;
        let (w, subs) = pod_setup();
        let before = support::live_bytes();
        w.write(|s| lines.iter().for_each(|l| ingest(s, &subs, l)));
        let after = support::live_bytes();
        println!("pods: {n} pods, event size {avg} B, heap {} B per pod", (after - before) / n as isize);
        drop(w);
        event_group(c, format!("pods_{n}"), &lines, &subs, 10);
        protobuf_group(c, format!("pods_{n}"), n, &subs);
        if n == 10_000 {
            list_group(c, format!("lists_pods_{n}"), &lines, &subs);
        }
    }
}

/// Heap per tracked workload (a DaemonSet with its rollout facts), from the kubearmor fixture
/// shape: measured on 10k DaemonSets in one watch.
fn workload_bytes() {
    let c = stallwatch::config::Config::parse("targets: [{preset: workloads}]\n", "bench").unwrap();
    let (key, subs) =
        stallwatch::watch::plan(&c).into_iter().find(|(k, _)| k.gvk.kind == "DaemonSet").unwrap();
    let w = stallwatch::store::Watch::new(key, subs.clone());
    let n = 10_000;
    let lines: Vec<String> = (0..n)
        .map(|i| format!(
            r#"{{"type":"MODIFIED","object":{{"metadata":{{"name":"agent-{i}","namespace":"ns-{ns}","uid":"u{i}","resourceVersion":"{i}","generation":3,"creationTimestamp":"2024-01-01T00:00:00Z","labels":{{"app":"agent"}},"managedFields":[{{"manager":"kube-controller-manager","operation":"Update","subresource":"status","time":"2024-01-01T00:05:00Z","fieldsV1":{{"f:status":{{}}}}}}]}},"spec":{{"updateStrategy":{{"type":"RollingUpdate"}},"template":{{"spec":{{"containers":[{{"name":"agent","image":"docker.io/example/agent:v{v}","env":[{{"name":"A","value":"1"}}]}}],"initContainers":[{{"name":"init","image":"docker.io/example/agent-init:v1"}}]}}}}}},"status":{{"observedGeneration":3,"desiredNumberScheduled":500,"currentNumberScheduled":500,"updatedNumberScheduled":500,"numberAvailable":500,"numberReady":500}}}}}}"#,
            ns = i % 50,
            v = i % 3
        ))
        .collect();
    let before = support::live_bytes();
    w.write(|s| lines.iter().for_each(|l| ingest(s, &subs, l)));
    let after = support::live_bytes();
    println!("workloads: {n} DaemonSets, heap {} B per workload", (after - before) / n as isize);
}

fn benches(c: &mut Criterion) {
    workload_bytes();
    pods(c);
    bytes_per_object();
    let (_, subs) = setup();
    for n in [1_000usize, 10_000, 100_000] {
        let lines: Vec<String> = (0..n).map(event).collect();
        let bytes: u64 = lines.iter().map(|l| l.len() as u64).sum();
        event_group(c, format!("events_{n}"), &lines, &subs, if n >= 100_000 { 20 } else { 5 });
        if n == 10_000 {
            list_group(c, format!("lists_events_{n}"), &lines, &subs);
        }
        println!("events_{n}: {} bytes of events", bytes);
    }
}

criterion_group!(group, benches);
criterion_main!(group);
