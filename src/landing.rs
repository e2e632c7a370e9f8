//! The landing page at `/` (F21): what is not converged right now, as plain HTML.

use std::fmt::Write as _;

use crate::{
    store::Store,
    verdict::Status,
    view::{Locked, View},
};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn page(store: &Store, now: f64) -> String {
    let ws = store.watches();
    let locked = Locked::new(&ws);
    let view = View::new(&locked, now);
    let mut rows = Vec::new();
    for o in &view.objects {
        let v = &o.verdict;
        if v.status != Status::Current {
            let since = v.unconverged_since.map_or(0.0, |s| now - s);
            let detail: Vec<String> = o
                .links
                .slots
                .iter()
                .filter(|s| s.mismatch)
                .map(|s| {
                    format!(
                        "{} {}/{}: wants {} runs {}",
                        s.slot,
                        s.workload_kind.name(),
                        s.workload,
                        s.desired,
                        s.actual
                    )
                })
                .collect();
            rows.push((
                since,
                o.target.name.clone(),
                o.target.resource.kind.clone(),
                o.namespace.to_string(),
                o.name.to_string(),
                *v,
                detail.join("; "),
            ));
        }
    }
    let mut watches = Vec::new();
    for (w, s) in &locked.guards {
        let h = &s.health;
        watches.push((
            w.key.gvk.label(),
            w.key.namespace.clone(),
            h.synced,
            s.objects.len(),
            h.last_error.clone(),
        ));
    }
    drop(view);
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
        o.push_str("<table id=\"stuck\"><tr><th>target</th><th>kind</th><th>namespace</th><th>name</th><th>status</th><th>reason</th><th>for</th><th>detail</th></tr>");
        for (since, target, kind, ns, name, v, detail) in &rows {
            let _ = write!(
                o,
                "<tr class=\"{s}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{s}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(target),
                esc(kind),
                esc(ns),
                esc(name),
                v.reason.map_or("", |r| r.label()),
                humantime::format_duration(std::time::Duration::from_secs(since.max(0.0) as u64)),
                esc(detail),
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
