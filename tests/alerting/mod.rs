//! The alerting chain of the end-to-end tests: Debian's Prometheus (2.42) and
//! Alertmanager (0.25) started on loopback by the test itself, a webhook receiver inside the test
//! that records every notification, and a small client for Prometheus' HTTP API.
//!
//! Both servers are children of the test with `PR_SET_PDEATHSIG` (they die with the test thread
//! that started them, even when the test process is killed) and are stopped when dropped. Their
//! configs are validated with `promtool check config` and `amtool check-config` first. See
//! tests/alerts/e2e-helpers.md for the flags and why.
//!
//! Needs `mod common;` in the including test crate.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

use crate::common::{fail, http_get, note};

/// Whether the Debian tools are installed (tests/setup installs them).
pub fn missing_tools() -> Vec<&'static str> {
    ["prometheus", "prometheus-alertmanager", "promtool", "amtool"]
        .into_iter()
        .filter(|t| {
            !std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
        })
        .collect()
}

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("    {l}\n")).collect()
}

// ============================================================== child processes

/// A server process owned by the test: killed with the test thread that spawned it
/// (`PR_SET_PDEATHSIG`), and stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let parent = std::process::id();
        cmd.stdin(Stdio::null()).stdout(out.try_clone().expect("log fd")).stderr(out);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // The parent may have died before prctl: then nobody would ever kill us.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| fail(&format!("starting {name}: {e}")));
        Proc { name: name.to_string(), child, log: log.to_path_buf() }
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.alive() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            let t0 = Instant::now();
            while self.alive() && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ============================================================== the webhook receiver

/// One alert of one webhook notification.
#[derive(Debug, Clone)]
pub struct Alert {
    /// When the notification carrying it arrived.
    pub at: Instant,
    /// `firing` or `resolved` (the alert's own status).
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
}

impl Alert {
    pub fn label(&self, k: &str) -> &str {
        self.labels.get(k).map_or("", String::as_str)
    }
    pub fn annotation(&self, k: &str) -> &str {
        self.annotations.get(k).map_or("", String::as_str)
    }
    pub fn name(&self) -> &str {
        self.label("alertname")
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}{{", self.status, self.name())?;
        let mut first = true;
        for (k, v) in self.labels.iter().filter(|(k, _)| *k != "alertname") {
            write!(f, "{}{k}={v:?}", if first { "" } else { ", " })?;
            first = false;
        }
        write!(f, "}}")
    }
}

/// One POST from Alertmanager.
#[derive(Debug, Clone)]
pub struct Notification {
    pub at: Instant,
    pub body: Value,
}

impl Notification {
    pub fn alerts(&self) -> Vec<Alert> {
        let map = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
                .unwrap_or_default()
        };
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        self.body["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| Alert {
                at: self.at,
                status: s(&a["status"]),
                labels: map(&a["labels"]),
                annotations: map(&a["annotations"]),
                starts_at: s(&a["startsAt"]),
                ends_at: s(&a["endsAt"]),
            })
            .collect()
    }
}

