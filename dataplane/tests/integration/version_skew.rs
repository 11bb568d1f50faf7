//! Version skew between controller and data plane: a snapshot written by a
//! newer controller one minor version ahead (fields this data plane does
//! not know, at every level) is applied and served; one of another major
//! is refused with a clear report and the previous snapshot keeps serving.

#![allow(clippy::unwrap_used)]

use crate::server_support::*;
use bytes::Bytes;
use http::Response;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tollgate_snapshot::{SCHEMA_MAJOR, SCHEMA_MINOR};

/// A controller (HTTP/1.1 and h2c, like the real one) that streams the lines sent on the returned channel and
/// records the reports posted to it.
async fn controller() -> (
    String,
    mpsc::UnboundedSender<String>,
    Arc<Mutex<Vec<Value>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    let rx = Arc::new(tokio::sync::Mutex::new(Some(rx)));
    let reports = Arc::new(Mutex::new(Vec::new()));
    let seen = reports.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (rx, seen) = (rx.clone(), seen.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let (rx, seen) = (rx.clone(), seen.clone());
                    async move {
                        if req.method() == http::Method::POST {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            seen.lock()
                                .unwrap()
                                .push(serde_json::from_slice(&body).unwrap());
                            let empty: Frames = Box::pin(futures_util::stream::empty());
                            return Ok::<_, Infallible>(
                                Response::builder()
                                    .status(204)
                                    .body(StreamBody::new(empty))
                                    .unwrap(),
                            );
                        }
                        let rx = rx.lock().await.take().unwrap();
                        let lines = channel_frames(rx);
                        Ok(Response::builder()
                            .header("content-type", "application/x-ndjson")
                            .header("tollgate-report-path", "/v1/reports/default/gw")
                            .body(StreamBody::new(lines))
                            .unwrap())
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, tx, reports)
}

type Frames =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>;

/// The lines sent on a channel, as body frames.
fn channel_frames(rx: mpsc::UnboundedReceiver<String>) -> Frames {
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        Some((Ok(Frame::data(Bytes::from(line + "\n"))), rx))
    }))
}

/// Adds a field this data plane does not know to every object in `value`.
fn add_unknown_fields(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.values_mut().for_each(add_unknown_fields);
            map.insert(
                "addedInALaterMinor".into(),
                serde_json::json!({"x": [1, 2]}),
            );
        }
        Value::Array(items) => items.iter_mut().for_each(add_unknown_fields),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_minor_is_served_and_another_major_refused_with_a_report() {
    let a = echo("a").await;
    let port = free_port();
    let (url, lines, reports) = controller().await;
    let dp = dataplane();
    tokio::spawn(tollgate_dataplane::subscribe(url, dp.clone()));

    // One minor ahead, unknown fields everywhere.
    let mut newer = serde_json::to_value(snapshot(1, port, &[("/newer", a)])).unwrap();
    add_unknown_fields(&mut newer);
    newer["schemaVersion"] = format!("{SCHEMA_MAJOR}.{}", SCHEMA_MINOR + 1).into();
    assert!(newer["sockets"][0]["listeners"][0]["addedInALaterMinor"].is_object());
    lines.send(newer.to_string()).unwrap();
    wait(|| dp.status().version == Some(1)).await;
    let (code, _) = get(&h1_client(), &format!("http://127.0.0.1:{port}/newer"))
        .await
        .unwrap();
    assert_eq!(code, 200, "the newer-minor snapshot serves");

    // Another major: refused, reported, the previous one keeps serving.
    let major = SCHEMA_MAJOR + 1;
    let mut other = serde_json::to_value(snapshot(2, port, &[("/other", a)])).unwrap();
    other["schemaVersion"] = format!("{major}.0").into();
    lines.send(other.to_string()).unwrap();
    let reason =
        format!("snapshot schema {major}.0 is not supported by this data plane ({SCHEMA_MAJOR}.x)");
    wait(|| {
        reports
            .lock()
            .unwrap()
            .iter()
            .any(|r| r["rejected"]["version"] == 2 && r["rejected"]["reason"] == reason.as_str())
    })
    .await;
    let status = dp.status();
    assert_eq!(status.version, Some(1));
    assert_eq!(status.last_rejected.unwrap().error, reason);
    let report = reports.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (report["version"].as_u64(), report["ready"].as_bool()),
        (Some(1), Some(true))
    );
    let (code, _) = get(&h1_client(), &format!("http://127.0.0.1:{port}/newer"))
        .await
        .unwrap();
    assert_eq!(code, 200, "the previous snapshot keeps serving");
    dp.shutdown();
}

async fn wait(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached in 10 s");
}
