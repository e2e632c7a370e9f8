//! Harness shared by the integration test binaries: the real test control plane, kubectl, the
//! real `stallwatch` binary as a subprocess, a `/metrics` parser and bounded waits.
//!
//! The plane is started once per test binary with `tests/cluster/up` into a temp dir (binaries
//! from `STALLWATCH_PLANE_BIN`, else `tests/cluster/build`), or an already running plane is used
//! when `STALLWATCH_PLANE` names its dir. A watchdog in its own session runs
//! `tests/cluster/down` as soon as the test process is gone, even after a crash. A failed wait
//! keeps the plane dir (logs) and prints where it is; `STALLWATCH_E2E_KEEP=1` keeps everything.
//!
//! Every wait is bounded and polls; nothing sleeps in place of an assertion.
#![allow(dead_code)]

pub mod proxy;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

/// Poll period of every wait.
pub const POLL: Duration = Duration::from_millis(250);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A short unique suffix for names (namespaces, CRD groups, temp dirs).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let x = (t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{prefix}-{:06x}{n}", (x >> 40) & 0xff_ffff)
}

/// Logs a progress line (shown with `--nocapture`, and for failed tests).
pub fn note(msg: impl AsRef<str>) {
    eprintln!("[{:>7.1}s] {}", started().elapsed().as_secs_f64(), msg.as_ref());
}

fn started() -> &'static Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    T.get_or_init(Instant::now)
}

// ============================================================== the control plane

pub struct Plane {
    pub dir: PathBuf,
    pub env: BTreeMap<String, String>,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    /// Started by this process (torn down by its watchdog) rather than named by STALLWATCH_PLANE.
    pub owned: bool,
}

static PLANE: OnceLock<Plane> = OnceLock::new();

/// The plane of this test binary, started on first use.
pub fn plane() -> &'static Plane {
    PLANE.get_or_init(Plane::start_or_attach)
}

/// The watchdog: waits for the test process to end, then downs the plane and removes its dir
/// (kept when a test marked it with `keep`).
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
"$2/tests/cluster/down" "$3" >"$3/down.log" 2>&1
if [ -e "$3/keep" ]; then echo "stallwatch e2e: plane dir kept: $3" >&2; else rm -rf "$3"; fi
"#;

