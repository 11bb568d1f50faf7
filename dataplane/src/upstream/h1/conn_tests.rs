#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::upstream::h1::upload::put_hex;
use http_body_util::{Full, StreamBody};
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Counts the connections handed back.
#[derive(Default)]
struct Pool(Mutex<Vec<Conn>>);

impl Home for Pool {
    fn put(&self, conn: Conn) {
        self.0.lock().unwrap().push(conn);
    }
}

impl Pool {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A connection to a fresh listener, and the listener's side of it.
async fn pair() -> (Conn, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (Conn::new(client), server)
}

/// Reads from `server` until `wire` ends with `end`.
async fn read_until(server: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut chunk = [0u8; 4096];
    while !wire.ends_with(end) {
        let n = server.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&wire));
        wire.extend_from_slice(&chunk[..n]);
    }
    wire
}

type Frames = mpsc::Sender<Result<Frame<Bytes>, BoxError>>;

/// Feeds one data frame to a streamed request body.
async fn feed(frames: &Frames, data: &'static [u8]) {
    frames
        .send(Ok(Frame::data(Bytes::from_static(data))))
        .await
        .unwrap();
}

/// A request body the test feeds frame by frame.
fn streamed(method: &str) -> (Request<ProxyBody>, Frames) {
    let (tx, rx) = mpsc::channel(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    let body = StreamBody::new(stream).boxed_unsync();
    let request = Request::builder()
        .method(method)
        .uri("/up")
        .header("host", "upstream")
        .body(body)
        .unwrap();
    (request, tx)
}

fn full(method: &str, body: &'static [u8]) -> Request<ProxyBody> {
    let body = Full::new(Bytes::from_static(body))
        .map_err(|never| match never {})
        .boxed_unsync();
    Request::builder()
        .method(method)
        .uri("/up")
        .header("host", "upstream")
        .body(body)
        .unwrap()
}

/// A small request with a known body goes out whole in one write, and a
/// fixed-length response hands the connection back.
#[tokio::test]
async fn small_requests_are_written_at_once() {
    let (conn, mut server) = pair().await;
    let pool = Arc::new(Pool::default());
    let sent = tokio::spawn(async move {
        let mut chunk = [0u8; 4096];
        let n = server.read(&mut chunk).await.unwrap();
        server
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        (chunk[..n].to_vec(), server)
    });
    let response = exchange(conn, full("POST", b"hello"), None, pool.clone())
        .await
        .unwrap();
    let (wire, _server) = sent.await.unwrap();
    assert_eq!(
        wire,
        b"POST /up HTTP/1.1\r\nhost: upstream\r\ncontent-length: 5\r\n\r\nhello"
    );
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "ok"
    );
    assert_eq!(pool.count(), 1);
}

/// The request body keeps streaming (chunked) after the response head,
/// as an echo service needs; the connection is reused once both ended.
#[tokio::test]
async fn the_request_body_streams_while_the_response_does() {
    let (conn, mut server) = pair().await;
    let pool = Arc::new(Pool::default());
    let (request, frames) = streamed("POST");
    feed(&frames, b"one").await;
    let upstream = tokio::spawn(async move {
        let head = read_until(&mut server, b"one\r\n").await;
        server
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nack\r\n")
            .await
            .unwrap();
        let rest = read_until(&mut server, b"0\r\n\r\n").await;
        server.write_all(b"0\r\n\r\n").await.unwrap();
        (head, rest, server)
    });
    let response = exchange(conn, request, None, pool.clone()).await.unwrap();
    let mut body = response.into_body();
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        "ack"
    );
    feed(&frames, b"two").await;
    drop(frames);
    assert!(body.frame().await.is_none());
    let (head, rest, _server) = upstream.await.unwrap();
    assert_eq!(
        head,
        b"POST /up HTTP/1.1\r\nhost: upstream\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n"
    );
    assert_eq!(rest, b"3\r\ntwo\r\n0\r\n\r\n");
    assert_eq!(pool.count(), 1);
}

/// An upstream that answers before the body was sent (413) ends the
/// exchange: the answer is relayed, the connection closed.
#[tokio::test]
async fn an_early_answer_closes_the_connection() {
    let (conn, mut server) = pair().await;
    let pool = Arc::new(Pool::default());
    let (request, frames) = streamed("PUT");
    feed(&frames, b"part").await;
    let upstream = tokio::spawn(async move {
        read_until(&mut server, b"part\r\n").await;
        server
            .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig")
            .await
            .unwrap();
        server
    });
    let response = exchange(conn, request, None, pool.clone()).await.unwrap();
    assert_eq!(response.status(), 413);
    let _server = upstream.await.unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "big"
    );
    assert_eq!(pool.count(), 0);
    drop(frames);
}

