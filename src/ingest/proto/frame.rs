//! The envelopes around protobuf objects: a response body or an embedded object is `k8s\0`
//! followed by a `runtime.Unknown` (type meta, then the object's bytes); a watch stream is a
//! sequence of frames, each a 4-byte big-endian length and a `metav1.WatchEvent` (its type,
//! and its object in the envelope).

use std::borrow::Cow;

use futures::{AsyncRead, AsyncReadExt};

use super::{
    ProtoError,
    pod::pod,
    wire::{Fields, text_pair},
};
use crate::ingest::wire::{
    ApiStatus, BookmarkAnnotations, BookmarkMeta, BookmarkObject, List, ListMeta, RawObject, ShardInfo,
    WatchLine,
};

/// The largest watch frame read: etcd keeps objects under 1.5 MiB, so a frame this large is a
/// corrupted length, not an object.
pub const MAX_FRAME: usize = 64 << 20;

const MAGIC: &[u8] = b"k8s\0";

/// The kind and bytes of an enveloped object.
fn envelope(b: &[u8]) -> Result<(Cow<'_, str>, &[u8]), ProtoError> {
    let unknown = b.strip_prefix(MAGIC).ok_or(ProtoError::Envelope)?;
    let (mut kind, mut raw) = (Cow::Borrowed(""), &[][..]);
    for f in Fields::new(unknown) {
        match f? {
            (1, v) => {
                for t in Fields::new(v.bytes(1)?) {
                    if let (2, k) = t? {
                        kind = k.text(2)?;
                    }
                }
            }
            (2, v) => raw = v.bytes(2)?,
            (3, v) if !v.bytes(3)?.is_empty() => {
                return Err(ProtoError::Shape("an encoded (compressed) object is not supported".into()));
            }
            _ => {}
        }
    }
    Ok((kind, raw))
}

/// One watch frame (the length prefix already removed) as the line it stands for.
pub fn decode_event(frame: &[u8]) -> Result<WatchLine<RawObject<'_>>, ProtoError> {
    let (mut ty, mut object) = (Cow::Borrowed(""), None);
    for f in Fields::new(frame) {
        match f? {
            (1, v) => ty = v.text(1)?,
            (2, v) => {
                for r in Fields::new(v.bytes(2)?) {
                    if let (1, raw) = r? {
                        object = Some(raw.bytes(1)?);
                    }
                }
            }
            _ => {}
        }
    }
    let (kind, raw) =
        envelope(object.ok_or_else(|| ProtoError::Shape("a watch event without an object".into()))?)?;
    let object = || match kind == "Pod" {
        true => pod(raw),
        false => Err(ProtoError::Shape(format!("a {ty} event carries a {kind:?}, not a Pod"))),
    };
    Ok(match &*ty {
        "ADDED" => WatchLine::Added(object()?),
        "MODIFIED" => WatchLine::Modified(object()?),
        "DELETED" => WatchLine::Deleted(object()?),
        "BOOKMARK" => WatchLine::Bookmark(bookmark(raw)?),
        "ERROR" => WatchLine::Error(status(raw)?),
        other => return Err(ProtoError::Shape(format!("unknown event type {other:?}"))),
    })
}

/// A bookmark's object: its resourceVersion and the annotation that ends a streamed list.
fn bookmark(b: &[u8]) -> Result<BookmarkObject, ProtoError> {
    let mut meta =
        BookmarkMeta { resource_version: String::new(), annotations: BookmarkAnnotations::default() };
    for f in Fields::new(b) {
        if let (1, m) = f? {
            for g in Fields::new(m.bytes(1)?) {
                match g? {
                    (6, v) => meta.resource_version = v.text(6)?.into_owned(),
                    (12, v) => {
                        let (k, v) = text_pair(v.bytes(12)?)?;
                        if k == "k8s.io/initial-events-end" {
                            meta.annotations.initial_events_end = Some(v.into_owned());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(BookmarkObject { metadata: meta })
}

/// A `metav1.Status` message (no envelope).
fn status(b: &[u8]) -> Result<ApiStatus, ProtoError> {
    let mut s = ApiStatus::default();
    for f in Fields::new(b) {
        match f? {
            (3, v) => s.message = v.text(3)?.into_owned(),
            (4, v) => s.reason = v.text(4)?.into_owned(),
            (6, v) => s.code = u16::try_from(v.int(6)?).unwrap_or(0),
            _ => {}
        }
    }
    Ok(s)
}

/// The Status of an error response in protobuf (`None` when the body is not one).
pub fn decode_status(body: &[u8]) -> Option<ApiStatus> {
    let (kind, raw) = envelope(body).ok()?;
    (kind == "Status").then(|| status(raw).ok()).flatten()
}

/// One page of a pod list response (`v1.PodList` in the envelope).
pub fn decode_list(body: &[u8]) -> Result<List<RawObject<'_>>, ProtoError> {
    let (kind, raw) = envelope(body)?;
    if kind != "PodList" {
        return Err(ProtoError::Shape(format!("a list response of kind {kind:?}, not PodList")));
    }
    let mut list = List { metadata: ListMeta::default(), items: Vec::new() };
    for f in Fields::new(raw) {
        match f? {
            (1, v) => list.metadata = list_meta(v.bytes(1)?)?,
            (2, v) => list.items.push(pod(v.bytes(2)?)?),
            _ => {}
        }
    }
    Ok(list)
}

fn list_meta(b: &[u8]) -> Result<ListMeta, ProtoError> {
    let mut m = ListMeta::default();
    for f in Fields::new(b) {
        match f? {
            (2, v) => m.resource_version = v.text(2)?.into_owned(),
            (3, v) => m.continue_token = Some(v.text(3)?.into_owned()).filter(|t| !t.is_empty()),
            (5, v) => {
                let mut selector = String::new();
                for s in Fields::new(v.bytes(5)?) {
                    if let (1, x) = s? {
                        selector = x.text(1)?.into_owned();
                    }
                }
                m.shard_info = Some(ShardInfo { selector });
            }
            _ => {}
        }
    }
    Ok(m)
}

/// Reads a watch stream's frames.
pub struct FrameReader<R> {
    inner: R,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames of `inner`, a watch response's body.
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader { inner }
    }

    /// The next frame; `None` when the stream ends between frames (the server's timeout), an
    /// error when it ends inside one or a length is past [`MAX_FRAME`].
    pub async fn next(&mut self) -> Option<std::io::Result<Vec<u8>>> {
        let mut len = [0u8; 4];
        match self.inner.read(&mut len[..1]).await {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        if let Err(e) = self.inner.read_exact(&mut len[1..]).await {
            return Some(Err(e));
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Some(Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                ProtoError::FrameTooLarge(n),
            )));
        }
        let mut frame = vec![0; n];
        Some(self.inner.read_exact(&mut frame).await.map(|()| frame))
    }
}
