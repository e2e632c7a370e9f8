//! `/metrics` render costs without a server (targets and results: docs/benchmarks.md).
//!
//! `cargo bench --bench render` reports:
//! - `render_objects/N`: text 0.0.4 for a store of N tracked custom resources (1k, 10k, 100k),
//!   about 25 series each: the cost per rendered object;
//! - `render_pods/N`: text 0.0.4 for the `workloads` preset over a fixed 300 workloads
//!   (286 Deployments, 4 DaemonSets, 10 StatefulSets) with N pods (1k, 10k, 50k). The output is
//!   the same size at every N, so a render proportional to what it writes takes the same time
//!   whatever the pod count;
//! - `snapshot_write/N`: the writer's side, over a store of N tracked custom resources: one watch
//!   event applied alone (`alone`), and one applied while a render still holds the previous
//!   snapshot (`while_rendered`), which copies the watch's map nodes and the changed record.
//!
//! Each render is the scrape's: into the buffer of the previous exposition once it is dropped,
//! with the objects' lines pre-rendered by earlier renders. The first render of each store
//! prints its size and the heap the renderer keeps afterwards (pre-rendered lines and the spare
//! output buffer), counted by a global allocator.
//!
//! A filter picks groups: `cargo bench --bench render -- render_pods`; a store is built only
//! for the benchmarks the filter selects, so `valgrind --tool=callgrind` can count one of them
//! (docs/benchmarks.md).

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use support::{event, filled_store};
#[path = "support/mod.rs"]
mod support;

use stallwatch::{
    config::Config,
    expose::{self, Format, SelfState},
    ingest::{
        decode::{Plan, decode_line},
        wire::{RawObject, WatchLine},
    },
    store::{Store, Watch, WatchState},
    watch::plan,
};

/// Counts live heap bytes, for the bytes-per-item figures.
#[global_allocator]
static ALLOC: support::Counting = support::Counting;

const NOW: f64 = 1_704_070_000.0;
const WORKLOADS: usize = 300;

/// The `i`-th of the 300 workloads: (kind, namespace, name).
fn workload(i: usize) -> (&'static str, String, String) {
    let kind = match i {
        0..4 => "DaemonSet",
        4..14 => "StatefulSet",
        _ => "Deployment",
    };
    (kind, format!("ns-{}", i % 20), format!("app-{i}"))
}

fn workload_json(i: usize) -> String {
    let (kind, ns, name) = workload(i);
    let status = match kind {
        "DaemonSet" => {
            r#""desiredNumberScheduled":100,"currentNumberScheduled":100,"updatedNumberScheduled":100,"numberAvailable":100,"numberReady":100"#
        }
        "StatefulSet" => {
            r#""replicas":3,"updatedReplicas":3,"availableReplicas":3,"readyReplicas":3,"currentRevision":"app-r1","updateRevision":"app-r2""#
        }
        _ => r#""replicas":3,"updatedReplicas":3,"availableReplicas":3,"readyReplicas":3"#,
    };
    format!(
        r#"{{"metadata":{{"name":"{name}","namespace":"{ns}","uid":"w{i}","resourceVersion":"{i}","generation":2,"creationTimestamp":"2024-01-01T00:00:00Z","labels":{{"app":"{name}"}}}},"spec":{{"replicas":3,"template":{{"spec":{{"containers":[{{"name":"main","image":"docker.io/example/{name}:v2"}},{{"name":"sidecar","image":"docker.io/example/proxy:v1"}}],"initContainers":[{{"name":"init","image":"docker.io/example/init:v1"}}]}}}}}},"status":{{"observedGeneration":2,{status}}}}}"#
    )
}