/// An HTTP server on loopback that records every webhook notification (and appends it to a
/// JSON-lines file for post-mortems). Answers 200 to every POST; keeps connections alive.
pub struct Webhook {
    pub addr: SocketAddr,
    got: Arc<Mutex<Vec<Notification>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Webhook {
    pub fn start(record: &Path) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the webhook receiver");
        let addr = listener.local_addr().expect("webhook address");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s, record) = (got.clone(), stop.clone(), record.to_path_buf());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (g, record) = (g.clone(), record.clone());
                std::thread::spawn(move || serve(conn, &g, &record));
            }
        });
        Webhook { addr, got, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }

    pub fn notifications(&self) -> Vec<Notification> {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every alert of every notification so far, in arrival order.
    pub fn alerts(&self) -> Vec<Alert> {
        self.notifications().iter().flat_map(Notification::alerts).collect()
    }

    /// Polls until an alert satisfying `pred` has arrived, at most `timeout`; returns the first.
    /// On timeout it fails with every alert received so far and `context()`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Alert) -> bool,
        context: impl Fn() -> String,
    ) -> Alert {
        let t0 = Instant::now();
        loop {
            if let Some(a) = self.alerts().into_iter().find(|a| pred(a)) {
                note(format!("ok: webhook: {what} ({:.1}s)", t0.elapsed().as_secs_f64()));
                return a;
            }
            if t0.elapsed() >= timeout {
                fail(&format!(
                    "timed out after {timeout:?} waiting for the webhook: {what}\n  received so far:\n{}{}",
                    self.dump(),
                    context()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn dump(&self) -> String {
        let mut out = String::new();
        for a in self.alerts() {
            let _ = writeln!(out, "    {a}");
        }
        if out.is_empty() {
            out.push_str("    (nothing)\n");
        }
        out
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, got: &Mutex<Vec<Notification>>, record: &Path) {
    conn.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.trim().is_empty() {
            continue;
        }
        let post = line.starts_with("POST ");
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if post {
            let at = Instant::now();
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) => {
                    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(record) {
                        let _ = writeln!(f, "{v}");
                    }
                    got.lock().unwrap_or_else(|e| e.into_inner()).push(Notification { at, body: v });
                }
                Err(e) => eprintln!("webhook: undecodable notification: {e}"),
            }
        }
        if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_err() {
            return;
        }
    }
}

// ============================================================== Prometheus' HTTP API

/// Percent-encodes a query parameter value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
pub struct Prom {
    pub addr: SocketAddr,
}

impl Prom {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GET an API path; returns `data` of a `success` answer.
    pub fn api(&self, path: &str) -> Result<Value, String> {
        let (code, body) = http_get(self.addr, path, "application/json")?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("GET {path}: {code}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("GET {path}: {code}: {}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"].clone())
    }

    /// An instant query (now, or at `time`); the vector's elements (a scalar counts as one).
    pub fn query(&self, expr: &str, time: Option<f64>) -> Result<Vec<Value>, String> {
        let mut path = format!("/api/v1/query?query={}", urlencode(expr));
        if let Some(t) = time {
            let _ = write!(path, "&time={t:.3}");
        }
        let data = self.api(&path)?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => Ok(data["result"].as_array().cloned().unwrap_or_default()),
            Some("scalar") | Some("string") => Ok(vec![data["result"].clone()]),
            other => Err(format!("unexpected result type {other:?} for {expr}")),
        }
    }

    /// A range query; the matrix' series.
    pub fn query_range(&self, expr: &str, start: f64, end: f64, step: f64) -> Result<Vec<Value>, String> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}",
            urlencode(expr)
        );
        Ok(self.api(&path)?["result"].as_array().cloned().unwrap_or_default())
    }

    /// Values of `label` on the series matching `selector` (Grafana's `label_values(sel, label)`).
    pub fn label_values(&self, label: &str, selector: &str) -> Result<Vec<String>, String> {
        let path = format!("/api/v1/label/{label}/values?match[]={}", urlencode(selector));
        Ok(self
            .api(&path)?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }

    /// Pending and firing alerts as Prometheus holds them (`/api/v1/alerts`).
    pub fn alerts(&self) -> Result<Vec<Value>, String> {
        Ok(self.api("/api/v1/alerts")?["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// Every rule of every group (`/api/v1/rules`).
    pub fn rules(&self) -> Result<Vec<Value>, String> {
        let data = self.api("/api/v1/rules")?;
        Ok(data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect())
    }
}

/// One series of a query result, for messages: `{labels} value`.
pub fn show(v: &Value) -> String {
    let labels = v["metric"]
        .as_object()
        .map(|m| {
            m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(",")
        })
        .unwrap_or_default();
    let value = if v["value"].is_array() {
        v["value"][1].as_str().unwrap_or("").to_string()
    } else if let Some(vals) = v["values"].as_array() {
        format!("{} points", vals.len())
    } else {
        v.to_string()
    };
    format!("{{{labels}}} {value}")
}

// ============================================================== the stack

/// What to start: the rule files, the exporter to scrape, the scrape job's name (must contain
/// `stallwatch` for the exporter-presence alerts) and the webhook URL.
pub struct StackConfig<'a> {
    pub rules: &'a [PathBuf],
    pub scrape: SocketAddr,
    pub job: &'a str,
    pub webhook: &'a str,
    pub group_by: &'a [&'a str],
    pub repeat_interval: &'a str,
    /// A second Alertmanager, configured as docs/alerts.md recommends, that Prometheus notifies
    /// as well: same alerts, so the two webhooks measure a configuration against the other.
    pub shipped: Option<ShippedAm<'a>>,
}

/// Alertmanager with the shipped inhibition (alerts/alertmanager-inhibit.yml, appended verbatim
/// to its config) and its own routing, delivering to its own webhook.
pub struct ShippedAm<'a> {
    pub webhook: &'a str,
    pub group_by: &'a [&'a str],
    pub inhibit: &'a Path,
}

