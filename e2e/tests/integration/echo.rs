//! The echo backend over real sockets (in process) and through `handle`
//! directly with paused time for delays.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tollgate_e2e::HttpClient;
use tollgate_e2e::echo::{self, EchoContext};

fn context(port: u16) -> EchoContext {
    EchoContext {
        namespace: "default".into(),
        ingress: "quickstart".into(),
        service: "echo-v1".into(),
        pod: "echo-v1-0".into(),
        http_port: port.to_string(),
    }
}

/// Serves the echo backend in this process; returns its base URL.
async fn start() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(echo::serve(listener, context(port)));
    format!("http://127.0.0.1:{port}")
}

/// The body names path with query, host with port, method, protocol, the
/// context, and headers by canonical name with one value per line, no Host.
#[tokio::test]
async fn echoes_the_request_over_http1() {
    let base = start().await;
    let url = format!("{base}/foo//bar?x=1&y=%20");
    let headers = [
        ("Host", "example.com:8080"),
        ("x-forwarded-for", "10.0.0.1"),
        ("X-FORWARDED-FOR", "10.0.0.2"),
    ];
    let reply = HttpClient::http1()
        .request(Method::DELETE, &url, &headers)
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    let echo = reply.echo.clone().unwrap();
    assert_eq!(echo.path, "/foo//bar?x=1&y=%20");
    assert_eq!(echo.host, "example.com:8080");
    assert_eq!(echo.method, "DELETE");
    assert_eq!(echo.proto, "HTTP/1.1");
    assert_eq!(echo.headers["X-Forwarded-For"], ["10.0.0.1", "10.0.0.2"]);
    assert!(!echo.headers.contains_key("Host"));
    assert_eq!(echo.header("x-forwarded-for"), Some("10.0.0.1"));
    assert_eq!(
        (echo.namespace.as_str(), echo.ingress.as_str()),
        ("default", "quickstart")
    );
    assert_eq!(
        (echo.service.as_str(), echo.pod.as_str()),
        ("echo-v1", "echo-v1-0")
    );
    assert_eq!(base.rsplit(':').next(), Some(echo.http_port.as_str()));
}

/// The JSON keys are exactly the conformance server's plus `httpPort`.
#[tokio::test]
async fn json_keys_match_the_conformance_server() {
    let base = start().await;
    let reply = tollgate_e2e::get(&format!("{base}/")).await.unwrap();
    let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    let want = [
        "headers",
        "host",
        "httpPort",
        "ingress",
        "method",
        "namespace",
        "path",
        "pod",
        "proto",
        "service",
    ];
    assert_eq!(keys, want);
}

/// Over h2c the host is the `:authority` and the proto `HTTP/2.0`.
#[tokio::test]
async fn echoes_the_request_over_h2c() {
    let base = start().await;
    let reply = HttpClient::h2c()
        .get(&format!("{base}/h2?q=1"))
        .await
        .unwrap();
    let echo = reply.echo.unwrap();
    assert_eq!(echo.proto, "HTTP/2.0");
    assert_eq!(echo.path, "/h2?q=1");
    assert_eq!(format!("http://{}", echo.host), base);
}

/// `X-Echo-Set-Header` sets response headers; Content-Type stays JSON.
#[tokio::test]
async fn sets_requested_response_headers() {
    let base = start().await;
    let headers = [
        ("X-Echo-Set-Header", "X-Foo: one, X-Bar:two"),
        ("X-Echo-Set-Header", "X-Foo:three,Content-Type:text/html"),
    ];
    let reply = HttpClient::http1()
        .request(Method::GET, &format!("{base}/"), &headers)
        .await
        .unwrap();
    assert_eq!(reply.header("x-foo"), Some("one,three"));
    assert_eq!(reply.header("x-bar"), Some("two"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

/// `/status/NNN` answers NNN with the echo body (none for 204); malformed
/// codes get 400.
#[tokio::test]
async fn status_paths_choose_the_status() {
    let base = start().await;
    let client = HttpClient::http1();
    let cases = [
        ("/status/503", 503, true),
        ("/status/302", 302, true),
        ("/status/404", 404, true),
        ("/status/abc", 400, true),
        ("/status/204", 204, false),
    ];
    for (path, status, has_body) in cases {
        let reply = client.get(&format!("{base}{path}")).await.unwrap();
        assert_eq!(reply.status.as_u16(), status, "{path}");
        assert_eq!(reply.echo.is_some(), has_body, "{path}");
        if let Some(echo) = reply.echo {
            assert_eq!(echo.path, path);
        }
    }
}

/// `/health` answers 200 `OK` as plain text.
#[tokio::test]
async fn health_answers_ok() {
    let base = start().await;
    let reply = tollgate_e2e::get(&format!("{base}/health")).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "OK");
    assert!(reply.echo.is_none());
}

/// Request bodies are read and discarded; the connection stays usable.
#[tokio::test]
async fn discards_request_bodies() {
    let base = start().await;
    let client = HttpClient::http1();
    for _ in 0..2 {
        let req = Request::post(format!("{base}/upload"))
            .body(Full::new(Bytes::from(vec![b'x'; 1 << 20])))
            .unwrap();
        let reply = client.send(req).await.unwrap();
        let echo = reply.echo.unwrap();
        assert_eq!(
            (echo.method.as_str(), echo.path.as_str()),
            ("POST", "/upload")
        );
        assert_eq!(echo.headers["Content-Length"], ["1048576"]);
    }
}

fn client_addr() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

/// `?delay=` waits for a Go duration before answering.
#[tokio::test(start_paused = true)]
async fn delay_waits_before_answering() {
    let cases = [
        ("/?delay=1500ms", 1500),
        ("/?delay=2s", 2000),
        ("/?delay=", 0),
    ];
    for (target, millis) in cases {
        let req = Request::get(target).body(Full::new(Bytes::new())).unwrap();
        let started = tokio::time::Instant::now();
        let resp = echo::handle(req, client_addr(), &context(3000))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{target}");
        assert_eq!(started.elapsed().as_millis(), millis, "{target}");
    }
}

/// An unparsable delay is a 500 with Go's error message as JSON.
#[tokio::test]
async fn bad_delay_is_a_json_error() {
    let req = Request::get("/?delay=soon")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = echo::handle(req, client_addr(), &context(3000))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["message"], "time: invalid duration \"soon\"");
}

/// A WebSocket handshake is accepted: the first message describes it,
/// then messages come back as sent; on `/status/NNN` it is refused.
#[tokio::test]
async fn websocket_describes_the_handshake_then_echoes() {
    use crate::common::websocket::{round_trip, ws_connect, ws_open};
    use tokio_tungstenite::tungstenite::Message;
    let base = start().await;
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let (mut ws, hello) = ws_connect(port, "/socket?x=1").await;
    assert_eq!(hello.path, "/socket?x=1");
    assert_eq!(hello.service, "echo-v1");
    assert_eq!(hello.header("upgrade"), Some("websocket"));
    round_trip(&mut ws, Message::text("echo me")).await;
    round_trip(&mut ws, Message::binary(vec![1u8, 2, 3])).await;
    let refused = ws_open(port, "/status/418", &[]).await.err().unwrap();
    assert_eq!(refused.status(), 418);
}