fn parse_env(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

impl Plane {
    fn start_or_attach() -> Plane {
        started();
        if let Some(dir) = std::env::var_os("STALLWATCH_PLANE").filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            note(format!("using the running plane {}", dir.display()));
            return Plane::from_env(dir, false);
        }
        let bin = match std::env::var("STALLWATCH_PLANE_BIN") {
            Ok(b) if !b.is_empty() => b,
            _ => {
                note("building (or finding the cached) control plane: tests/cluster/build");
                let out = Command::new(repo().join("tests/cluster/build"))
                    .stderr(Stdio::inherit())
                    .output()
                    .expect("running tests/cluster/build");
                assert!(out.status.success(), "tests/cluster/build failed");
                String::from_utf8_lossy(&out.stdout).lines().last().expect("bin dir").trim().to_string()
            }
        };
        let dir = std::env::temp_dir().join(unique("stallwatch-e2e"));
        std::fs::create_dir_all(&dir).expect("creating the plane dir");
        // The watchdog first, so that even a crash during `up` is cleaned up. It must outlive
        // this process, so it is never waited for (init reaps it).
        #[allow(clippy::zombie_processes)]
        Command::new("setsid")
            .args(["sh", "-c", WATCHDOG, "stallwatch-e2e-watchdog"])
            .arg(std::process::id().to_string())
            .arg(repo())
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the plane watchdog (setsid sh)");
        note(format!("starting a control plane in {}", dir.display()));
        let out = Command::new(repo().join("tests/cluster/up"))
            .arg(&dir)
            .args(["--nodes", "3"])
            .env("STALLWATCH_BIN", &bin)
            .output()
            .expect("running tests/cluster/up");
        if !out.status.success() {
            let _ = std::fs::write(dir.join("keep"), "");
            panic!("tests/cluster/up {} failed:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr));
        }
        note("control plane ready");
        if keep_all() {
            let _ = std::fs::write(dir.join("keep"), "");
        }
        Plane::from_env(dir, true)
    }

    fn from_env(dir: PathBuf, owned: bool) -> Plane {
        let env = parse_env(&dir.join("env"));
        let kubeconfig = PathBuf::from(&env["KUBECONFIG"]);
        let kubectl = PathBuf::from(&env["BIN"]).join("kubectl");
        Plane { dir, env, kubeconfig, kubectl, owned }
    }

    /// Keep the plane dir (logs) after the run; called when a test fails.
    pub fn keep(&self) {
        if self.owned {
            let _ = std::fs::write(self.dir.join("keep"), "");
            eprintln!("stallwatch e2e: keeping the plane dir {} (component logs)", self.dir.display());
        }
    }

    /// `tests/cluster/ctl DIR ARGS...` (stop/start/kill a component, add-node).
    pub fn ctl(&self, args: &[&str]) {
        note(format!("tests/cluster/ctl {}", args.join(" ")));
        let out = Command::new(repo().join("tests/cluster/ctl"))
            .arg(&self.dir)
            .args(args)
            .output()
            .expect("running tests/cluster/ctl");
        if !out.status.success() {
            self.keep();
            panic!("tests/cluster/ctl {} failed:\n{}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
    }

    /// Whether a component (etcd apiserver kcm scheduler kwok) is running.
    pub fn running(&self, component: &str) -> bool {
        let out = Command::new(repo().join("tests/cluster/ctl"))
            .arg(&self.dir)
            .arg("status")
            .output()
            .expect("running tests/cluster/ctl status");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(component) && !l.ends_with(" stopped"))
    }

    pub fn apiserver_url(&self) -> &str {
        &self.env["APISERVER_URL"]
    }
}

// ============================================================== kubectl and the kube client

/// Starts a stopped component again when dropped (a failed fault-injection test must not leave
/// the shared plane broken for the tests after it).
pub struct Restore(pub &'static str);

impl Drop for Restore {
    fn drop(&mut self) {
        let p = plane();
        if !p.running(self.0) {
            eprintln!("stallwatch e2e: restarting {} after the test", self.0);
            let _ =
                Command::new(repo().join("tests/cluster/ctl")).arg(&p.dir).args(["start", self.0]).status();
        }
    }
}

/// Runs the plane's kubectl; Err carries stderr.
pub fn try_kubectl(args: &[&str]) -> Result<String, String> {
    kubectl_with(args, None)
}

/// Runs the plane's kubectl and panics on failure.
pub fn kubectl(args: &[&str]) -> String {
    try_kubectl(args).unwrap_or_else(|e| fail(&format!("kubectl {} failed: {e}", args.join(" "))))
}

/// Runs kubectl and returns whether it exited 0 with its stdout (for `auth can-i`, whose "no"
/// is exit code 1).
pub fn kubectl_status(args: &[&str]) -> (bool, String) {
    let p = plane();
    let out = Command::new(&p.kubectl)
        .arg(format!("--kubeconfig={}", p.kubeconfig.display()))
        .arg("--request-timeout=30s")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("spawning kubectl");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn kubectl_with(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let p = plane();
    let mut cmd = Command::new(&p.kubectl);
    cmd.arg(format!("--kubeconfig={}", p.kubeconfig.display()))
        .arg("--request-timeout=30s")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("spawning kubectl: {e}"))?;
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Server-side apply of YAML (idempotent, safe to call from tests running in parallel).
pub fn apply(yaml: &str) {
    kubectl_with(
        &["apply", "--server-side", "--force-conflicts", "--field-manager=stallwatch-e2e", "-f", "-"],
        Some(yaml),
    )
    .unwrap_or_else(|e| fail(&format!("kubectl apply failed: {e}\n---\n{yaml}")));
}

/// A namespaced CRD `PLURAL.GROUP` of kind `kind`, version v1, whose schema keeps every field
/// (the tests write whatever objects they need), with or without the status subresource.
pub fn schemaless_crd(group: &str, kind: &str, status_subresource: bool) -> String {
    let plural = format!("{}s", kind.to_lowercase());
    let singular = kind.to_lowercase();
    let subresources = if status_subresource { "\n      subresources: {status: {}}" } else { "" };
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.{group}}}
spec:
  group: {group}
  names: {{kind: {kind}, listKind: {kind}List, plural: {plural}, singular: {singular}}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true{subresources}
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"#
    )
}

/// Applies a CRD and waits until it is Established.
pub fn apply_crd(yaml: &str, name: &str) {
    apply(yaml);
    // Polled rather than `kubectl wait`, which fails outright while the CRD has no conditions yet.
    let jsonpath = r#"jsonpath={.status.conditions[?(@.type=="Established")].status}"#;
    eventually(&format!("CRD {name} Established"), Duration::from_secs(60), || {
        match try_kubectl(&["get", "crd", name, "-o", jsonpath]) {
            Ok(s) if s.trim() == "True" => Ok(()),
            Ok(s) => Err(format!("Established={s:?}")),
            Err(e) => Err(e),
        }
    });
}

/// A kube client with the plane's admin kubeconfig.
pub async fn client() -> kube::Client {
    client_for(&plane().kubeconfig).await
}

pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("reading the kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kubeconfig");
    kube::Client::try_from(cfg).expect("kube client")
}

/// A fresh namespace, deleted at the end of a passing test (kept after a failure).
pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new(prefix: &str) -> Ns {
        let name = unique(prefix);
        kubectl(&["create", "namespace", &name]);
        Ns { name }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("stallwatch e2e: namespace {} kept for inspection", self.name);
        } else {
            let _ = try_kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
        }
    }
}

