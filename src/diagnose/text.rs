//! The human report of `stallwatch diagnose`: the same [`Report`] as the JSON, as text, with
//! ANSI colours when stdout is a terminal.

use std::fmt::Write as _;

use super::{
    dur, list,
    report::{ObjectReport, PodImage, Report, runbook},
};

struct Colours(bool);

impl Colours {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("1;31", s)
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn status(&self, s: &str) -> String {
        match s {
            "Current" => self.green(s),
            "InProgress" | "Terminating" => self.yellow(s),
            _ => self.red(s),
        }
    }
}

/// Word-wraps `text` at 100 columns; the first line starts with `first`, the others with `rest`.
fn wrap(text: &str, first: &str, rest: &str) -> String {
    const WIDTH: usize = 100;
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

fn where_(ns: &str, name: &str) -> String {
    if ns.is_empty() { name.to_string() } else { format!("{ns}/{name}") }
}

/// The human report. `color` adds ANSI colours (only when stdout is a terminal).
/// Every string from the cluster is neutralised first (control characters shown as `\x1b`,
/// values bounded), so the only escape sequences in the output are the colours added here.
pub fn text(r: &Report, color: bool) -> String {
    let r = &super::neutral::neutralised(r);
    let p = Colours(color);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {}: {} of {} tracked objects not converged",
        p.bold("stallwatch diagnose"),
        r.generated_at,
        r.objects_not_converged,
        r.objects_total
    );
    for e in &r.errors {
        // Forbidden and not-found messages already name the resource and namespace.
        if e.message.starts_with(&format!("{}:", e.cause)) {
            let _ = writeln!(o, "{} {}", p.red("could not check:"), e.message);
        } else {
            let scope = if e.namespace.is_empty() { String::new() } else { format!(" in {}", e.namespace) };
            let _ = writeln!(o, "{} {}{scope}: {}", p.red("could not check:"), e.resource, e.message);
        }
    }
    if r.errors.iter().any(|e| e.cause == "forbidden" || e.cause == "not_found") {
        let _ = writeln!(
            o,
            "  -> grant get/list/watch on it, or install its CRD: {}",
            runbook("stallwatchtargetnotsynced")
        );
    }
    for n in &r.notes {
        let _ = writeln!(o, "{} {n}", p.dim("note:"));
    }
    let mut compact = Vec::new();
    for obj in &r.objects {
        if obj.verdict.status == "Current" && obj.images.is_empty() {
            compact.push(format!("{} {}", obj.kind, where_(&obj.namespace, &obj.name)));
            continue;
        }
        o.push('\n');
        object_text(&mut o, &p, obj);
    }
    if !compact.is_empty() {
        let _ = writeln!(o, "\n{} {}", p.bold("Also tracked, Current:"), compact.join(", "));
    }
    if let Some(n) = &r.nodes {
        let mut line =
            format!("{} {} ({} Linux), {} NotReady", p.bold("Nodes:"), n.total, n.linux, n.not_ready.len());
        if !n.not_ready.is_empty() {
            let _ = write!(line, " ({})", list(&n.not_ready, 5));
        }
        let _ = write!(line, ", {} created in the last hour", n.created_last_hour.len());
        if let Some(missing) = &n.without_kubearmor_labels {
            if missing.is_empty() {
                line.push_str("; every Linux node has KubeArmor snitch labels");
            } else {
                let _ = write!(
                    line,
                    "; {} Linux nodes without KubeArmor snitch labels ({})",
                    missing.len(),
                    list(missing, 5)
                );
            }
        }
        let _ = writeln!(o, "\n{line}");
    }
    let verdict = match r.result {
        "converged" => p.green("CONVERGED"),
        "stuck" => p.red("STUCK"),
        _ => p.red("COULD NOT CHECK"),
    };
    let why = match r.result {
        "converged" => "every tracked object is Current".to_string(),
        "stuck" => format!(
            "{} object{} not converged",
            r.objects_not_converged,
            if r.objects_not_converged == 1 { "" } else { "s" }
        ),
        _ => format!("{} list(s) failed", r.errors.len()),
    };
    let _ = writeln!(o, "\n{} {verdict} (exit {}): {why}", p.bold("Result:"), r.exit_code);
    o
}