/// A client body that fails before the response is the exchange's error,
/// with the client's error as its source (so the client gets 400, not 502).
#[tokio::test]
async fn a_failing_request_body_is_the_source() {
    let (conn, _server) = pair().await;
    let pool = Arc::new(Pool::default());
    let (request, frames) = streamed("POST");
    frames.send(Err("client went away".into())).await.unwrap();
    let error = exchange(conn, request, None, pool).await.unwrap_err();
    assert!(matches!(error, H1Error::RequestBody(_)), "{error:?}");
    let source = std::error::Error::source(&error).unwrap();
    assert_eq!(source.to_string(), "client went away");
}

/// A body read to the upstream's close ends cleanly but is not reusable;
/// a close before the framing ended is an error.
#[tokio::test]
async fn close_delimited_bodies_and_short_bodies() {
    for (answer, outcome) in [
        (
            &b"HTTP/1.1 200 OK\r\n\r\nuntil close"[..],
            Ok(&b"until close"[..]),
        ),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort",
            Err(()),
        ),
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nshort",
            Err(()),
        ),
    ] {
        let (conn, mut server) = pair().await;
        let pool = Arc::new(Pool::default());
        let upstream = tokio::spawn(async move {
            read_until(&mut server, b"\r\n\r\n").await;
            server.write_all(answer).await.unwrap();
        });
        let response = exchange(conn, full("GET", b""), None, pool.clone())
            .await
            .unwrap();
        upstream.await.unwrap();
        let body = response.into_body().collect().await;
        match outcome {
            Ok(expected) => assert_eq!(body.unwrap().to_bytes(), expected),
            Err(()) => assert!(body.is_err()),
        }
        assert_eq!(pool.count(), 0);
    }
}

/// No response at all, or an invalid one, is an error before any head.
#[tokio::test]
async fn no_or_invalid_answers_are_errors() {
    for answer in [
        &b""[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
    ] {
        let (conn, mut server) = pair().await;
        let upstream = tokio::spawn(async move {
            read_until(&mut server, b"\r\n\r\n").await;
            server.write_all(answer).await.unwrap();
        });
        let result = exchange(conn, full("GET", b""), None, Arc::new(Pool::default())).await;
        upstream.await.unwrap();
        assert!(result.is_err(), "{answer:?}");
    }
}

/// Responses without a body hand the connection back at once; a HEAD
/// response's Content-Length describes a body that is not there.
#[tokio::test]
async fn bodiless_responses_return_the_connection() {
    for (method, answer) in [
        (
            "HEAD",
            &b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n"[..],
        ),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        (
            "GET",
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
        ),
        (
            "GET",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        ),
    ] {
        let (conn, mut server) = pair().await;
        let pool = Arc::new(Pool::default());
        let upstream = tokio::spawn(async move {
            read_until(&mut server, b"\r\n\r\n").await;
            server.write_all(answer).await.unwrap();
            server
        });
        let response = exchange(conn, full(method, b""), None, pool.clone())
            .await
            .unwrap();
        let _server = upstream.await.unwrap();
        assert!(response.body().is_end_stream(), "{method} {answer:?}");
        assert_eq!(response.body().size_hint().exact(), Some(0));
        assert_eq!(pool.count(), 1, "{method} {answer:?}");
    }
}

/// An idle connection the upstream closed, or sent bytes on, is not
/// usable; an open quiet one is.
#[tokio::test]
async fn idle_connections_are_checked_without_waiting() {
    let (mut conn, server) = pair().await;
    assert!(conn.is_usable());
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(!conn.is_usable());

    let (mut conn, mut server) = pair().await;
    server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(!conn.is_usable());
}

/// Chunk size lines in hex, as written.
#[test]
fn hex_sizes() {
    for n in [1usize, 9, 10, 15, 16, 255, 4096, 0x1234_5678] {
        let mut dst = BytesMut::new();
        put_hex(&mut dst, n);
        assert_eq!(&dst[..], format!("{n:x}").as_bytes());
    }
}
