//! The configuration file: parsed strictly, validated once, turned into resolved [`Target`]s.
//!
//! Every problem is reported with the file, line and column and what was expected, because a
//! sidecar that silently ignores a typo would watch nothing and page nobody.

use std::{path::Path, time::Duration};

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_saphyr::{Location, Spanned};

use crate::{error::ConfigError, kinds::Kind, path::ObjectPath, preset};

/// Default full re-list period per watch (F2).
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(600);
/// Default age after which an unconverged object is Stalled (F10).
pub const DEFAULT_STALLED_AFTER: Duration = Duration::from_secs(900);
/// Default server-side watch timeout: below the 240 s idle timeout of common load balancers, so
/// the watch is renewed before a middlebox silently drops it.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(200);

/// The validated configuration that the rest of the program works from.
#[derive(Debug, Clone)]
pub struct Config {
    pub resync: Duration,
    pub stalled_after: Duration,
    pub watch_timeout: Duration,
    pub targets: Vec<Target>,
    pub context: Context,
}

/// Cluster-wide context signals (F12), each switched on explicitly (or by a preset) so that
/// RBAC stays minimal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub nodes: bool,
    /// APIService names whose availability to export, e.g. `v1.operator.kubearmor.com`.
    pub api_services: Vec<String>,
}

/// Which workloads run the image a target's objects ask for (F7).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadLink {
    pub kind: Kind,
    /// `None`: the tracked object's own namespace.
    pub namespace: Option<String>,
    pub selector: Option<String>,
    pub name: Option<String>,
    /// The container (or init container) whose image is compared; `None`: the first container.
    pub container: Option<String>,
    pub init: bool,
    /// Label selector for the workload's pods; defaults to `selector`.
    pub pod_selector: Option<String>,
}

/// An operator-side pin that wins over the object's desired image (F8), e.g. KubeArmor's
/// `RELATED_IMAGE_KUBEARMOR` env var on Deployment `kubearmor-operator`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub namespace: Option<String>,
    pub deployment: String,
    pub env: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImageRule {
    pub slot: String,
    pub desired: ObjectPath,
    pub default: Option<String>,
    pub workloads: WorkloadLink,
    pub overridden_by: Option<Override>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NamedRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodsRef {
    pub namespace: String,
    pub selector: String,
}

/// Where to see whether the controller is alive (F11).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControllerRule {
    pub lease: Option<NamedRef>,
    pub pods: Option<PodsRef>,
}

/// Group, version and kind of a watched resource; the plural and scope come from discovery.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gvk {
    #[serde(default)]
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Self {
        Gvk { group: group.into(), version: version.into(), kind: kind.into() }
    }

    /// `group/version/Kind`, or `version/Kind` for the core group: the `resource` label value.
    pub fn label(&self) -> String {
        if self.group.is_empty() {
            format!("{}/{}", self.version, self.kind)
        } else {
            format!("{}/{}/{}", self.group, self.version, self.kind)
        }
    }
}

/// Where the observed generation of an object is read from (F3).
#[derive(Debug, Clone, PartialEq)]
pub enum ObservedGeneration {
    /// `status.observedGeneration`, else the conditions' `observedGeneration`.
    Conventional,
    /// A configured JSONPath.
    Path(ObjectPath),
    /// The kind never reports one (KubeArmorConfig): convergence is judged from its workloads.
    Absent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRule {
    pub path: ObjectPath,
    pub ready: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConditionRule {
    pub path: ObjectPath,
    /// Condition types whose `True` means the object is ready (kstatus: `Ready`).
    pub ready: Vec<String>,
}

/// One resolved watch target: one resource type with the rules to read its objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The `target` label. Presets may expand into several targets sharing one name (one per kind).
    pub name: String,
    pub resource: Gvk,
    /// Empty means all namespaces (or a cluster-scoped kind).
    pub namespaces: Vec<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub observed_generation: ObservedGeneration,
    pub phase: Option<PhaseRule>,
    pub conditions: ConditionRule,
    pub stalled_after: Duration,
    pub images: Vec<ImageRule>,
    pub controller: ControllerRule,
    /// Count Warning events of the objects and their workloads.
    pub events: bool,
    /// The plural as the config states it (the chart needs it for RBAC); discovery decides.
    pub plural: Option<String>,
    /// For workload kinds: the label selector of their pods' watch, when known (presets);
    /// `None` watches every pod of the namespaces so no workload's pods are missed.
    pub pods_selector: Option<String>,
}

impl Target {
    /// The one namespace the target's objects live in, if it has exactly one.
    pub fn single_namespace(&self) -> Option<&str> {
        match self.namespaces.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

impl Config {
    /// Reads, parses and validates a file. Errors carry the file name and position.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { file: path.display().to_string(), source })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates YAML text; `file` only names the source in messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            ConfigError::Invalid { file: file.into(), line, column, message: first_line(&e.to_string()) }
        })?;
        raw.resolve().map_err(|(loc, message)| ConfigError::Invalid {
            file: file.into(),
            line: loc.line(),
            column: loc.column(),
            message,
        })
    }
}

