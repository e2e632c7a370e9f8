//! No series is exported by two shards ([`View::keep_shard`]): three shards' views of the same
//! objects, each holding what its sharded watches would hold, together have exactly the tracked
//! objects and rollout workloads of one unsharded view, each in one shard, and only shard 0 has
//! the per-target series. The case that needs the rule: workloads an image slot links in a named
//! other namespace, watched whole by every shard.

use std::{collections::BTreeMap, sync::Arc};

use super::view::{Locked, View};
use crate::{
    config::Config,
    ingest::wire::RawObject,
    model::shard::{Shard, ShardKey},
    store::{Subscribers, Watch, WatchKey},
    watch::plan,
};

const NOW: f64 = 1_704_070_000.0;
/// Widgets in many namespaces, each linking the agent Deployments of namespace `shared`, and
/// the workloads preset, which tracks every Deployment (those in `shared` too) by namespace.
const CONFIG: &str = "targets:
  - name: widgets
    resource: {group: example.com, version: v1, kind: Widget}
    images:
      - slot: agent
        desired: $.spec.image
        workloads: {kind: Deployment, namespace: shared, selector: app=agent}
  - preset: workloads
";
/// Names that differ from their first letter: FNV-1a barely moves the high bits (which the
/// shard ranges cut) for names that differ only in their last characters.
const NAMESPACES: [&str; 12] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
    "lima",
];

/// The watches of `shard`, holding what its list would return: a sharded watch only the
/// namespaces the shard owns, any other watch everything.
fn watches(shard: Shard) -> Vec<Arc<Watch>> {
    let c = Config::parse(CONFIG, "t").unwrap().with_shard(shard);
    let ws: Vec<Arc<Watch>> =
        plan(&c).into_iter().map(|(k, s): (WatchKey, Subscribers)| Arc::new(Watch::new(k, s))).collect();
    let put = |kind: &str, ns: &str, json: String| {
        let obj: RawObject = serde_json::from_str(&json).unwrap();
        for w in ws.iter().filter(|w| w.key.gvk.kind == kind) {
            let mine = w.key.shard != Some(ShardKey::Namespace) || shard.owns(ns);
            if mine && (w.key.namespace.is_empty() || w.key.namespace == ns) {
                w.write(|s| {
                    s.apply(&w.subs, &obj, NOW);
                });
            }
        }
    };
    let deployment = |ns: &str, name: &str| {
        format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"{ns}","uid":"{ns}-{name}","resourceVersion":"1","generation":1,"labels":{{"app":"agent"}}}},
            "spec":{{"replicas":1,"selector":{{"matchLabels":{{"app":"agent"}}}},"template":{{"metadata":{{"labels":{{"app":"agent"}}}},"spec":{{"containers":[{{"name":"agent","image":"agent:1"}}]}}}}}},
            "status":{{"observedGeneration":1,"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1}}}}"#
        )
    };
    for ns in NAMESPACES {
        put(
            "Widget",
            ns,
            format!(
                r#"{{"apiVersion":"example.com/v1","kind":"Widget","metadata":{{"name":"w","namespace":"{ns}","uid":"{ns}-w","resourceVersion":"1","generation":1}},"spec":{{"image":"agent:1"}}}}"#
            ),
        );
        put("Deployment", ns, deployment(ns, "app"));
    }
    for name in ["agent-a", "agent-b"] {
        put("Deployment", "shared", deployment("shared", name));
    }
    ws
}

type Ids = Vec<(String, String, String)>;

/// (tracked objects, rollout workloads, per-target series) of a view, after `keep` when given.
fn exported(ws: &[Arc<Watch>], keep: Option<Shard>) -> (Ids, Ids, bool) {
    let locked = Locked::new(ws);
    let mut view = View::new(&locked, NOW);
    if let Some(s) = keep {
        view.keep_shard(s);
    }
    let objects = view.objects.iter().map(|o| (o.target.name.clone(), o.namespace.into(), o.name.into()));
    let workloads = view.workloads.iter().map(|(t, w)| (t.to_string(), w.namespace.into(), w.name.into()));
    let (mut objects, mut workloads): (Ids, Ids) = (objects.collect(), workloads.collect());
    objects.sort();
    workloads.sort();
    (objects, workloads, view.per_target)
}

/// How many of `views` hold each identity.
fn counts<'a>(views: impl Iterator<Item = &'a Ids>) -> BTreeMap<&'a (String, String, String), usize> {
    let mut n = BTreeMap::new();
    for ids in views {
        for id in ids {
            *n.entry(id).or_default() += 1;
        }
    }
    n
}

#[test]
fn three_shards_export_each_object_rollout_and_setting_exactly_once() {
    let (objects, workloads, per_target) = exported(&watches(Shard::ALL), Some(Shard::ALL));
    assert!(per_target, "unsharded: the per-target series are exported");
    assert_eq!(objects.len(), 2 * NAMESPACES.len() + 2, "{objects:?}");
    let shared = workloads.iter().filter(|(_, ns, _)| ns == "shared").count();
    assert_eq!(shared, 4, "agent-a and agent-b, for the widgets and the workloads target: {workloads:?}");
    let shard = |i| Shard::new(i, 3).unwrap();
    let owner = (0..3).find(|&i| shard(i).owns("shared")).unwrap();
    assert!(
        (0..3).any(|i| i != owner && NAMESPACES.iter().any(|ns| shard(i).owns(ns))),
        "some widget must link from a shard that does not own `shared` for the test to bite"
    );

    let kept: Vec<_> = (0..3).map(|i| exported(&watches(shard(i)), Some(shard(i)))).collect();
    let objs = counts(kept.iter().map(|k| &k.0));
    let rollouts = counts(kept.iter().map(|k| &k.1));
    assert_eq!(objs.keys().cloned().cloned().collect::<Ids>(), objects, "union of objects = unsharded");
    assert_eq!(
        rollouts.keys().cloned().cloned().collect::<Ids>(),
        workloads,
        "union of rollouts = unsharded"
    );
    assert!(objs.values().chain(rollouts.values()).all(|n| *n == 1), "{objs:?} {rollouts:?}");
    assert_eq!(
        kept.iter().map(|k| k.2).collect::<Vec<_>>(),
        [true, false, false],
        "settings on shard 0 only"
    );
    for (i, k) in kept.iter().enumerate() {
        let theirs = k.1.iter().filter(|(_, ns, _)| ns == "shared").count();
        assert_eq!(theirs, if i as u32 == owner { 4 } else { 0 }, "shard {i}: {:?}", k.1);
    }

    // Without the rule, every shard whose widgets link `shared` reports its workloads.
    let raw: Vec<_> = (0..3).map(|i| exported(&watches(shard(i)), None)).collect();
    let twice = counts(raw.iter().map(|k| &k.1)).into_values().filter(|n| *n > 1).count();
    assert!(twice > 0, "the linked workloads are reported by several shards without keep_shard");
    assert!(raw.iter().all(|k| k.2), "and the settings by every shard");
}
