//! Sharding on the real test control plane, against the real binary: 3 shards over 300 tracked
//! ConfigMaps in 30 namespaces, first with the API server's `ShardedListAndWatch` gate off
//! (client-side filtering), then on (server-side), then a reshard 2 → 3 by config reload.
//!
//! Each phase compares the union of the shards' per-object series with an unsharded exporter's
//! (set equality of series identities), checks that no object, no series identity (per-object,
//! rollout, per-target setting) and no cluster-scoped series is in two shards — the ConfigMaps
//! link a Deployment in a named other namespace, which every shard watches but only the shard
//! owning that namespace reports, and the settings come from shard 0 only — and counts what
//! each shard decoded against the share the hash assigns it
//! (computed here with the library's arithmetic, which the unit tests pin to the API server's).
//! With the gate on, the API server's own `apiserver_watch_shards_total` must show the sharded
//! watches. One test function: the phases toggle the shared API server's feature gate.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use common::{Metrics, Stallwatch, apply, eventually, kubectl, note, plane, unique};
use stallwatch::model::shard::Shard;

const NAMESPACES: usize = 30;
const PER_NAMESPACE: usize = 10;
const TARGET: &str = "shardcm";

/// Restores the plane's default (no feature gates) when the test ends, even on failure.
struct DefaultGates;

impl Drop for DefaultGates {
    fn drop(&mut self) {
        plane().ctl(&["feature-gates", ""]);
    }
}

/// The namespace of the Deployment every ConfigMap's image slot links.
fn shared(run: &str) -> String {
    format!("shared-{run}")
}

fn config(run: &str, shard: Option<(u32, u32)>) -> String {
    let sharding =
        shard.map_or(String::new(), |(i, n)| format!("sharding: {{shard: {i}, totalShards: {n}}}\n"));
    let shared = shared(run);
    format!(
        "resync: 10m\n{sharding}context: {{nodes: true}}\ntargets:\n  - name: {TARGET}\n    resource: {{version: v1, kind: ConfigMap}}\n    labelSelector: e2e-shard={run}\n    images:\n      - slot: agent\n        desired: $.data.image\n        default: registry.example.com/agent:1\n        workloads: {{kind: Deployment, namespace: {shared}, selector: app=agent}}\n"
    )
}

/// Series identity: name and labels, without the value.
fn identity(s: &common::Series) -> String {
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", s.name, labels.join(","))
}

/// The per-object series of the tracked target (those with an object `name`).
fn objects(m: &Metrics) -> BTreeSet<String> {
    m.series
        .iter()
        .filter(|s| s.label("target") == TARGET && s.labels.contains_key("name"))
        .map(identity)
        .collect()
}

fn object_names(m: &Metrics) -> BTreeSet<(String, String)> {
    m.series
        .iter()
        .filter(|s| s.name == "stallwatch_status" && s.label("target") == TARGET)
        .map(|s| (s.label("namespace").to_string(), s.label("name").to_string()))
        .collect()
}

/// The target's series that belong to no object: its settings.
fn settings(m: &Metrics) -> BTreeSet<String> {
    m.series
        .iter()
        .filter(|s| s.label("target") == TARGET && !s.labels.contains_key("name"))
        .filter(|s| {
            s.name == "stallwatch_stalled_after_seconds" || s.name == "stallwatch_controller_status_on_change"
        })
        .map(identity)
        .collect()
}

/// The rollout series of the linked Deployment in the shared namespace.
fn shared_rollouts(m: &Metrics, run: &str) -> BTreeSet<String> {
    let ns = shared(run);
    m.series
        .iter()
        .filter(|s| {
            s.label("target") == TARGET
                && s.label("namespace") == ns
                && s.name.starts_with("stallwatch_rollout_")
        })
        .map(identity)
        .collect()
}

fn cluster_scoped(m: &Metrics) -> BTreeSet<String> {
    m.series
        .iter()
        .filter(|s| s.name == "stallwatch_nodes" || s.name == "stallwatch_node_changes_total")
        .map(identity)
        .collect()
}

