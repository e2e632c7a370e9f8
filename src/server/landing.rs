//! The landing page at `/`: what is not converged right now, with the reason, for how
//! long and the evidence (phase, unobserved generation, image mismatch, stuck rollout), plus
//! the watches' health. Plain HTML and CSS, no scripts: it is read through `kubectl
//! port-forward` in a browser or with `curl`.

use std::{fmt::Write as _, time::Duration};

use crate::{
    judge::verdict::{self, Status},
    judge::view::{Locked, ObjView, View},
    store::Store,
};

/// HTML-escapes a value from the cluster after neutralising it: control characters and escape
/// sequences become visible text (`\x1b`) and the value is bounded (see `model::text`).
fn esc(s: &str) -> String {
    let s = crate::model::text::display(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn dur(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs(secs.max(0.0) as u64)).to_string()
}

fn utc(t: f64) -> String {
    jiff::Timestamp::from_second(t as i64).map_or_else(|_| String::new(), |ts| ts.to_string())
}

/// One not-Current object.
struct Row {
    unconverged_for: f64,
    target: String,
    kind: String,
    namespace: String,
    name: String,
    status: &'static str,
    reason: &'static str,
    since: String,
    /// The evidence, one item each.
    detail: Vec<String>,
}

/// What makes the object not Current, in the words of the metrics.
fn evidence(o: &ObjView, now: f64) -> Vec<String> {
    let mut d = Vec::new();
    let f = &o.tf.facts;
    if verdict::phase_ready(o.target, o.tf) == Some(false) {
        d.push(format!(
            "phase {} for {}",
            f.phase.as_deref().unwrap_or("(none)"),
            dur(now - o.tf.phase_since)
        ));
    }
    if o.generation_observed() == Some(false) {
        let g = f.generation.map_or("-".into(), |g| g.to_string());
        d.push(match f.observed_generation {
            Some(ob) => format!("generation {g} not observed (observed {ob})"),
            None => format!("generation {g} not rolled out to its workloads"),
        });
    }
    for s in o.links.slots.iter().filter(|s| s.mismatch) {
        d.push(format!(
            "image {}: {} {}/{} container {} has {}, wants {}{}",
            s.slot,
            s.workload_kind.name(),
            s.workload_namespace,
            s.workload,
            s.container,
            s.actual,
            s.desired,
            s.override_source.as_deref().map(|src| format!(" (pinned by {src})")).unwrap_or_default()
        ));
    }
    for w in &o.links.workloads {
        if !w.facts.complete() {
            d.push(format!(
                "rollout {} {}/{}: {}/{} updated, {} available, no progress for {}",
                w.facts.kind.name(),
                w.namespace,
                w.name,
                w.facts.updated,
                w.facts.desired,
                w.facts.available,
                dur(now - w.last_progress)
            ));
        } else if w.outdated > 0 {
            d.push(format!(
                "{} {}/{}: {} of {} pods on an outdated template",
                w.facts.kind.name(),
                w.namespace,
                w.name,
                w.outdated,
                w.pods
            ));
        }
    }
    if let Some(crate::ingest::builtin::BuiltinFacts::Workload(w)) = &o.tracked.kind
        && !w.complete()
    {
        d.push(format!(
            "rollout: {}/{} updated, {} available, no progress for {}",
            w.updated,
            w.desired,
            w.available,
            dur(now - o.tracked.last_progress)
        ));
    }
    for c in &f.conditions {
        if o.target.conditions.ready.iter().any(|r| **r == *c.type_) && &*c.status != "True" {
            d.push(format!("condition {}={} {}", c.type_, c.status, c.reason));
        }
    }
    d
}

/// The landing page for the store at `now`.
pub fn page(store: &Store, now: f64) -> String {
    let ws = store.watches();
    let locked = Locked::new(&ws);
    let view = View::new(&locked, now);
    let mut rows = Vec::new();
    let mut current = 0usize;
    for o in &view.objects {
        let v = &o.verdict;
        if v.status == Status::Current {
            current += 1;
            continue;
        }
        rows.push(Row {
            unconverged_for: v.unconverged_since.map_or(0.0, |s| now - s),
            target: o.target.name.clone(),
            kind: o.target.resource.kind.clone(),
            namespace: o.namespace.to_string(),
            name: o.name.to_string(),
            status: v.status.label(),
            reason: v.reason.map_or("", |r| r.label()),
            since: v.unconverged_since.map(utc).unwrap_or_default(),
            detail: evidence(o, now),
        });
    }
    let mut watches = Vec::new();
    for (w, s) in &locked.guards {
        let h = &s.health;
        watches.push((
            w.key.gvk.label(),
            w.key.namespace.clone(),
            w.key.selector_label(),
            h.synced,
            s.objects.len(),
            h.last_list,
            h.last_error.clone(),
        ));
    }
    drop(view);
    drop(locked);
    rows.sort_by(|a, b| b.unconverged_for.total_cmp(&a.unconverged_for));
    let mut o = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>stallwatch</title>\
         <style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}\
         td,th{padding:3px 10px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}\
         td:not(.detail){white-space:nowrap}\
         .Stalled .status,.Failed .status,.no{color:#b00;font-weight:bold}.InProgress .status{color:#a60}\
         ul{margin:0;padding-left:1.2em}code{background:#f4f4f4;padding:0 3px}.dim{color:#777}</style></head><body>\
         <h1>stallwatch</h1>\
         <nav><a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a></nav>",
    );
    let _ = write!(
        o,
        "<p class=\"dim\">{} · {} tracked objects, {} Current</p>",
        utc(now),
        rows.len() + current,
        current
    );
    let _ = write!(o, "<h2>Not converged ({})</h2>", rows.len());
    if rows.is_empty() {
        o.push_str("<p id=\"all-converged\">Every tracked object is Current.</p>");
    } else {
        o.push_str(
            "<table id=\"stuck\"><tr><th>status</th><th>reason</th><th>for</th><th>kind</th><th>namespace</th>\
             <th>name</th><th>target</th><th>detail</th></tr>",
        );
        for r in &rows {
            let _ = write!(
                o,
                "<tr class=\"{status}\" data-kind=\"{kind}\" data-namespace=\"{ns}\" data-name=\"{name}\">\
                 <td class=\"status\">{status}</td><td class=\"reason\">{reason}</td>\
                 <td class=\"for\" title=\"since {since}\">{for_}</td><td>{kind}</td><td>{ns}</td><td>{name}</td>\
                 <td>{target}</td><td class=\"detail\"><ul>",
                status = r.status,
                reason = r.reason,
                since = esc(&r.since),
                for_ = dur(r.unconverged_for),
                kind = esc(&r.kind),
                ns = esc(&r.namespace),
                name = esc(&r.name),
                target = esc(&r.target),
            );
            for d in &r.detail {
                let _ = write!(o, "<li>{}</li>", esc(d));
            }
            o.push_str("</ul></td></tr>");
        }
        o.push_str(
            "</table><p>Causes and remedies: <code>stallwatch diagnose --config &lt;config file&gt;</code> \
             (or <code>kubectl stallwatch diagnose</code>).</p>",
        );
    }
    o.push_str(
        "<h2>Watches</h2><table id=\"watches\"><tr><th>resource</th><th>namespace</th><th>selector</th>\
         <th>synced</th><th>objects</th><th>last list</th><th>last error</th></tr>",
    );
    for (res, ns, sel, synced, n, last_list, err) in &watches {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{n}</td><td>{}</td><td>{}</td></tr>",
            esc(res),
            esc(if ns.is_empty() { "(all)" } else { ns }),
            esc(sel),
            if *synced { "yes" } else { "no" },
            if *synced { "yes" } else { "no" },
            last_list.map_or("never".into(), |t| format!("{} ago", dur(now - t))),
            esc(err.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</table></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{config::Config, ingest::wire::RawObject, store::Watch, watch::plan};

    const NOW: f64 = 1_704_070_000.0;

    fn put(watches: &[Arc<Watch>], kind: &str, json: &str, at: f64) {
        let obj: RawObject = serde_json::from_str(json).unwrap();
        for w in watches.iter().filter(|w| w.key.gvk.kind == kind) {
            w.write(|s| {
                s.apply(&w.subs, &obj, at);
                s.health.synced = true;
            });
        }
    }

    fn store(cr_image: &str, phase: &str) -> Store {
        let c =
            Config::parse("stalledAfter: 60s\ntargets: [{preset: kubearmor, namespace: ka}]\n", "t").unwrap();
        let watches: Vec<Arc<Watch>> =
            plan(&c).into_iter().map(|(k, s)| Arc::new(Watch::new(k, s))).collect();
        put(
            &watches,
            "KubeArmorConfig",
            &format!(
                r#"{{"metadata":{{"name":"cfg","namespace":"ka","uid":"c","resourceVersion":"1","generation":2}},
                "spec":{{"kubearmorImage":{{"image":"{cr_image}"}}}},"status":{{"phase":"{phase}"}}}}"#
            ),
            NOW - 300.0,
        );
        put(
            &watches,
            "DaemonSet",
            r#"{"metadata":{"name":"ka-ds","namespace":"ka","uid":"d","resourceVersion":"2","generation":1,"labels":{"kubearmor-app":"kubearmor"}},
            "spec":{"template":{"spec":{"containers":[{"name":"kubearmor","image":"docker.io/kubearmor/kubearmor:v1"}]}}},
            "status":{"observedGeneration":1,"desiredNumberScheduled":1,"currentNumberScheduled":1,"updatedNumberScheduled":1,"numberAvailable":1,"numberReady":1}}"#,
            NOW - 600.0,
        );
        let s = Store::default();
        s.set_watches(watches);
        s
    }

    #[test]
    fn stuck_object_row_has_status_reason_duration_and_mismatch() {
        let html = page(&store("kubearmor/kubearmor:<v2>", "Pending"), NOW);
        assert!(html.contains("<h2>Not converged (1)</h2>"), "{html}");
        let row = html.split("data-kind=\"KubeArmorConfig\"").nth(1).expect("the CR's row");
        let row = row.split("</tr>").next().unwrap();
        assert!(row.contains("<td class=\"status\">Stalled</td>"), "{row}");
        assert!(row.contains("<td class=\"reason\">ImageNotRolledOut</td>"), "{row}");
        assert!(row.contains("<td class=\"for\" title=\"since 2024-01-01T00:41:40Z\">5m</td>"), "{row}");
        assert!(row.contains("phase Pending for 5m"), "{row}");
        // Escaped, never raw markup from the cluster.
        assert!(
            row.contains(
                "image kubearmor: DaemonSet ka/ka-ds container kubearmor has docker.io/kubearmor/kubearmor:v1, wants kubearmor/kubearmor:&lt;v2&gt;"
            ),
            "{row}"
        );
        for link in ["/metrics", "/healthz", "/readyz"] {
            assert!(html.contains(&format!("<a href=\"{link}\">")), "{link}");
        }
        assert!(!html.contains("<script"), "no scripts");
    }

    #[test]
    fn converged_page_says_so() {
        let html = page(&store("kubearmor/kubearmor:v1", "Running"), NOW);
        assert!(html.contains("<p id=\"all-converged\">"), "{html}");
        assert!(html.contains("<table id=\"watches\">"), "{html}");
    }

    #[test]
    fn esc_neutralises_control_characters_and_html() {
        let e = esc("<b a=\"x\">\x1b[31m&\x07\0'</b>");
        assert_eq!(e, "&lt;b a=&quot;x&quot;&gt;\\x1b[31m&amp;\\x07\\x00&#39;&lt;/b&gt;");
        assert!(esc(&"y".repeat(100_000)).len() < 5000);
    }
}
