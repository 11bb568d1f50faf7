//! Downstream limits and hostile input: slow heads, idle connections,
//! oversized heads, connection limits, ambiguous framing and header
//! injection. Nothing malformed may reach an upstream.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use server_support::*;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_snapshot::Settings;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

fn short(header_ms: u64, idle_ms: u64) -> Settings {
    Settings {
        request_header_timeout_ms: header_ms,
        idle_timeout_ms: idle_ms,
        ..Settings::default()
    }
}

/// A client that sends half a request head is disconnected once the header
/// timeout passes, and gets no response.
#[tokio::test]
async fn a_slow_request_head_is_disconnected() {
    let (_dp, port) = serving(short(300, 60_000)).await;
    for partial in [&b"GET / HTTP/1.1\r\nHost: x\r\n"[..], b"G", b"PRI * HT"] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(partial).await.unwrap();
        let (response, closed) = read_until_close(&mut stream, Duration::from_secs(5)).await;
        assert!(closed, "{partial:?} is disconnected");
        assert!(!response.contains("200"), "{response}");
    }
}

/// The header timeout runs from a head's first byte: a keep-alive
/// connection idle for longer than it (but not the idle timeout) still
/// takes its next request, sent slowly in pieces within the limit.
#[tokio::test]
async fn idle_time_is_not_head_time() {
    let (_dp, port) = serving(short(300, 60_000)).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    for part in [&b"GET / HTTP/1.1\r\n"[..], b"Host: x\r\n", b"\r\n"] {
        stream.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (response, closed) = read_until_close(&mut stream, Duration::from_millis(500)).await;
    assert!(!closed, "the connection stays open");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// A keep-alive connection with no request for `idle_timeout_ms` is closed,
/// over HTTP/1.1 and HTTP/2. (An HTTP/2 client is sent GOAWAY; this raw one
/// never answers the shutdown PING, so the drain timeout closes it.)
#[tokio::test]
async fn an_idle_connection_is_closed() {
    let settings = Settings {
        drain_timeout_ms: 300,
        ..short(30_000, 300)
    };
    let (_dp, port) = serving(settings).await;
    let mut h1 = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    h1.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (response, closed) = read_until_close(&mut h1, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let mut h2 = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    h2.write_all(&[PREFACE, EMPTY_SETTINGS].concat())
        .await
        .unwrap();
    let (frames, closed) = read_until_close(&mut h2, Duration::from_secs(5)).await;
    assert!(closed);
    assert!(
        frames.as_bytes().windows(2).any(|w| w == [7, 0]),
        "a GOAWAY frame was sent"
    );
}

/// Heads over `max_request_header_bytes` or with more than
/// `max_request_headers` lines get 431.
#[tokio::test]
async fn oversized_heads_get_431() {
    let settings = Settings {
        max_request_header_bytes: 4096,
        max_request_headers: 20,
        ..Settings::default()
    };
    let (_dp, port) = serving(settings).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(8000)
    );
    let (response, _) = raw(port, big.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
    let many: String = (0..30).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let (response, _) = raw(port, many.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431"), "{response}");
}

/// Connections over `max_connections` are closed at once; a slot frees
/// when a connection ends.
#[tokio::test]
async fn connections_over_the_limit_are_closed() {
    let settings = Settings {
        max_connections: 1,
        ..Settings::default()
    };
    let (_dp, port) = serving(settings).await;
    let first = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (response, closed) = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(closed && response.is_empty(), "{response}");
    drop(first);
    let mut served = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (response, _) = raw(
            port,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        if response.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
    }
    assert!(served);
}

/// Ambiguous framing and header values that could split a request are
/// answered 400, the connection is closed, and nothing reaches the backend.
#[tokio::test]
async fn request_smuggling_and_injection_are_refused() {
    let (backend, reached) = counting_echo().await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/", backend)]))
        .await
        .unwrap();
    let cases: [(&str, &[u8]); 9] = [
        ("CL then TE", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("TE then CL", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
        (
            "two different CL",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        ),
        (
            "CL list",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nab",
        ),
        (
            "bad CL",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        ),
        (
            "TE not chunked",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        ),
        (
            "bare CR in a value",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rX-B: b\r\n\r\n",
        ),
        (
            "NUL in a value",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
        ),
        (
            "obs-fold",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        ),
    ];
    for (name, request) in cases {
        let (response, closed) = raw(port, request).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{name}: {response}");
        assert!(closed, "{name}: connection closed");
        assert_eq!(
            reached.load(Ordering::SeqCst),
            0,
            "{name}: reached the backend"
        );
    }
}

/// A benign request first does not hide a later ambiguous one on the same
/// keep-alive connection: the first is served, the second refused.
#[tokio::test]
async fn ambiguous_framing_after_a_benign_request_is_refused() {
    let (backend, reached) = counting_echo().await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/", backend)]))
        .await
        .unwrap();
    let wire = b"POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n\
        POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let (response, closed) = raw(port, wire).await;
    let first = response.find("HTTP/1.1 200").unwrap();
    let second = response.find("HTTP/1.1 400").unwrap();
    assert!(first < second && closed, "{response}");
    assert_eq!(reached.load(Ordering::SeqCst), 1);
}

/// An HTTP/1.0 keep-alive request or an `Upgrade` offer (answered without
/// switching) does not stop the check either: a later ambiguous request on
/// the same connection is refused, and never reaches the backend.
#[tokio::test]
async fn ambiguous_framing_after_http10_or_upgrade_is_refused() {
    let (backend, reached) = counting_echo().await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/", backend)]))
        .await
        .unwrap();
    let ambiguous = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let firsts = [
        "GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        // An h2c offer with a body too large to carry is served over HTTP/1.1.
        &format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
             Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\
             Content-Length: 20000\r\n\r\n{}",
            "x".repeat(20_000)
        ),
    ];
    for (i, first) in firsts.iter().enumerate() {
        let (response, closed) = raw(port, format!("{first}{ambiguous}").as_bytes()).await;
        let served = response
            .find(" 200 OK")
            .unwrap_or_else(|| panic!("{i}: {response}"));
        let refused = response
            .find("HTTP/1.1 400")
            .unwrap_or_else(|| panic!("{i}: {response}"));
        assert!(served < refused && closed, "{i}: {response}");
        assert_eq!(
            reached.load(Ordering::SeqCst),
            i + 1,
            "{i}: reached the backend"
        );
    }
}

/// An `Upgrade: h2c` offer gets the Host checks of plain HTTP/1.1: with no
/// Host, two of them or userinfo in it, the offer is declined and the
/// request answered 400 over HTTP/1.1, never switched and served.
#[tokio::test]
async fn h2c_offers_get_the_host_checks() {
    let (backend, reached) = counting_echo().await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/", backend)]))
        .await
        .unwrap();
    let offer = "Connection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\n\
                 HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n";
    for hosts in ["", "Host: a\r\nHost: b\r\n", "Host: user@a\r\n"] {
        let request = format!("GET / HTTP/1.1\r\n{hosts}{offer}\r\n");
        let (response, closed) = raw(port, request.as_bytes()).await;
        assert!(
            response.starts_with("HTTP/1.1 400"),
            "{hosts:?}: {response}"
        );
        assert!(
            response.contains("x-tollgate-error: bad-request"),
            "{response}"
        );
        assert!(closed, "{hosts:?}: connection closed");
    }
    assert_eq!(reached.load(Ordering::SeqCst), 0, "reached the backend");
}

/// Over HTTP/2 a header value with NUL or CR never reaches the backend.
#[tokio::test]
async fn http2_header_injection_is_refused() {
    let (backend, reached) = counting_echo().await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/", backend)]))
        .await
        .unwrap();
    for bad in [&b"a\0b"[..], b"a\rb", b"a\nb"] {
        let mut block = Vec::new();
        for (name, value) in [
            (&b":method"[..], &b"GET"[..]),
            (b":scheme", b"http"),
            (b":path", b"/"),
            (b":authority", b"x"),
            (b"x-bad", bad),
        ] {
            block.extend_from_slice(&[0, name.len() as u8]);
            block.extend_from_slice(name);
            block.push(value.len() as u8);
            block.extend_from_slice(value);
        }
        let len = block.len();
        let mut wire = [PREFACE, EMPTY_SETTINGS].concat();
        wire.extend_from_slice(&[0, 0, len as u8, 1, 0x5, 0, 0, 0, 1]);
        wire.extend_from_slice(&block);
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(&wire).await.unwrap();
        let _ = read_until_close(&mut stream, Duration::from_millis(500)).await;
        assert_eq!(
            reached.load(Ordering::SeqCst),
            0,
            "{bad:?} reached the backend"
        );
    }
}
