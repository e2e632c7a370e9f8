//! The API server killed and restarted under a running exporter, on a plane of its own: the
//! last known state stays served, `/healthz` stays 200, a change made behind the API server's
//! back (in etcd) is seen after recovery, and no ghost remains.
//!
//! Its own test binary, so its own plane: after a kill the plane's controller manager (run
//! without leader election, unlike a real one, which would restart with fresh caches) can stay
//! behind for minutes, and no other test should depend on it.

mod common;

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use common::generic::{RELEVANT, api_names, deployment_yaml, served, with, workloads_config};
use common::{Ns, Restore, Stallwatch, apply, note, plane};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiserver_killed_and_restarted_keeps_serving_and_recovers_without_ghosts() {
    let ns = Ns::new("gen-api");
    let ns = ns.name.as_str();
    apply(&deployment_yaml(ns, "d1", "example.com/d:v1", 1));
    apply(&deployment_yaml(ns, "d2", "example.com/d:v1", 1));
    let mut sw = Stallwatch::start("apiserver", &workloads_config(ns, "15m", ""), &plane().kubeconfig);
    let w = [("resource", "apps/v1/Deployment"), ("watch_namespace", ns)];
    let both = BTreeSet::from(["d1".to_string(), "d2".to_string()]);
    sw.wait_for("d1 and d2 served", Duration::from_secs(30), RELEVANT, |m| {
        m.is("stallwatch_synced", &w, 1.0) && served(m, "Deployment", ns) == both
    });

    let _restore = Restore("apiserver");
    plane().ctl(&["kill", "apiserver"]);
    let outage = Instant::now();
    let mut healthz_checks = 0;
    let m = sw.wait_for(
        "API down: synced 0, last known objects still served, /healthz 200",
        Duration::from_secs(60),
        RELEVANT,
        |m| {
            let healthy = sw.get("/healthz").is_ok_and(|(c, _)| c == 200);
            assert!(healthy, "/healthz failed during the API outage");
            healthz_checks += 1;
            m.is("stallwatch_synced", &w, 0.0) && served(m, "Deployment", ns) == both
        },
    );
    assert!(
        m.sum("stallwatch_watch_errors_total", &with(&w, &[("cause", "connect")])) >= 1.0,
        "{}",
        m.dump(&["stallwatch_watch_errors"])
    );

    // A change the watch cannot deliver: d2 deleted behind the API server's back, in etcd.
    let etcd = &plane().env["ETCD_URL"];
    let key = base64(&format!("/registry/deployments/{ns}/d2"));
    let out = std::process::Command::new("curl")
        .args(["-fsS", "--max-time", "10", "-X", "POST", &format!("{etcd}/v3/kv/deleterange"), "-d"])
        .arg(json!({"key": key}).to_string())
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && body.contains("\"deleted\":\"1\""),
        "etcd deleterange: {body} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A real outage, long enough for the reconnect backoff to grow: for OUTAGE the last known
    // state stays served, marked by synced 0, and /healthz stays 200 (a fixed observation
    // window, checked on every poll).
    const OUTAGE: Duration = Duration::from_secs(20);
    while outage.elapsed() < OUTAGE {
        let m = sw.scrape().expect("scrape during the outage");
        assert_eq!(served(&m, "Deployment", ns), both, "last known state must be served during the outage");
        assert!(
            m.is("stallwatch_synced", &w, 0.0),
            "synced during the outage:\n{}",
            m.dump(&["stallwatch_synced"])
        );
        assert!(sw.get("/healthz").is_ok_and(|(c, _)| c == 200), "/healthz failed during the API outage");
        assert!(sw.alive(), "stallwatch exited during the API outage");
        healthz_checks += 1;
        std::thread::sleep(common::POLL);
    }

    plane().ctl(&["start", "apiserver"]);
    note(format!(
        "API server back after {:.1}s ({healthz_checks} /healthz checks during the outage)",
        outage.elapsed().as_secs_f64()
    ));
    let t = Instant::now();
    let m =
        // Recovery within the reconnect backoff cap (30 s + 25% jitter) plus one list.
        sw.wait_for("synced again, no ghost (d2 gone), d1 kept", Duration::from_secs(40), RELEVANT, |m| {
            m.is("stallwatch_synced", &w, 1.0)
                && served(m, "Deployment", ns) == BTreeSet::from(["d1".to_string()])
        });
    note(format!("recovered {:.1}s after the API server was ready", t.elapsed().as_secs_f64()));
    assert_eq!(served(&m, "Deployment", ns), api_names("deployments", ns), "stallwatch and the API disagree");
    assert!(m.is("stallwatch_objects", &w, 1.0), "{}", m.dump(&["stallwatch_objects"]));

    // Nothing lost after recovery: the watch runs again.
    apply(&deployment_yaml(ns, "d3", "example.com/d:v1", 1));
    let m = sw.wait_for("a new object after recovery arrives", Duration::from_secs(15), RELEVANT, |m| {
        served(m, "Deployment", ns) == BTreeSet::from(["d1".to_string(), "d3".to_string()])
    });
    assert_eq!(served(&m, "Deployment", ns), api_names("deployments", ns));
    assert!(sw.alive());
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
