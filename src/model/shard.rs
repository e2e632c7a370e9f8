//! Sharding arithmetic, the same as the API server's sharded list and watch
//! (`ShardedListAndWatch`, Kubernetes 1.36 alpha): an object's shard key (its namespace or UID)
//! is hashed with 64-bit FNV-1a, and shard `i` of `n` owns the contiguous hash range
//! `[i·2⁶⁴/n, (i+1)·2⁶⁴/n)`. The client-side filter and the `shardSelector` sent to the server
//! are both derived from here, so the server and the client can never disagree on which shard
//! holds an object. Pure: no IO.

use std::fmt;

/// The exclusive upper end of the hash space, 2⁶⁴.
const SPACE: u128 = 1 << 64;

/// The most shards accepted: far more than any cluster needs, small enough that every range is
/// wide.
pub const MAX_SHARDS: u32 = 1024;

/// 64-bit FNV-1a of `bytes`: offset basis `0xcbf29ce484222325`, prime `0x100000001b3`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// What an object is hashed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ShardKey {
    /// `metadata.namespace`: a namespace and everything in it land in one shard, so a tracked
    /// object, its workloads and their pods (same namespace) are joined inside one shard.
    /// Cluster-scoped objects all hash the empty namespace, so they too land in one shard.
    #[default]
    Namespace,
    /// `metadata.uid`: the most even spread, for targets that join nothing.
    Uid,
}

impl ShardKey {
    /// The field path of the key in a `shardRange()` selector.
    pub fn field_path(self) -> &'static str {
        match self {
            ShardKey::Namespace => "object.metadata.namespace",
            ShardKey::Uid => "object.metadata.uid",
        }
    }

    /// The `key` label value and config spelling.
    pub fn label(self) -> &'static str {
        match self {
            ShardKey::Namespace => "namespace",
            ShardKey::Uid => "uid",
        }
    }
}

/// One shard of a sharded deployment: `index` in `0..total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// This shard's number, `0..total`.
    pub index: u32,
    /// How many shards the deployment runs.
    pub total: u32,
}

/// Why a shard setting is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("total shards must be between 1 and {MAX_SHARDS}, got {0}")]
    Total(u32),
    #[error("shard {index} is out of range for {total} shards (shards are numbered 0 to {})", total - 1)]
    Index { index: u32, total: u32 },
}

impl Shard {
    /// The single shard of an unsharded deployment.
    pub const ALL: Shard = Shard { index: 0, total: 1 };

    /// A validated shard.
    pub fn new(index: u32, total: u32) -> Result<Shard, ShardError> {
        if total == 0 || total > MAX_SHARDS {
            return Err(ShardError::Total(total));
        }
        if index >= total {
            return Err(ShardError::Index { index, total });
        }
        Ok(Shard { index, total })
    }

    /// Whether this is one of several shards (else nothing is filtered).
    pub fn is_sharded(self) -> bool {
        self.total > 1
    }

    /// The shard that exports cluster-wide context (nodes, APIServices, controller Leases and
    /// pods), so that no such series is exported twice.
    pub fn is_leader(self) -> bool {
        self.index == 0
    }

    /// The hash range `[start, end)` this shard owns; `end` may be 2⁶⁴.
    pub fn range(self) -> (u128, u128) {
        let at = |i: u32| u128::from(i) * SPACE / u128::from(self.total);
        (at(self.index), at(self.index + 1))
    }

    /// Whether `hash` falls in this shard's range.
    pub fn owns_hash(self, hash: u64) -> bool {
        let (start, end) = self.range();
        (start..end).contains(&u128::from(hash))
    }

    /// Whether the object whose key value is `value` (its namespace or UID) is this shard's.
    pub fn owns(self, value: &str) -> bool {
        self.owns_hash(fnv1a64(value.as_bytes()))
    }

    /// The `shardSelector` query parameter for this shard, in the API server's canonical form
    /// (16 lowercase hex digits, `0x10000000000000000` for 2⁶⁴), which the server echoes back
    /// verbatim in the list's `metadata.shardInfo.selector`.
    pub fn selector(self, key: ShardKey) -> String {
        let (start, end) = self.range();
        format!("shardRange({}, '{}', '{}')", key.field_path(), hex(start), hex(end))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

fn hex(v: u128) -> String {
    if v == SPACE { "0x10000000000000000".to_string() } else { format!("0x{v:016x}") }
}

/// Who applies a sharded watch's selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShardMode {
    /// The API server filtered the list (its `shardInfo` echoed the selector): only this
    /// shard's objects are sent and decoded.
    Server,
    /// The server sent everything (older server, or `ShardedListAndWatch` off): stallwatch
    /// decodes every object and keeps its share.
    Client,
}

impl ShardMode {
    /// The `mode` label value.
    pub fn label(self) -> &'static str {
        match self {
            ShardMode::Server => "server",
            ShardMode::Client => "client",
        }
    }

    /// The mode a list response shows: server-side only when its `metadata.shardInfo.selector`
    /// is the selector sent (a server that ignores the parameter sends no `shardInfo`).
    pub fn of_list(sent: &str, echoed: Option<&str>) -> ShardMode {
        if echoed == Some(sent) { ShardMode::Server } else { ShardMode::Client }
    }
}

/// The shard of `total` that owns `hash`.
pub fn owner(hash: u64, total: u32) -> u32 {
    // floor(hash·n / 2⁶⁴) is the i with i·2⁶⁴/n ≤ hash < (i+1)·2⁶⁴/n, up to the flooring of
    // the boundaries; the loop corrects for it so `owner` always agrees with `Shard::range`.
    let guess = ((u128::from(hash) * u128::from(total)) >> 64) as u32;
    (guess.saturating_sub(1)..total).find(|i| Shard { index: *i, total }.owns_hash(hash)).unwrap_or(guess)
}

/// The StatefulSet ordinal at the end of a pod name (`stallwatch-2` → 2): the shard a pod of a
/// sharded StatefulSet runs. `None` when the name does not end in `-<digits>`.
pub fn ordinal(pod_name: &str) -> Option<u32> {
    let (_, digits) = pod_name.rsplit_once('-')?;
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// The share of the hash space whose owner changes when `from` shards become `to`: what a
/// reshard moves (each moved object is dropped by one shard and listed by another).
pub fn moved_share(from: u32, to: u32) -> f64 {
    // Both partitions' boundaries, merged: within each piece both owners are constant.
    let mut cuts: Vec<u128> = (0..=from)
        .map(|i| u128::from(i) * SPACE / u128::from(from))
        .chain((0..=to).map(|i| u128::from(i) * SPACE / u128::from(to)))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let moved: u128 = cuts
        .windows(2)
        .filter(|w| owner(w[0] as u64, from) != owner(w[0] as u64, to))
        .map(|w| w[1] - w[0])
        .sum();
    moved as f64 / SPACE as f64
}

#[cfg(test)]
#[path = "shard_tests.rs"]
mod tests;
