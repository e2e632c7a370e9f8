//! The binary's command line as a user meets it: each fatal error printed once, flags that do
//! not apply refused, `check-config` counts, the generators' output.

use std::process::Command;

fn sw(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stallwatch"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env_remove("RUST_LOG")
        .env("HOME", std::env::temp_dir().join("stallwatch-cli-test-no-home"))
        .output()
        .expect("running stallwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn a_fatal_run_error_is_printed_once_without_a_repeated_prefix() {
    let cfg = example("kubearmor.yaml");
    let (code, out, err) = sw(&["run", "--config", &cfg, "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(err.matches("no usable cluster access").count(), 1, "{err}");
    assert_eq!(
        err.matches("/nonexistent/kubeconfig").count(),
        2,
        "named in the message once (twice in kube's text): {err}"
    );
    assert!(!err.contains("kubeconfig: kubeconfig"), "{err}");
    // No kubeconfig anywhere: the inferred-config error, once.
    let (code, _, err) = sw(&["run", "--config", &cfg]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().filter(|l| l.contains("ERROR")).count(), 1, "{err}");
    assert!(!err.contains("kubeconfig: kubeconfig"), "{err}");
}

#[test]
fn check_config_counts_and_refuses_flags_that_do_not_apply() {
    let cfg = example("kubearmor.yaml");
    let (code, out, err) = sw(&["check-config", &cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), format!("{cfg}: valid, 1 target (3 after preset expansion), 12 watches"));
    for flag in ["--listen", "--kubeconfig", "--context"] {
        let (code, _, err) = sw(&["check-config", flag, "x", &cfg]);
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains(&format!("unexpected argument '{flag}'")), "{err}");
    }
    let dir = std::env::temp_dir().join(format!("stallwatch-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "targets: [{preset: workloads}]\nwatchTimeout: 10m\n").unwrap();
    let (code, _, err) = sw(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("{}:2:15: key `watchTimeout`", bad.display())), "{err}");
}

#[test]
fn bad_listen_is_refused_before_anything_runs() {
    let (code, _, err) = sw(&["run", "--listen", "9184"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--listen \"9184\": no port") && err.contains("e.g. :9184"), "{err}");
}

#[test]
fn generators_print_what_they_say() {
    let (code, out, _) = sw(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(out.contains("complete -F") && out.contains("config-schema"), "{out}");
    let (code, out, _) = sw(&["man"]);
    assert_eq!(code, 0);
    assert!(out.contains(".TH stallwatch 1"), "{out}");
    let (code, out, _) = sw(&["config-schema"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["required"], serde_json::json!(["targets"]));
    let (code, out, err) = sw(&["rbac", "--config", &example("kubearmor.yaml")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kind: ClusterRole") && out.contains("namespace: \"kubearmor\""), "{out}");
    assert!(!out.contains("secrets") && !out.contains("\"*\""), "{out}");
    let (code, out, _) = sw(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("stallwatch {} (revision ", env!("CARGO_PKG_VERSION"))), "{out}");
}
