//! The configuration file: parsed strictly, validated once, turned into resolved [`Target`]s.
//!
//! Every problem is reported with the file, line and column and what was expected, because a
//! sidecar that silently ignores a typo would watch nothing and page nobody.
//!
//! Owns the validated model (this file), the file's serde shapes with spans ([`raw`]), generic
//! targets ([`generic`]), presets ([`preset`]), name and timing checks ([`validate`]) and selector
//! grammar ([`selector`]). It reads the
//! file and nothing else: no cluster access, no clock.

use std::{path::Path, time::Duration};

use crate::{
    error::ConfigError,
    model::{
        Kind, ObjectPath,
        image::Mirrors,
        shard::{Shard, ShardKey},
    },
};

mod generic;
pub mod preset;
mod raw;
pub mod schema;
mod selector;
pub mod shard;
mod validate;

use self::raw::RawConfig;
pub use self::raw::{PresetName, StatusWrites};
pub use crate::model::Gvk;

/// Default full re-list period per watch.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(600);
/// Default age after which an unconverged object is Stalled.
pub const DEFAULT_STALLED_AFTER: Duration = Duration::from_secs(900);
/// Default server-side watch timeout: below the 240 s idle timeout of common load balancers, so
/// the watch is renewed before a middlebox silently drops it.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(200);
/// Default idle deadline of an open watch: the watch cache sends a bookmark about every minute,
/// so 90 s of silence means a dead connection.
pub const DEFAULT_WATCH_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The validated configuration that the rest of the program works from.
#[derive(Debug, Clone)]
pub struct Config {
    pub resync: Duration,
    pub stalled_after: Duration,
    pub watch_timeout: Duration,
    /// An open watch silent (no event, no bookmark) for this long is stalled and reopened.
    pub watch_idle_timeout: Duration,
    pub targets: Vec<Target>,
    pub context: Context,
    /// Registry mirrors images are compared through (`registryMirrors`).
    pub registry_mirrors: Mirrors,
    /// How many targets the file lists (before presets expand into several).
    pub file_targets: usize,
    /// The file's `sharding:` keys; flags override them (see [`shard::resolve`]).
    pub file_sharding: shard::FileSharding,
    /// The shard this replica runs ([`Shard::ALL`] until [`Config::with_shard`]).
    pub shard: Shard,
}

/// Cluster-wide context signals, each switched on explicitly (or by a preset) so that
/// RBAC stays minimal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    pub nodes: bool,
    /// APIService names whose availability to export, e.g. `v1.operator.kubearmor.com`.
    pub api_services: Vec<String>,
}

/// Which workloads run the image a target's objects ask for.
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

/// An operator-side pin that wins over the object's desired image, e.g. KubeArmor's
/// `RELATED_IMAGE_KUBEARMOR` env var on Deployment `kubearmor-operator`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub namespace: Option<String>,
    pub deployment: String,
    pub env: String,
}

/// One image slot: where the object states its desired image, the default, which workloads run it and which
/// operator pin may override it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRule {
    pub slot: String,
    pub desired: ObjectPath,
    pub default: Option<String>,
    pub workloads: WorkloadLink,
    pub overridden_by: Option<Override>,
    /// The slot's workloads are expected to exist (the KubeArmor agent DaemonSets): when none
    /// is found the object is not Current (`WorkloadMissing`).
    pub required: bool,
}

/// A namespaced object by name (a Lease).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedRef {
    pub namespace: String,
    pub name: String,
}

/// Pods by namespace and label selector (an operator's own pods).
#[derive(Debug, Clone, PartialEq)]
pub struct PodsRef {
    pub namespace: String,
    pub selector: String,
}

/// Where to see whether the controller is alive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControllerRule {
    pub lease: Option<NamedRef>,
    pub pods: Option<PodsRef>,
    /// The controller writes status only when it changes, so time since the last status write
    /// is no sign of a silent controller (`StallwatchControllerSilent` stays off).
    pub status_on_change: bool,
}

