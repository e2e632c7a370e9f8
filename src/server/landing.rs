//! The landing page at `/`: a status header (version, uptime, config file, last reload,
//! `stalledAfter`, `resync`), then what is not converged right now, each row with its top
//! cause, the first remedy and its runbook ([`advice`]), the reason, for how long and the
//! evidence (the evidence of the reason first), then the watches, unhealthy ones first and the
//! healthy ones folded. Plain HTML and CSS, no scripts, fits a 1280 px window: it is read
//! through `kubectl port-forward` in a browser or with `curl`.

use std::{fmt::Write as _, time::Duration};

use crate::{
    judge::verdict::{self, Reason, Status},
    judge::view::{Locked, ObjView, View},
    store::Store,
};

pub mod advice;
pub mod info;

use self::{advice::Advice, info::Info};

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
    /// The evidence, one item each, the reason's own first.
    detail: Vec<String>,
    advice: Option<Advice>,
}

/// What makes the object not Current, in the words of the metrics, the evidence of `reason`
/// first.
fn evidence(o: &ObjView, now: f64, reason: Option<Reason>) -> Vec<String> {
    let mut d: Vec<(Reason, String)> = Vec::new();
    let f = &o.tf.facts;
    if verdict::phase_ready(o.target, o.tf) == Some(false) {
        d.push((
            Reason::PhaseNotReady,
            format!("phase {} for {}", f.phase.as_deref().unwrap_or("(none)"), dur(now - o.tf.phase_since)),
        ));
    }
    if o.generation_observed() == Some(false) {
        let g = f.generation.map_or("-".into(), |g| g.to_string());
        d.push((
            Reason::GenerationNotObserved,
            match f.observed_generation {
                Some(ob) => format!("generation {g} not observed (observed {ob})"),
                None => format!("generation {g} not rolled out to its workloads"),
            },
        ));
    }
    for s in o.links.slots.iter().filter(|s| s.mismatch) {
        d.push((
            Reason::ImageNotRolledOut,
            format!(
                "image {}: {} {}/{} container {} has {}, wants {}{}",
                s.slot,
                s.workload_kind.name(),
                s.workload_namespace,
                s.workload,
                s.container,
                s.actual,
                s.desired,
                s.override_source.as_deref().map(|src| format!(" (pinned by {src})")).unwrap_or_default()
            ),
        ));
    }
    for w in &o.links.workloads {
        if !w.facts.complete() {
            d.push((
                Reason::RolloutNotProgressing,
                format!(
                    "rollout {} {}/{}: {}/{} updated, {} available, no progress for {}",
                    w.facts.kind.name(),
                    w.namespace,
                    w.name,
                    w.facts.updated,
                    w.facts.desired,
                    w.facts.available,
                    dur(now - w.last_progress)
                ),
            ));
        } else if w.outdated > 0 {
            d.push((
                Reason::PodsOutdated,
                format!(
                    "{} {}/{}: {} of {} pods on an outdated template",
                    w.facts.kind.name(),
                    w.namespace,
                    w.name,
                    w.outdated,
                    w.pods
                ),
            ));
        }
    }
    if let Some(crate::ingest::builtin::BuiltinFacts::Workload(w)) = &o.tracked.kind
        && !w.complete()
    {
        d.push((
            Reason::RolloutNotProgressing,
            format!(
                "rollout: {}/{} updated, {} available, no progress for {}",
                w.updated,
                w.desired,
                w.available,
                dur(now - o.tracked.last_progress)
            ),
        ));
    }
    for c in &f.conditions {
        if o.target.conditions.ready.iter().any(|r| **r == *c.type_) && &*c.status != "True" {
            d.push((Reason::ConditionNotReady, format!("condition {}={} {}", c.type_, c.status, c.reason)));
        }
    }
    // Stable: the reason's evidence first, the rest in the order above.
    d.sort_by_key(|(r, _)| Some(*r) != reason);
    d.into_iter().map(|(_, s)| s).collect()
}

/// The landing page for the store at `now`, with the header the exporter set ([`info::set`]).
pub fn page(store: &Store, now: f64) -> String {
    page_with(store, info::get().as_ref(), now)
}

