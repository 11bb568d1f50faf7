//! The snapshot stream client against a fake controller: applies newer
//! snapshots, ignores heartbeats, unreadable lines and older versions, and
//! reconnects when the stream ends.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use bytes::Bytes;
use http::Response;
use http_body::Frame;
use http_body_util::StreamBody;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use server_support::*;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

type Script = Vec<(Vec<String>, bool)>;

/// Serves `script[k]` to the k-th request: its lines, then the end of the
/// stream when the flag is set (else it stays open). Records request paths.
async fn fake_controller(script: Script) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let paths = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script.into_iter()));
    let seen = paths.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (seen, script) = (seen.clone(), script.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    seen.lock().unwrap().push(req.uri().path().to_string());
                    let (lines, end) = script.lock().unwrap().next().unwrap_or_default();
                    let frames = lines
                        .into_iter()
                        .map(|l| Ok::<_, Infallible>(Frame::data(Bytes::from(l + "\n"))));
                    let body = futures_util::stream::iter(frames);
                    let body: std::pin::Pin<Box<dyn futures_util::Stream<Item = _> + Send>> = if end
                    {
                        Box::pin(body)
                    } else {
                        Box::pin(futures_util::StreamExt::chain(
                            body,
                            futures_util::stream::pending(),
                        ))
                    };
                    async move {
                        Ok::<_, Infallible>(
                            Response::builder()
                                .header("content-type", "application/x-ndjson")
                                .body(StreamBody::new(body))
                                .unwrap(),
                        )
                    }
                });
                let _ = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, paths)
}

#[tokio::test]
async fn follows_the_stream_and_reconnects() {
    let a = echo("a").await;
    let port = free_port();
    let v1 = snapshot(1, port, &[("/", a)]);
    let v2 = snapshot(2, port, &[("/two", a)]);
    let stale = snapshot(1, port, &[("/stale", a)]);
    let json = |s: &tollgate_snapshot::Snapshot| serde_json::to_string(s).unwrap();
    let script = vec![
        (
            vec![
                json(&v1),
                String::new(),
                "{not json".into(),
                json(&v2),
                json(&stale),
            ],
            true,
        ),
        (vec![json(&v2)], false),
    ];
    let (url, paths) = fake_controller(script).await;
    let dp = dataplane();
    let client = tokio::spawn(tollgate_dataplane::subscribe(url, dp.clone()));
    let mut reconnected = false;
    for _ in 0..200 {
        if paths.lock().unwrap().len() == 2 && dp.status().version == Some(2) {
            reconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reconnected, "reconnected after the stream ended");
    assert_eq!(
        dp.status().hash,
        Some(v2.content_hash()),
        "the stale snapshot was ignored"
    );
    assert!(
        paths
            .lock()
            .unwrap()
            .iter()
            .all(|p| p == "/v1/snapshots/default/gw")
    );
    let (code, _) = get(&h1_client(), &format!("http://127.0.0.1:{port}/two"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    dp.shutdown();
    tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .unwrap()
        .unwrap();
}
