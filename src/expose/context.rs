//! The context families (docs/metrics.md): what the tracked objects' controllers and the
//! cluster around them show: Leases, operator pods, how the controller writes status, nodes and
//! APIServices.

use crate::{
    config::Target,
    expose::writer::{Type, Writer, gauge_bool, labels},
    ingest::BuiltinFacts,
    judge::view::View,
    model::Kind,
    store,
};

/// Writes the controller, lease, operator-pod, node and APIService families of `view`.
pub fn encode(x: &mut Writer, view: &View) {
    // Presets expand into several targets under one name; each may name its own controller.
    // Every target's, whether or not this replica holds objects of it (a shard may hold none):
    // on shard 0 only when sharded ([`View::keep_shard`]).
    let targets: &[&Target] = if view.per_target { &view.targets } else { &[] };
    let mut leases = Vec::new();
    let mut pods = Vec::new();
    for t in targets {
        if let Some(l) = &t.controller.lease
            && let Some(state) = view.index.state(&store::key::lease_key(l))
        {
            for tracked in state.objects.values() {
                if let Some(BuiltinFacts::Lease(f)) = &tracked.kind {
                    leases.push((&t.name, l, f));
                }
            }
        }
        if let Some(p) = &t.controller.pods
            && let Some(state) = view.index.state(&store::key::pods_key(p))
        {
            for ((ns, name), tracked) in &state.objects {
                if let Some(BuiltinFacts::Pod(f)) = &tracked.kind {
                    pods.push((labels(&[("target", &t.name), ("namespace", ns), ("pod", name)]), f));
                }
            }
        }
    }
    let mut f = x.family("lease_renew_timestamp_seconds", "Leader-election Lease renew time.", Type::Gauge);
    for (t, l, lf) in &leases {
        if let Some(r) = lf.renew {
            let holder = lf.holder.as_deref().unwrap_or("");
            f.sample(
                "",
                &[("target", t), ("lease_namespace", &l.namespace), ("lease", &l.name), ("holder", holder)],
                r,
            );
        }
    }
    let mut f = x.family("lease_transitions", "Leader-election Lease transitions.", Type::Counter);
    for (t, l, lf) in &leases {
        if let Some(n) = lf.transitions {
            f.sample("", &[("target", t), ("lease_namespace", &l.namespace), ("lease", &l.name)], n as f64);
        }
    }
    let mut f = x.family(
        "controller_status_on_change",
        "1 when the target's controller writes status only when it changes, so a silent status says nothing about the controller.",
        Type::Gauge,
    );
    let mut names: Vec<(&str, bool)> = Vec::new();
    for t in targets {
        match names.iter_mut().find(|(n, _)| *n == t.name) {
            Some((_, on)) => *on |= t.controller.status_on_change,
            None => names.push((&t.name, t.controller.status_on_change)),
        }
    }
    for (name, on) in names {
        f.sample("", &[("target", name)], gauge_bool(on));
    }
    let mut f = x.family("operator_pod_ready", "1 when the operator pod is Ready.", Type::Gauge);
    for (p, pf) in &pods {
        f.sample(p, &[], gauge_bool(pf.ready));
    }
    let mut f = x.family("operator_pod_restarts", "Container restarts of the operator pod.", Type::Counter);
    for (p, pf) in &pods {
        f.sample(p, &[], pf.restarts as f64);
    }
    let states = &view.index.states;
    let nodes: Vec<_> = states.iter().filter(|(k, _)| k.kind == Some(Kind::Node)).collect();
    if !nodes.is_empty() {
        let mut counts = [0u64; 3];
        for (_, s) in &nodes {
            for t in s.objects.values() {
                match &t.kind {
                    Some(BuiltinFacts::Node { ready: Some(true) }) => counts[0] += 1,
                    Some(BuiltinFacts::Node { ready: Some(false) }) => counts[1] += 1,
                    _ => counts[2] += 1,
                }
            }
        }
        let mut f = x.family("nodes", "Nodes by Ready condition.", Type::Gauge);
        for (c, n) in ["ready", "not_ready", "unknown"].iter().zip(counts) {
            f.sample("", &[("condition", c)], n as f64);
        }
        let (added, removed) = nodes.iter().fold((0, 0), |(a, r), (_, s)| {
            let h = &s.health;
            (a + h.events.added + h.drift.added, r + h.events.deleted + h.drift.deleted)
        });
        let mut f = x.family(
            "node_changes",
            "Nodes added and removed, as seen by the watch or found by a re-list.",
            Type::Counter,
        );
        f.sample("", &[("change", "added")], added as f64);
        f.sample("", &[("change", "removed")], removed as f64);
    }
    let mut f =
        x.family("apiservice_available", "1 when the APIService's Available condition is True.", Type::Gauge);
    for (_, s) in states.iter().filter(|(k, _)| k.kind == Some(Kind::ApiService)) {
        for ((_, name), t) in &s.objects {
            if let Some(BuiltinFacts::ApiService { available }) = &t.kind {
                f.sample("", &[("name", name)], gauge_bool(*available));
            }
        }
    }
}
