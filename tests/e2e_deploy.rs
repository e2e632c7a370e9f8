//! The Helm chart's RBAC is enough, and no more (issue #6): render the chart for the
//! kubearmor and workloads values, apply its ServiceAccount and roles to the real control plane,
//! run stallwatch with a token of that ServiceAccount, and check that every watch syncs and that
//! the account can read no Secrets and write nothing.

mod common;

use std::{path::PathBuf, process::Command, time::Duration};

use common::{
    Ns, Stallwatch, kubearmor, kubectl, kubectl_status, kubectl_with, plane, repo, write_kubeconfig,
};

/// helm from tests/deploy/build-tools (built from its Go module, cached).
fn helm() -> PathBuf {
    let out = Command::new(repo().join("tests/deploy/build-tools"))
        .output()
        .expect("running tests/deploy/build-tools");
    assert!(
        out.status.success(),
        "tests/deploy/build-tools failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8_lossy(&out.stdout).lines().last().expect("bin dir").trim().to_string();
    PathBuf::from(bin).join("helm")
}

/// `helm template` of the chart in `ns` with extra `--set` values; returns the identity and RBAC
/// manifests and the rendered stallwatch config. Each test uses its own release name, since the
/// ClusterRoles are cluster-wide.
fn render(release: &str, ns: &str, values: Option<&str>, sets: &[String]) -> (String, String) {
    let mut cmd = Command::new(helm());
    cmd.args(["template", release, "deploy/helm/stallwatch", "--namespace", ns]).current_dir(repo());
    if let Some(v) = values {
        cmd.args(["-f", v]);
    }
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("running helm");
    assert!(out.status.success(), "helm template failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let manifests = String::from_utf8(out.stdout).expect("utf-8 manifests");
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&manifests).expect("parsing rendered manifests");
    let config = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .and_then(|d| d["data"]["config.yaml"].as_str())
        .expect("the chart renders a ConfigMap with config.yaml")
        .to_string();
    // Only identity and permissions: the Deployment itself is exercised by the dry-run check.
    let keep: Vec<String> = docs
        .into_iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding")
            )
        })
        .map(|d| serde_json::to_string(&d).expect("json"))
        .collect();
    (keep.join("\n---\n"), config)
}

fn token_kubeconfig(ns: &str, sa: &str, name: &str) -> PathBuf {
    let token = kubectl(&["-n", ns, "create", "token", sa, "--duration=1h"]);
    let dir = std::env::temp_dir().join(common::unique(name));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("kubeconfig");
    write_kubeconfig(&path, plane().apiserver_url(), Some(token.trim()));
    path
}

/// `kubectl auth can-i` as the ServiceAccount; true when allowed.
fn can_i(ns: &str, sa: &str, args: &[&str]) -> bool {
    let who = format!("system:serviceaccount:{ns}:{sa}");
    let mut full = vec!["auth", "can-i", "--as", &who];
    full.extend_from_slice(args);
    kubectl_status(&full).0
}

fn assert_read_only(ns: &str, sa: &str, readable: &[&str]) {
    for r in readable {
        assert!(can_i(ns, sa, &["list", r, "-n", ns]), "{sa} should list {r}");
    }
    for verb in ["create", "update", "patch", "delete"] {
        for r in [
            "pods",
            "deployments.apps",
            "daemonsets.apps",
            "replicasets.apps",
            "configmaps",
            "kubearmorconfigs.operator.kubearmor.com",
        ] {
            assert!(!can_i(ns, sa, &[verb, r, "-n", ns]), "{sa} must not {verb} {r}");
        }
    }
    assert!(!can_i(ns, sa, &["get", "secrets", "-n", ns]), "{sa} must not read secrets");
    assert!(
        !can_i(ns, sa, &["list", "secrets", "--all-namespaces"]),
        "{sa} must not list secrets cluster-wide"
    );
    assert!(!can_i(ns, sa, &["create", "pods/exec", "-n", ns]), "{sa} must not exec");
}

/// Every watch of the exporter synced and none forbidden.
fn all_synced(sw: &Stallwatch, what: &str) {
    sw.wait_for(
        what,
        Duration::from_secs(60),
        &["stallwatch_synced", "stallwatch_watch_errors_total"],
        |m| {
            let synced = m.find("stallwatch_synced", &[]);
            !synced.is_empty()
                && synced.iter().all(|s| s.value == 1.0)
                && m.sum("stallwatch_watch_errors_total", &[("cause", "forbidden")]) == 0.0
        },
    );
}

#[test]
fn chart_rbac_runs_the_kubearmor_preset_and_is_read_only() {
    let ns = Ns::new("deploy-ka");
    let ns = &ns.name;
    kubearmor::ensure_crd();
    let sets = [format!("config.targets[0].namespace={ns}"), "config.stalledAfter=20s".to_string()];
    let (rbac, config) = render("swka", ns, Some("deploy/helm/stallwatch/values-kubearmor.yaml"), &sets);
    let _cleanup = common::ClusterRbac("swka-stallwatch".into());
    kubectl_with(&["apply", "-f", "-"], Some(&rbac)).expect("applying the chart's RBAC");
    common::apply(&kubearmor::config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
    common::apply(&kubearmor::daemonset_yaml(ns));
    common::apply(&kubearmor::operator_deployment_yaml(ns));

    let kc = token_kubeconfig(ns, "swka-stallwatch", "deploy-ka");
    let sw = Stallwatch::start("deploy-ka", &config, &kc);
    all_synced(&sw, "every kubearmor-preset watch synced with the chart's ServiceAccount");
    let m = sw.scrape().expect("scrape");
    assert!(m.has_family("stallwatch_image_mismatch"));
    assert!(
        !m.find("stallwatch_image_mismatch", &[("namespace", ns), ("slot", "kubearmor")]).is_empty(),
        "the image triangle works under the chart's RBAC:\n{}",
        m.dump(&["stallwatch_image_mismatch"])
    );
    assert_read_only(
        ns,
        "swka-stallwatch",
        &["kubearmorconfigs.operator.kubearmor.com", "daemonsets.apps", "replicasets.apps", "pods", "events"],
    );
}

#[test]
fn chart_rbac_runs_the_workloads_preset_and_is_read_only() {
    let ns = Ns::new("deploy-wl");
    let ns = &ns.name;
    let sets =
        ["config.targets[0].preset=workloads".to_string(), format!("config.targets[0].namespaces[0]={ns}")];
    let (rbac, config) = render("swwl", ns, None, &sets);
    let _cleanup = common::ClusterRbac("swwl-stallwatch".into());
    kubectl_with(&["apply", "-f", "-"], Some(&rbac)).expect("applying the chart's RBAC");
    let kc = token_kubeconfig(ns, "swwl-stallwatch", "deploy-wl");
    let sw = Stallwatch::start("deploy-wl", &config, &kc);
    all_synced(&sw, "every workloads-preset watch synced with the chart's ServiceAccount");
    assert_read_only(
        ns,
        "swwl-stallwatch",
        &["deployments.apps", "daemonsets.apps", "statefulsets.apps", "replicasets.apps", "pods"],
    );
}
