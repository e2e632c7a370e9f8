//! The Kubernetes protobuf wire form of pods, read without generated bindings: only the fields
//! the pod facts need are decoded, borrowing from the frame; every other field (a pod's
//! volumes, probes, env, the managedFields' `fieldsV1` trees) is skipped by its length without
//! being read. Skipping a length-delimited field costs nothing, where JSON must scan every
//! byte of it, so a pod read this way costs a fraction of the JSON skip-only floor
//! (docs/benchmarks.md).
//!
//! The API server serves protobuf for built-in kinds only; custom resources are always JSON.
//! Layout: [`wire`] reads fields, [`pod`] reads a pod into the same [`RawObject`] the JSON
//! single read makes, [`frame`] reads the envelopes (list responses, watch events, Status).
//! [`encode`] writes the wire form, for tests and benches.
//!
//! [`RawObject`]: super::wire::RawObject

pub mod encode;
mod frame;
mod pod;
mod wire;

pub use self::frame::{FrameReader, MAX_FRAME, decode_event, decode_list, decode_status};

/// The media type a client asks for: protobuf, else JSON (a server, proxy or kind that does not
/// speak protobuf answers JSON).
pub const ACCEPT: &str = "application/vnd.kubernetes.protobuf, application/json";

/// Whether a response's `Content-Type` is the protobuf form (a list, or a watch's
/// `;stream=watch`).
pub fn is_protobuf(content_type: Option<&http::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/vnd.kubernetes.protobuf"))
}

/// Why protobuf bytes could not be read. The API server writes these from typed Go structs, so
/// any of them means a bug on one side or a corrupted stream: the watch falls back to JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("protobuf: truncated at byte {0}")]
    Truncated(usize),
    #[error("protobuf: a varint longer than 10 bytes at byte {0}")]
    LongVarint(usize),
    #[error("protobuf: wire type {wire} of field {field} is not supported")]
    WireType { field: u64, wire: u64 },
    #[error("protobuf: field {field} should be {expected}")]
    Type { field: u32, expected: &'static str },
    #[error("protobuf: no \"k8s\\0\" envelope (not a Kubernetes protobuf object)")]
    Envelope,
    #[error("protobuf: {0}")]
    Shape(String),
    #[error("protobuf: a frame of {0} bytes is over the {MAX_FRAME} byte limit")]
    FrameTooLarge(usize),
}

#[cfg(test)]
mod tests;
