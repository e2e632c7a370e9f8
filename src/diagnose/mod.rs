//! `stallwatch diagnose`: a one-shot, read-only report per tracked object that walks the
//! troubleshooting checklist of docs/runbooks.md and ends with the likely causes, ranked, and
//! their remedies.
//!
//! It resolves the config's watch plan ([`watch::plan`]), lists every watch once into a fresh
//! store ([`watch::list_once`]) and builds the same [`View`] the exporter renders, so verdicts
//! and the image triangle are exactly the exporter's. What the store does not keep is fetched
//! once: Warning events with their messages, nodes (readiness, age, KubeArmor snitch labels)
//! and the APIService of each tracked group. A one-shot run has no history: times come from the
//! API's own records (managedFields, creationTimestamp), see docs/diagnose.md.
//!
//! [`rank`] turns a per-object [`Summary`] into causes. It is a pure function, tested with one
//! table row per cause. The JSON output (`version` 1) is documented in docs/diagnose.md.
//!
//! This module holds the entry points; the rest is in
//! `report` (the JSON schema), `context` (the one-shot lists), `object` (one object's report
//! and its [`Summary`]), `workloads` (its image slots and rollouts), `causes` ([`rank`] and its
//! rules) and `text` (the human report). It only reads the cluster; it never writes.

mod causes;
mod context;
mod neutral;
mod object;
mod report;
mod text;
mod workloads;

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    io::{IsTerminal, Write as _},
    sync::Arc,
    time::Duration,
};

use kube::Client;

pub use self::{
    causes::{Mismatch, OperatorState, Pin, RolloutState, Summary, rank},
    report::*,
    text::text,
};
use self::{
    context::{Context, node_report},
    object::object_report,
};
use crate::{
    cli::{DiagnoseArgs, DiagnosePreset, OutputFormat},
    clock::now,
    config::preset,
    config::{Config, Target},
    judge::verdict::Status,
    judge::view::{Locked, View},
    store::{ErrorCause, Watch},
    watch::{self, Failure},
};

/// Exit code: every object converged.
pub const EXIT_CONVERGED: u8 = 0;
/// Exit code: at least one object is not converged.
pub const EXIT_STUCK: u8 = 1;
/// Exit code: the report is incomplete (config, access or API errors).
pub const EXIT_ERROR: u8 = 2;

/// One watch's list (all pages) must finish within this.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);
/// A leader Lease not renewed for this long is stale (the alert's default threshold).
const LEASE_STALE: f64 = 600.0;
const HOUR: f64 = 3600.0;
/// The label KubeArmor's snitch puts on every Linux node it has processed.
const SNITCH_LABEL: &str = "kubearmor.io/enforcer";

// ================================================================== config and entry point

/// The config `--preset NAME [--namespace NS]` stands for.
pub fn preset_config(preset: DiagnosePreset, namespace: Option<&str>) -> Result<Config, String> {
    let ns = namespace.map(|n| serde_json::to_string(n).unwrap_or_default());
    let yaml = match (preset, ns) {
        (DiagnosePreset::Kubearmor, Some(ns)) => {
            format!("targets: [{{preset: kubearmor, namespace: {ns}}}]\n")
        }
        (DiagnosePreset::Kubearmor, None) => "targets: [{preset: kubearmor}]\n".into(),
        (DiagnosePreset::Workloads, Some(ns)) => {
            format!("targets: [{{preset: workloads, namespaces: [{ns}]}}]\n")
        }
        (DiagnosePreset::Workloads, None) => "targets: [{preset: workloads}]\n".into(),
    };
    Config::parse(&yaml, "--preset").map_err(|e| e.to_string())
}

