//! Tests of the sharding arithmetic against vectors from the API server's own implementation
//! (`k8s.io/apimachinery/pkg/sharding` `HashField`, 1.36.3: Go's `hash/fnv` New64a printed
//! `%016x`) and the selector examples in its `ListOptions.shardSelector` documentation.

use super::*;

/// (value, FNV-1a 64) computed by the Go implementation.
const VECTORS: &[(&str, u64)] = &[
    ("", 0xcbf29ce484222325),
    ("default", 0xebada5168620c5fe),
    ("kube-system", 0xdf65c7bc1d82b35e),
    ("ns-0", 0x4a82b8ba48e25e73),
    ("ns-1", 0x4a82b7ba48e25cc0),
    ("ns-41", 0x7e8bbe89d8b1b6ca),
    ("7c6b4f0e-8a1d-4a7e-9d5e-1f2a3b4c5d6e", 0x5f27cba2b6bbe070),
    ("a", 0xaf63dc4c8601ec8c),
];

#[test]
fn hash_matches_the_api_server() {
    for (v, h) in VECTORS {
        assert_eq!(fnv1a64(v.as_bytes()), *h, "{v:?}");
    }
}

#[test]
fn selectors_match_the_documented_splits() {
    let s = |i, n| Shard::new(i, n).unwrap().selector(ShardKey::Uid);
    assert_eq!(s(0, 2), "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')");
    assert_eq!(s(1, 2), "shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')");
    assert_eq!(s(2, 4), "shardRange(object.metadata.uid, '0x8000000000000000', '0xc000000000000000')");
    assert_eq!(s(3, 4), "shardRange(object.metadata.uid, '0xc000000000000000', '0x10000000000000000')");
    let ns = Shard::new(1, 3).unwrap().selector(ShardKey::Namespace);
    assert_eq!(ns, "shardRange(object.metadata.namespace, '0x5555555555555555', '0xaaaaaaaaaaaaaaaa')");
    assert_eq!(Shard::ALL.selector(ShardKey::Uid).matches("0x10000000000000000").count(), 1);
}

#[test]
fn ranges_tile_the_space_for_every_total() {
    for n in 1..=64 {
        let mut at = 0u128;
        for i in 0..n {
            let (start, end) = Shard::new(i, n).unwrap().range();
            assert_eq!(start, at, "shard {i}/{n} starts where {} ends", i.saturating_sub(1));
            assert!(end > start);
            at = end;
        }
        assert_eq!(at, SPACE, "{n} shards cover the space");
    }
}

#[test]
fn every_hash_has_exactly_one_owner() {
    let mut probes: Vec<u64> = VECTORS.iter().map(|v| v.1).collect();
    probes.extend([0, u64::MAX, 0x5555555555555555, 0x5555555555555554, 0xaaaaaaaaaaaaaaaa]);
    probes.extend((0..2000u64).map(|i| fnv1a64(format!("ns-{i}").as_bytes())));
    for n in [1, 2, 3, 5, 7, 16, 1000] {
        for h in &probes {
            let owners: Vec<u32> = (0..n).filter(|i| Shard { index: *i, total: n }.owns_hash(*h)).collect();
            assert_eq!(owners, [owner(*h, n)], "hash {h:#x} over {n} shards");
        }
    }
}

/// UID-shaped strings (random hex, as the API server's UUIDv4s), from a fixed LCG.
fn uids(n: usize) -> Vec<String> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        x
    };
    (0..n)
        .map(|_| {
            let (a, b) = (next(), next());
            format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                b >> 48,
                b & 0xffff_ffff_ffff
            )
        })
        .collect()
}

fn shares(values: &[String], n: u32) -> Vec<f64> {
    let mut counts = vec![0u32; n as usize];
    for v in values {
        counts[owner(fnv1a64(v.as_bytes()), n) as usize] += 1;
    }
    counts.iter().map(|c| f64::from(*c) / values.len() as f64).collect()
}

#[test]
fn three_shards_split_uids_about_evenly() {
    let s = shares(&uids(3000), 3);
    assert!(s.iter().all(|x| (0.30..0.37).contains(x)), "{s:?}");
}

