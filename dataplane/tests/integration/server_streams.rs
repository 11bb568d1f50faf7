//! Downstream HTTP/2 connections and the upstream connections they hold:
//! each stream may hold one (HTTP/1.1 upstreams carry one request at a
//! time), so the per-connection stream limit is what bounds them.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use bytes::Bytes;
use http_body_util::{Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use server_support::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// A backend that holds each request for `hold`, recording the most
/// requests (so upstream connections: HTTP/1.1 carries one at a time) it
/// held at once.
async fn holding_backend(hold: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = Arc::clone(&peak);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
                    async move {
                        let held = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(held, Ordering::SeqCst);
                        tokio::time::sleep(hold).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    }
                });
                let io = TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// One HTTP/2 connection holds at most `max_concurrent_streams` upstream
/// connections: the limit is announced in SETTINGS, the client queues the
/// rest, and every request is still served.
#[tokio::test]
async fn http2_streams_per_connection_are_bounded() {
    let (backend, peak) = holding_backend(Duration::from_millis(200)).await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.settings.max_concurrent_streams = 2;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = || {
        http::Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    // The first exchange brings the gateway's SETTINGS.
    let mut first = sender.clone();
    assert_eq!(first.send_request(request()).await.unwrap().status(), 200);
    let sends = (0..6).map(|_| {
        let mut sender = sender.clone();
        let request = request();
        tokio::spawn(async move { sender.send_request(request).await.map(|r| r.status()) })
    });
    for send in futures_util::future::join_all(sends).await {
        assert_eq!(send.unwrap().unwrap(), 200);
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "upstream connections held at once"
    );
}

/// A client that opens streams past the limit anyway gets those refused
/// with RST_STREAM(REFUSED_STREAM), which marks them as never processed.
#[tokio::test]
async fn http2_streams_past_the_limit_are_refused() {
    let (backend, peak) = holding_backend(Duration::from_millis(300)).await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.settings.max_concurrent_streams = 2;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let mut wire = [PREFACE, EMPTY_SETTINGS].concat();
    for stream_id in [1u8, 3, 5] {
        let mut block = Vec::new();
        for (name, value) in [
            (&b":method"[..], &b"GET"[..]),
            (b":scheme", b"http"),
            (b":path", b"/"),
            (b":authority", b"x"),
        ] {
            block.extend_from_slice(&[0, name.len() as u8]);
            block.extend_from_slice(name);
            block.push(value.len() as u8);
            block.extend_from_slice(value);
        }
        // HEADERS, END_STREAM | END_HEADERS.
        wire.extend_from_slice(&[0, 0, block.len() as u8, 1, 0x5, 0, 0, 0, stream_id]);
        wire.extend_from_slice(&block);
    }
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&wire).await.unwrap();
    let (frames, _) = read_until_close(&mut stream, Duration::from_millis(1_000)).await;
    let frames = frames.as_bytes();
    // RST_STREAM (type 3) on stream 5 with REFUSED_STREAM (7).
    let refused = [0, 0, 4, 3, 0, 0, 0, 0, 5, 0, 0, 0, 7];
    assert!(
        frames.windows(refused.len()).any(|w| w == refused),
        "no RST_STREAM(REFUSED_STREAM) on stream 5: {frames:?}"
    );
    assert_eq!(peak.load(Ordering::SeqCst), 2);
}
