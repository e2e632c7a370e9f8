//! The landing page at `/` (F21): what is not converged right now, as plain HTML.

use std::fmt::Write as _;

use crate::{
    store::Store,
    verdict::{self, Status},
};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn page(store: &Store, now: f64) -> String {
    let mut rows = Vec::new();
    let mut watches = Vec::new();
    for w in store.watches() {
        w.read(|s| {
            for ((ns, name), tracked) in &s.objects {
                for (t, tf) in w.subs.targets.iter().zip(&tracked.per_target) {
                    let v = verdict::judge(t, tf, now);
                    if v.status != Status::Current {
                        let since = v.unconverged_since.map_or(0.0, |s| now - s);
                        rows.push((
                            since,
                            t.name.clone(),
                            t.resource.kind.clone(),
                            ns.to_string(),
                            name.to_string(),
                            v,
                        ));
                    }
                }
            }
            let h = &s.health;
            watches.push((
                w.key.gvk.label(),
                w.key.namespace.clone(),
                h.synced,
                s.objects.len(),
                h.last_error.clone(),
            ));
        });
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut o = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>stallwatch</title>\
         <style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:left}\
         .Stalled,.Failed{color:#b00}</style></head><body><h1>stallwatch</h1>\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a></p>",
    );
    let _ = write!(o, "<h2>Not converged ({})</h2>", rows.len());
    if rows.is_empty() {
        o.push_str("<p id=\"all-converged\">Every tracked object is Current.</p>");
    } else {
        o.push_str("<table id=\"stuck\"><tr><th>target</th><th>kind</th><th>namespace</th><th>name</th><th>status</th><th>reason</th><th>for</th></tr>");
        for (since, target, kind, ns, name, v) in &rows {
            let _ = write!(
                o,
                "<tr class=\"{s}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{s}</td><td>{}</td><td>{}</td></tr>",
                esc(target),
                esc(kind),
                esc(ns),
                esc(name),
                v.reason.map_or("", |r| r.label()),
                humantime::format_duration(std::time::Duration::from_secs(since.max(0.0) as u64)),
                s = v.status.label(),
            );
        }
        o.push_str("</table>");
    }
    o.push_str("<h2>Watches</h2><table><tr><th>resource</th><th>namespace</th><th>synced</th><th>objects</th><th>last error</th></tr>");
    for (res, ns, synced, n, err) in &watches {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{n}</td><td>{}</td></tr>",
            esc(res),
            esc(if ns.is_empty() { "(all)" } else { ns }),
            if *synced { "yes" } else { "no" },
            esc(err.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</table></body></html>\n");
    o
}