/// Where the observed generation of an object is read from.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservedGeneration {
    /// `status.observedGeneration`, else the conditions' `observedGeneration`.
    Conventional,
    /// A configured JSONPath.
    Path(ObjectPath),
    /// The kind never reports one (KubeArmorConfig): convergence is judged from its workloads.
    Absent,
}

/// Where the phase is read and which phases mean ready.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRule {
    pub path: ObjectPath,
    pub ready: Vec<String>,
}

/// Where the conditions are read and which types mean ready.
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
    /// What the target's objects are sharded by (`shardKey`, default namespace).
    pub shard_key: ShardKey,
    /// Whether this replica is one of several shards, so the target's watches are sharded.
    pub sharded: bool,
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
    /// Only a regular file of at most [`MAX_CONFIG_BYTES`] is read: a FIFO or `/dev/zero` is
    /// refused before it is opened, and the read itself stops past the cap.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        Config::parse(&read_capped(path, &file)?, &file)
    }

    /// Parses and validates YAML text; `file` only names the source in messages.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            ConfigError::Invalid { file: file.into(), line, column, message: first_line(&e.to_string()) }
        })?;
        // A key the file lacks has no position of its own: report the top of the file.
        raw.resolve().map_err(|(loc, message)| ConfigError::Invalid {
            file: file.into(),
            line: loc.line().max(1),
            column: if loc.line() == 0 { 1 } else { loc.column() },
            message,
        })
    }
}

