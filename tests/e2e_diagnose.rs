//! `stallwatch diagnose` and the landing page along the KubeArmor story,
//! on the real test control plane, against the real binary.
//!
//! 1. converged: diagnose exits 0 with verdict Current; the landing page says all is Current.
//! 2. the image changes and the operator is stuck: the landing page (rendered by headless
//!    Chromium) shows the KubeArmorConfig's row with its status, reason and the mismatch;
//!    diagnose exits 1, shows the slot mismatch (desired v2, template v1, which pods run what)
//!    and ranks "restart the operator" first, also when run as `kubectl stallwatch diagnose`.
//! 3. the remedy diagnose printed is run (`kubectl rollout restart` of the operator), the
//!    operator re-pushes the image: diagnose exits 0, the landing page is all Current again.
//!
//! A separate test: a token that may not list kubearmorconfigs makes diagnose exit 2 and name
//! the problem.

mod common;

use std::{
    io::Read as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    Ns, Stallwatch, apply, eventually_async, fail, kubearmor as ka, kubectl, note, plane, stallwatch_bin,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use kube::{Api, api::DynamicObject};
use serde_json::Value;

/// The stallwatch config of the story: the kubearmor preset on the test namespace.
fn sw_config(ns: &str, stalled_after: &str) -> String {
    format!(
        "resync: 1m\nstalledAfter: {stalled_after}\ntargets:\n  - preset: kubearmor\n    namespace: {ns}\n"
    )
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-diagnose");
    std::fs::create_dir_all(&dir).expect("creating the artifacts dir");
    dir
}

// ------------------------------------------------------------------ running processes

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs a command with a deadline; its output is read while it runs.
fn run(mut cmd: Command, what: &str, timeout: Duration) -> Run {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| fail(&format!("starting {what}: {e}")));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for a child") {
            break st;
        }
        if t0.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            fail(&format!("{what} did not finish within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// `stallwatch diagnose ARGS --kubeconfig K` (no KUBECONFIG from the environment).
fn diagnose(args: &[&str], kubeconfig: &Path) -> Run {
    let mut cmd = Command::new(stallwatch_bin());
    cmd.arg("diagnose").args(args).arg("--kubeconfig").arg(kubeconfig).env_remove("KUBECONFIG");
    let what = format!("stallwatch diagnose {}", args.join(" "));
    let r = run(cmd, &what, Duration::from_secs(90));
    note(format!("{what}: exit {}", r.code));
    r
}

fn json(r: &Run, what: &str) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
        fail(&format!("{what}: stdout is not JSON ({e}):\n{}\nstderr:\n{}", r.stdout, r.stderr))
    })
}

/// Fails with the whole output unless the exit code is `code`.
fn expect_exit(r: &Run, code: i32, what: &str) {
    if r.code != code {
        fail(&format!(
            "{what}: exit code {} (want {code})\n--- stdout\n{}\n--- stderr\n{}",
            r.code, r.stdout, r.stderr
        ));
    }
}

/// The object of `kind` in the JSON report.
fn object<'a>(report: &'a Value, kind: &str, ns: &str) -> &'a Value {
    report["objects"]
        .as_array()
        .and_then(|objs| objs.iter().find(|o| o["kind"] == kind && o["namespace"] == ns))
        .unwrap_or_else(|| fail(&format!("no {kind} in namespace {ns} in the report:\n{report:#}")))
}

fn slot<'a>(obj: &'a Value, name: &str) -> &'a Value {
    obj["images"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["slot"] == name))
        .unwrap_or_else(|| fail(&format!("no slot {name}:\n{obj:#}")))
}

// ------------------------------------------------------------------ headless Chromium

/// Headless Chromium, or a clear failure: tests/setup installs it.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("STALLWATCH_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    fail(
        "headless Chromium not found (looked for `chromium` and `chromium-browser` on PATH): the landing page \
         test renders `/` in a real browser. Install it with tests/setup (Debian: `apt-get install -y chromium`) \
         or point STALLWATCH_CHROMIUM at the binary.",
    )
}

