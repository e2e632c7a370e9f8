//! The sharding families (docs/metrics.md): which shard this replica runs, who filters each
//! shard key (the API server or stallwatch), and what the filter costs in objects decoded. They
//! let alerts find a missing shard and an operator see whether server-side sharding is on.

use std::{collections::BTreeMap, fmt, sync::Arc};

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use crate::{
    model::shard::{Shard, ShardKey, ShardMode},
    store::Watch,
};

/// Writes `shards`, and when sharded `shard_info` and the decoded/dropped counters.
pub(super) fn encode(e: &mut DescriptorEncoder, shard: Shard, ws: &[Arc<Watch>]) -> fmt::Result {
    let index = shard.index.to_string();
    let total = shard.total.to_string();
    let mut fam = e.encode_descriptor(
        "shards",
        "How many shards the deployment runs (1: unsharded), labelled with this replica's shard.",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new(f64::from(shard.total)).encode(fam.encode_family(&[("shard", index.as_str())])?)?;
    if !shard.is_sharded() {
        return Ok(());
    }
    // Per shard key: the modes its listed watches run in, and the objects decoded and dropped.
    let mut modes: BTreeMap<(ShardKey, ShardMode), ()> = BTreeMap::new();
    let mut counts: BTreeMap<ShardKey, (u64, u64)> = BTreeMap::new();
    for w in ws {
        let Some(key) = w.key.shard else { continue };
        let h = w.read(|s| s.health.shard.clone());
        if let Some(m) = h.mode {
            modes.insert((key, m), ());
        }
        let c = counts.entry(key).or_default();
        c.0 += h.decoded;
        c.1 += h.dropped;
    }
    let mut fam = e.encode_descriptor(
        "shard_info",
        "1 per shard key and mode: server when the API server applied the shardSelector (its list echoed shardInfo), client when stallwatch filters.",
        None,
        MetricType::Gauge,
    )?;
    for (key, mode) in modes.keys() {
        let l = [("shard", index.as_str()), ("total", &total), ("key", key.label()), ("mode", mode.label())];
        ConstGauge::new(1.0).encode(fam.encode_family(&l)?)?;
    }
    for (name, help, pick) in [
        (
            "shard_objects_decoded",
            "Objects the sharded watches decoded (list items and watch events).",
            (|c: &(u64, u64)| c.0) as fn(&(u64, u64)) -> u64,
        ),
        ("shard_objects_dropped", "Of those, objects of other shards the client-side filter dropped.", |c| {
            c.1
        }),
    ] {
        let mut fam = e.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (key, c) in &counts {
            ConstCounter::new(pick(c)).encode(fam.encode_family(&[("key", key.label())])?)?;
        }
    }
    Ok(())
}