/// The largest config file accepted, in bytes (real ones are a few KB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read_capped(path: &Path, file: &str) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let whole = |message: String| ConfigError::Invalid { file: file.into(), line: 0, column: 0, message };
    let read_err = |source| ConfigError::Read { file: file.into(), source };
    let not_regular =
        || whole("not a regular file (a FIFO, device or directory?); point the config at a YAML file".into());
    let too_big =
        |len: u64| whole(format!("the file is {len} bytes; a config may have at most {MAX_CONFIG_BYTES}"));
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(too_big(meta.len()));
    }
    let f = std::fs::File::open(path).map_err(read_err)?;
    // The path may have been swapped since the check: check what was opened, and cap the read.
    if !f.metadata().map_err(read_err)?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(read_err)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        whole(format!("the file is not UTF-8 (invalid byte at offset {})", e.utf8_error().valid_up_to()))
    })
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
        assert!(err("watchTimeout: 10m\ntargets: [{preset: workloads}]\n").contains("between 10s and 290s"));
    }

    #[test]
    fn bad_selectors_rejected() {
        let e = err("targets:\n  - {preset: workloads, labelSelector: 'app in ()'}\n");
        assert!(e.contains("key `labelSelector`") && e.contains("must not be empty"), "{e}");
    }

    #[test]
    fn registry_mirrors_are_validated_and_located() {
        let t = "targets: [{preset: workloads}]\n";
        let c = Config::parse(
            &format!("registryMirrors:\n  - {{from: index.docker.io, to: Mirror.Example/hub/}}\n{t}"),
            "c.yaml",
        )
        .unwrap();
        assert_eq!(
            &*c.registry_mirrors,
            &[crate::model::image::Mirror::new("docker.io", "mirror.example/hub").unwrap()]
        );
        assert!(Config::parse(t, "c.yaml").unwrap().registry_mirrors.is_empty());
        let e = err(&format!("registryMirrors:\n  - {{from: docker.io, to: 'https://m.example'}}\n{t}"));
        assert!(e.starts_with("c.yaml:2:5: key `registryMirrors`: `to`") && e.contains("scheme"), "{e}");
        let e = err(&format!(
            "registryMirrors:\n  - {{from: docker.io, to: m.example}}\n  - {{from: quay.io, to: m.example}}\n{t}"
        ));
        assert!(
            e.starts_with("c.yaml:3:5: ") && e.contains("one mirror prefix stands for one upstream"),
            "{e}"
        );
        assert!(err(&format!("registryMirrors: [{{from: docker.io}}]\n{t}")).contains("missing field `to`"));
    }

    #[test]
    fn timing_bounds() {
        let t = "targets: [{preset: workloads}]\n";
        assert!(err(&format!("resync: 300000000000y\n{t}")).contains("key `resync`"));
        assert!(err(&format!("resync: 1ns\n{t}")).contains("between 10s and 24h"));
        assert!(err(&format!("watchTimeout: 1s\n{t}")).contains("key `watchTimeout`"));
        assert!(err(&format!("watchIdleTimeout: 5s\n{t}")).contains("between 30s and 10m"));
        let c = Config::parse(&format!("watchIdleTimeout: 2m\n{t}"), "c.yaml").unwrap();
        assert_eq!(c.watch_idle_timeout, Duration::from_secs(120));
        assert_eq!(Config::parse(t, "c.yaml").unwrap().watch_idle_timeout, DEFAULT_WATCH_IDLE_TIMEOUT);
        let e = err("resync: 1m\nwatchTimeout: 10m\ntargets: [{preset: workloads}]\n");
        assert!(e.starts_with("c.yaml:2:15: ") && e.contains("290s"), "{e}");
    }

    #[test]
    fn semantic_errors_point_at_the_offending_key_not_0_0() {
        let e = err("targets: [{preset: workloads}]\ncontext:\n  apiServices:\n    - v1.ok.io\n    - a/b\n");
        assert!(e.starts_with("c.yaml:5:7: ") && e.contains("not an APIService name"), "{e}");
        let e = err("resync: 1m\ntargets: []\n");
        assert!(e.starts_with("c.yaml:2:10: ") && e.contains("at least one target"), "{e}");
        // A key the file lacks: the top of the file.
        assert!(err("resync: 1m\n").starts_with("c.yaml:1:1: "), "{}", err("resync: 1m\n"));
        let e = err("targets:\n  - {name: a, resource: {version: v1, kind: ConfigMap}, namespaces: [BAD]}\n");
        assert!(e.starts_with("c.yaml:2:5: ") && e.contains("not a valid namespace"), "{e}");
    }

    #[test]
    fn kubearmor_preset_watches_nodes_unless_the_file_says_no() {
        let on = Config::parse("targets: [{preset: kubearmor}]\n", "c").unwrap();
        assert!(on.context.nodes);
        let off = Config::parse("targets: [{preset: kubearmor}]\ncontext: {nodes: false}\n", "c").unwrap();
        assert!(!off.context.nodes);
        let generic = Config::parse("targets: [{preset: workloads}]\n", "c").unwrap();
        assert!(!generic.context.nodes);
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
    fn load_refuses_devices_fifos_directories_and_huge_files() {
        let dir = std::env::temp_dir().join(format!("stallwatch-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = |p: &Path| Config::load(p).unwrap_err().to_string();
        let e = load(Path::new("/dev/zero"));
        assert!(e.starts_with("/dev/zero:0:0: not a regular file"), "{e}");
        assert!(load(&dir).contains("not a regular file"));
        #[cfg(unix)]
        {
            let fifo = dir.join("fifo");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // Would block forever if opened.
            assert!(load(&fifo).contains("not a regular file"));
        }
        let big = dir.join("big.yaml");
        std::fs::write(&big, format!("# {}\ntargets: [{{preset: workloads}}]\n", "x".repeat(2 << 20)))
            .unwrap();
        assert!(load(&big).contains("a config may have at most 1048576"), "{}", load(&big));
        let bin = dir.join("bin.yaml");
        std::fs::write(&bin, b"targets: \xff\xfe\n").unwrap();
        assert!(load(&bin).contains("not UTF-8 (invalid byte at offset 9)"), "{}", load(&bin));
        let ok = dir.join("ok.yaml");
        std::fs::write(&ok, "targets: [{preset: workloads}]\n").unwrap();
        assert!(Config::load(&ok).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn duplicate_yaml_keys_rejected() {
        let e = err("resync: 1m\nresync: 2m\ntargets: [{preset: workloads}]\n");
        assert!(e.starts_with("c.yaml:2:"), "{e}");
    }
}