/// Prometheus and Alertmanager on free loopback ports, both stopped when dropped.
pub struct Stack {
    pub dir: PathBuf,
    pub prom: Prom,
    pub am: SocketAddr,
    /// The Alertmanager of `StackConfig::shipped`.
    pub am_shipped: Option<SocketAddr>,
    // Dropped in this order: Prometheus first, so that it never notifies a dead Alertmanager.
    prom_proc: Proc,
    am_proc: Proc,
    am_shipped_proc: Option<Proc>,
}

fn check_tool(dir: &Path, tool: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| fail(&format!("running {tool}: {e}")));
    if !out.status.success() {
        fail(&format!(
            "{tool} {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
}

impl Stack {
    pub fn start(dir: &Path, c: &StackConfig) -> Stack {
        std::fs::create_dir_all(dir.join("prometheus-data")).expect("creating the Prometheus dir");
        std::fs::create_dir_all(dir.join("alertmanager-data")).expect("creating the Alertmanager dir");
        let (pport, aport) = (free_port(), free_port());
        let sport = c.shipped.as_ref().map(|_| free_port());
        let am_targets: String = std::iter::once(aport)
            .chain(sport)
            .map(|p| format!("'127.0.0.1:{p}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let rules: String = c.rules.iter().map(|r| format!("  - '{}'\n", r.display())).collect();
        let prom_yml = format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}\n\
             rule_files:\n{rules}\
             alerting:\n  alertmanagers: [{{static_configs: [{{targets: [{am_targets}]}}]}}]\n\
             scrape_configs:\n\
             \x20 - job_name: '{job}'\n\
             \x20   honor_labels: true\n\
             \x20   static_configs: [{{targets: ['{scrape}']}}]\n",
            job = c.job,
            scrape = c.scrape,
        );
        let am_yml = |group_by: &[&str], url: &str| {
            format!(
                "route:\n  receiver: hook\n  group_by: [{group_by}]\n  group_wait: 0s\n  group_interval: 1s\n  \
                 repeat_interval: {repeat}\n\
                 receivers:\n  - name: hook\n    webhook_configs:\n      - url: '{url}'\n        send_resolved: true\n",
                group_by = group_by.join(", "),
                repeat = c.repeat_interval,
            )
        };
        std::fs::write(dir.join("prometheus.yml"), prom_yml).expect("writing prometheus.yml");
        std::fs::write(dir.join("alertmanager.yml"), am_yml(c.group_by, c.webhook))
            .expect("writing alertmanager.yml");
        check_tool(dir, "promtool", &["check", "config", "prometheus.yml"]);
        check_tool(dir, "amtool", &["check-config", "alertmanager.yml"]);
        if let Some(sh) = &c.shipped {
            let inhibit = std::fs::read_to_string(sh.inhibit)
                .unwrap_or_else(|e| fail(&format!("reading {}: {e}", sh.inhibit.display())));
            std::fs::create_dir_all(dir.join("alertmanager-shipped-data"))
                .expect("creating the Alertmanager dir");
            std::fs::write(dir.join("alertmanager-shipped.yml"), am_yml(sh.group_by, sh.webhook) + &inhibit)
                .expect("writing alertmanager-shipped.yml");
            check_tool(dir, "amtool", &["check-config", "alertmanager-shipped.yml"]);
        }

        let mut am = Command::new("prometheus-alertmanager");
        am.arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", dir.join("alertmanager-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{aport}"))
            // No HA gossip: no 0.0.0.0:9094 listener and no wait for peers before notifying.
            .arg("--cluster.listen-address=")
            .arg("--log.level=info")
            .current_dir(dir);
        let am_proc = Proc::spawn("alertmanager", am, &dir.join("alertmanager.log"));
        let am_shipped_proc = sport.map(|sport| {
            let mut am = Command::new("prometheus-alertmanager");
            am.arg(format!("--config.file={}", dir.join("alertmanager-shipped.yml").display()))
                .arg(format!("--storage.path={}", dir.join("alertmanager-shipped-data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{sport}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=info")
                .current_dir(dir);
            Proc::spawn("alertmanager-shipped", am, &dir.join("alertmanager-shipped.log"))
        });
        let mut prom = Command::new("prometheus");
        prom.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()))
            .arg("--storage.tsdb.retention.time=1d")
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            // Re-send firing and resolved alerts every second (default 1m).
            .arg("--rules.alert.resend-delay=1s")
            .arg("--rules.alert.for-grace-period=1s")
            .arg("--log.level=info")
            .current_dir(dir);
        let prom_proc = Proc::spawn("prometheus", prom, &dir.join("prometheus.log"));
        let mut stack = Stack {
            dir: dir.to_path_buf(),
            prom: Prom { addr: format!("127.0.0.1:{pport}").parse().unwrap() },
            am: format!("127.0.0.1:{aport}").parse().unwrap(),
            am_shipped: sport.map(|p| format!("127.0.0.1:{p}").parse().unwrap()),
            prom_proc,
            am_proc,
            am_shipped_proc,
        };
        let t0 = Instant::now();
        let mut ready = vec![("alertmanager", stack.am), ("prometheus", stack.prom.addr)];
        ready.extend(stack.am_shipped.map(|a| ("alertmanager-shipped", a)));
        for (name, addr) in ready {
            loop {
                if matches!(http_get(addr, "/-/ready", "text/plain"), Ok((200, _))) {
                    break;
                }
                let alive = match name {
                    "prometheus" => stack.prom_proc.alive(),
                    "alertmanager" => stack.am_proc.alive(),
                    _ => stack.am_shipped_proc.as_mut().is_some_and(Proc::alive),
                };
                if !alive || t0.elapsed() > Duration::from_secs(30) {
                    stack.fail(&format!("{name} did not become ready on {addr} (alive: {alive})"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        note(format!(
            "prometheus on {} (pid {}), alertmanager on http://{} (pid {}), logs in {}",
            stack.prom.url(),
            stack.prom_proc.pid(),
            stack.am,
            stack.am_proc.pid(),
            dir.display()
        ));
        stack
    }

    /// Fails the test with the tails of both logs.
    pub fn fail(&self, msg: &str) -> ! {
        fail(&format!(
            "{msg}\n  prometheus log ({}):\n{}  alertmanager log ({}):\n{}",
            self.prom_proc.log.display(),
            tail(&self.prom_proc.log, 15),
            self.am_proc.log.display(),
            tail(&self.am_proc.log, 15)
        ))
    }

    /// Alerts as Alertmanager holds them (`/api/v2/alerts`), for messages.
    pub fn am_alerts(&self) -> String {
        match http_get(self.am, "/api/v2/alerts", "application/json") {
            Ok((_, body)) => body,
            Err(e) => e,
        }
    }

    /// The shipped Alertmanager's alerts (`/api/v2/alerts`, with `status.state` active or
    /// suppressed and `status.inhibitedBy`).
    pub fn shipped_alerts(&self) -> Result<Vec<Value>, String> {
        let addr = self.am_shipped.ok_or("no shipped Alertmanager in this stack")?;
        let (code, body) = http_get(addr, "/api/v2/alerts", "application/json")?;
        if code != 200 {
            return Err(format!("GET /api/v2/alerts: HTTP {code}: {body}"));
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }
}
