//! Which shard this replica runs: from `--shard`/`--total-shards` (or `STALLWATCH_SHARD`,
//! `STALLWATCH_TOTAL_SHARDS`), else the file's `sharding:` keys, else, when sharded, the
//! StatefulSet ordinal at the end of the pod name. Flags win over the file so one ConfigMap
//! serves every shard of a StatefulSet.

use super::{Config, Target};
use crate::model::{
    Kind,
    shard::{Shard, ShardKey, ordinal},
};

/// The shard settings from outside the file (flags and environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardArgs {
    /// `--shard`.
    pub shard: Option<u32>,
    /// `--total-shards`.
    pub total: Option<u32>,
    /// The pod's name (`STALLWATCH_POD_NAME`, else `HOSTNAME`), for the StatefulSet ordinal.
    pub pod_name: Option<String>,
}

/// The file's `sharding:` keys as parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileSharding {
    /// `sharding.shard`.
    pub shard: Option<u32>,
    /// `sharding.totalShards`.
    pub total: Option<u32>,
}

/// The shard this replica runs, or a message naming the problem and the fix.
pub fn resolve(file: FileSharding, args: &ShardArgs) -> Result<Shard, String> {
    let total = args.total.or(file.total).unwrap_or(1);
    let index = match args.shard.or(file.shard) {
        Some(i) => i,
        None if total == 1 => 0,
        None => match args.pod_name.as_deref() {
            Some(name) => ordinal(name).ok_or_else(|| {
                format!(
                    "{total} shards but no --shard, and the pod name {:?} does not end in a StatefulSet ordinal (-0, -1, ...); pass --shard N or run as a StatefulSet",
                    crate::model::text::display(name)
                )
            })?,
            None => {
                return Err(format!(
                    "{total} shards but no --shard: pass --shard N (0 to {}), or set STALLWATCH_POD_NAME to a StatefulSet pod name",
                    total - 1
                ));
            }
        },
    };
    Shard::new(index, total)
        .map_err(|e| format!("sharding: {e}; fix --shard/--total-shards or the `sharding:` keys"))
}

/// Why a target cannot use `shardKey: uid`, if it cannot: the UID spreads a target's objects
/// away from the workloads and pods they are joined with, which stay in their namespace's shard.
pub(super) fn check_key(t: &Target) -> Result<(), String> {
    if t.shard_key != ShardKey::Uid {
        return Ok(());
    }
    let why = if !t.images.is_empty() {
        "its image slots join each object with workloads and pods"
    } else if Kind::of(&t.resource).is_some_and(Kind::is_workload) {
        "a workload is joined with its pods"
    } else {
        return Ok(());
    };
    Err(format!(
        "key `shardKey`: target {:?} cannot shard by uid because {why}, which are sharded by namespace; use `shardKey: namespace` (the default)",
        t.name
    ))
}

impl Config {
    /// This config run as `shard`: every target's watches are sharded when `shard` is one of
    /// several. Called after each load, so a reload keeps the shard.
    pub fn with_shard(mut self, shard: Shard) -> Config {
        self.shard = shard;
        for t in &mut self.targets {
            t.sharded = shard.is_sharded();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(shard: Option<u32>, total: Option<u32>, pod: Option<&str>) -> ShardArgs {
        ShardArgs { shard, total, pod_name: pod.map(String::from) }
    }

    #[test]
    fn flags_win_over_the_file_and_the_ordinal() {
        let file = FileSharding { shard: Some(1), total: Some(4) };
        assert_eq!(resolve(file, &args(Some(2), None, Some("sw-3"))), Ok(Shard { index: 2, total: 4 }));
        assert_eq!(resolve(file, &args(None, Some(2), None)), Ok(Shard { index: 1, total: 2 }));
        assert_eq!(resolve(FileSharding::default(), &args(None, None, Some("sw-3"))), Ok(Shard::ALL));
    }

    #[test]
    fn ordinal_when_sharded_without_an_index() {
        let got = resolve(FileSharding::default(), &args(None, Some(3), Some("stallwatch-2")));
        assert_eq!(got, Ok(Shard { index: 2, total: 3 }));
    }

    #[test]
    fn errors_name_the_problem_and_the_fix() {
        let e = resolve(FileSharding::default(), &args(None, Some(3), Some("stallwatch-7d9f-abcde")))
            .unwrap_err();
        assert!(e.contains("does not end in a StatefulSet ordinal") && e.contains("--shard N"), "{e}");
        let e = resolve(FileSharding::default(), &args(None, Some(3), None)).unwrap_err();
        assert!(e.contains("0 to 2"), "{e}");
        let e = resolve(FileSharding::default(), &args(None, Some(3), Some("stallwatch-3"))).unwrap_err();
        assert!(e.contains("out of range for 3 shards") && e.contains("--total-shards"), "{e}");
        let e = resolve(FileSharding::default(), &args(Some(0), Some(0), None)).unwrap_err();
        assert!(e.contains("between 1 and"), "{e}");
    }

    #[test]
    fn uid_key_is_refused_where_a_join_needs_the_namespace() {
        let parse = |t: &str| Config::parse(&format!("targets:\n  - {t}\n"), "c.yaml");
        let ok = parse("{name: a, resource: {group: example.com, version: v1, kind: Widget}, shardKey: uid}")
            .unwrap();
        assert_eq!(ok.targets[0].shard_key, ShardKey::Uid);
        let e = parse("{name: d, resource: {group: apps, version: v1, kind: Deployment}, shardKey: uid}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot shard by uid") && e.contains("shardKey: namespace"), "{e}");
        let e = parse("{name: a, resource: {group: example.com, version: v1, kind: Widget}, shardKey: md5}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("shardKey") || e.contains("md5"), "{e}");
    }

    #[test]
    fn file_keys_and_with_shard() {
        let c = Config::parse(
            "sharding: {shard: 1, totalShards: 3}\ntargets: [{name: a, resource: {version: v1, kind: ConfigMap}}]\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.file_sharding, FileSharding { shard: Some(1), total: Some(3) });
        assert!(!c.targets[0].sharded, "not sharded until the shard is resolved");
        let s = resolve(c.file_sharding, &ShardArgs::default()).unwrap();
        let c = c.with_shard(s);
        assert!(c.targets[0].sharded && c.shard == Shard { index: 1, total: 3 });
        let e =
            Config::parse("sharding: {shards: 3}\ntargets: [{preset: workloads}]\n", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("shards"), "{e}");
    }
}
