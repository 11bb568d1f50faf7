//! Downstream request bodies that fail or crawl: a malformed body is the
//! client's error (400), not a failing backend's (502), and a body that
//! stalls or trickles in is cut (408) instead of holding a downstream and
//! an upstream connection for as long as the client likes.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use server_support::*;
use std::convert::Infallible;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_snapshot::Settings;

/// Body timeout `timeout_ms` and minimum rate `min_rate` bytes per second.
fn body_limits(timeout_ms: u64, min_rate: u32) -> Settings {
    Settings {
        request_body_timeout_ms: timeout_ms,
        request_body_min_bytes_per_second: min_rate,
        ..Settings::default()
    }
}

/// Sends `head` on a new connection, then `body` bytes in pieces of
/// `piece` every `every`, while reading the answer until the gateway closes
/// the connection or `limit` passes. Returns what was read, whether the
/// connection was closed, and how long it took.
async fn trickle(
    port: u16,
    head: &'static str,
    body: usize,
    piece: usize,
    every: Duration,
) -> (String, bool, Duration) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await.unwrap();
        let mut sent = 0;
        while sent < body {
            tokio::time::sleep(every).await;
            let n = piece.min(body - sent);
            if write.write_all(&vec![b'x'; n]).await.is_err() {
                return;
            }
            sent += n;
        }
        // Hold the socket open until the test ends.
        std::future::pending::<()>().await;
    });
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let closed = loop {
        match tokio::time::timeout_at(deadline, read.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    writer.abort();
    (
        String::from_utf8_lossy(&out).into(),
        closed,
        started.elapsed(),
    )
}

/// A malformed chunked body is answered 400 `request-body`: the client's
/// fault, though it surfaces while the request is sent upstream.
#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_error() {
    let (_dp, port) = serving(Settings::default()).await;
    for body in [
        "2\r\nhi\r\nzz\r\n\r\n",
        "2\r\nhi\r\n3\r\nabcXY\r\n0\r\n\r\n",
    ] {
        let request =
            format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
        let (response, closed) = raw(port, request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{body:?}: {response}");
        assert!(
            response.contains("x-tollgate-error: request-body\r\n"),
            "{response}"
        );
        assert!(closed, "{body:?}: connection closed");
    }
}

/// A body trickling in below the minimum rate is cut with 408 and the
/// connection closed, long before it would have finished; one at a good
/// rate is served.
#[tokio::test]
async fn a_trickled_body_is_cut_with_408() {
    let (_dp, port) = serving(body_limits(300, 100)).await;
    let head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n";
    // 1 byte every 50 ms: 20 B/s, 10 s for the whole body.
    let (response, closed, took) = trickle(port, head, 200, 1, Duration::from_millis(50)).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        response.contains("x-tollgate-error: request-body-timeout\r\n"),
        "{response}"
    );
    assert!(closed, "connection closed");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // 20 bytes every 50 ms: 400 B/s, well above the minimum.
    let head = "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 200\r\n\r\n";
    let (response, _, _) = trickle(port, head, 200, 20, Duration::from_millis(50)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// Over HTTP/2 a stream whose body stalls is answered 408 too.
#[tokio::test]
async fn a_stalled_http2_body_is_cut_with_408() {
    let (_dp, port) = serving(body_limits(300, 0)).await;
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (feed, frames) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    feed.send(Ok(Frame::data(Bytes::from_static(b"first"))))
        .await
        .unwrap();
    let frames = futures_util::stream::unfold(frames, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    let request = Request::post(format!("http://127.0.0.1:{port}/"))
        .body(StreamBody::new(frames).boxed())
        .unwrap();
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(3), sender.send_request(request))
        .await
        .expect("answered before the body ended")
        .unwrap();
    assert_eq!(response.status(), 408);
    assert_eq!(
        response.headers()["x-tollgate-error"],
        "request-body-timeout"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(feed);
}
