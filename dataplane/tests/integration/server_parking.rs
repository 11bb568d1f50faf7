//! Idle HTTP/1.1 connections park: they give hyper's buffers back while
//! waiting for their next request, and lose nothing by it — the next
//! request, pipelined requests, a head split across the wait, the idle
//! timeout and shutdown all behave as on a connection that never parked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::server_support;

use server_support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_dataplane::Dataplane;
use tollgate_snapshot::Settings;

const GET: &[u8] = b"GET /p HTTP/1.1\r\nhost: x\r\n\r\n";

/// Reads one response with a Content-Length body; returns its head and body.
async fn response(stream: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                buf.drain(..end + 4 + length);
                assert!(buf.is_empty(), "bytes after the response");
                return (head, body);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a whole response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until `parked` connections are parked (at most 5 s).
async fn parked(dp: &Dataplane, parked: usize) {
    for _ in 0..500 {
        if dp.status().connections.parked == parked {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{:?}, wanted {parked} parked", dp.status().connections);
}

/// One request on a fresh connection, which then parks.
async fn parked_connection(dp: &Dataplane, port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(GET).await.unwrap();
    let (head, body) = response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"/p\""), "{body}");
    parked(dp, 1).await;
    stream
}

/// After its request a connection parks, stays open, and serves the next
/// request; `/status` counts it as open and parked.
#[tokio::test]
async fn an_idle_connection_parks_and_serves_its_next_request() {
    let (dp, port) = serving(Settings::default()).await;
    let mut stream = parked_connection(&dp, port).await;
    assert_eq!(dp.status().connections.open, 1);
    stream.write_all(GET).await.unwrap();
    let (head, _) = response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    // Once it rests, it parks again.
    parked(&dp, 1).await;
    drop(stream);
    parked(&dp, 0).await;
}

/// Requests pipelined into a parked connection are all answered, in order.
#[tokio::test]
async fn pipelined_requests_wake_a_parked_connection() {
    let (dp, port) = serving(Settings::default()).await;
    let mut stream = parked_connection(&dp, port).await;
    let two = b"GET /one HTTP/1.1\r\nhost: x\r\n\r\nGET /two HTTP/1.1\r\nhost: x\r\n\r\n";
    stream.write_all(two).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while String::from_utf8_lossy(&buf)
        .matches("HTTP/1.1 200")
        .count()
        < 2
        || !String::from_utf8_lossy(&buf).contains("\"/two\"")
    {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    assert!(text.find("\"/one\"") < text.find("\"/two\""), "{text}");
}

/// A request head that starts arriving, pauses longer than a connection
/// waits before parking, then ends is served whole.
#[tokio::test]
async fn a_head_split_across_a_pause_is_served() {
    let (dp, port) = serving(Settings::default()).await;
    let mut stream = parked_connection(&dp, port).await;
    stream.write_all(b"GET /sp").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dp.status().connections.parked, 0, "a half head is not idle");
    stream
        .write_all(b"lit HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("\"/split\""), "{body}");
}

/// The idle timeout closes a parked connection.
#[tokio::test]
async fn the_idle_timeout_closes_a_parked_connection() {
    let settings = Settings {
        idle_timeout_ms: 600,
        ..Settings::default()
    };
    let (dp, port) = serving(settings).await;
    let mut stream = parked_connection(&dp, port).await;
    let (rest, closed) = read_until_close(&mut stream, Duration::from_secs(5)).await;
    assert!(closed && rest.is_empty(), "{rest:?}");
    parked(&dp, 0).await;
    assert_eq!(dp.status().connections.open, 0);
}

/// Shutdown closes parked connections at once and `closed()` returns.
#[tokio::test]
async fn shutdown_closes_parked_connections() {
    let (dp, port) = serving(Settings::default()).await;
    let mut stream = parked_connection(&dp, port).await;
    dp.shutdown();
    let (rest, closed) = read_until_close(&mut stream, Duration::from_secs(2)).await;
    assert!(closed && rest.is_empty(), "{rest:?}");
    tokio::time::timeout(Duration::from_secs(2), dp.closed())
        .await
        .unwrap();
}
