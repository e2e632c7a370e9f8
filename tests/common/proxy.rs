//! A loopback HTTP proxy between stallwatch and the API server that can lose watch events.
//!
//! It listens on plain HTTP on 127.0.0.1 (so stallwatch's kubeconfig needs no credentials) and
//! forwards every request with a `kube::Client` built from the admin kubeconfig (which holds the
//! TLS and client certificate). Responses are streamed back; the responses of watch requests are
//! streamed event by event (JSON lines, or protobuf frames for pods), and while dropping is on, ADDED and MODIFIED lines whose object
//! matches the predicate are silently left out: exactly what a lost watch event looks like to a
//! client. Lists, discovery and every other request pass unchanged.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use hyper::{Request, Response, body::Frame, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, BoxError>;
type Predicate = dyn Fn(&Value) -> bool + Send + Sync;

struct State {
    upstream: kube::Client,
    dropping: AtomicBool,
    dropped: AtomicU64,
    forwarded_watch_lines: AtomicU64,
    /// Responses the API server sent in protobuf, per kind of request: lists, watches.
    protobuf_lists: AtomicU64,
    protobuf_watches: AtomicU64,
    predicate: Box<Predicate>,
}

pub struct DropProxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl DropProxy {
    /// Starts the proxy on a free loopback port. `predicate` sees each watch event's object.
    pub async fn start(
        upstream: kube::Client,
        predicate: impl Fn(&Value) -> bool + Send + Sync + 'static,
    ) -> DropProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            upstream,
            dropping: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            forwarded_watch_lines: AtomicU64::new(0),
            protobuf_lists: AtomicU64::new(0),
            protobuf_watches: AtomicU64::new(0),
            predicate: Box::new(predicate),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(st.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        DropProxy { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Turns losing matching watch events on or off.
    pub fn set_dropping(&self, on: bool) {
        self.state.dropping.store(on, Ordering::SeqCst);
    }

    /// Watch events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::SeqCst)
    }

    pub fn forwarded_watch_lines(&self) -> u64 {
        self.state.forwarded_watch_lines.load(Ordering::SeqCst)
    }

    /// (lists, watches) the API server answered in protobuf (`Content-Type` seen on the wire).
    pub fn protobuf_responses(&self) -> (u64, u64) {
        (self.state.protobuf_lists.load(Ordering::SeqCst), self.state.protobuf_watches.load(Ordering::SeqCst))
    }
}

impl Drop for DropProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_watch(uri: &http::Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

const HOP_BY_HOP: [&str; 8] =
    ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"];

fn error(code: u16, msg: String) -> Response<Body> {
    let body = http_body_util::Full::new(Bytes::from(msg)).map_err(|e| match e {}).boxed_unsync();
    Response::builder().status(code).body(body).expect("error response")
}

async fn handle(st: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(error(400, format!("proxy: reading the request body: {e}"))),
    };
    let watch = is_watch(&parts.uri);
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut up = http::Request::builder().method(parts.method.clone()).uri(&pq);
    for (k, v) in &parts.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) && k != http::header::CONTENT_LENGTH {
            up = up.header(k, v);
        }
    }
    let up = match up.body(kube::client::Body::from(body.to_vec())) {
        Ok(r) => r,
        Err(e) => return Ok(error(400, format!("proxy: building the request: {e}"))),
    };
    let resp = match st.upstream.send(up).await {
        Ok(r) => r,
        Err(e) => return Ok(error(502, format!("proxy: upstream: {e}"))),
    };
    let (mut rparts, rbody) = resp.into_parts();
    for h in HOP_BY_HOP {
        rparts.headers.remove(h);
    }
    rparts.headers.remove(http::header::CONTENT_LENGTH);
    let data = rbody.into_data_stream().map_err(|e| -> BoxError { Box::new(e) });
    let protobuf = stallwatch::ingest::proto::is_protobuf(rparts.headers.get(http::header::CONTENT_TYPE));
    if protobuf {
        let counter = if watch { &st.protobuf_watches } else { &st.protobuf_lists };
        counter.fetch_add(1, Ordering::SeqCst);
    }
    let body: Body = if watch && rparts.status.is_success() {
        let st2 = st.clone();
        let lines = units(data.boxed(), protobuf).filter_map(move |line| {
            let keep = match &line {
                Ok(l) => !should_drop(&st2, l, protobuf),
                Err(_) => true,
            };
            async move { keep.then_some(line.map(Frame::data)) }
        });
        StreamBody::new(lines).boxed_unsync()
    } else {
        StreamBody::new(data.map_ok(Frame::data)).boxed_unsync()
    };
    Ok(Response::from_parts(rparts, body))
}

/// A protobuf watch frame (length prefix and event) as the JSON the predicate reads: its type
/// and its object's name and namespace.
fn frame_as_json(frame: &[u8]) -> Option<Value> {
    use stallwatch::ingest::{proto::decode_event, wire::WatchLine};
    let (ty, o) = match decode_event(frame.get(4..)?).ok()? {
        WatchLine::Added(o) => ("ADDED", o),
        WatchLine::Modified(o) => ("MODIFIED", o),
        WatchLine::Deleted(o) => ("DELETED", o),
        _ => return Some(serde_json::json!({"type": "BOOKMARK"})),
    };
    Some(
        serde_json::json!({"type": ty, "object": {"metadata": {"name": o.meta.name, "namespace": o.meta.namespace}}}),
    )
}

fn should_drop(st: &State, line: &Bytes, protobuf: bool) -> bool {
    let ev = match protobuf {
        true => frame_as_json(line),
        false => serde_json::from_slice::<Value>(line).ok(),
    };
    let Some(ev) = ev else { return false };
    let ty = ev["type"].as_str().unwrap_or("");
    if matches!(ty, "ADDED" | "MODIFIED")
        && st.dropping.load(Ordering::SeqCst)
        && (st.predicate)(&ev["object"])
    {
        st.dropped.fetch_add(1, Ordering::SeqCst);
        return true;
    }
    st.forwarded_watch_lines.fetch_add(1, Ordering::SeqCst);
    false
}

/// The length of the first whole unit of a watch body in `buf`: a line with its `\n`, or a
/// protobuf frame with its 4-byte length.
fn unit_len(buf: &[u8], protobuf: bool) -> Option<usize> {
    match protobuf {
        true => {
            let n = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize + 4;
            (buf.len() >= n).then_some(n)
        }
        false => buf.iter().position(|b| *b == b'\n').map(|i| i + 1),
    }
}

/// Re-chunks a watch body into whole units (lines, or protobuf frames); a trailing partial
/// unit is emitted at the end.
fn units(
    data: futures::stream::BoxStream<'static, Result<Bytes, BoxError>>,
    protobuf: bool,
) -> impl futures::Stream<Item = Result<Bytes, BoxError>> + Send + 'static {
    futures::stream::unfold(
        (data, Vec::<u8>::new(), false),
        move |(mut data, mut buf, mut done)| async move {
            loop {
                if let Some(n) = unit_len(&buf, protobuf) {
                    let line: Vec<u8> = buf.drain(..n).collect();
                    return Some((Ok(Bytes::from(line)), (data, buf, done)));
                }
                if done {
                    if buf.is_empty() {
                        return None;
                    }
                    let rest = std::mem::take(&mut buf);
                    return Some((Ok(Bytes::from(rest)), (data, buf, done)));
                }
                match data.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                    Some(Err(e)) => {
                        done = true;
                        return Some((Err(e), (data, buf, done)));
                    }
                    None => done = true,
                }
            }
        },
    )
}
