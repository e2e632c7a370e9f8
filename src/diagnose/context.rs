//! The one-shot context lists of `diagnose`: what the store does not keep, fetched once per
//! run (Warning events with their messages, nodes with their age and KubeArmor snitch labels,
//! the APIService of each tracked group).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::{
    api::core::v1::{Event, Node},
    kube_aggregator::pkg::apis::apiregistration::v1::APIService,
};
use kube::{Api, Client, api::ListParams};

use super::{
    HOUR, LIST_TIMEOUT, SNITCH_LABEL,
    report::{ApiServiceReport, NodeReport},
};

pub(super) struct EventRow {
    pub(super) kind: String,
    pub(super) name: String,
    /// The involved object's UID, when the event names it: a re-created namesake is another object.
    pub(super) uid: Option<String>,
    pub(super) reason: String,
    pub(super) message: String,
    pub(super) count: u64,
    pub(super) last_seen: Option<f64>,
}

pub(super) struct NodeRow {
    pub(super) name: String,
    pub(super) ready: Option<bool>,
    pub(super) created: Option<f64>,
    pub(super) linux: bool,
    pub(super) snitch: bool,
}

#[derive(Default)]
pub(super) struct Context {
    /// Warning events per namespace.
    pub(super) events: BTreeMap<String, Vec<EventRow>>,
    pub(super) nodes: Option<Vec<NodeRow>>,
    pub(super) apiservices: BTreeMap<String, ApiServiceReport>,
}

fn secs(t: &jiff::Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

fn api_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
        e => e.to_string(),
    }
}

impl Context {
    /// Best effort: a failure here is a note, not a failed check (the verdict does not need it).
    pub(super) async fn fetch(
        client: &Client,
        namespaces: &BTreeSet<String>,
        groups: &BTreeSet<String>,
        notes: &mut Vec<String>,
    ) -> Context {
        let mut ctx = Context::default();
        let warnings = ListParams::default().fields("type=Warning");
        for ns in namespaces {
            let api: Api<Event> = Api::namespaced(client.clone(), ns);
            match tokio::time::timeout(LIST_TIMEOUT, api.list(&warnings)).await {
                Ok(Ok(list)) => {
                    let rows = list
                        .items
                        .into_iter()
                        .map(|e| {
                            let last = e
                                .series
                                .as_ref()
                                .and_then(|s| s.last_observed_time.as_ref())
                                .map(|t| secs(&t.0))
                                .or(e.last_timestamp.as_ref().map(|t| secs(&t.0)))
                                .or(e.event_time.as_ref().map(|t| secs(&t.0)))
                                .or(e.metadata.creation_timestamp.as_ref().map(|t| secs(&t.0)));
                            let count = e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1);
                            EventRow {
                                kind: e.involved_object.kind.unwrap_or_default(),
                                uid: e.involved_object.uid.filter(|u| !u.is_empty()),
                                name: e.involved_object.name.unwrap_or_default(),
                                reason: e.reason.unwrap_or_default(),
                                message: e.message.unwrap_or_default().trim().to_string(),
                                count: count.max(1) as u64,
                                last_seen: last,
                            }
                        })
                        .collect();
                    ctx.events.insert(ns.clone(), rows);
                }
                Ok(Err(e)) => {
                    notes.push(format!("Warning events in namespace {ns} not read: {}", api_error(&e)))
                }
                Err(_) => notes.push(format!("Warning events in namespace {ns} not read: timed out")),
            }
        }
        let api: Api<Node> = Api::all(client.clone());
        match tokio::time::timeout(LIST_TIMEOUT, api.list(&ListParams::default())).await {
            Ok(Ok(list)) => {
                ctx.nodes = Some(
                    list.items
                        .into_iter()
                        .map(|n| {
                            let labels = n.metadata.labels.unwrap_or_default();
                            let ready = n
                                .status
                                .as_ref()
                                .and_then(|s| s.conditions.as_ref())
                                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                                .map(|c| c.status == "True");
                            NodeRow {
                                name: n.metadata.name.unwrap_or_default(),
                                ready,
                                created: n.metadata.creation_timestamp.as_ref().map(|t| secs(&t.0)),
                                linux: labels.get("kubernetes.io/os").is_none_or(|os| os == "linux"),
                                snitch: labels.contains_key(SNITCH_LABEL),
                            }
                        })
                        .collect(),
                );
            }
            Ok(Err(e)) => notes.push(format!("nodes not read: {}", api_error(&e))),
            Err(_) => notes.push("nodes not read: timed out".into()),
        }
        let api: Api<APIService> = Api::all(client.clone());
        for name in groups {
            let lp = ListParams::default().fields(&format!("metadata.name={name}"));
            let report = match tokio::time::timeout(LIST_TIMEOUT, api.list(&lp)).await {
                Ok(Ok(list)) => match list.items.into_iter().next() {
                    Some(a) => {
                        let cond = a
                            .status
                            .and_then(|s| s.conditions)
                            .and_then(|c| c.into_iter().find(|c| c.type_ == "Available"));
                        ApiServiceReport {
                            name: name.clone(),
                            available: Some(cond.as_ref().is_some_and(|c| c.status == "True")),
                            message: cond
                                .map(|c| {
                                    format!(
                                        "{}{}",
                                        c.reason.unwrap_or_default(),
                                        c.message.map(|m| format!(": {m}")).unwrap_or_default()
                                    )
                                })
                                .unwrap_or_else(|| "no Available condition".into()),
                        }
                    }
                    None => ApiServiceReport {
                        name: name.clone(),
                        available: Some(false),
                        message:
                            "the APIService does not exist (the CRD or the aggregated API is not installed)"
                                .into(),
                    },
                },
                Ok(Err(e)) => {
                    ApiServiceReport { name: name.clone(), available: None, message: api_error(&e) }
                }
                Err(_) => {
                    ApiServiceReport { name: name.clone(), available: None, message: "timed out".into() }
                }
            };
            ctx.apiservices.insert(name.clone(), report);
        }
        ctx
    }
}

pub(super) fn node_report(rows: &[NodeRow], now: f64, kubearmor: bool) -> NodeReport {
    let names = |f: &dyn Fn(&NodeRow) -> bool| -> Vec<String> {
        let mut v: Vec<String> = rows.iter().filter(|n| f(n)).map(|n| n.name.clone()).collect();
        v.sort();
        v
    };
    NodeReport {
        total: rows.len(),
        not_ready: names(&|n| n.ready != Some(true)),
        created_last_hour: names(&|n| n.created.is_some_and(|c| now - c <= HOUR)),
        linux: rows.iter().filter(|n| n.linux).count(),
        without_kubearmor_labels: kubearmor.then(|| names(&|n| n.linux && !n.snitch)),
    }
}