/// `STALLWATCH_E2E_KEEP=1` keeps every exporter dir (config, log) and the plane dir.
fn keep_all() -> bool {
    std::env::var_os("STALLWATCH_E2E_KEEP").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Marks the plane as kept and panics with the message.
pub fn fail(msg: &str) -> ! {
    if let Some(p) = PLANE.get() {
        p.keep();
    }
    panic!("{msg}");
}

/// Polls `f` every 250 ms until it returns Ok, at most `timeout`; the last Err explains a failure.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let t0 = Instant::now();
    loop {
        match f() {
            Ok(v) => {
                note(format!("ok: {what} ({:.1}s)", t0.elapsed().as_secs_f64()));
                return v;
            }
            Err(e) if t0.elapsed() >= timeout => {
                fail(&format!("timed out after {timeout:?} waiting for: {what}\nlast state: {e}"))
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// The async twin of [`eventually`], for conditions read through the kube client.
pub async fn eventually_async<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let t0 = Instant::now();
    loop {
        match f().await {
            Ok(v) => {
                note(format!("ok: {what} ({:.1}s)", t0.elapsed().as_secs_f64()));
                return v;
            }
            Err(e) if t0.elapsed() >= timeout => {
                fail(&format!("timed out after {timeout:?} waiting for: {what}\nlast state: {e}"))
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

// ============================================================== /metrics

/// One sample of a text-format (0.0.4) or OpenMetrics exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl std::fmt::Display for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{{", self.name)?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            write!(f, "{}{k}={v:?}", if i > 0 { "," } else { "" })?;
        }
        write!(f, "}} {}", self.value)
    }
}

impl Series {
    pub fn matches(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.name == name && labels.iter().all(|(k, v)| self.labels.get(*k).map(String::as_str) == Some(*v))
    }
    pub fn label(&self, k: &str) -> &str {
        self.labels.get(k).map_or("", String::as_str)
    }
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub series: Vec<Series>,
    /// `# TYPE` names (families are listed even when they have no series).
    pub families: Vec<String>,
    pub raw: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Result<Metrics, String> {
        let mut m = Metrics { raw: text.to_string(), ..Default::default() };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                m.families.push(rest.split_whitespace().next().unwrap_or("").to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            m.series.push(parse_sample(line).map_err(|e| format!("line {}: {e}: {line}", i + 1))?);
        }
        Ok(m)
    }

    /// Every series of `name` that carries all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Series> {
        self.series.iter().filter(|s| s.matches(name, labels)).collect()
    }

    /// The value when exactly one series matches.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, labels).as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }

    /// Exactly one series matches and its value is `v`.
    pub fn is(&self, name: &str, labels: &[(&str, &str)], v: f64) -> bool {
        self.value(name, labels) == Some(v)
    }

    /// Sum over the matching series (0 when none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|s| s.value).sum()
    }

    pub fn has_family(&self, name: &str) -> bool {
        self.families.iter().any(|f| f == name)
    }

    /// The series whose name starts with one of `names` (all series when `names` is empty).
    pub fn dump(&self, names: &[&str]) -> String {
        let mut out = String::new();
        for s in &self.series {
            if names.is_empty() || names.iter().any(|n| s.name.starts_with(n)) {
                let _ = writeln!(out, "    {s}");
            }
        }
        if out.is_empty() {
            out.push_str("    (no series)\n");
        }
        out
    }
}

fn parse_sample(line: &str) -> Result<Series, String> {
    let name_end = line.find(['{', ' ', '\t']).ok_or("no value")?;
    let name = line[..name_end].to_string();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if rest.starts_with('{') {
        let mut chars = rest[1..].char_indices().peekable();
        let end;
        loop {
            // label name
            while matches!(chars.peek(), Some((_, ' ' | ','))) {
                chars.next();
            }
            if let Some((i, '}')) = chars.peek().copied() {
                end = i + 2;
                break;
            }
            let mut key = String::new();
            loop {
                match chars.next() {
                    Some((_, '=')) => break,
                    Some((_, c)) => key.push(c),
                    None => return Err("unterminated label name".into()),
                }
            }
            if !matches!(chars.next(), Some((_, '"'))) {
                return Err("label value not quoted".into());
            }
            let mut val = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => val.push('\n'),
                        Some((_, c)) => val.push(c),
                        None => return Err("bad escape".into()),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => val.push(c),
                    None => return Err("unterminated label value".into()),
                }
            }
            labels.insert(key.trim().to_string(), val);
        }
        rest = &rest[end..];
    }
    let value = rest.split_whitespace().next().ok_or("no value")?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|e| format!("value {v:?}: {e}"))?,
    };
    Ok(Series { name, labels, value })
}

