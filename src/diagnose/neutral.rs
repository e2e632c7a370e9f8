//! The report with every string from the cluster neutralised for the terminal (see
//! [`crate::model::text`]): the text output renders this copy. The JSON output keeps the exact
//! values: serde_json escapes C0 controls itself, and [`json`] escapes the rest of what a
//! terminal could act on (DEL, C1 controls, bidi overrides) as `\u` sequences too, so even
//! `-o json` printed to a terminal cannot drive it.

use serde_json::ser::{Formatter, PrettyFormatter};

use super::report::{Cause, ObjectReport, Report};
use crate::model::text;

/// Pretty JSON of `r` with every unsafe character written as a `\u` escape (exact, valid).
pub(super) fn json(r: &Report) -> serde_json::Result<String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Escaping(PrettyFormatter::new()));
    serde::Serialize::serialize(r, &mut ser)?;
    Ok(String::from_utf8(out).expect("serde_json writes UTF-8"))
}

struct Escaping<'a>(PrettyFormatter<'a>);

impl Formatter for Escaping<'_> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(i) = rest.find(text::is_unsafe) {
            w.write_all(&rest.as_bytes()[..i])?;
            let c = rest[i..].chars().next().expect("found a char");
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                write!(w, "\\u{u:04x}")?;
            }
            rest = &rest[i + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

fn s(v: &mut String) {
    if let std::borrow::Cow::Owned(clean) = text::display(v) {
        *v = clean;
    }
}

fn o(v: &mut Option<String>) {
    if let Some(v) = v {
        s(v);
    }
}

fn all(v: &mut [String]) {
    v.iter_mut().for_each(s);
}

/// A copy of `r` whose strings are safe to print: control characters and escape sequences
/// rendered visibly, each value bounded.
pub(super) fn neutralised(r: &Report) -> Report {
    let mut r = r.clone();
    s(&mut r.generated_at);
    for e in &mut r.errors {
        for v in [&mut e.resource, &mut e.namespace, &mut e.selector, &mut e.cause, &mut e.message] {
            s(v);
        }
    }
    all(&mut r.notes);
    r.objects.iter_mut().for_each(object);
    if let Some(n) = &mut r.nodes {
        all(&mut n.not_ready);
        all(&mut n.created_last_hour);
        if let Some(m) = &mut n.without_kubearmor_labels {
            all(m);
        }
    }
    r
}

fn object(obj: &mut ObjectReport) {
    for v in [&mut obj.target, &mut obj.kind, &mut obj.namespace, &mut obj.name] {
        s(v);
    }
    o(&mut obj.verdict.unconverged_since);
    o(&mut obj.verdict.stalled_since);
    s(&mut obj.generation.first_seen);
    if let Some(ph) = &mut obj.phase {
        o(&mut ph.phase);
        all(&mut ph.ready_phases);
        s(&mut ph.since);
    }
    for c in &mut obj.conditions {
        for v in [&mut c.type_, &mut c.status, &mut c.reason] {
            s(v);
        }
        o(&mut c.since);
    }
    for w in &mut obj.status_writes {
        s(&mut w.manager);
        s(&mut w.at);
    }
    for slot in &mut obj.images {
        for v in [&mut slot.slot, &mut slot.desired, &mut slot.field, &mut slot.looked_for] {
            s(v);
        }
        o(&mut slot.stated);
        o(&mut slot.override_source);
        for w in &mut slot.workloads {
            for v in [&mut w.namespace, &mut w.name, &mut w.container, &mut w.template_image] {
                s(v);
            }
            for p in &mut w.pods {
                s(&mut p.name);
                s(&mut p.image);
                o(&mut p.node);
            }
        }
    }
    for w in &mut obj.rollouts {
        s(&mut w.namespace);
        s(&mut w.name);
        s(&mut w.last_progress);
        all(&mut w.outdated_pods);
    }
    if let Some(op) = &mut obj.operator {
        s(&mut op.namespace);
        o(&mut op.deployment);
        o(&mut op.selector);
        for p in &mut op.pods {
            s(&mut p.name);
            o(&mut p.node);
        }
    }
    if let Some(l) = &mut obj.lease {
        s(&mut l.namespace);
        s(&mut l.name);
        o(&mut l.holder);
        o(&mut l.renewed_at);
    }
    for e in &mut obj.events {
        for v in [&mut e.object, &mut e.reason, &mut e.message] {
            s(v);
        }
        o(&mut e.last_seen);
    }
    if let Some(a) = &mut obj.apiservice {
        s(&mut a.name);
        s(&mut a.message);
    }
    obj.causes.iter_mut().for_each(cause);
}

fn cause(c: &mut Cause) {
    s(&mut c.title);
    s(&mut c.detail);
    for r in &mut c.remedies {
        s(&mut r.step);
        all(&mut r.commands);
    }
}