#[test]
fn names_that_differ_only_at_the_end_split_unevenly() {
    // FNV-1a mixes a string's last bytes into the low bits mostly (the prime is 2^40 + 0x1b3),
    // and shard ranges cut the high bits: ns-0 … ns-2999 split about 17/26/57 %. The docs say
    // so; this pins the property they describe.
    let names: Vec<String> = (0..3000).map(|i| format!("ns-{i}")).collect();
    let s = shares(&names, 3);
    assert!(s.iter().cloned().fold(0.0, f64::max) > 0.45, "{s:?}");
}

#[test]
fn boundaries_are_inclusive_below_exclusive_above() {
    let s = Shard::new(1, 2).unwrap();
    assert!(s.owns_hash(0x8000000000000000));
    assert!(!s.owns_hash(0x7fffffffffffffff));
    assert!(s.owns_hash(u64::MAX));
    assert!(Shard::new(0, 3).unwrap().owns_hash(0x5555555555555554));
    assert!(!Shard::new(0, 3).unwrap().owns_hash(0x5555555555555555));
}

#[test]
fn cluster_scoped_objects_share_one_namespace_shard() {
    // Every cluster-scoped object hashes the empty namespace, so exactly one shard holds them.
    let n = 3;
    let owners: Vec<u32> = (0..n).filter(|i| Shard { index: *i, total: n }.owns("")).collect();
    assert_eq!(owners, [2], "fnv1a64(\"\") = 0xcbf2… is in the top third");
}

#[test]
fn shard_settings_are_validated() {
    assert_eq!(Shard::new(3, 3), Err(ShardError::Index { index: 3, total: 3 }));
    assert_eq!(Shard::new(0, 0), Err(ShardError::Total(0)));
    assert_eq!(Shard::new(0, MAX_SHARDS + 1), Err(ShardError::Total(MAX_SHARDS + 1)));
    let e = Shard::new(5, 3).unwrap_err().to_string();
    assert!(e.contains("numbered 0 to 2"), "{e}");
    assert!(!Shard::ALL.is_sharded() && Shard::ALL.is_leader());
}

#[test]
fn ordinal_from_statefulset_pod_names() {
    assert_eq!(ordinal("stallwatch-0"), Some(0));
    assert_eq!(ordinal("stallwatch-shard-12"), Some(12));
    assert_eq!(ordinal("stallwatch"), None);
    assert_eq!(ordinal("stallwatch-"), None);
    assert_eq!(ordinal("stallwatch-7f9c8d-x2k4p"), None, "a Deployment pod has no ordinal");
    assert_eq!(ordinal("stallwatch-01"), None, "StatefulSets never pad ordinals");
    assert_eq!(ordinal("stallwatch-99999999999"), None, "out of u32");
}

#[test]
fn reshard_moves_what_the_ranges_say() {
    assert_eq!(moved_share(3, 3), 0.0);
    // 1 → 2: the upper half moves to the new shard.
    assert!((moved_share(1, 2) - 0.5).abs() < 1e-12);
    // 2 → 4: [1/4,1/2) moves 0→1, [1/2,3/4) moves 1→2, [3/4,1) moves 1→3.
    assert!((moved_share(2, 4) - 0.75).abs() < 1e-12);
    // 2 → 3: [1/3,1/2) moves 0→1 and [2/3,1) moves 1→2; [1/2,2/3) stays on 1.
    assert!((moved_share(2, 3) - 0.5).abs() < 1e-12, "{}", moved_share(2, 3));
    // Empirically the same on (evenly spread) UIDs.
    let moved = uids(3000)
        .iter()
        .filter(|u| {
            let h = fnv1a64(u.as_bytes());
            owner(h, 2) != owner(h, 3)
        })
        .count() as f64
        / 3000.0;
    assert!((moved - moved_share(2, 3)).abs() < 0.05, "{moved}");
}

#[test]
fn mode_is_server_only_when_the_selector_is_echoed() {
    let sent = Shard::new(0, 3).unwrap().selector(ShardKey::Namespace);
    assert_eq!(ShardMode::of_list(&sent, Some(&sent)), ShardMode::Server);
    assert_eq!(ShardMode::of_list(&sent, None), ShardMode::Client);
    let other = Shard::new(1, 3).unwrap().selector(ShardKey::Namespace);
    assert_eq!(ShardMode::of_list(&sent, Some(&other)), ShardMode::Client);
}
