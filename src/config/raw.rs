//! The file's shape: serde structs that mirror the YAML keys, with the spans the error messages
//! need, and their resolution into the validated [`Config`].

use std::time::Duration;

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_saphyr::{Location, Spanned};

use super::{
    Config, Context, DEFAULT_RESYNC, DEFAULT_STALLED_AFTER, DEFAULT_WATCH_TIMEOUT, Target,
    generic::resolve_target,
};
use crate::model::ObjectPath;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawConfig {
    #[serde(default, deserialize_with = "duration_opt")]
    resync: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    stalled_after: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    watch_timeout: Option<Duration>,
    #[serde(default)]
    targets: Vec<Spanned<RawTarget>>,
    #[serde(default)]
    context: RawContext,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawContext {
    #[serde(default)]
    nodes: bool,
    #[serde(default)]
    api_services: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResource {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawImage {
    pub slot: String,
    pub desired: ObjectPath,
    pub default: Option<String>,
    pub workloads: RawWorkloads,
    pub overridden_by: Option<RawOverride>,
    /// The slot's workloads must exist; their absence is a reason of its own.
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawWorkloads {
    pub kind: String,
    pub namespace: Option<String>,
    pub selector: Option<String>,
    pub name: Option<String>,
    pub container: Option<String>,
    pub init_container: Option<String>,
    pub pod_selector: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawController {
    pub lease: Option<RawNamed>,
    pub pods: Option<RawPods>,
    pub status_writes: Option<StatusWrites>,
}

/// When the controller writes the status of its objects.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum StatusWrites {
    /// On every reconcile or periodically (a silent status means a silent controller).
    Periodic,
    /// Only when the status changes (KubeArmor): a silent status says nothing.
    OnChange,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamed {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPods {
    pub namespace: String,
    pub selector: String,
}

/// The presets a target can name.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PresetName {
    Kubearmor,
    Workloads,
    Conventions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
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
    pub observed_generation: Option<ObjectPath>,
    pub phase: Option<RawPhase>,
    pub conditions: Option<RawConditions>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub stalled_after: Option<Duration>,
    #[serde(default)]
    pub images: Vec<RawImage>,
    /// Target-level default for every slot's `overriddenBy`.
    pub overridden_by: Option<RawOverride>,
    pub controller: Option<RawController>,
    #[serde(default)]
    pub events: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPhase {
    pub path: ObjectPath,
    #[serde(default)]
    pub ready: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConditions {
    pub path: Option<ObjectPath>,
    #[serde(default)]
    pub ready: Vec<String>,
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
        let watch_timeout = self.watch_timeout.unwrap_or(DEFAULT_WATCH_TIMEOUT);
        let top = Location::UNKNOWN;
        if watch_timeout > Duration::from_secs(290) {
            return Err((top, "key `watchTimeout`: must be at most 290s (the API server's own limit); keep it below your load balancer's idle timeout".into()));
        }
        if self.targets.is_empty() {
            return Err((
                top,
                "key `targets`: at least one target is required, e.g. `targets: [{preset: workloads}]`"
                    .into(),
            ));
        }
        let mut targets = Vec::new();
        let kubearmor_used = self.targets.iter().any(|t| t.value.preset == Some(PresetName::Kubearmor));
        for t in self.targets {
            let at = t.referenced;
            let expanded = resolve_target(t.value, stalled_after).map_err(|m| (at, m))?;
            for target in expanded {
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
        let mut context = Context { nodes: self.context.nodes, api_services: self.context.api_services };
        for name in &context.api_services {
            if name.is_empty() || name.contains('/') {
                return Err((
                    top,
                    format!(
                        "key `context.apiServices`: {name:?} is not an APIService name such as v1.operator.kubearmor.com"
                    ),
                ));
            }
        }
        // The kubearmor preset needs node churn to explain a permanent Pending.
        context.nodes |= kubearmor_used;
        Ok(Config { resync, stalled_after, watch_timeout, targets, context })
    }
}