// ============================================================== stallwatch

/// The real `stallwatch` binary under test: `STALLWATCH_BIN_PATH`, else the one cargo built.
pub fn stallwatch_bin() -> PathBuf {
    match std::env::var_os("STALLWATCH_BIN_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_stallwatch")),
    }
}

/// A running exporter (`stallwatch run`) on a free loopback port, logging JSON to a file;
/// killed when dropped.
pub struct Stallwatch {
    pub name: String,
    child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    last: Mutex<Option<String>>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

impl Stallwatch {
    /// Starts the exporter with this config and kubeconfig and waits for `/healthz`.
    pub fn start(name: &str, config_yaml: &str, kubeconfig: &Path) -> Stallwatch {
        let dir = std::env::temp_dir().join("stallwatch-e2e-runs").join(unique(name));
        std::fs::create_dir_all(&dir).expect("creating the exporter dir");
        let config = dir.join("config.yaml");
        std::fs::write(&config, config_yaml).expect("writing the config");
        let log = dir.join("stallwatch.log");
        let out = std::fs::File::create(&log).expect("creating the log");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut cmd = Command::new(stallwatch_bin());
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--log-format", "json"])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", std::env::var("STALLWATCH_E2E_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out);
        // Die with the test thread that started it, even when the test process is killed.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", stallwatch_bin().display()));
        let mut sw =
            Stallwatch { name: name.to_string(), child, addr, dir, config, log, last: Mutex::new(None) };
        let t0 = Instant::now();
        loop {
            if !sw.alive() {
                sw.fail(&format!("stallwatch {name} exited during start"));
            }
            if matches!(sw.get("/healthz"), Ok((200, _))) {
                note(format!("stallwatch {name} serving on http://{addr}/ (log {})", sw.log.display()));
                return sw;
            }
            if t0.elapsed() > Duration::from_secs(20) {
                sw.fail(&format!("stallwatch {name}: /healthz not 200 within 20s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Replaces the config file (the exporter reloads it on change or SIGHUP).
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(&self.config, yaml).expect("writing the config");
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.child.id());
    }

    /// GET a path; returns the status code and body.
    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        self.get_with(path, "text/plain")
    }

    pub fn get_with(&self, path: &str, accept: &str) -> Result<(u16, String), String> {
        http_get(self.addr, path, accept)
    }

    /// Scrapes `/metrics` (text format 0.0.4) and parses it.
    pub fn scrape(&self) -> Result<Metrics, String> {
        let (code, body) = self.get("/metrics")?;
        if code != 200 {
            return Err(format!("/metrics returned {code}: {body}"));
        }
        let m = Metrics::parse(&body)?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
        Ok(m)
    }

    /// Polls `/metrics` every 250 ms until `cond` holds, at most `timeout`. On timeout it fails
    /// with the series named by `relevant` (prefixes) and the exporter's log tail.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        relevant: &[&str],
        mut cond: impl FnMut(&Metrics) -> bool,
    ) -> Metrics {
        let t0 = Instant::now();
        let mut last: Option<Metrics> = None;
        let mut last_err = None;
        loop {
            match self.scrape() {
                Ok(m) if cond(&m) => {
                    note(format!("ok: [{}] {what} ({:.1}s)", self.name, t0.elapsed().as_secs_f64()));
                    return m;
                }
                Ok(m) => last = Some(m),
                Err(e) => last_err = Some(e),
            }
            if t0.elapsed() >= timeout {
                let mut msg = format!("[{}] timed out after {timeout:?} waiting for: {what}\n", self.name);
                match &last {
                    Some(m) => {
                        let _ = write!(msg, "  relevant series of the last scrape:\n{}", m.dump(relevant));
                    }
                    None => msg.push_str("  no successful scrape\n"),
                }
                if let Some(e) = last_err {
                    let _ = writeln!(msg, "  last scrape error: {e}");
                }
                self.fail(&msg);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Fails the test with the message and the exporter's log tail.
    pub fn fail(&self, msg: &str) -> ! {
        let _ = std::fs::write(self.dir.join("keep"), "");
        fail(&format!(
            "{msg}\n  exporter log ({}), last lines:\n{}",
            self.log.display(),
            self.log_tail(40).lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
        ))
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Writes a fresh scrape (OpenMetrics, else the last text scrape) to the file named by
    /// `STALLWATCH_METRICS_CAPTURE`, if set: tests/all checks alert rules and dashboards against it.
    pub fn capture(&self) {
        let Some(path) = std::env::var_os("STALLWATCH_METRICS_CAPTURE").filter(|p| !p.is_empty()) else {
            return;
        };
        let body = match self.get_with("/metrics", "application/openmetrics-text; version=1.0.0") {
            Ok((200, b)) => Some(b),
            _ => self.last.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        };
        if let Some(b) = body {
            if let Some(parent) = Path::new(&path).parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::write(&path, b).expect("writing STALLWATCH_METRICS_CAPTURE");
        }
    }
}

impl Drop for Stallwatch {
    fn drop(&mut self) {
        if self.alive() {
            self.signal(libc::SIGTERM);
            let t0 = Instant::now();
            while self.alive() && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() || self.dir.join("keep").exists() || keep_all() {
            eprintln!("stallwatch e2e: exporter {} dir kept: {}", self.name, self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A minimal HTTP/1.0 GET (no client dependency); handles chunked bodies too.
pub fn http_get(addr: SocketAddr, path: &str, accept: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.set_write_timeout(Some(Duration::from_secs(5))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read {path}: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no header end in {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body)? } else { body.to_string() };
    Ok((code, body))
}

fn dechunk(mut s: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").ok_or("bad chunk")?;
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("chunk size {size:?}: {e}"))?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(rest.get(..n).ok_or("short chunk")?);
        s = rest.get(n + 2..).ok_or("short chunk")?;
    }
}

/// A kubeconfig for `server` with a bearer token (or none) and the plane's CA.
pub fn write_kubeconfig(path: &Path, server: &str, token: Option<&str>) {
    let admin = std::fs::read_to_string(&plane().kubeconfig).expect("admin kubeconfig");
    let ca = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("certificate-authority-data:"))
        .map(str::trim)
        .expect("certificate-authority-data in the admin kubeconfig");
    let mut user = String::from("{}");
    if let Some(t) = token {
        user = format!("{{token: {t}}}");
    }
    let cluster = if server.starts_with("https:") {
        format!("{{server: {server}, certificate-authority-data: {ca}}}")
    } else {
        format!("{{server: {server}}}")
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {cluster}\nusers:\n- name: u\n  user: {user}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
    );
    std::fs::write(path, text).expect("writing a kubeconfig");
}

/// Deletes the ClusterRole and ClusterRoleBinding of this name when dropped: deleting a test's
/// namespace removes everything else it created, but not these cluster-scoped objects.
pub struct ClusterRbac(pub String);

impl Drop for ClusterRbac {
    fn drop(&mut self) {
        let _ = try_kubectl(&["delete", "clusterrole,clusterrolebinding", &self.0, "--ignore-not-found"]);
    }
}

/// The KubeArmor story's fixtures and test operator (tests/common/kubearmor.rs).
pub mod generic;
pub mod kubearmor;