/// serde-saphyr renders a multi-line snippet; the first line carries the message, and we print
/// our own position prefix.
fn first_line(rendered: &str) -> String {
    let mut line = rendered.lines().next().unwrap_or(rendered).trim();
    line = line.strip_prefix("error: ").unwrap_or(line);
    // Drop a leading "line X column Y: " that would repeat our own prefix.
    if let Some(rest) = line.strip_prefix("line ")
        && let Some((_, msg)) = rest.split_once(": ")
    {
        line = msg;
    }
    line.to_string()
}

// === the file's shape ===

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
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
pub(crate) struct RawController {
    pub lease: Option<RawNamed>,
    pub pods: Option<RawPods>,
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
    /// Target-level default for every slot's `overriddenBy` (the PRODUCT §5 sketch's shape).
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
    fn resolve(self) -> Located<Config> {
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
        // The kubearmor preset needs node churn to explain a permanent Pending (F12).
        context.nodes |= kubearmor_used;
        Ok(Config { resync, stalled_after, watch_timeout, targets, context })
    }
}

fn resolve_target(raw: RawTarget, stalled_after: Duration) -> Result<Vec<Target>, String> {
    if let Some(name) = &raw.name {
        validate_name(name)?;
    }
    for ns in &raw.namespaces {
        validate_dns_label(ns).map_err(|m| format!("key `namespaces`: {m}"))?;
    }
    if let Some(preset) = raw.preset {
        return preset::expand(preset, raw, stalled_after);
    }
    let Some(resource) = raw.resource.clone() else {
        return Err("a target needs either `preset` (kubearmor, workloads, conventions) or `resource: {group, version, kind}`".into());
    };
    let Some(name) = raw.name.clone() else {
        return Err(
            "key `name`: a target with `resource` needs a `name` (it becomes the `target` label)".into()
        );
    };
    if raw.namespace.is_some() {
        return Err(
            "key `namespace`: only the kubearmor preset takes `namespace`; use `namespaces: [..]`".into()
        );
    }
    let plural = resource.plural.clone();
    let mut t = generic_target(
        name,
        Gvk::new(&resource.group, &resource.version, &resource.kind),
        raw,
        stalled_after,
    )?;
    t.plural = plural;
    Ok(vec![t])
}

fn resolve_images(
    raw: Vec<RawImage>,
    target_override: Option<RawOverride>,
) -> Result<Vec<ImageRule>, String> {
    if raw.is_empty() && target_override.is_some() {
        return Err(
            "key `overriddenBy`: it pins the images of the target's `images` slots, and the target has none"
                .into(),
        );
    }
    let mut out: Vec<ImageRule> = Vec::new();
    for i in raw {
        if out.iter().any(|o| o.slot == i.slot) {
            return Err(format!("key `images`: slot {:?} appears twice", i.slot));
        }
        validate_name(&i.slot).map_err(|m| m.replace("key `name`", "key `images.slot`"))?;
        let w = i.workloads;
        let kind = match Kind::of(&Gvk::new("apps", "v1", &w.kind)) {
            Some(k) if k.is_workload() => k,
            _ => {
                return Err(format!(
                    "key `images.workloads.kind`: {:?} is not a workload kind; expected Deployment, DaemonSet or StatefulSet",
                    w.kind
                ));
            }
        };
        if w.selector.is_none() && w.name.is_none() {
            return Err("key `images.workloads`: give `selector` or `name` to find the workloads".into());
        }
        if w.container.is_some() && w.init_container.is_some() {
            return Err("key `images.workloads`: give either `container` or `initContainer`, not both".into());
        }
        if let Some(ns) = &w.namespace {
            validate_dns_label(ns).map_err(|m| format!("key `images.workloads.namespace`: {m}"))?;
        }
        let overridden_by = match i.overridden_by.or_else(|| target_override.clone()) {
            None => None,
            Some(o) if o.kind == "Deployment" => {
                Some(Override { namespace: o.namespace, deployment: o.name, env: o.env })
            }
            Some(o) => {
                return Err(format!(
                    "key `images.overriddenBy.kind`: only Deployment is supported, not {:?}",
                    o.kind
                ));
            }
        };
        out.push(ImageRule {
            slot: i.slot,
            desired: i.desired,
            default: i.default.filter(|d| !d.is_empty()),
            workloads: WorkloadLink {
                kind,
                namespace: w.namespace,
                pod_selector: w.pod_selector.or_else(|| w.selector.clone()),
                selector: w.selector,
                name: w.name,
                init: w.init_container.is_some(),
                container: w.init_container.or(w.container),
            },
            overridden_by,
        });
    }
    Ok(out)
}