/// Renders `url` in headless Chromium and returns the DOM after load; also writes a screenshot.
fn render(chromium: &Path, url: &str, screenshot: &Path) -> String {
    let profile = std::env::temp_dir().join(common::unique("stallwatch-chromium"));
    std::fs::create_dir_all(&profile).expect("chromium profile dir");
    let base = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    };
    let mut cmd = Command::new(chromium);
    base(&mut cmd);
    cmd.arg("--dump-dom").arg(url);
    let dom = run(cmd, "chromium --dump-dom", Duration::from_secs(60));
    if dom.code != 0 || !dom.stdout.contains("<html") {
        fail(&format!("chromium --dump-dom {url}: exit {}\n{}\n{}", dom.code, dom.stdout, dom.stderr));
    }
    let mut cmd = Command::new(chromium);
    base(&mut cmd);
    cmd.arg(format!("--screenshot={}", screenshot.display())).arg(url);
    let shot = run(cmd, "chromium --screenshot", Duration::from_secs(60));
    if shot.code == 0 && screenshot.exists() {
        note(format!("landing page screenshot: {}", screenshot.display()));
    } else {
        note(format!("no screenshot (exit {}): {}", shot.code, shot.stderr.lines().last().unwrap_or("")));
    }
    let _ = std::fs::remove_dir_all(&profile);
    dom.stdout
}

/// Loads `url` in a 1280 px wide frame of headless Chromium (every `<details>` opened) and
/// returns the page's scroll width and the elements whose right edge is beyond 1280 px.
fn width_at_1280(chromium: &Path, url: &str, dir: &Path) -> (f64, Vec<String>) {
    let wrapper = dir.join("measure-1280.html");
    let html = format!(
        r#"<!doctype html><html><body style="margin:0"><iframe id="f" src="{url}" style="width:1280px;height:900px;border:0"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {{
  var d = this.contentDocument;
  d.querySelectorAll('details').forEach(function (e) {{ e.open = true; }});
  var over = [];
  d.querySelectorAll('body *').forEach(function (e) {{
    var r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > 1280.5) over.push(e.tagName + '#' + e.id + '.' + e.className + ' right=' + Math.round(r.right));
  }});
  var out = document.createElement('pre');
  out.id = 'measure';
  out.textContent = 'scrollWidth=' + d.documentElement.scrollWidth + '\n' + over.join('\n');
  document.body.appendChild(out);
}});
</script></body></html>"#
    );
    std::fs::write(&wrapper, &html).expect("writing the measuring page");
    // Served over loopback HTTP: Chromium will not let a file:// page read another origin's frame.
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the measuring page's port");
    let page_url = format!("http://{}/", server.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        for mut c in server.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    let profile = std::env::temp_dir().join(common::unique("stallwatch-chromium-measure"));
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        // The measuring page (another port) reads the landing page's layout in its frame.
        "--disable-web-security",
        "--disable-site-isolation-trials",
        "--virtual-time-budget=10000",
        "--window-size=1400,1000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg("--dump-dom")
    .arg(&page_url);
    let r = run(cmd, "chromium --dump-dom (measure)", Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&profile);
    let text = r.stdout.split("<pre id=\"measure\">").nth(1).and_then(|t| t.split("</pre>").next());
    let Some(text) = text else {
        fail(&format!("the measuring page reported nothing (exit {}):\n{}\n{}", r.code, r.stdout, r.stderr))
    };
    let mut lines = text.lines();
    let width = lines
        .next()
        .and_then(|l| l.strip_prefix("scrollWidth="))
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or_else(|| fail(&format!("no scrollWidth in {text:?}")));
    (width, lines.filter(|l| !l.is_empty()).map(str::to_string).collect())
}

/// The `<tr>` of an object in the landing page's DOM.
fn landing_row<'a>(dom: &'a str, kind: &str, ns: &str) -> Option<&'a str> {
    let start = dom.find(&format!("data-kind=\"{kind}\" data-namespace=\"{ns}\""))?;
    let row = &dom[start..];
    Some(&row[..row.find("</tr>").unwrap_or(row.len())])
}