/// `stallwatch diagnose`: prints the report and returns the exit code.
pub async fn main(args: &DiagnoseArgs) -> u8 {
    let report = collect(args).await;
    let out = match args.output {
        OutputFormat::Json => {
            let mut s = neutral::json(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            s.push('\n');
            s
        }
        OutputFormat::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            text(&report, color)
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush());
    report.exit_code
}

async fn collect(args: &DiagnoseArgs) -> Report {
    let config = match (&args.config, args.preset) {
        (Some(_), Some(_)) => Err("--config and --preset exclude each other; give one".to_string()),
        (Some(path), None) => Config::load(path).map_err(|e| e.to_string()),
        (None, Some(p)) => preset_config(p, args.namespace.as_deref()),
        (None, None) => {
            Err("nothing to check: give --config FILE, or --preset kubearmor|workloads (with --namespace NS)"
                .into())
        }
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return Report::failed("config", "config", e),
    };
    let client =
        match watch::client::connect(args.cluster.kubeconfig.as_deref(), args.cluster.context.as_deref())
            .await
        {
            Ok(c) => c,
            Err(e) => return Report::failed("kubeconfig", "connect", e.to_string()),
        };
    // With a preset the namespace shaped the config; with a file it filters the report.
    let only = if args.preset.is_none() { args.namespace.as_deref() } else { None };
    diagnose(&client, &config, only).await
}

impl Report {
    fn failed(resource: &str, cause: &str, message: String) -> Report {
        Report {
            version: JSON_VERSION,
            generated_at: rfc3339(now()),
            result: "error",
            exit_code: EXIT_ERROR,
            objects_total: 0,
            objects_not_converged: 0,
            errors: vec![CheckError {
                resource: resource.into(),
                namespace: String::new(),
                selector: String::new(),
                cause: cause.into(),
                code: 0,
                message,
            }],
            notes: Vec::new(),
            objects: Vec::new(),
            nodes: None,
        }
    }
}

/// Lists everything the config needs once and reports on every tracked object (in `only`'s
/// namespace when given).
pub async fn diagnose(client: &Client, config: &Config, only: Option<&str>) -> Report {
    let watches: Vec<Arc<Watch>> =
        watch::plan(config).into_iter().map(|(k, s)| Arc::new(Watch::new(k, s))).collect();
    let results = futures::future::join_all(watches.iter().map(|w| async move {
        match tokio::time::timeout(LIST_TIMEOUT, watch::list_once(client, w)).await {
            Ok(r) => r,
            Err(_) => Err(Failure {
                cause: ErrorCause::Timeout,
                code: 0,
                message: format!("listing {} timed out after {}s", w.key.gvk.label(), LIST_TIMEOUT.as_secs()),
                retry_after: None,
            }),
        }
    }))
    .await;
    let mut errors = Vec::new();
    for (w, r) in watches.iter().zip(results) {
        if let Err(f) = r {
            errors.push(CheckError {
                resource: w.key.gvk.label(),
                namespace: w.key.namespace.clone(),
                selector: w.key.selector_label(),
                cause: f.cause.label().into(),
                code: f.code,
                message: f.message,
            });
        }
    }

    // What the store does not keep, fetched once for the namespaces and groups in question.
    let mut namespaces = BTreeSet::new();
    let mut groups = BTreeSet::new();
    let mut kubearmor = false;
    for w in &watches {
        for t in &w.subs.targets {
            if !t.resource.group.is_empty() {
                groups.insert(format!("{}.{}", t.resource.version, t.resource.group));
            }
            kubearmor |= is_kubearmor(t);
        }
        if !w.subs.targets.is_empty() {
            w.read(|s| {
                for (ns, _) in s.objects.keys() {
                    if !ns.is_empty() && only.is_none_or(|o| o == &**ns) {
                        namespaces.insert(ns.to_string());
                    }
                }
            });
        }
    }
    let mut notes = Vec::new();
    let ctx = Context::fetch(client, &namespaces, &groups, &mut notes).await;

    let now = now();
    let locked = Locked::new(&watches);
    let view = View::new(&locked, now);
    let nodes = ctx.nodes.as_ref().map(|n| node_report(n, now, kubearmor));
    let mut objects = Vec::new();
    for o in &view.objects {
        if only.is_some_and(|ns| ns != o.namespace) {
            continue;
        }
        objects.push(object_report(&view, o, &ctx, nodes.as_ref(), now));
    }
    // Targets with nothing to report are worth a line (a missing KubeArmorConfig, say).
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for w in &watches {
        for t in &w.subs.targets {
            if !seen.insert((t.name.clone(), t.resource.label())) {
                continue;
            }
            let any = objects.iter().any(|o| o.target == t.name && o.kind == t.resource.kind);
            let failed = errors.iter().any(|e| e.resource == t.resource.label());
            if !any && !failed {
                let wher = if t.namespaces.is_empty() {
                    only.map_or("any namespace".into(), |n| format!("namespace {n}"))
                } else {
                    format!("namespace {}", t.namespaces.join(", "))
                };
                notes.push(format!("target {}: no {} found in {wher}", t.name, t.resource.kind));
            }
        }
    }
    drop(view);
    drop(locked);

    let not_converged = objects.iter().filter(|o| o.verdict.status != Status::Current.label()).count();
    let (result, exit_code) = if !errors.is_empty() {
        ("error", EXIT_ERROR)
    } else if not_converged > 0 {
        ("stuck", EXIT_STUCK)
    } else {
        ("converged", EXIT_CONVERGED)
    };
    // Not Current first, longest unconverged first; then by kind and name.
    objects.sort_by(|a, b| {
        let key =
            |o: &ObjectReport| (o.verdict.status == "Current", -o.verdict.unconverged_seconds.unwrap_or(0.0));
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then_with(|| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)))
    });
    Report {
        version: JSON_VERSION,
        generated_at: rfc3339(now),
        result,
        exit_code,
        objects_total: objects.len(),
        objects_not_converged: not_converged,
        errors,
        notes,
        objects,
        nodes,
    }
}

/// A target of the kubearmor preset: KubeArmor's known failure modes apply.
fn is_kubearmor(t: &Target) -> bool {
    t.resource.group == preset::KUBEARMOR_GROUP && t.resource.kind == preset::KUBEARMOR_KIND
}

// ================================================================== shared formatting

fn rfc3339(t: f64) -> String {
    jiff::Timestamp::from_second(t as i64).map_or_else(|_| format!("{t}"), |ts| ts.to_string())
}

fn dur(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs(secs.max(0.0) as u64)).to_string()
}

fn list(items: &[String], max: usize) -> String {
    let mut s = items.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        let _ = write!(s, " and {} more", items.len() - max);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_configs() {
        let c = preset_config(DiagnosePreset::Kubearmor, Some("security")).unwrap();
        assert!(c.targets.iter().all(|t| t.namespaces == ["security"]));
        assert!(c.context.nodes);
        let c = preset_config(DiagnosePreset::Workloads, None).unwrap();
        assert!(c.targets.iter().all(|t| t.namespaces.is_empty()));
        let c = preset_config(DiagnosePreset::Workloads, Some("a")).unwrap();
        assert!(c.targets.iter().all(|t| t.namespaces == ["a"]));
        let e = preset_config(DiagnosePreset::Kubearmor, Some("Bad NS}")).unwrap_err();
        assert!(e.contains("not a valid namespace"), "{e}");
    }
}
