//! A `v1.Pod` message read into the [`RawObject`] the JSON single read makes for a pod watch
//! (metadata, and the pod's parts typed), so the store cannot tell the two forms apart.
//!
//! Field numbers are those of `k8s.io/api/core/v1/generated.proto` and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`; they never change (protobuf's
//! compatibility rule, which Kubernetes keeps). Where JSON omits an empty value
//! (`omitempty`), protobuf still writes it: an empty optional string or a zero generation reads
//! as absent here, as it does from JSON.

use std::borrow::Cow;

use super::{
    ProtoError,
    wire::{Fields, text_pair, time},
};
use crate::{
    ingest::{
        builtin::shapes::{ContainerStatus, ImageOnly, OwnerRef, PodOwnSpec, PodStatus, RevisionLabels},
        decode::{PodParts, Typed},
        wire::{Meta, RawObject, Writes},
    },
    model::time::in_range,
};

/// Reads one `v1.Pod` message (no envelope).
pub(super) fn pod(b: &[u8]) -> Result<RawObject<'_>, ProtoError> {
    let mut parts = Box::<PodParts>::default();
    let mut meta = None;
    for f in Fields::new(b) {
        match f? {
            (1, v) => meta = Some(metadata(v.bytes(1)?, &mut parts)?),
            (2, v) => parts.spec = spec(v.bytes(2)?)?,
            (3, v) => parts.status = status(v.bytes(3)?)?,
            _ => {}
        }
    }
    let meta = meta.ok_or_else(|| ProtoError::Shape("a pod without metadata".into()))?;
    Ok(RawObject { meta, fields: Vec::new(), typed: Typed { status: None, pod: Some(parts) } })
}

/// A string that JSON omits when empty.
fn nonempty(s: Cow<'_, str>) -> Option<Cow<'_, str>> {
    (!s.is_empty()).then_some(s)
}

fn metadata<'a>(b: &'a [u8], parts: &mut PodParts<'a>) -> Result<Meta<'a>, ProtoError> {
    let mut m = Meta::default();
    for f in Fields::new(b) {
        match f? {
            (1, v) => m.name = v.text(1)?,
            (3, v) => m.namespace = nonempty(v.text(3)?),
            (5, v) => m.uid = v.text(5)?,
            (6, v) => m.resource_version = v.text(6)?,
            (7, v) => m.generation = Some(v.int(7)?).filter(|&g| g != 0),
            (8, v) => m.created = time(v.bytes(8)?)?.and_then(|s| in_range(s as f64)),
            (9, v) => m.deleting = time(v.bytes(9)?)?.is_some(),
            (11, v) => label(v.bytes(11)?, &mut parts.labels)?,
            (13, v) => parts.owners.push(owner(v.bytes(13)?)?),
            (17, v) => managed_field(v.bytes(17)?, &mut m.writes)?,
            _ => {}
        }
    }
    m.writes.finish();
    Ok(m)
}

/// One `labels` entry: only the revision labels are kept.
fn label<'a>(b: &'a [u8], labels: &mut RevisionLabels<'a>) -> Result<(), ProtoError> {
    let (k, v) = text_pair(b)?;
    match &*k {
        "pod-template-hash" => labels.template_hash = Some(v),
        "controller-revision-hash" => labels.revision = Some(v),
        "pod-template-generation" => labels.template_generation = Some(v),
        _ => {}
    }
    Ok(())
}

fn owner(b: &[u8]) -> Result<OwnerRef<'_>, ProtoError> {
    let mut o = OwnerRef {
        kind: Cow::Borrowed(""),
        name: Cow::Borrowed(""),
        uid: Cow::Borrowed(""),
        controller: false,
    };
    for f in Fields::new(b) {
        match f? {
            (1, v) => o.kind = v.text(1)?,
            (3, v) => o.name = v.text(3)?,
            (4, v) => o.uid = v.text(4)?,
            (6, v) => o.controller = v.bool(6)?,
            _ => {}
        }
    }
    Ok(o)
}

/// One `managedFields` entry folded into `writes` (its `fieldsV1` tree is skipped unread).
fn managed_field<'a>(b: &'a [u8], writes: &mut Writes<'a>) -> Result<(), ProtoError> {
    let (mut manager, mut subresource, mut at) = (Cow::Borrowed(""), None, None);
    for f in Fields::new(b) {
        match f? {
            (1, v) => manager = v.text(1)?,
            (4, v) => at = time(v.bytes(4)?)?,
            (8, v) => subresource = nonempty(v.text(8)?),
            _ => {}
        }
    }
    if let Some(t) = at.and_then(|s| in_range(s as f64)) {
        writes.record(manager, subresource.as_deref(), t);
    }
    Ok(())
}

fn spec(b: &[u8]) -> Result<PodOwnSpec<'_>, ProtoError> {
    let mut s = PodOwnSpec::default();
    for f in Fields::new(b) {
        match f? {
            (2, v) => s.containers.push(container(v.bytes(2)?)?),
            (10, v) => s.node_name = nonempty(v.text(10)?),
            (20, v) => s.init_containers.push(container(v.bytes(20)?)?),
            _ => {}
        }
    }
    Ok(s)
}

fn container(b: &[u8]) -> Result<ImageOnly<'_>, ProtoError> {
    let mut c = ImageOnly { name: Cow::Borrowed(""), image: Cow::Borrowed("") };
    for f in Fields::new(b) {
        match f? {
            (1, v) => c.name = v.text(1)?,
            (2, v) => c.image = v.text(2)?,
            _ => {}
        }
    }
    Ok(c)
}

fn status(b: &[u8]) -> Result<PodStatus<'_>, ProtoError> {
    let mut s = PodStatus::default();
    for f in Fields::new(b) {
        match f? {
            (2, v) => s.ready.0 |= ready(v.bytes(2)?)?,
            (8, v) => s.container_statuses.push(container_status(v.bytes(8)?)?),
            (10, v) => s.init_container_statuses.push(container_status(v.bytes(10)?)?),
            _ => {}
        }
    }
    Ok(s)
}

/// Whether one `PodCondition` is `Ready=True`.
fn ready(b: &[u8]) -> Result<bool, ProtoError> {
    let (ty, status) = text_pair(b)?;
    Ok(ty == "Ready" && status == "True")
}

fn container_status(b: &[u8]) -> Result<ContainerStatus<'_>, ProtoError> {
    // `image` and `imageID` are never omitted from JSON, even empty.
    let mut c = ContainerStatus { name: Cow::Borrowed(""), image: None, image_id: None, restart_count: 0 };
    for f in Fields::new(b) {
        match f? {
            (1, v) => c.name = v.text(1)?,
            (5, v) => c.restart_count = u32::try_from(v.int(5)?).unwrap_or(0),
            (6, v) => c.image = Some(v.text(6)?),
            (7, v) => c.image_id = Some(v.text(7)?),
            _ => {}
        }
    }
    Ok(c)
}