// ------------------------------------------------------------------ the story

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_and_landing_page_along_the_kubearmor_story() {
    let chromium = chromium();
    let p = plane();
    ka::ensure_crd();
    // A real KubeArmor has its snitch label every Linux node; the story is about the image.
    kubectl(&["label", "nodes", "-l", "type=kwok", "kubearmor.io/enforcer=bpf", "--overwrite"]);
    let ns_guard = Ns::new("ka-diag");
    let ns = ns_guard.name.as_str();
    let client = common::client().await;
    let crs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ka::kac());
    let dss: Api<DaemonSet> = Api::namespaced(client.clone(), ns);
    let art = artifacts();

    // ---- 1. converged
    note("step 1: KubeArmorConfig, its DaemonSet and the operator Deployment, converged");
    apply(&ka::config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
    apply(&ka::daemonset_yaml(ns));
    apply(&ka::operator_deployment_yaml(ns));
    let operator = ka::Operator::start(client.clone(), ns);
    eventually_async("DaemonSet rolled out, CR Running", Duration::from_secs(90), || async {
        let d = dss.get(ka::DS).await.map_err(|e| e.to_string())?;
        let c = crs.get(ka::CR).await.map_err(|e| e.to_string())?;
        let phase = c.data["status"]["phase"].as_str().unwrap_or("").to_string();
        if ka::rolled_out(&d) && phase == "Running" {
            Ok(())
        } else {
            Err(format!("phase {phase:?}, {:?}", d.status))
        }
    })
    .await;
    kubectl(&["-n", ns, "rollout", "status", &format!("deployment/{}", ka::OPERATOR), "--timeout=60s"]);

    let sw = Stallwatch::start("diagnose", &sw_config(ns, "15s"), &p.kubeconfig);
    let config = sw.config.clone();
    let config_arg = config.to_str().expect("utf-8 path");
    let cr = [("kind", "KubeArmorConfig"), ("namespace", ns), ("name", ka::CR)];
    let current =
        |m: &common::Metrics| m.is("stallwatch_status", &[cr[0], cr[1], cr[2], ("status", "Current")], 1.0);
    sw.wait_for("step 1: KubeArmorConfig Current", Duration::from_secs(30), &["stallwatch_status"], current);

    let r = diagnose(&["--config", config_arg, "-o", "json"], &p.kubeconfig);
    expect_exit(&r, 0, "step 1: diagnose --config -o json");
    let report = json(&r, "step 1");
    assert_eq!(report["version"], 1);
    assert_eq!(report["result"], "converged", "{report:#}");
    let obj = object(&report, "KubeArmorConfig", ns);
    assert_eq!(obj["verdict"]["status"], "Current", "{obj:#}");
    assert_eq!(obj["generation"]["observed"], true, "{obj:#}");
    assert_eq!(obj["generation"]["source"], "derived", "{obj:#}");
    assert_eq!(obj["phase"]["phase"], "Running", "{obj:#}");
    assert_eq!(obj["phase"]["since_source"], "managedFields", "{obj:#}");
    assert_eq!(slot(obj, "kubearmor")["workloads"][0]["mismatch"], false, "{obj:#}");
    assert_eq!(obj["operator"]["pods"][0]["ready"], true, "{obj:#}");
    assert_eq!(obj["apiservice"]["available"], true, "{obj:#}");
    assert!(obj["causes"].as_array().is_some_and(Vec::is_empty), "{obj:#}");
    let r = diagnose(&["--preset", "kubearmor", "--namespace", ns], &p.kubeconfig);
    expect_exit(&r, 0, "step 1: diagnose --preset kubearmor");
    assert!(r.stdout.contains("Result: CONVERGED (exit 0)"), "{}", r.stdout);
    assert!(!r.stdout.contains('\x1b'), "colour on a pipe:\n{}", r.stdout);
    let dom = render(&chromium, &format!("{}/", sw.url()), &art.join("landing-converged.png"));
    assert!(dom.contains("id=\"all-converged\""), "step 1: the landing page is not all Current:\n{dom}");

    // ---- 2. the image changes, the operator is stuck
    note(
        "step 2: spec.kubearmorImage.image -> v2; the operator marks Pending and never updates the DaemonSet",
    );
    operator.set(ka::Mode::Stuck);
    ka::set_cr_image(&crs, "kubearmor/kubearmor:v2").await;
    sw.wait_for(
        "step 2: Stalled with the image mismatch",
        Duration::from_secs(60),
        &["stallwatch_status"],
        |m| {
            m.is("stallwatch_status", &[cr[0], cr[1], cr[2], ("status", "Stalled")], 1.0)
                && m.sum("stallwatch_image_mismatch", &cr) == 1.0
        },
    );

    let dom = render(&chromium, &format!("{}/", sw.url()), &art.join("landing-stuck.png"));
    std::fs::write(art.join("landing-stuck.html"), &dom).expect("writing the DOM");
    let row = landing_row(&dom, "KubeArmorConfig", ns).unwrap_or_else(|| {
        fail(&format!("step 2: no KubeArmorConfig row for {ns} on the landing page:\n{dom}"))
    });
    assert!(
        row.contains("<td class=\"status nw\">Stalled</td>")
            || row.contains("<td class=\"status nw\">InProgress</td>"),
        "step 2: the row has no Stalled/InProgress status:\n{row}"
    );
    // What to do: the top cause, the first remedy (restart the operator that pins the images) and
    // the runbook, the mismatch (the reason's evidence) first.
    assert!(
        row.contains(
            "<p class=\"cause\">Likely: the operator has not pushed image kubearmor/kubearmor:v2 to DaemonSet"
        ),
        "{row}"
    );
    let restart_cmd = format!("kubectl -n {ns} rollout restart deployment/{}", ka::OPERATOR);
    assert!(row.contains(&format!("<code class=\"command\">{restart_cmd}</code>")), "{row}");
    assert!(row.contains("docs/runbooks.md#stallwatchimagenotrolledout\">runbook</a>"), "{row}");
    let first_item = row.split("<li>").nth(1).unwrap_or("");
    assert!(
        first_item.starts_with("image kubearmor:"),
        "step 2: the mismatch is not the first evidence:\n{row}"
    );
    // The header: version with revision, uptime, config file, the accepted load, thresholds.
    assert!(dom.contains(&format!("<dd id=\"version\">{}</dd>", stallwatch::build::LONG_VERSION)), "{dom}");
    assert!(dom.contains("<dd id=\"reload\" class=\"accepted\">accepted at "), "{dom}");
    assert!(dom.contains("<dd id=\"config\"><code>") && dom.contains("<dd id=\"uptime\">"), "{dom}");
    assert!(dom.contains("<dd id=\"stalled-after\">") && dom.contains("<dd id=\"resync\">"), "{dom}");
    // Healthy watches are folded; nothing is wider than a 1280 px window.
    assert!(dom.contains("<details id=\"healthy-watches\"><summary>"), "{dom}");
    let (width, over) = width_at_1280(&chromium, &format!("{}/", sw.url()), &art);
    note(format!("step 2: landing page scroll width at 1280 px: {width}"));
    assert!(
        width <= 1280.0 && over.is_empty(),
        "step 2: the landing page overflows 1280 px (scrollWidth {width}):\n{}",
        over.join("\n")
    );
    assert!(row.contains("<td class=\"reason\">ImageNotRolledOut</td>"), "{row}");
    assert!(row.contains(&format!("data-name=\"{}\"", ka::CR)), "{row}");
    assert!(
        row.contains(&format!(
            "image kubearmor: DaemonSet {ns}/{} container kubearmor has docker.io/kubearmor/kubearmor:v1, wants kubearmor/kubearmor:v2",
            ka::DS
        )),
        "step 2: the mismatch detail is missing from the row:\n{row}"
    );
    assert!(row.contains("phase Pending for"), "{row}");
    for link in ["/metrics", "/healthz", "/readyz"] {
        assert!(dom.contains(&format!("href=\"{link}\"")), "no link to {link}");
    }

    let r = diagnose(&["--config", config_arg, "-o", "json"], &p.kubeconfig);
    expect_exit(&r, 1, "step 2: diagnose --config -o json");
    let report = json(&r, "step 2");
    assert_eq!(report["result"], "stuck", "{report:#}");
    std::fs::write(art.join("diagnose-stuck.json"), &r.stdout).expect("writing the JSON");
    let obj = object(&report, "KubeArmorConfig", ns);
    assert_eq!(obj["verdict"]["status"], "Stalled", "{obj:#}");
    assert_eq!(obj["verdict"]["reason"], "ImageNotRolledOut", "{obj:#}");
    assert_eq!(obj["generation"]["generation"], 2, "{obj:#}");
    assert_eq!(obj["generation"]["observed"], false, "{obj:#}");
    assert_eq!(obj["phase"]["phase"], "Pending", "{obj:#}");
    let s = slot(obj, "kubearmor");
    assert_eq!(s["desired"], "kubearmor/kubearmor:v2", "{s:#}");
    assert_eq!(s["desired_source"], "object", "{s:#}");
    let w = &s["workloads"][0];
    assert_eq!((&w["kind"], &w["name"]), (&Value::from("DaemonSet"), &Value::from(ka::DS)), "{w:#}");
    assert_eq!(w["template_image"], "docker.io/kubearmor/kubearmor:v1", "{w:#}");
    assert_eq!(w["mismatch"], true, "{w:#}");
    let pods = w["pods"].as_array().expect("pods");
    assert!(!pods.is_empty(), "{w:#}");
    for pod in pods {
        assert_eq!(pod["runs_desired"], false, "{pod:#}");
        assert_eq!(pod["image"], "docker.io/kubearmor/kubearmor:v1", "{pod:#}");
        assert!(pod["node"].as_str().is_some_and(|n| !n.is_empty()), "{pod:#}");
    }
    let first = &obj["causes"][0];
    assert_eq!(first["rank"], 1, "{obj:#}");
    assert_eq!(first["id"], "operator-missed-update", "{:#}", obj["causes"]);
    let restart = format!("kubectl -n {ns} rollout restart deployment/{}", ka::OPERATOR);
    // Evidence first (the operator log), then the restart.
    assert_eq!(first["remedies"][1]["commands"][0], restart.as_str(), "{first:#}");

    // The text report, as a person reads it (kept for docs/diagnose.md).
    let r = diagnose(&["--config", config_arg], &p.kubeconfig);
    expect_exit(&r, 1, "step 2: diagnose --config (text)");
    std::fs::write(art.join("diagnose-stuck.txt"), &r.stdout).expect("writing the text report");
    note(format!("step 2 text report ({}):\n{}", art.join("diagnose-stuck.txt").display(), r.stdout));
    for want in [
        "MISMATCH",
        "1. The operator never pushed the new image to DaemonSet",
        &format!("$ {restart}"),
        "Result: STUCK (exit 1)",
    ] {
        assert!(r.stdout.contains(want), "text report lacks {want:?}:\n{}", r.stdout);
    }

    // As a kubectl plugin: the binary (here a symlink) named kubectl-stallwatch on PATH.
    let plugin_dir = std::env::temp_dir().join(common::unique("stallwatch-plugin"));
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::os::unix::fs::symlink(stallwatch_bin(), plugin_dir.join("kubectl-stallwatch")).expect("symlink");
    let path = std::env::join_paths(
        std::iter::once(plugin_dir.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let kubectl_plugin = |args: &[&str]| {
        let mut cmd = Command::new(&p.kubectl);
        cmd.arg("stallwatch").args(args).env("PATH", &path).env("KUBECONFIG", &p.kubeconfig);
        run(cmd, &format!("kubectl stallwatch {}", args.join(" ")), Duration::from_secs(90))
    };
    let r = kubectl_plugin(&["diagnose", "--help"]);
    expect_exit(&r, 0, "kubectl stallwatch diagnose --help");
    assert!(r.stdout.contains("Usage: kubectl stallwatch diagnose"), "{}", r.stdout);
    let r = kubectl_plugin(&["diagnose", "-n", ns, "--preset", "kubearmor", "-o", "json"]);
    expect_exit(&r, 1, "kubectl stallwatch diagnose -n NS --preset kubearmor -o json");
    let report = json(&r, "kubectl stallwatch diagnose");
    let obj = object(&report, "KubeArmorConfig", ns);
    assert_eq!(obj["causes"][0]["id"], "operator-missed-update", "{obj:#}");
    assert_eq!(obj["causes"][0]["remedies"][1]["commands"][0], restart.as_str(), "{obj:#}");
    let _ = std::fs::remove_dir_all(&plugin_dir);

    // ---- 3. take the remedy diagnose ranked first
    note(format!("step 3: running the first remedy: {restart}"));
    let args: Vec<&str> = restart.split_whitespace().skip(1).collect();
    kubectl(&args);
    kubectl(&["-n", ns, "rollout", "status", &format!("deployment/{}", ka::OPERATOR), "--timeout=60s"]);
    // The restarted operator re-reads the config and pushes the image (what the real one does
    // when the config was Running; see docs/runbooks.md, remedy 1).
    operator.set(ka::Mode::Working);
    sw.wait_for(
        "step 3: KubeArmorConfig Current again",
        Duration::from_secs(90),
        &["stallwatch_status"],
        current,
    );
    let r = diagnose(&["--config", config_arg, "-o", "json"], &p.kubeconfig);
    expect_exit(&r, 0, "step 3: diagnose after the restart");
    let report = json(&r, "step 3");
    let obj = object(&report, "KubeArmorConfig", ns);
    assert_eq!(obj["verdict"]["status"], "Current", "{obj:#}");
    let w = &slot(obj, "kubearmor")["workloads"][0];
    assert_eq!(w["template_image"], "docker.io/kubearmor/kubearmor:v2", "{w:#}");
    assert!(w["pods"].as_array().is_some_and(|ps| ps.iter().all(|p| p["runs_desired"] == true)), "{w:#}");
    let dom = render(&chromium, &format!("{}/", sw.url()), &art.join("landing-recovered.png"));
    assert!(dom.contains("id=\"all-converged\""), "step 3: the landing page is not all Current:\n{dom}");
    drop(operator);
    drop(sw);
}

// ------------------------------------------------------------------ could not check

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_exits_2_and_names_what_it_may_not_list() {
    let p = plane();
    ka::ensure_crd();
    let ns_guard = Ns::new("ka-diag-rbac");
    let ns = ns_guard.name.as_str();
    apply(&ka::config_yaml(ns, "kubearmor/kubearmor:v1", "kubearmor/kubearmor-init:v1"));
    apply(&ka::daemonset_yaml(ns));
    // Everything the kubearmor preset reads, except kubearmorconfigs.
    let role = format!("stallwatch-diag-{ns}");
    apply(&format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: diagnose, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {role}}}
rules:
  - {{apiGroups: [""], resources: [pods, nodes, events], verbs: [get, list, watch]}}
  - {{apiGroups: [apps], resources: [deployments, daemonsets, replicasets], verbs: [get, list, watch]}}
  - {{apiGroups: [apiregistration.k8s.io], resources: [apiservices], verbs: [get, list, watch]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {role}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
subjects: [{{kind: ServiceAccount, name: diagnose, namespace: {ns}}}]
"#
    ));
    let _cleanup = common::ClusterRbac(role);
    let token = kubectl(&["-n", ns, "create", "token", "diagnose", "--duration=1h"]);
    let dir = std::env::temp_dir().join(common::unique("stallwatch-diag-rbac"));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    common::write_kubeconfig(&kubeconfig, p.apiserver_url(), Some(token.trim()));
    let problem = format!("forbidden: cannot list kubearmorconfigs.operator.kubearmor.com in namespace {ns}");

    // RBAC is eventually consistent in the authorizer's cache: retry until it has settled on
    // "the DaemonSet may be listed".
    let t0 = Instant::now();
    let r = loop {
        let r = diagnose(&["--preset", "kubearmor", "-n", ns, "-o", "json"], &kubeconfig);
        let report = json(&r, "diagnose with a forbidden token");
        let errors = report["errors"].as_array().cloned().unwrap_or_default();
        if errors.len() == 1 || t0.elapsed() > Duration::from_secs(30) {
            break (r, report);
        }
        std::thread::sleep(common::POLL);
    };
    let (r, report) = r;
    expect_exit(&r, 2, "diagnose with a token that may not list kubearmorconfigs");
    assert_eq!(report["result"], "error", "{report:#}");
    let errors = report["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "only the KubeArmorConfig list is forbidden: {errors:#?}");
    let e = &errors[0];
    assert_eq!(e["resource"], "operator.kubearmor.com/v1/KubeArmorConfig", "{e:#}");
    assert_eq!(e["cause"], "forbidden", "{e:#}");
    assert_eq!(e["code"], 403, "{e:#}");
    assert!(e["message"].as_str().is_some_and(|m| m.starts_with(&problem)), "{e:#}");
    // What it could list is still reported.
    assert!(
        report["objects"].as_array().is_some_and(|o| o.iter().any(|o| o["kind"] == "DaemonSet")),
        "{report:#}"
    );

    let r = diagnose(&["--preset", "kubearmor", "-n", ns], &kubeconfig);
    expect_exit(&r, 2, "diagnose (text) with a forbidden token");
    assert!(r.stdout.contains(&format!("could not check: {problem}")), "{}", r.stdout);
    assert!(r.stdout.contains("Result: COULD NOT CHECK (exit 2)"), "{}", r.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}