/// Waits until the shards' union of per-object series equals the unsharded exporter's and
/// every object is in exactly one shard; returns the shards' scrapes.
fn settled(what: &str, run: &str, all: &Stallwatch, shards: &[&Stallwatch], want: usize) -> Vec<Metrics> {
    eventually(what, Duration::from_secs(120), || {
        let whole = all.scrape()?;
        let names = object_names(&whole);
        if names.len() != want {
            return Err(format!("unsharded exporter has {} of {want} objects", names.len()));
        }
        if shared_rollouts(&whole, run).is_empty() || settings(&whole).is_empty() {
            return Err(
                "unsharded exporter has no rollout series of the linked Deployment or no settings".into()
            );
        }
        let expected = objects(&whole);
        let scrapes: Vec<Metrics> = shards.iter().map(|s| s.scrape()).collect::<Result<_, _>>()?;
        let mut union = BTreeSet::new();
        let mut owners: BTreeMap<(String, String), usize> = BTreeMap::new();
        // Every series identity (per-object, rollout, setting) in how many shards.
        let mut shards_of: BTreeMap<String, usize> = BTreeMap::new();
        for m in &scrapes {
            union.extend(objects(m));
            for n in object_names(m) {
                *owners.entry(n).or_default() += 1;
            }
            for id in objects(m).into_iter().chain(settings(m)) {
                *shards_of.entry(id).or_default() += 1;
            }
        }
        let dup: Vec<_> = shards_of.iter().filter(|(_, n)| **n > 1).take(3).collect();
        if !dup.is_empty() {
            return Err(format!("series in several shards, e.g. {dup:?}"));
        }
        if settings(&scrapes[0]) != settings(&whole) || scrapes[1..].iter().any(|m| !settings(m).is_empty()) {
            return Err("the target's settings must come from shard 0 only, equal to unsharded".into());
        }
        let with_rollouts = scrapes.iter().filter(|m| !shared_rollouts(m, run).is_empty()).count();
        if with_rollouts != 1 {
            return Err(format!("the linked Deployment's rollout series in {with_rollouts} shards (want 1)"));
        }
        if union != expected {
            let missing = expected.difference(&union).take(3).collect::<Vec<_>>();
            let extra = union.difference(&expected).take(3).collect::<Vec<_>>();
            return Err(format!(
                "union of {} series vs {} unsharded; missing e.g. {missing:?}, extra e.g. {extra:?}",
                union.len(),
                expected.len()
            ));
        }
        let twice: Vec<_> = owners.iter().filter(|(_, n)| **n > 1).take(3).collect();
        if !twice.is_empty() || owners.len() != want {
            return Err(format!("{} objects owned, some twice: {twice:?}", owners.len()));
        }
        let with_nodes = scrapes.iter().filter(|m| !cluster_scoped(m).is_empty()).count();
        if with_nodes != 1 || cluster_scoped(&scrapes[0]) != cluster_scoped(&whole) {
            return Err(format!(
                "node series in {with_nodes} shards (want exactly shard 0's, equal to unsharded)"
            ));
        }
        Ok(scrapes)
    })
}

/// How many objects the hash assigns to each of `total` shards.
fn expected_shares(namespaces: &[String], total: u32) -> Vec<u64> {
    (0..total)
        .map(|i| {
            let s = Shard::new(i, total).unwrap();
            namespaces.iter().filter(|ns| s.owns(ns)).count() as u64 * PER_NAMESPACE as u64
        })
        .collect()
}

fn start_shards(run: &str, total: u32, phase: &str) -> Vec<Stallwatch> {
    (0..total)
        .map(|i| {
            Stallwatch::start(&format!("{phase}-{i}"), &config(run, Some((i, total))), &plane().kubeconfig)
        })
        .collect()
}

fn mode_of(m: &Metrics) -> Vec<String> {
    m.find("stallwatch_shard_info", &[("key", "namespace")])
        .iter()
        .map(|s| s.label("mode").to_string())
        .collect()
}

