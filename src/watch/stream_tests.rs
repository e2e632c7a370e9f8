//! The IO side against a scripted API server on loopback: pods asked for and read in
//! protobuf, and the switch to JSON when a protobuf frame cannot be read.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

use crate::watch::{WatchOptions, client, plan, run};
use crate::{
    config::Config,
    ingest::proto::encode::{Message, envelope, watch_frame},
    model::shard::Shard,
    store::{ErrorCause, Watch},
};

const DISCOVERY: &str = r#"{"kind":"APIResourceList","groupVersion":"v1","resources":[{"name":"pods","singularName":"pod","namespaced":true,"kind":"Pod","verbs":["list","watch"]}]}"#;

fn pod(name: &str, rv: &str) -> Message {
    let meta = Message::new().str(1, name).str(3, "default").str(5, &format!("uid-{name}")).str(6, rv);
    Message::new().msg(1, meta).msg(2, Message::new().msg(2, Message::new().str(1, "app").str(2, "app:1")))
}

/// Answers requests in order, one per connection (`Connection: close`): discovery, a streamed
/// list in protobuf whose second frame is corrupt, then (whatever is asked) the same list in
/// JSON. Sends each request's head to `heads`.
async fn scripted(listener: TcpListener, heads: mpsc::UnboundedSender<String>) {
    for n in 0.. {
        let Ok((mut sock, _)) = listener.accept().await else { return };
        let mut buf = vec![0u8; 8192];
        let len = sock.read(&mut buf).await.unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..len]).to_ascii_lowercase();
        let _ = heads.send(head.clone());
        let (content_type, body): (&str, Vec<u8>) = match n {
            0 => ("application/json", DISCOVERY.as_bytes().to_vec()),
            1 => {
                let mut b = watch_frame("ADDED", &envelope("v1", "Pod", pod("a", "10")));
                b.extend_from_slice(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
                ("application/vnd.kubernetes.protobuf;stream=watch", b)
            }
            _ => (
                "application/json",
                concat!(
                    r#"{"type":"ADDED","object":{"metadata":{"name":"a","namespace":"default","uid":"uid-a","resourceVersion":"10"}}}"#, "\n",
                    r#"{"type":"ADDED","object":{"metadata":{"name":"b","namespace":"default","uid":"uid-b","resourceVersion":"11"}}}"#, "\n",
                    r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"11","annotations":{"k8s.io/initial-events-end":"true"}}}}"#, "\n",
                )
                .as_bytes()
                .to_vec(),
            ),
        };
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n");
        let _ = sock.write_all(head.as_bytes()).await;
        let _ = sock.write_all(&body).await;
        if n == 0 {
            let _ = sock.shutdown().await;
        } else {
            // A watch stays open; the loop's own timeouts are longer than this test.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(sock);
            });
        }
    }
}

#[tokio::test]
async fn pods_are_asked_in_protobuf_and_an_unreadable_frame_switches_the_watch_to_json() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, mut heads) = mpsc::unbounded_channel();
    tokio::spawn(scripted(listener, tx));
    let config = Config::parse("targets: [{preset: workloads}]\n", "test").unwrap();
    let (key, subs) = plan(&config).into_iter().find(|(k, _)| k.gvk.kind == "Pod").unwrap();
    let watch = Arc::new(Watch::new(key, subs));
    let client = kube::Client::try_from(client::prepare(kube::Config::new(url.parse().unwrap()))).unwrap();
    let opts = WatchOptions {
        resync: Duration::from_secs(600),
        timeout: Duration::from_secs(290),
        idle: Duration::from_secs(60),
        shard: Shard::ALL,
    };
    let task = tokio::spawn(run(client, watch.clone(), opts));
    let mut waited = Duration::ZERO;
    while watch.read(|s| s.objects.len()) < 2 && waited < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    task.abort();
    let names: Vec<String> = watch.read(|s| s.objects.keys().map(|k| format!("{k:?}")).collect());
    assert_eq!(names.len(), 2, "both pods, read again in JSON after the corrupt frame: {names:?}");
    assert_eq!(watch.read(|s| s.health.errors.get(&ErrorCause::Decode).copied()), Some(1));
    let (_discovery, first, second) =
        (heads.recv().await.unwrap(), heads.recv().await.unwrap(), heads.recv().await.unwrap());
    assert!(first.contains("sendinitialevents=true"), "{first}");
    assert!(first.contains("accept: application/vnd.kubernetes.protobuf, application/json"), "{first}");
    assert!(second.contains("sendinitialevents=true") && !second.contains("protobuf"), "{second}");
}