/// A target with conventional defaults (kstatus), overridden by what the file says.
pub(crate) fn generic_target(
    name: String,
    resource: Gvk,
    raw: RawTarget,
    stalled_after: Duration,
) -> Result<Target, String> {
    let observed_generation = match raw.observed_generation {
        Some(p) => ObservedGeneration::Path(p),
        None => ObservedGeneration::Conventional,
    };
    let conditions = match raw.conditions {
        Some(c) => ConditionRule {
            path: c.path.unwrap_or_else(ObjectPath::conditions),
            ready: if c.ready.is_empty() { vec!["Ready".into()] } else { c.ready },
        },
        None => ConditionRule { path: ObjectPath::conditions(), ready: vec!["Ready".into()] },
    };
    let controller = match raw.controller {
        None => ControllerRule::default(),
        Some(c) => ControllerRule {
            lease: c.lease.map(|l| NamedRef { namespace: l.namespace, name: l.name }),
            pods: c.pods.map(|p| PodsRef { namespace: p.namespace, selector: p.selector }),
        },
    };
    Ok(Target {
        name,
        resource,
        namespaces: raw.namespaces,
        label_selector: raw.label_selector.filter(|s| !s.is_empty()),
        field_selector: raw.field_selector.filter(|s| !s.is_empty()),
        observed_generation,
        phase: raw.phase.map(|p| PhaseRule { path: p.path, ready: p.ready }),
        conditions,
        stalled_after: raw.stalled_after.unwrap_or(stalled_after),
        images: resolve_images(raw.images, raw.overridden_by)?,
        controller,
        events: raw.events,
        plural: None,
        pods_selector: None,
    })
}

fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key `name`: {name:?} is not a valid target name; use 1-63 letters, digits, '-', '_' or '.'"
        ))
    }
}

