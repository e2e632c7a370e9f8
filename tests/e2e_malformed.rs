//! Malformed, hostile and huge objects on the real control plane, against the real binary: a CRD
//! with `x-kubernetes-preserve-unknown-fields` lets any status through, so phases that are
//! numbers, objects or arrays, conditions that are not a list, garbage and out-of-range
//! `lastTransitionTime`s, a 1 MB message, 1000 conditions and strings with escape sequences,
//! quotes, newlines, NUL and unicode all reach the exporter. It must not panic; `/metrics` must
//! pass `promtool check metrics` (text) and a strict OpenMetrics parse
//! (tests/support/strict_exposition.rs); the landing page, `diagnose` and the log must carry no
//! raw ESC, BEL or NUL. Then config reloads with a JSONPath 1,000 deep and with nested filters
//! must be rejected while the exporter keeps serving.

mod common;

#[path = "support/strict_exposition.rs"]
mod strict_exposition;

use std::{
    io::Write as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{Ns, Stallwatch, apply_crd, kubectl_with, note, plane, stallwatch_bin, try_kubectl};
use serde_json::{Value, json};

const HOSTILE: &str =
    "Run\u{1b}[31mning\u{1b}[0m\u{7}\0 \"quoted\" back\\slash\nnew line ✓ 日本 \u{202e}rtl \u{9b}2J";
const MAX_LABEL_VALUE: usize = 1024;

fn widget(group: &str, ns: &str, name: &str, status: Value) -> Value {
    json!({"apiVersion": format!("{group}/v1"), "kind": "Widget",
           "metadata": {"name": name, "namespace": ns}, "spec": {"size": 1}, "status": status})
}

fn create(obj: &Value) {
    kubectl_with(&["create", "-f", "-"], Some(&obj.to_string()))
        .unwrap_or_else(|e| common::fail(&format!("creating {}: {e}", obj["metadata"]["name"])));
}

fn no_raw_controls(what: &str, s: &str) {
    for (c, name) in [('\u{1b}', "ESC"), ('\u{7}', "BEL"), ('\0', "NUL"), ('\u{9b}', "CSI")] {
        if let Some(i) = s.find(c) {
            let from = s[..i].char_indices().rev().nth(60).map_or(0, |(j, _)| j);
            common::fail(&format!("{what} has a raw {name} byte near {:?}", &s[from..i + c.len_utf8()]));
        }
    }
}

fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool not found ({e}); tests/setup installs Debian's prometheus"))?;
    child.stdin.take().unwrap().write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && report.trim().is_empty() { Ok(()) } else { Err(report) }
}