/// The landing page for the store at `now` with this header.
pub fn page_with(store: &Store, info: Option<&Info>, now: f64) -> String {
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
            detail: evidence(o, now, v.reason),
            advice: v.reason.map(|r| advice::advice(o, r)),
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
         <style>body{font-family:sans-serif;margin:1.5em;color:#222;max-width:100%}\
         table{border-collapse:collapse;width:100%;table-layout:auto}\
         td,th{padding:3px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}\
         td.nw{white-space:nowrap}td{overflow-wrap:anywhere}\
         .Stalled .status,.Failed .status,.no,.rejected{color:#b00;font-weight:bold}.InProgress .status{color:#a60}\
         ul{margin:0;padding-left:1.2em}code{background:#f4f4f4;padding:0 3px;overflow-wrap:anywhere}\
         .dim{color:#777}dl.status{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}\
         dl.status dt{color:#777}dl.status dd{margin:0}.advice p{margin:0 0 3px}\
         summary{cursor:pointer;margin:6px 0}</style></head><body>\
         <h1>stallwatch</h1>\
         <nav><a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a></nav>",
    );
    header(&mut o, info, now);
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
            "<table id=\"stuck\"><tr><th>status</th><th>reason</th><th>for</th><th>object</th>\
             <th>cause and first remedy</th><th>evidence</th></tr>",
        );
        for r in &rows {
            stuck_row(&mut o, r);
        }
        o.push_str(
            "</table><p>Every likely cause, ranked, with its remedies: <code>stallwatch diagnose --config &lt;config file&gt;</code> \
             (or <code>kubectl stallwatch diagnose</code>).</p>",
        );
    }
    watches_tables(&mut o, &watches, now);
    o.push_str("</body></html>\n");
    o
}

fn header(o: &mut String, info: Option<&Info>, now: f64) {
    let _ = write!(
        o,
        "<dl class=\"status\" id=\"status\"><dt>version</dt><dd id=\"version\">{}</dd>",
        esc(crate::build::LONG_VERSION)
    );
    let Some(i) = info else {
        o.push_str("</dl>");
        return;
    };
    let _ = write!(
        o,
        "<dt>uptime</dt><dd id=\"uptime\">{}</dd><dt>config</dt><dd id=\"config\"><code>{}</code></dd>",
        dur(now - i.started),
        esc(&i.config)
    );
    match &i.reload {
        None => o.push_str("<dt>last reload</dt><dd id=\"reload\">none yet</dd>"),
        Some(r) => match &r.error {
            None => {
                let _ = write!(
                    o,
                    "<dt>last reload</dt><dd id=\"reload\" class=\"accepted\">accepted at {} ({} ago)</dd>",
                    utc(r.at),
                    dur(now - r.at)
                );
            }
            Some(e) => {
                let _ = write!(
                    o,
                    "<dt>last reload</dt><dd id=\"reload\" class=\"rejected\">rejected at {} ({} ago), the previous config keeps running: {}</dd>",
                    utc(r.at),
                    dur(now - r.at),
                    esc(e)
                );
            }
        },
    }
    let _ = write!(
        o,
        "<dt>stalledAfter</dt><dd id=\"stalled-after\">{}</dd><dt>resync</dt><dd id=\"resync\">{}</dd></dl>",
        humantime::format_duration(i.stalled_after),
        humantime::format_duration(i.resync)
    );
}

fn stuck_row(o: &mut String, r: &Row) {
    let _ = write!(
        o,
        "<tr class=\"{status}\" data-kind=\"{kind}\" data-namespace=\"{ns}\" data-name=\"{name}\">\
         <td class=\"status nw\">{status}</td><td class=\"reason\">{reason}</td>\
         <td class=\"for nw\" title=\"since {since}\">{for_}</td>\
         <td class=\"object\">{kind} <b>{ns}{slash}{name}</b><br><span class=\"dim\">target {target}</span></td>\
         <td class=\"advice\">",
        status = r.status,
        reason = r.reason,
        since = esc(&r.since),
        for_ = dur(r.unconverged_for),
        kind = esc(&r.kind),
        ns = esc(&r.namespace),
        slash = if r.namespace.is_empty() { "" } else { "/" },
        name = esc(&r.name),
        target = esc(&r.target),
    );
    if let Some(a) = &r.advice {
        let _ = write!(
            o,
            "<p class=\"cause\">Likely: {}.</p><p class=\"remedy\">{}</p>",
            esc(&a.cause),
            esc(&a.remedy)
        );
        if let Some(c) = &a.command {
            let _ = write!(o, "<p><code class=\"command\">{}</code></p>", esc(c));
        }
        let _ = write!(o, "<p><a class=\"runbook\" href=\"{}\">runbook</a></p>", esc(&a.runbook));
    }
    o.push_str("</td><td class=\"detail\"><ul>");
    for d in &r.detail {
        let _ = write!(o, "<li>{}</li>", esc(d));
    }
    o.push_str("</ul></td></tr>");
}

/// One watch: resource, namespace, selector, synced, objects, last list, last error.
type WatchRow = (String, String, String, bool, usize, Option<f64>, Option<String>);

fn watches_tables(o: &mut String, watches: &[WatchRow], now: f64) {
    let (bad, good): (Vec<&WatchRow>, Vec<&WatchRow>) = watches.iter().partition(|w| !w.3 || w.6.is_some());
    let head = "<tr><th>resource</th><th>namespace</th><th>selector</th><th>synced</th><th>objects</th>\
                <th>last list</th><th>last error</th></tr>";
    let _ = write!(o, "<h2>Watches ({} unhealthy of {})</h2>", bad.len(), watches.len());
    if !bad.is_empty() {
        let _ = write!(o, "<table id=\"watches\">{head}");
        for w in &bad {
            watch_row(o, w, now);
        }
        o.push_str("</table>");
    }
    if !good.is_empty() {
        let _ = write!(
            o,
            "<details id=\"healthy-watches\"><summary>{} healthy watches</summary><table id=\"watches-healthy\">{head}",
            good.len()
        );
        for w in &good {
            watch_row(o, w, now);
        }
        o.push_str("</table></details>");
    }
}

fn watch_row(o: &mut String, (res, ns, sel, synced, n, last_list, err): &WatchRow, now: f64) {
    let _ = write!(
        o,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{n}</td><td class=\"nw\">{}</td><td class=\"error\">{}</td></tr>",
        esc(res),
        esc(if ns.is_empty() { "(all)" } else { ns }),
        esc(sel),
        if *synced { "yes" } else { "no" },
        if *synced { "yes" } else { "no" },
        last_list.map_or("never".into(), |t| format!("{} ago", dur(now - t))),
        esc(err.as_deref().unwrap_or(""))
    );
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
        for w in &watches {
            w.write(|s| s.health.synced = true);
        }
        let s = Store::default();
        s.set_watches(watches);
        s
    }

    #[test]
    fn stuck_object_row_has_status_reason_duration_and_mismatch() {
        let html = page_with(&store("kubearmor/kubearmor:<v2>", "Pending"), None, NOW);
        assert!(html.contains("<h2>Not converged (1)</h2>"), "{html}");
        let row = html.split("data-kind=\"KubeArmorConfig\"").nth(1).expect("the CR's row");
        let row = row.split("</tr>").next().unwrap();
        assert!(row.contains("<td class=\"status nw\">Stalled</td>"), "{row}");
        assert!(row.contains("<td class=\"reason\">ImageNotRolledOut</td>"), "{row}");
        assert!(row.contains("<td class=\"for nw\" title=\"since 2024-01-01T00:41:40Z\">5m</td>"), "{row}");
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
    fn converged_page_says_so_and_folds_the_healthy_watches() {
        let html = page_with(&store("kubearmor/kubearmor:v1", "Running"), None, NOW);
        assert!(html.contains("<p id=\"all-converged\">"), "{html}");
        assert!(html.contains("<h2>Watches (0 unhealthy of 12)</h2>"), "{html}");
        assert!(!html.contains("<table id=\"watches\">"), "no unhealthy-watch table: {html}");
        assert!(
            html.contains("<details id=\"healthy-watches\"><summary>12 healthy watches</summary>"),
            "{html}"
        );
    }

    #[test]
    fn unhealthy_watches_come_first_unfolded() {
        let s = store("kubearmor/kubearmor:v1", "Running");
        let ws = s.watches();
        let node = ws.iter().find(|w| w.key.gvk.kind == "Node").unwrap();
        node.write(|st| {
            st.health.synced = false;
            st.health.last_error = Some("nodes is forbidden: 403".into());
        });
        let html = page_with(&s, None, NOW);
        assert!(html.contains("<h2>Watches (1 unhealthy of 12)</h2>"), "{html}");
        let bad = html.split("<table id=\"watches\">").nth(1).unwrap().split("</table>").next().unwrap();
        assert!(bad.contains("<td>v1/Node</td>") && bad.contains("nodes is forbidden: 403"), "{bad}");
        assert_eq!(bad.matches("<tr>").count(), 2, "header + the one unhealthy watch: {bad}");
        assert!(html.contains("<summary>11 healthy watches</summary>"), "{html}");
    }

    #[test]
    fn row_has_top_cause_first_remedy_runbook_and_the_reason_evidence_first() {
        let html = page_with(&store("kubearmor/kubearmor:v2", "Pending"), None, NOW);
        let row = html.split("data-kind=\"KubeArmorConfig\"").nth(1).expect("the CR's row");
        let row = row.split("</tr>").next().unwrap();
        assert!(
            row.contains("Likely: the operator has not pushed image kubearmor/kubearmor:v2 to DaemonSet ka/ka-ds (container kubearmor still has docker.io/kubearmor/kubearmor:v1)."),
            "{row}"
        );
        assert!(
            row.contains(
                "<code class=\"command\">kubectl -n ka rollout restart deployment/kubearmor-operator</code>"
            ),
            "{row}"
        );
        assert!(row.contains("href=\"https://github.com/stallwatch/stallwatch/blob/main/docs/runbooks.md#stallwatchimagenotrolledout\""), "{row}");
        let items: Vec<&str> = row.split("<li>").skip(1).collect();
        assert!(items[0].starts_with("image kubearmor:"), "the ImageNotRolledOut evidence first: {items:?}");
        assert!(items.iter().any(|i| i.starts_with("phase Pending")), "{items:?}");
    }

    #[test]
    fn header_shows_version_uptime_config_reload_and_durations() {
        let mut info = Info {
            config: "/etc/stallwatch/config.yaml".into(),
            started: NOW - 3700.0,
            resync: Duration::from_secs(600),
            stalled_after: Duration::from_secs(900),
            reload: Some(info::Reload { at: NOW - 60.0, error: None }),
        };
        let html = page_with(&store("kubearmor/kubearmor:v1", "Running"), Some(&info), NOW);
        assert!(html.contains(&format!("<dd id=\"version\">{}</dd>", crate::build::LONG_VERSION)), "{html}");
        assert!(html.contains("<dd id=\"uptime\">1h 1m 40s</dd>"), "{html}");
        assert!(html.contains("<dd id=\"config\"><code>/etc/stallwatch/config.yaml</code></dd>"), "{html}");
        assert!(
            html.contains(
                "<dd id=\"reload\" class=\"accepted\">accepted at 2024-01-01T00:45:40Z (1m ago)</dd>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<dd id=\"stalled-after\">15m</dd><dt>resync</dt><dd id=\"resync\">10m</dd>"),
            "{html}"
        );
        info.reload =
            Some(info::Reload { at: NOW - 5.0, error: Some("c.yaml:3:5: unknown field `x`".into()) });
        let html = page_with(&store("kubearmor/kubearmor:v1", "Running"), Some(&info), NOW);
        assert!(html.contains("class=\"rejected\">rejected at 2024-01-01T00:46:35Z (5s ago), the previous config keeps running: c.yaml:3:5: unknown field `x`</dd>"), "{html}");
    }

    #[test]
    fn esc_neutralises_control_characters_and_html() {
        let e = esc("<b a=\"x\">\x1b[31m&\x07\0'</b>");
        assert_eq!(e, "&lt;b a=&quot;x&quot;&gt;\\x1b[31m&amp;\\x07\\x00&#39;&lt;/b&gt;");
        assert!(esc(&"y".repeat(100_000)).len() < 5000);
    }
}