pub(crate) fn validate_dns_label(ns: &str) -> Result<(), String> {
    let ok = !ns.is_empty()
        && ns.len() <= 63
        && ns.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if ok { Ok(()) } else { Err(format!("{ns:?} is not a valid namespace name (lowercase RFC 1123 label)")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text, "c.yaml").unwrap_err().to_string()
    }

    #[test]
    fn minimal_generic_target_gets_conventional_defaults() {
        let c = Config::parse(
            "targets:\n  - name: certs\n    resource: {group: cert-manager.io, version: v1, kind: Certificate}\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.resync, DEFAULT_RESYNC);
        assert_eq!(c.watch_timeout, DEFAULT_WATCH_TIMEOUT);
        let t = &c.targets[0];
        assert_eq!(t.resource.label(), "cert-manager.io/v1/Certificate");
        assert!(matches!(t.observed_generation, ObservedGeneration::Conventional));
        assert_eq!(t.conditions.ready, vec!["Ready".to_string()]);
        assert_eq!(t.stalled_after, DEFAULT_STALLED_AFTER);
    }

    #[test]
    fn full_generic_target() {
        let c = Config::parse(
            r#"resync: 2m
stalledAfter: 5m
watchTimeout: 100s
targets:
  - name: widgets
    resource: {group: example.com, version: v1, kind: Widget}
    namespaces: [a, b]
    labelSelector: app=w
    fieldSelector: metadata.name!=x
    observedGeneration: $.status.seen
    phase: {path: $.status.phase, ready: [Running]}
    conditions: {ready: [Available]}
    stalledAfter: 1m
"#,
            "c.yaml",
        )
        .unwrap();
        assert_eq!(c.resync, Duration::from_secs(120));
        let t = &c.targets[0];
        assert_eq!(t.namespaces, vec!["a", "b"]);
        assert_eq!(t.label_selector.as_deref(), Some("app=w"));
        assert!(
            matches!(&t.observed_generation, ObservedGeneration::Path(p) if p.source() == "$.status.seen")
        );
        assert_eq!(t.phase.as_ref().unwrap().ready, vec!["Running"]);
        assert_eq!(t.conditions.ready, vec!["Available"]);
        assert_eq!(t.stalled_after, Duration::from_secs(60));
    }

    #[test]
    fn unknown_key_names_file_line_column_and_key() {
        let e = err("targets:\n  - preset: workloads\n    namespacez: [a]\n");
        assert!(e.starts_with("c.yaml:3:5: "), "{e}");
        assert!(e.contains("namespacez"), "{e}");
    }

    #[test]
    fn bad_duration_is_located() {
        let e = err("resync: 10 parsecs\ntargets: [{preset: workloads}]\n");
        assert!(e.starts_with("c.yaml:1:"), "{e}");
        assert!(e.contains("invalid duration \"10 parsecs\""), "{e}");
    }

    #[test]
    fn bad_jsonpath_is_located() {
        let e = err(
            "targets:\n  - name: x\n    resource: {version: v1, kind: ConfigMap}\n    observedGeneration: status.x\n",
        );
        assert!(e.starts_with("c.yaml:4:"), "{e}");
        assert!(e.contains("JSONPath"), "{e}");
    }

    #[test]
    fn target_without_resource_or_preset() {
        let e = err("targets:\n  - name: x\n");
        assert_eq!(
            e,
            "c.yaml:2:5: a target needs either `preset` (kubearmor, workloads, conventions) or `resource: {group, version, kind}`"
        );
    }

    #[test]
    fn generic_target_needs_name() {
        let e = err("targets:\n  - resource: {version: v1, kind: ConfigMap}\n");
        assert!(e.contains("needs a `name`"), "{e}");
    }

    #[test]
    fn duplicate_targets_rejected() {
        let e = err(
            "targets:\n  - {name: a, resource: {version: v1, kind: ConfigMap}}\n  - {name: a, resource: {version: v1, kind: ConfigMap}}\n",
        );
        assert!(e.starts_with("c.yaml:3:"), "{e}");
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn empty_targets_rejected() {
        assert!(err("resync: 1m\n").contains("at least one target"));
    }

    #[test]
    fn watch_timeout_capped() {
        assert!(err("watchTimeout: 10m\ntargets: [{preset: workloads}]\n").contains("at most 290s"));
    }

    #[test]
    fn bad_namespace_rejected() {
        assert!(
            err("targets: [{preset: workloads, namespaces: [Bad_NS]}]\n").contains("not a valid namespace")
        );
    }

    #[test]
    fn zero_duration_rejected() {
        assert!(err("stalledAfter: 0s\ntargets: [{preset: workloads}]\n").contains("greater than zero"));
    }

    #[test]
    fn target_level_override_applies_to_slots_without_their_own() {
        let c = Config::parse(
            r#"targets:
  - name: w
    resource: {group: example.com, version: v1, kind: Widget}
    overriddenBy: {name: widget-operator, env: RELATED_IMAGE_AGENT}
    images:
      - {slot: agent, desired: $.spec.image, workloads: {kind: DaemonSet, selector: app=agent}}
      - {slot: sidecar, desired: $.spec.sidecar, workloads: {kind: DaemonSet, selector: app=agent, container: side},
         overriddenBy: {name: other, env: PIN}}
"#,
            "c.yaml",
        )
        .unwrap();
        let t = &c.targets[0];
        assert_eq!(t.images[0].overridden_by.as_ref().unwrap().env, "RELATED_IMAGE_AGENT");
        assert_eq!(t.images[1].overridden_by.as_ref().unwrap().deployment, "other");
        let e = err(
            "targets:\n  - name: w\n    resource: {version: v1, kind: ConfigMap}\n    overriddenBy: {name: op, env: X}\n",
        );
        assert!(e.contains("the target has none"), "{e}");
    }

    #[test]
    fn duplicate_yaml_keys_rejected() {
        let e = err("resync: 1m\nresync: 2m\ntargets: [{preset: workloads}]\n");
        assert!(e.starts_with("c.yaml:2:"), "{e}");
    }
}