#[test]
fn malformed_and_huge_objects_keep_metrics_valid_and_output_escaped() {
    let p = plane();
    let group = format!("{}.stallwatch.test", common::unique("mal"));
    let crd = common::schemaless_crd(&group, "Widget", false);
    apply_crd(&crd, &format!("widgets.{group}"));
    let _crd = DeleteCrd(format!("widgets.{group}"));
    let ns = Ns::new("malformed");
    let ns = ns.name.as_str();

    let cond = |ltt: Value| json!([{"type": "Ready", "status": "False", "reason": "Waiting", "lastTransitionTime": ltt}]);
    let many: Vec<Value> = (0..1000)
        .map(|i| json!({"type": format!("Type{i}"), "status": "False", "reason": format!("Reason{i}"), "message": "x".repeat(100)}))
        .collect();
    let cases: Vec<(&str, Value)> = vec![
        ("phase-number", json!({"phase": 42})),
        ("phase-float", json!({"phase": 1e308})),
        ("phase-object", json!({"phase": {"name": "Running"}})),
        ("phase-array", json!({"phase": ["Running", 1]})),
        ("conditions-string", json!({"conditions": "Ready"})),
        ("conditions-object", json!({"conditions": {"type": "Ready", "status": "True"}})),
        ("conditions-mixed", json!({"conditions": [1, "x", null, {"type": 5, "status": []}]})),
        ("ltt-garbage", json!({"conditions": cond(json!("yesterday"))})),
        ("ltt-year-0", json!({"conditions": cond(json!("0000-01-01T00:00:00Z"))})),
        ("ltt-year-9999", json!({"conditions": cond(json!("9999-12-31T23:59:59Z"))})),
        ("ltt-number", json!({"conditions": cond(json!(-1e18))})),
        ("observed-string", json!({"observedGeneration": "one", "phase": "Running"})),
        ("huge-message", json!({"phase": "Pending", "message": "m".repeat(1 << 20)})),
        ("thousand-conditions", json!({"phase": "Pending", "conditions": many})),
        (
            "long-reason",
            json!({"phase": "r".repeat(20_000), "conditions": [{"type": "Ready", "status": "False", "reason": "R".repeat(20_000)}]}),
        ),
        (
            "hostile-strings",
            json!({"phase": HOSTILE, "conditions": [{"type": HOSTILE, "status": "False", "reason": HOSTILE, "message": HOSTILE}]}),
        ),
    ];
    for (name, status) in &cases {
        create(&widget(&group, ns, name, status.clone()));
    }
    // Annotations as large as the API server admits (256 KiB in total), with hostile text.
    let mut big = widget(&group, ns, "big-annotations", json!({"phase": "Pending"}));
    big["metadata"]["annotations"] = json!({"hostile": HOSTILE, "big": "a".repeat(250_000)});
    big["metadata"]["labels"] = json!({"app": "w", "quote-free.only": "label-values-are-validated"});
    create(&big);
    // 1 MB of annotations is refused by the API server itself, so it never reaches the exporter.
    let mut huge = widget(&group, ns, "mb-annotations", json!({}));
    huge["metadata"]["annotations"] = json!({"big": "a".repeat(1 << 20)});
    let refused = kubectl_with(&["create", "-f", "-"], Some(&huge.to_string()));
    assert!(refused.as_ref().is_err_and(|e| e.contains("Too long")), "1 MB annotations: {refused:?}");
    let expected = cases.len() + 1;
    note(format!("{expected} malformed Widgets created in {ns}"));

    let config = format!(
        "resync: 1m\nstalledAfter: 30s\ntargets:\n  - name: widgets\n    resource: {{group: {group}, version: v1, kind: Widget}}\n    namespaces: [{ns}]\n    phase: {{path: $.status.phase, ready: [Running]}}\n"
    );
    let mut sw = Stallwatch::start("malformed", &config, &p.kubeconfig);
    let m =
        sw.wait_for("every malformed Widget served", Duration::from_secs(90), &["stallwatch_status"], |m| {
            m.find("stallwatch_status", &[("namespace", ns)])
                .iter()
                .map(|s| s.label("name"))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == expected
        });
    assert!(sw.alive(), "the exporter died:\n{}", sw.log_tail(40));
    for (name, _) in &cases {
        assert!(
            !m.find("stallwatch_status", &[("namespace", ns), ("name", name)]).is_empty(),
            "{name} not served"
        );
    }

    // Text format: promtool; OpenMetrics: the strict parser. Both: no raw control bytes, and
    // every label value bounded.
    let (code, text) = sw.get("/metrics").unwrap();
    assert_eq!(code, 200);
    promtool_check(&text).unwrap_or_else(|e| sw.fail(&format!("promtool check metrics: {e}")));
    strict_exposition::check(&text, false).unwrap_or_else(|e| sw.fail(&format!("text format: {e}")));
    let (code, om) = sw.get_with("/metrics", "application/openmetrics-text; version=1.0.0").unwrap();
    assert_eq!(code, 200);
    strict_exposition::check(&om, true).unwrap_or_else(|e| sw.fail(&format!("OpenMetrics: {e}")));
    for (what, body) in [("text /metrics", &text), ("OpenMetrics /metrics", &om)] {
        no_raw_controls(what, body);
        let longest = body.lines().filter(|l| l.contains(ns)).map(str::len).max().unwrap_or(0);
        assert!(longest < 3 * MAX_LABEL_VALUE + 1000, "{what}: a {longest}-byte line");
        assert!(body.contains("…[+"), "{what}: no bounded label value marker");
    }
    let many = text.lines().filter(|l| l.contains("name=\"thousand-conditions\"")).count();
    note(format!(
        "/metrics: {} bytes text, {} bytes OpenMetrics; {many} series for the object with 1000 conditions",
        text.len(),
        om.len()
    ));
    let visible: Vec<&str> = text.lines().filter(|l| l.contains(r"\\x1b[31m")).collect();
    note(format!("series showing the hostile string visibly: {}", visible.len()));
    for l in text.lines().filter(|l| l.contains("name=\"hostile-strings\"")).take(6) {
        note(format!("  {l}"));
    }
    for (case, _) in &cases {
        let shown = |l: &&str| {
            ["stallwatch_status{", "stallwatch_phase{", "stallwatch_condition"]
                .iter()
                .any(|p| l.starts_with(p))
                && l.contains(&format!("name=\"{case}\""))
        };
        for l in text.lines().filter(shown).take(4) {
            note(format!("  {l:.300}"));
        }
    }

    // The landing page escapes HTML and shows control characters visibly.
    let (code, landing) = sw.get_with("/", "text/html").unwrap();
    assert_eq!(code, 200);
    no_raw_controls("landing page", &landing);
    assert!(landing.contains("hostile-strings"), "landing page lacks the object");
    // The hostile phase's quotes arrive as entities, never as raw markup.
    assert!(
        landing.contains("&quot;quoted&quot;") && !landing.contains("\"quoted\""),
        "landing page does not escape the hostile phase"
    );

    // diagnose: text without raw control bytes; JSON exact (the hostile phase round-trips).
    let diag = |args: &[&str]| {
        let out = Command::new(stallwatch_bin())
            .arg("diagnose")
            .arg("--config")
            .arg(&sw.config)
            .args(args)
            .arg("--kubeconfig")
            .arg(&p.kubeconfig)
            .env_remove("KUBECONFIG")
            .output()
            .expect("running diagnose");
        (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code())
    };
    let (report, code) = diag(&[]);
    note(format!("diagnose exit {code:?}, {} bytes", report.len()));
    no_raw_controls("diagnose text", &report);
    assert!(
        report.contains(r"Run\x1b[31mning\x1b[0m\x07\x00"),
        "diagnose text lacks the visible form:\n{report:.3000}"
    );
    assert!(report.len() < 2_000_000, "diagnose text is {} bytes", report.len());
    let (json_out, _) = diag(&["-o", "json"]);
    no_raw_controls("diagnose JSON", &json_out);
    let v: Value = serde_json::from_str(&json_out).expect("diagnose JSON parses");
    let phases: Vec<&Value> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "hostile-strings")
        .map(|o| &o["phase"]["phase"])
        .collect();
    assert_eq!(phases, vec![&json!(HOSTILE)], "the JSON keeps the exact value");

    let log = sw.log_text();
    no_raw_controls("exporter log", &log);
    assert!(!log.contains("panicked"), "panic in the log:\n{}", sw.log_tail(40));

    // Reloads that used to kill (stack overflow) or freeze (exponential parse) the exporter.
    let deep = format!("$.status{}0{}", "[".repeat(1000), "]".repeat(1000));
    let filters = format!("$.status.conditions{}.x{}", "[?@.a".repeat(20), "]".repeat(20));
    for (what, path) in [("1,000 deep", deep), ("20 nested filters", filters)] {
        let rejected = |log: &str| log.matches("config reload rejected").count();
        let before = rejected(&sw.log_text());
        sw.write_config(&config.replace("$.status.phase", &format!("'{path}'")));
        sw.signal(libc::SIGHUP);
        let t = Instant::now();
        common::eventually(
            &format!("reload with a JSONPath {what} rejected"),
            Duration::from_secs(15),
            || {
                let n = rejected(&sw.log_text());
                if n > before { Ok(()) } else { Err(sw.log_tail(5)) }
            },
        );
        let elapsed = t.elapsed();
        let probe = Instant::now();
        let m = sw.scrape().unwrap();
        let answered = probe.elapsed();
        note(format!("{what}: rejected within {elapsed:?}; /metrics answered in {answered:?}"));
        assert!(m.is("stallwatch_config_last_reload_successful", &[], 0.0), "{what}: reload not rejected");
        assert!(answered < Duration::from_secs(2), "{what}: /metrics took {answered:?}");
        assert!(sw.alive(), "{what}: the exporter died:\n{}", sw.log_tail(20));
        let log = sw.log_text();
        assert!(
            log.contains("JSONPath \\\"$.status") && (log.contains("nests") || log.contains("at most 1024")),
            "{what}: the log does not name the limit:\n{}",
            sw.log_tail(10)
        );
        // The objects are still served under the previous config.
        assert!(!m.find("stallwatch_status", &[("namespace", ns), ("name", "hostile-strings")]).is_empty());
    }
}

struct DeleteCrd(String);

impl Drop for DeleteCrd {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = try_kubectl(&["delete", "crd", &self.0, "--ignore-not-found", "--wait=false"]);
        }
    }
}