/// Pod `p` of workload `p % 300`; every tenth runs the previous image (outdated).
fn pod_json(p: usize) -> String {
    let i = p % WORKLOADS;
    let (kind, ns, name) = workload(i);
    let (owner_kind, owner, labels) = match kind {
        "Deployment" => ("ReplicaSet", format!("{name}-5d8f7"), r#""pod-template-hash":"5d8f7""#.to_string()),
        "StatefulSet" => (kind, name.clone(), r#""controller-revision-hash":"app-r2""#.to_string()),
        _ => (kind, name.clone(), r#""controller-revision-hash":"6d5f8b9c7""#.to_string()),
    };
    let v = if p.is_multiple_of(10) { 1 } else { 2 };
    format!(
        r#"{{"metadata":{{"name":"{name}-{p}","namespace":"{ns}","uid":"p{p}","resourceVersion":"{p}","creationTimestamp":"2024-01-01T00:00:00Z","labels":{{{labels}}},"ownerReferences":[{{"apiVersion":"apps/v1","kind":"{owner_kind}","name":"{owner}","uid":"o{i}","controller":true}}]}},"spec":{{"nodeName":"node-{node}","containers":[{{"name":"main","image":"docker.io/example/{name}:v{v}"}},{{"name":"sidecar","image":"docker.io/example/proxy:v1"}}],"initContainers":[{{"name":"init","image":"docker.io/example/init:v1"}}]}},"status":{{"phase":"Running","conditions":[{{"type":"Ready","status":"True"}}],"containerStatuses":[{{"name":"main","image":"docker.io/example/{name}:v{v}","imageID":"docker.io/example/{name}@sha256:{v:064}","restartCount":{r}}},{{"name":"sidecar","image":"docker.io/example/proxy:v1","imageID":"docker.io/example/proxy@sha256:{z:064}","restartCount":0}}]}}}}"#,
        node = p % 500,
        r = p % 3,
        z = 7,
    )
}

/// The `workloads` preset's watches holding 300 workloads and `pods` pods.
fn workload_store(pods: usize) -> Arc<Store> {
    let c = Config::parse("targets: [{preset: workloads}]\n", "bench").unwrap();
    let watches: Vec<Arc<Watch>> = plan(&c).into_iter().map(|(k, s)| Arc::new(Watch::new(k, s))).collect();
    let put = |kind: &str, json: &str| {
        let obj: RawObject = serde_json::from_str(json).unwrap();
        for w in watches.iter().filter(|w| w.key.gvk.kind == kind) {
            w.write(|s| {
                s.apply(&w.subs, &obj, NOW);
            });
        }
    };
    for i in 0..WORKLOADS {
        put(workload(i).0, &workload_json(i));
    }
    for p in 0..pods {
        put("Pod", &pod_json(p));
    }
    for w in &watches {
        w.write(|s| s.health.synced = true);
    }
    let store = Arc::new(Store::default());
    store.set_watches(watches);
    store
}

fn group(c: &mut Criterion, name: &str, sizes: &[usize], seconds: u64, store: impl Fn(usize) -> Arc<Store>) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10).measurement_time(Duration::from_secs(seconds));
    for &n in sizes {
        // Built on the routine's first run, which criterion starts only when the filter
        // selects it, and kept for its later runs (warm-up, samples).
        let mut built = None;
        g.bench_function(n.to_string(), |b| {
            let r = built.get_or_insert_with(|| {
                let r = expose::Renderer::store_only(store(n), Arc::new(SelfState::default()), || NOW);
                let before = support::live_bytes();
                let out = r.exposition(Format::Text004).unwrap().plain;
                let text = std::str::from_utf8(&out).unwrap();
                let (len, series) = (text.len(), text.lines().filter(|l| !l.starts_with('#')).count());
                drop(out);
                let kept = support::live_bytes() - before;
                let cached = r.cached_bytes();
                println!(
                    "{name}/{n}: {} bytes, {series} series; renderer keeps {kept} B of heap \
                     ({cached} B pre-rendered lines, the rest the spare output buffer)",
                    len,
                );
                r
            });
            b.iter(|| black_box(r.exposition(Format::Text004).unwrap()))
        });
    }
    g.finish();
}

/// One watch event (a changed custom resource) applied to a store of `n`, alone or while a
/// render still holds the previous snapshot.
fn snapshot_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot_write");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for n in [1_000usize, 10_000, 100_000] {
        let mut built = None;
        let mut setup_once = || {
            built
                .get_or_insert_with(|| {
                    let w = filled_store(n).watches().pop().expect("one watch");
                    // Changed objects: the first 64 with a new resourceVersion and phase,
                    // decoded once (the lines live as long as the bench).
                    let lines: &'static [String] = Vec::leak(
                        (0..64)
                            .map(|i| {
                                event(i)
                                    .replace(r#""resourceVersion":""#, r#""resourceVersion":"9"#)
                                    .replace("Running", "Failed")
                            })
                            .collect(),
                    );
                    let objs: Vec<RawObject<'static>> = lines
                        .iter()
                        .map(|l| match decode_line(l, Plan::new(w.subs.kind, &w.subs.targets)).unwrap() {
                            WatchLine::Modified(o) => o,
                            _ => unreachable!(),
                        })
                        .collect();
                    (w, objs)
                })
                .clone()
        };
        let mut i = 0;
        g.bench_function(format!("alone/{n}"), |b| {
            let (w, objs) = setup_once();
            b.iter(|| {
                i += 1;
                w.write(|s| s.apply(&w.subs, &objs[i % objs.len()], NOW))
            })
        });
        g.bench_function(format!("while_rendered/{n}"), |b| {
            let (w, objs) = setup_once();
            b.iter_batched(
                || w.read(WatchState::snapshot),
                |snap| {
                    i += 1;
                    w.write(|s| s.apply(&w.subs, &objs[i % objs.len()], NOW));
                    snap
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    group(c, "render_pods", &[1_000, 10_000, 50_000], 5, workload_store);
    group(c, "render_objects", &[1_000, 10_000, 100_000], 10, filled_store);
    snapshot_write(c);
}

criterion_group!(render, benches);
criterion_main!(render);
