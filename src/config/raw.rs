//! The file's shape: serde structs that mirror the YAML keys, with the spans the error messages
//! need, and their resolution into the validated [`Config`].

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, de::Error as _};
use serde_saphyr::{Location, Spanned};

use super::{
    Config, Context, DEFAULT_RESYNC, DEFAULT_STALLED_AFTER, DEFAULT_WATCH_IDLE_TIMEOUT,
    DEFAULT_WATCH_TIMEOUT, Target, generic::resolve_target,
};
use crate::model::{ObjectPath, image::Mirror};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Config")]
pub(super) struct RawConfig {
    /// Period of the full re-list of every watch (default 10m).
    #[serde(default, deserialize_with = "duration_opt")]
    #[schemars(with = "Option<DurationText>")]
    resync: Option<Duration>,
    /// Age after which an unconverged object is Stalled (default 15m); a target may override it.
    #[serde(default, deserialize_with = "duration_opt")]
    #[schemars(with = "Option<DurationText>")]
    stalled_after: Option<Duration>,
    /// An open watch silent (no event, no bookmark) this long is stalled and reopened (default 90s).
    #[serde(default, deserialize_with = "duration_opt")]
    #[schemars(with = "Option<DurationText>")]
    watch_idle_timeout: Option<Duration>,
    /// Server-side timeout of each watch request (default 200s, between 10s and 290s).
    #[serde(default)]
    #[schemars(with = "Option<DurationText>")]
    watch_timeout: Option<Spanned<Dur>>,
    /// What to watch: presets and generic targets.
    #[serde(default)]
    #[schemars(with = "Vec<RawTarget>", length(min = 1))]
    targets: Option<Spanned<Vec<Spanned<RawTarget>>>>,
    #[serde(default)]
    context: RawContext,
    /// Registries an admission webhook rewrites images to: a reference under `to` is compared
    /// as the `from` reference it stands for.
    #[serde(default)]
    #[schemars(with = "Vec<RawMirror>")]
    registry_mirrors: Vec<Spanned<RawMirror>>,
    /// Which shard of several this replica runs; `--shard`/`--total-shards` override it.
    #[serde(default)]
    sharding: RawSharding,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Sharding")]
struct RawSharding {
    /// This replica's shard, 0 to totalShards-1 (default: the StatefulSet ordinal of the pod name).
    #[serde(default)]
    shard: Option<u32>,
    /// How many shards split the objects (default 1: unsharded).
    #[serde(default)]
    total_shards: Option<u32>,
}

/// What a target's objects are sharded by.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum RawShardKey {
    /// The namespace: keeps each object with its workloads and pods in one shard.
    Namespace,
    /// The UID: the most even spread, for targets without image slots that are not workloads.
    Uid,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RegistryMirror")]
struct RawMirror {
    /// The registry (or registry/path prefix) the manifests name, e.g. `docker.io`.
    from: String,
    /// Where the webhook rewrites it, e.g. `mirror.example` or `mirror.example/dockerhub`.
    to: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Context")]
struct RawContext {
    /// `None`: on when a preset needs it (kubearmor), else off.
    #[serde(default)]
    nodes: Option<bool>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    api_services: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Resource")]
pub(crate) struct RawResource {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Image")]
pub(crate) struct RawImage {
    pub slot: String,
    #[schemars(with = "JsonPathText")]
    pub desired: ObjectPath,
    pub default: Option<String>,
    pub workloads: RawWorkloads,
    pub overridden_by: Option<RawOverride>,
    /// The slot's workloads must exist; their absence is a reason of its own.
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Workloads")]
pub(crate) struct RawWorkloads {
    pub kind: String,
    pub namespace: Option<String>,
    pub selector: Option<String>,
    pub name: Option<String>,
    pub container: Option<String>,
    pub init_container: Option<String>,
    pub pod_selector: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Override")]
pub(crate) struct RawOverride {
    #[serde(default = "deployment")]
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub env: String,
}

fn deployment() -> String {
    "Deployment".into()
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "Controller")]
pub(crate) struct RawController {
    pub lease: Option<RawNamed>,
    pub pods: Option<RawPods>,
    pub status_writes: Option<StatusWrites>,
}

/// When the controller writes the status of its objects.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum StatusWrites {
    /// On every reconcile or periodically (a silent status means a silent controller).
    Periodic,
    /// Only when the status changes (KubeArmor): a silent status says nothing.
    OnChange,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Lease")]
pub(crate) struct RawNamed {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Pods")]
pub(crate) struct RawPods {
    pub namespace: String,
    pub selector: String,
}

/// The presets a target can name.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "Preset")]
pub enum PresetName {
    Kubearmor,
    Workloads,
    Conventions,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "Target")]
pub(crate) struct RawTarget {
    pub preset: Option<PresetName>,
    pub name: Option<String>,
    pub resource: Option<RawResource>,
    /// The operator namespace of the `kubearmor` preset.
    pub namespace: Option<String>,
    #[serde(default)]
    pub namespaces: Vec<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    #[schemars(with = "Option<JsonPathText>")]
    pub observed_generation: Option<ObjectPath>,
    pub phase: Option<RawPhase>,
    pub conditions: Option<RawConditions>,
    #[serde(default, deserialize_with = "duration_opt")]
    #[schemars(with = "Option<DurationText>")]
    pub stalled_after: Option<Duration>,
    #[serde(default)]
    pub images: Vec<RawImage>,
    /// Target-level default for every slot's `overriddenBy`.
    pub overridden_by: Option<RawOverride>,
    pub controller: Option<RawController>,
    #[serde(default)]
    pub events: bool,
    /// What the objects are sharded by when several shards run (default namespace).
    pub shard_key: Option<RawShardKey>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Phase")]
pub(crate) struct RawPhase {
    #[schemars(with = "JsonPathText")]
    pub path: ObjectPath,
    #[serde(default)]
    pub ready: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Conditions")]
pub(crate) struct RawConditions {
    #[schemars(with = "Option<JsonPathText>")]
    pub path: Option<ObjectPath>,
    #[serde(default)]
    pub ready: Vec<String>,
}

/// A duration as the file writes it (schema only).
#[derive(JsonSchema)]
#[schemars(rename = "Duration", extend("pattern" = "^\\s*[0-9]"))]
/// A duration such as 90s, 15m or 1h30m; greater than zero.
struct DurationText(#[allow(dead_code)] String);

/// A JSONPath into the object (schema only).
#[derive(JsonSchema)]
#[schemars(rename = "JsonPath", extend("pattern" = "^\\$"))]
/// A JSONPath into the object, starting with `$`, e.g. `$.status.phase`.
struct JsonPathText(#[allow(dead_code)] String);

/// A duration whose position the error messages need (`watchTimeout`).
#[derive(Debug)]
pub(super) struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Dur(duration_opt(d)?.expect("duration_opt returns Some")))
    }
}

fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    let v = humantime::parse_duration(&s).map_err(|e| {
        D::Error::custom(format!("invalid duration {s:?}: {e}; expected e.g. 90s, 15m or 1h30m"))
    })?;
    if v.is_zero() {
        return Err(D::Error::custom(format!("duration {s:?} must be greater than zero")));
    }
    Ok(Some(v))
}

type Located<T> = Result<T, (Location, String)>;

impl RawConfig {
    /// Applies defaults and validates everything; errors carry the YAML position.
    pub(super) fn resolve(self) -> Located<Config> {
        let resync = self.resync.unwrap_or(DEFAULT_RESYNC);
        let stalled_after = self.stalled_after.unwrap_or(DEFAULT_STALLED_AFTER);
        let watch_timeout = self.watch_timeout.as_ref().map_or(DEFAULT_WATCH_TIMEOUT, |d| d.value.0);
        let watch_idle_timeout = self.watch_idle_timeout.unwrap_or(DEFAULT_WATCH_IDLE_TIMEOUT);
        // A key the file does not have is reported at the top of the file (see Config::parse).
        let top = Location::UNKNOWN;
        super::validate::check_timing(resync, watch_timeout, watch_idle_timeout).map_err(|m| {
            let at = match &self.watch_timeout {
                Some(d) if m.contains("`watchTimeout`") => d.referenced,
                _ => top,
            };
            (at, m)
        })?;
        let (targets_at, file_targets) = self.targets.map_or((top, Vec::new()), |t| (t.referenced, t.value));
        if file_targets.is_empty() {
            return Err((
                targets_at,
                "key `targets`: at least one target is required, e.g. `targets: [{preset: workloads}]`"
                    .into(),
            ));
        }
        let mut targets = Vec::new();
        let kubearmor_used = file_targets.iter().any(|t| t.value.preset == Some(PresetName::Kubearmor));
        let count = file_targets.len();
        for t in file_targets {
            let at = t.referenced;
            let expanded = resolve_target(t.value, stalled_after).map_err(|m| (at, m))?;
            for target in expanded {
                super::shard::check_key(&target).map_err(|m| (at, m))?;
                if let Some(dup) =
                    targets.iter().find(|o: &&Target| o.name == target.name && o.resource == target.resource)
                {
                    return Err((
                        at,
                        format!(
                            "key `name`: target {:?} watches {} twice; give each target a unique name",
                            dup.name,
                            dup.resource.label()
                        ),
                    ));
                }
                targets.push(target);
            }
        }
        // The kubearmor preset needs node churn to explain a permanent Pending: on unless the
        // file says `nodes: false` (then RBAC need not grant nodes).
        let nodes = self.context.nodes.unwrap_or(kubearmor_used);
        for name in &self.context.api_services {
            let (at, name) = (name.referenced, &name.value);
            if name.is_empty() || name.contains('/') {
                return Err((
                    at,
                    format!(
                        "key `context.apiServices`: {name:?} is not an APIService name such as v1.operator.kubearmor.com"
                    ),
                ));
            }
        }
        let mut registry_mirrors: Vec<Mirror> = Vec::new();
        for m in &self.registry_mirrors {
            let mirror = Mirror::new(&m.value.from, &m.value.to)
                .map_err(|e| (m.referenced, format!("key `registryMirrors`: {e}")))?;
            if let Some(dup) = registry_mirrors.iter().find(|o| o.to == mirror.to) {
                return Err((
                    m.referenced,
                    format!(
                        "key `registryMirrors`: {:?} is the mirror of both {:?} and {:?}; one mirror prefix stands for one upstream",
                        mirror.to, dup.from, mirror.from
                    ),
                ));
            }
            registry_mirrors.push(mirror);
        }
        let api_services = self.context.api_services.into_iter().map(|s| s.value).collect();
        let context = Context { nodes, api_services };
        Ok(Config {
            resync,
            stalled_after,
            watch_timeout,
            watch_idle_timeout,
            targets,
            context,
            registry_mirrors: registry_mirrors.into(),
            file_targets: count,
            file_sharding: super::shard::FileSharding {
                shard: self.sharding.shard,
                total: self.sharding.total_shards,
            },
            shard: crate::model::shard::Shard::ALL,
        })
    }
}