fn object_text(o: &mut String, p: &Colours, obj: &ObjectReport) {
    let v = &obj.verdict;
    let _ = writeln!(
        o,
        "{}  {}",
        p.bold(&format!("{} {}", obj.kind, where_(&obj.namespace, &obj.name))),
        p.dim(&format!("[target {}]", obj.target))
    );
    let mut verdict = p.status(v.status);
    if let Some(reason) = v.reason {
        let _ = write!(verdict, " ({reason})");
    }
    if let (Some(s), Some(since)) = (v.unconverged_seconds, &v.unconverged_since) {
        let _ = write!(verdict, ", not converged for {} (since {since})", dur(s));
    }
    let _ = writeln!(o, "  verdict      {verdict}");
    let g = &obj.generation;
    let observed = match g.observed {
        Some(true) => "observed",
        Some(false) => "NOT observed",
        None => "observation unknown",
    };
    let how = match g.source {
        "reported" => format!("observedGeneration {}", g.observed_generation.unwrap_or_default()),
        "derived" => "derived from the linked workloads: the kind reports no observedGeneration".into(),
        _ => "the kind reports no observedGeneration and has no linked workloads".into(),
    };
    let _ = writeln!(
        o,
        "  generation   {}, {observed} ({how}); first seen {} (from {})",
        g.generation.map_or("-".into(), |g| g.to_string()),
        g.first_seen,
        g.first_seen_source
    );
    if let Some(ph) = &obj.phase {
        let name = ph.phase.as_deref().unwrap_or("(none)");
        let name = match ph.ready {
            Some(false) => p.yellow(name),
            _ => name.to_string(),
        };
        let source = match ph.since_source {
            "managedFields" => {
                "since the last status write, from managedFields: a one-shot run has no history"
            }
            "creationTimestamp" => "since the object's creation",
            _ => "no record of when it began",
        };
        let _ = writeln!(
            o,
            "  phase        {name} for {} ({source}); ready phases: {}",
            dur(ph.seconds),
            if ph.ready_phases.is_empty() { "-".into() } else { ph.ready_phases.join(", ") }
        );
    }
    for c in &obj.conditions {
        let _ = writeln!(
            o,
            "  condition    {}={} {}{}",
            c.type_,
            c.status,
            c.reason,
            c.since.as_deref().map(|s| format!(" since {s}")).unwrap_or_default()
        );
    }
    if obj.status_writes.is_empty() {
        let _ = writeln!(o, "  status write none recorded in managedFields");
    }
    for w in &obj.status_writes {
        let _ = writeln!(o, "  status write {} {} ago ({})", w.manager, dur(w.age_seconds), w.at);
    }
    if !obj.images.is_empty() {
        let _ = writeln!(o, "  images");
    }
    for s in &obj.images {
        let from = match s.desired_source {
            "operator-pin" => format!(
                "operator pin {}; the object's {} = {}",
                s.override_source.as_deref().unwrap_or_default(),
                s.field,
                s.stated.as_deref().unwrap_or("(empty)")
            ),
            "object" => format!("from {}", s.field),
            _ => format!("default: {} is empty", s.field),
        };
        let _ = writeln!(o, "    {:<11} desired {} ({from})", s.slot, s.desired);
        if s.missing {
            let _ = writeln!(o, "      no workload found ({})", s.looked_for);
        }
        for w in &s.workloads {
            let state = if w.mismatch { p.red("MISMATCH") } else { p.green("matches") };
            let _ = writeln!(
                o,
                "      {} {} {} {}: template {}  {state}",
                w.kind,
                where_(&w.namespace, &w.name),
                if w.init { "init container" } else { "container" },
                w.container,
                w.template_image
            );
            let on_template = w.pods.iter().filter(|p| p.on_template).count();
            let desired = w.pods.iter().filter(|p| p.runs_desired).count();
            let _ = writeln!(
                o,
                "        pods {}: {on_template} on the current template, {desired} running the desired image",
                w.pods.len()
            );
            let stale: Vec<&PodImage> = w.pods.iter().filter(|p| !p.runs_desired).collect();
            if !stale.is_empty() {
                let _ = writeln!(o, "        not running the desired image:");
            }
            for pod in stale.iter().take(6) {
                let _ = writeln!(
                    o,
                    "          {} on {} runs {}{}",
                    pod.name,
                    pod.node.as_deref().unwrap_or("no node"),
                    pod.image,
                    if pod.on_template { "" } else { " (outdated template)" }
                );
            }
            if stale.len() > 6 {
                let _ = writeln!(o, "          and {} more", stale.len() - 6);
            }
        }
    }
    if !obj.rollouts.is_empty() {
        let _ = writeln!(o, "  rollouts");
    }
    for w in &obj.rollouts {
        let state = if w.complete {
            p.green("complete")
        } else if w.deadline_exceeded {
            p.red("FAILED (ProgressDeadlineExceeded)")
        } else {
            p.yellow("in progress")
        };
        let _ = writeln!(
            o,
            "    {} {}  {}{}  desired {}, updated {}, available {}, ready {}: {state}; last progress {} ago; pods {}{}",
            w.kind,
            where_(&w.namespace, &w.name),
            w.strategy,
            if w.partition > 0 { format!(" partition {}", w.partition) } else { String::new() },
            w.desired,
            w.updated,
            w.available,
            w.ready,
            dur(w.last_progress_seconds),
            w.pods,
            if w.outdated_pods.is_empty() {
                String::new()
            } else {
                format!(", outdated: {}", list(&w.outdated_pods, 5))
            }
        );
    }
    if let Some(op) = &obj.operator {
        let what = match (&op.deployment, &op.selector) {
            (Some(d), Some(s)) => format!("Deployment {d}, pods {s}"),
            (Some(d), None) => format!("Deployment {d}"),
            (None, Some(s)) => format!("pods {s}"),
            (None, None) => String::new(),
        };
        if op.pods.is_empty() {
            let none =
                if op.selector.is_some() { p.red("no pod found") } else { "pods not configured".into() };
            let _ = writeln!(o, "  operator     {none} ({what} in {})", op.namespace);
        }
        for pod in &op.pods {
            let ready = if pod.ready { p.green("Ready") } else { p.red("not Ready") };
            let _ = writeln!(
                o,
                "  operator     {}/{} on {}: {ready}, {} restarts ({what})",
                op.namespace,
                pod.name,
                pod.node.as_deref().unwrap_or("no node"),
                pod.restarts
            );
        }
    }
    match &obj.lease {
        Some(l) if !l.found => {
            let _ = writeln!(o, "  lease        {}/{}: {}", l.namespace, l.name, p.red("not found"));
        }
        Some(l) => {
            let age = l.age_seconds.map_or("never".into(), |a| format!("{} ago", dur(a)));
            let fresh = if l.stale { p.red("STALE") } else { p.green("fresh") };
            let _ = writeln!(
                o,
                "  lease        {}/{} held by {}, renewed {age}: {fresh}; {} transitions",
                l.namespace,
                l.name,
                l.holder.as_deref().unwrap_or("nobody"),
                l.transitions.unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(o, "  lease        not configured");
        }
    }
    if obj.events.is_empty() {
        let _ = writeln!(
            o,
            "  events       no Warning events for the object, its workloads, their pods or the operator"
        );
    } else {
        let _ = writeln!(o, "  events       newest Warning events first");
    }
    for e in &obj.events {
        let _ = writeln!(
            o,
            "    {} ago  {}  {} ×{}: {}",
            e.age_seconds.map_or("?".into(), dur),
            e.object,
            e.reason,
            e.count,
            e.message
        );
    }
    if let Some(a) = &obj.apiservice {
        let state = match a.available {
            Some(true) => p.green("Available"),
            Some(false) => p.red("NOT Available"),
            None => p.yellow("unknown"),
        };
        let detail = if a.available == Some(true) { String::new() } else { format!(" ({})", a.message) };
        let _ = writeln!(o, "  apiservice   {}: {state}{detail}", a.name);
    }
    if obj.causes.is_empty() {
        return;
    }
    let _ = writeln!(o, "  {}", p.bold("likely causes, most likely first"));
    for c in &obj.causes {
        let _ = writeln!(o, "    {}. {}  {}", c.rank, p.bold(&c.title), p.dim(&format!("[{}]", c.id)));
        o.push_str(&wrap(&c.detail, "       ", "       "));
        for r in &c.remedies {
            o.push_str(&wrap(&r.step, "       -> ", "          "));
            for cmd in &r.commands {
                let _ = writeln!(o, "          $ {cmd}");
            }
        }
        let _ = writeln!(o, "       runbook: {}", c.runbook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_words_and_indents() {
        let w = wrap(&"word ".repeat(40), "  1. ", "     ");
        assert!(w.lines().all(|l| l.chars().count() <= 100), "{w}");
        assert!(w.starts_with("  1. word") && w.lines().skip(1).all(|l| l.starts_with("     word")), "{w}");
        assert_eq!(w.split_whitespace().filter(|x| *x == "word").count(), 40);
    }

    #[test]
    fn text_without_colour_has_no_escapes() {
        let r = Report::failed("config", "config", "nothing to check".into());
        let t = text(&r, false);
        assert!(!t.contains('\x1b'), "{t}");
        assert!(t.contains("COULD NOT CHECK (exit 2)"), "{t}");
        assert!(text(&r, true).contains('\x1b'));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["version"], 1);
        assert_eq!(j["result"], "error");
    }

    #[test]
    fn cluster_strings_cannot_drive_the_terminal() {
        let mut r = Report::failed("config", "config", "bad \x1b[31mred\x1b[0m\x07 \0 x\ny".into());
        r.notes.push("\u{9b}2J".into());
        let t = text(&r, false);
        assert!(!t.contains(['\x1b', '\x07', '\0', '\u{9b}']), "{t:?}");
        assert!(t.contains("bad \\x1b[31mred\\x1b[0m\\x07 \\x00 x\\ny"), "{t}");
        // JSON keeps the exact value, every unsafe character written as a \u escape.
        let j = super::super::neutral::json(&r).unwrap();
        assert!(j.contains("\\u001b[31mred") && j.contains("\\u009b2J"), "{j}");
        assert!(!j.contains(['\x1b', '\u{9b}', '\0']), "{j}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&j).unwrap()["notes"][0], "\u{9b}2J");
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["errors"][0]["message"], "bad \x1b[31mred\x1b[0m\x07 \0 x\ny");
    }
}