#[test]
fn three_shards_equal_one_exporter_client_and_server_side_and_across_a_reshard() {
    let _gates = DefaultGates;
    let run = unique("shard");
    // The varying part first: FNV-1a leaves the high bits (which the shard ranges cut) nearly
    // unchanged by a name's last characters, so `{run}-{i}` would all land in one shard.
    let namespaces: Vec<String> = (0..NAMESPACES).map(|i| format!("s{i:02}-{run}")).collect();
    let mut yaml = String::new();
    for ns in &namespaces {
        yaml.push_str(&format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"));
        for j in 0..PER_NAMESPACE {
            yaml.push_str(&format!(
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{j}, namespace: {ns}, labels: {{e2e-shard: {run}}}}}\ndata: {{k: v}}\n"
            ));
        }
    }
    // The Deployment every ConfigMap links, in a namespace of its own: watched whole by every
    // shard, reported only by the shard that owns that namespace.
    let shared = shared(&run);
    yaml.push_str(&format!(
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {shared}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: agent, namespace: {shared}, labels: {{app: agent}}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: agent}}}}\n  template:\n    metadata: {{labels: {{app: agent}}}}\n    spec: {{containers: [{{name: agent, image: registry.example.com/agent:1}}]}}\n"
    ));
    apply(&yaml);
    let want = NAMESPACES * PER_NAMESPACE;
    let shares = expected_shares(&namespaces, 3);
    let owner = (0..3).find(|&i| Shard::new(i, 3).unwrap().owns(&shared)).unwrap();
    assert!(
        (0..3).filter(|&i| i != owner).any(|i| shares[i as usize] > 0),
        "some ConfigMaps must sit on a shard that does not own {shared} for the rollout check to mean anything"
    );
    note(format!("{want} ConfigMaps in {NAMESPACES} namespaces; the hash assigns shards {shares:?}"));
    assert!(
        shares.iter().all(|s| *s > 0),
        "every shard must own objects for the test to mean anything: {shares:?}"
    );

    let all = Stallwatch::start("unsharded", &config(&run, None), &plane().kubeconfig);

    // Phase 1: gate off. The server ignores shardSelector; each shard decodes everything.
    {
        let shards = start_shards(&run, 3, "client");
        let refs: Vec<&Stallwatch> = shards.iter().collect();
        let scrapes =
            settled("client-side: 3 shards' union equals the unsharded exporter", &run, &all, &refs, want);
        for (i, m) in scrapes.iter().enumerate() {
            assert_eq!(mode_of(m), ["client"], "shard {i}: {}", m.dump(&["stallwatch_shard"]));
            let decoded = m.sum("stallwatch_shard_objects_decoded_total", &[("key", "namespace")]);
            let dropped = m.sum("stallwatch_shard_objects_dropped_total", &[("key", "namespace")]);
            assert!(decoded >= want as f64, "shard {i} decoded {decoded} of {want}");
            assert_eq!(decoded - dropped, shares[i] as f64, "shard {i} kept its share");
            note(format!(
                "client-side shard {i}: decoded {decoded}, dropped {dropped}, kept {}",
                decoded - dropped
            ));
        }
    }

    // Phase 2: gate on. The server filters and echoes shardInfo; each shard decodes its share.
    plane().ctl(&["feature-gates", "ShardedListAndWatch=true"]);
    eventually("the unsharded exporter back after the API server restart", Duration::from_secs(120), || {
        let n = object_names(&all.scrape()?).len();
        if n == want { Ok(()) } else { Err(format!("{n} objects")) }
    });
    {
        let shards = start_shards(&run, 3, "server");
        let refs: Vec<&Stallwatch> = shards.iter().collect();
        let scrapes =
            settled("server-side: 3 shards' union equals the unsharded exporter", &run, &all, &refs, want);
        for (i, m) in scrapes.iter().enumerate() {
            assert_eq!(mode_of(m), ["server"], "shard {i}: {}", m.dump(&["stallwatch_shard"]));
            let decoded = m.sum("stallwatch_shard_objects_decoded_total", &[("key", "namespace")]);
            let dropped = m.sum("stallwatch_shard_objects_dropped_total", &[("key", "namespace")]);
            assert_eq!(dropped, 0.0, "shard {i}: the server sent only its share");
            assert_eq!(decoded, shares[i] as f64, "shard {i} decoded exactly its share");
            note(format!(
                "server-side shard {i}: decoded {decoded} of {want} ({:.0} %)",
                100.0 * decoded / want as f64
            ));
        }
        // The API server's side: its sharded watches of configmaps (3 shards, one watch each).
        let raw = kubectl(&["get", "--raw", "/metrics"]);
        let api = Metrics::parse(&raw).expect("apiserver metrics");
        let watches = api.sum("apiserver_watch_shards_total", &[("resource", "configmaps")]);
        note(format!("apiserver_watch_shards_total{{resource=configmaps}} = {watches}"));
        assert!(watches >= 3.0, "the API server counts the shards' sharded watches: {watches}");

        // Phase 3: reshard 2 → 3 by config reload. Shards 0 and 1 first run as 2 of 2 ...
        drop(shards);
        let two = start_shards(&run, 2, "reshard");
        let refs: Vec<&Stallwatch> = two.iter().collect();
        settled("2 shards' union equals the unsharded exporter", &run, &all, &refs, want);
        // ... then reload as 0 and 1 of 3, and shard 2 joins.
        for (i, sw) in two.iter().enumerate() {
            sw.write_config(&config(&run, Some((i as u32, 3))));
        }
        let third = Stallwatch::start("reshard-2", &config(&run, Some((2, 3))), &plane().kubeconfig);
        let refs: Vec<&Stallwatch> = two.iter().chain([&third]).collect();
        eventually("shards 0 and 1 reloaded as 0 and 1 of 3", Duration::from_secs(60), || {
            for (i, sw) in refs.iter().enumerate() {
                let n = sw.scrape()?.value("stallwatch_shards", &[("shard", &i.to_string())]);
                if n != Some(3.0) {
                    return Err(format!("shard {i} reports {n:?} shards"));
                }
            }
            Ok(())
        });
        let scrapes =
            settled("after the reshard to 3, nothing missing and nothing twice", &run, &all, &refs, want);
        for (i, m) in scrapes.iter().enumerate() {
            let decoded = m.sum("stallwatch_shard_objects_decoded_total", &[("key", "namespace")]);
            assert_eq!(decoded, shares[i] as f64, "resharded shard {i} decoded exactly its new share");
        }
    }
}
