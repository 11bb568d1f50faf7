#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A raw HTTP/1.1 upstream answering every request head with `response`,
/// closing the connection after each answer when `close_after` is set; it
/// counts the connections it accepted.
async fn upstream(response: &'static [u8], close_after: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&chunk[..n]);
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        if stream.write_all(response).await.is_err() {
                            return;
                        }
                        if close_after {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

fn request() -> Request<ProxyBody> {
    Request::get("/")
        .header("host", "upstream")
        .body(Empty::new().map_err(|never| match never {}).boxed_unsync())
        .unwrap()
}

async fn exchange(pool: &Arc<Http1Pool>) -> Bytes {
    let response = pool.send(request(), None).await.unwrap();
    response.into_body().collect().await.unwrap().to_bytes()
}

/// Sequential exchanges share one connection, whatever the body framing:
/// fixed length, chunked, or empty (a body nobody needs to poll).
#[tokio::test]
async fn connections_are_reused_across_framings() {
    for (wire, body) in [
        (
            &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
            &b"ok"[..],
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            b"ok",
        ),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ] {
        let (addr, accepted) = upstream(wire, false).await;
        let pool = Arc::new(Http1Pool::new(addr, Duration::from_secs(1)));
        for _ in 0..4 {
            assert_eq!(exchange(&pool).await, body);
        }
        if body.is_empty() {
            // An empty body may never be polled: dropping it returns the
            // connection.
            let response = pool.send(request(), None).await.unwrap();
            drop(response);
            assert_eq!(exchange(&pool).await, body);
        }
        let framing = String::from_utf8_lossy(wire);
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "{framing}");
        assert_eq!(pool.idle_count(), 1);
    }
}

/// An upstream that closes idle connections behind the pool's back costs
/// nothing: the closed connection is noticed at checkout and a new one made.
#[tokio::test]
async fn connections_closed_by_the_upstream_are_not_used() {
    let (addr, accepted) = upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", true).await;
    let pool = Arc::new(Http1Pool::new(addr, Duration::from_secs(1)));
    for _ in 0..5 {
        assert_eq!(exchange(&pool).await, &b"ok"[..]);
        // Let the close arrive before the next checkout.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

/// A response body dropped before its end takes its connection with it:
/// HTTP/1.1 cannot pick up a half-read response.
#[tokio::test]
async fn a_half_read_body_closes_its_connection() {
    let (addr, accepted) =
        upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello", false).await;
    let pool = Arc::new(Http1Pool::new(addr, Duration::from_secs(1)));
    let response = pool.send(request(), None).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), &b"hello"[..]);
    drop(body);
    assert_eq!(pool.idle_count(), 0);
    let response = pool.send(request(), None).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// Nothing listening: a connect error, not a protocol error.
#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let pool = Arc::new(Http1Pool::new(addr, Duration::from_secs(1)));
    let error = pool.send(request(), None).await.unwrap_err();
    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
}

/// The sweeper closes connections the upstream closed while idle.
#[tokio::test]
async fn the_sweeper_drops_closed_idle_connections() {
    let (addr, _) = upstream(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", true).await;
    let pool = Arc::new(Http1Pool::new(addr, Duration::from_secs(1)));
    assert_eq!(exchange(&pool).await, &b"ok"[..]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    pool.sweep();
    assert_eq!(pool.idle_count(), 0);
}
